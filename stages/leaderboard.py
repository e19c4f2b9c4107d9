"""leaderboard@<profile>: every baseline on the clustering-data-v1 batteries, in one table."""
from clusterbench import threads  # noqa: F401  (first: pins BLAS/OpenMP threads)
import argparse  # noqa: E402

from clusterbench import config, leaderboard, resolve  # noqa: E402


@config.main_guard
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("profile")
    args = ap.parse_args()
    params = resolve.load_params("profiles", args.profile)
    if args.profile not in params.profiles:
        raise config.ParamsError(f"unknown profile {args.profile!r}; allowed: {', '.join(params.profiles)}")
    summary = leaderboard.build(params, args.profile)
    print(f"leaderboard@{args.profile}: {summary['runs']} runs on {summary['datasets']} data sets")


if __name__ == "__main__":
    main()

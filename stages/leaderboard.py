"""leaderboard@<profile>: every baseline on the clustering-data-v1 batteries, in one table."""
import argparse

from clusterbench import config, leaderboard


@config.main_guard
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("profile")
    args = ap.parse_args()
    params = config.load()
    if args.profile not in params.profiles:
        raise config.ParamsError(f"unknown profile {args.profile!r}; allowed: {', '.join(params.profiles)}")
    summary = leaderboard.build(params, args.profile)
    print(f"leaderboard@{args.profile}: {summary['runs']} runs on {summary['datasets']} data sets")


if __name__ == "__main__":
    main()

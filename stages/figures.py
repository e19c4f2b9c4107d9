"""figures@<profile>: training curves, confusion matrices and embeddings -> <reports>/plots (dvc plots)."""
from clusterbench import threads  # noqa: F401  (first: pins BLAS/OpenMP threads)
import argparse  # noqa: E402

from clusterbench import config, figures, resolve  # noqa: E402


@config.main_guard
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("profile")
    args = ap.parse_args()
    written = figures.build(resolve.load_params("profiles", args.profile), args.profile)
    print(f"figures@{args.profile}: " + ", ".join(f"{n} {kind}" for kind, n in written.items()))


if __name__ == "__main__":
    main()

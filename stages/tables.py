"""tables@<profile>: paper-vs-ours tables and the scorecard -> reports/[<profile>/]tables, README.md."""
from clusterbench import threads  # noqa: F401  (first: pins BLAS/OpenMP threads)
import argparse  # noqa: E402

from clusterbench import config, resolve, scoring, tables  # noqa: E402


@config.main_guard
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("profile")
    args = ap.parse_args()
    params = resolve.load_params("profiles", args.profile)
    result = tables.render_all(params, args.profile, scoring.load_scores(params.profiles[args.profile].reports))
    print(f"rendered {result['tables']} tables")


if __name__ == "__main__":
    main()

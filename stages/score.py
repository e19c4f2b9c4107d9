"""score@<profile>: metrics of every finished run of a profile -> reports/[<profile>/]metrics."""
import argparse

from clusterbench import config, scoring


@config.main_guard
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("profile")
    ap.add_argument("--runs", nargs="+", metavar="RUN",
                    help="re-score only these finished runs; keep the committed metrics of the others (whose "
                         "data is on another machine)")
    args = ap.parse_args()
    summary = scoring.score_profile(config.load(), args.profile, args.runs)
    print(f"scored {len(summary['scored'])} runs; not run: {len(summary['not_run'])}")


if __name__ == "__main__":
    main()

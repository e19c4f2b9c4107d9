"""tables@<profile>: paper-vs-ours tables and the scorecard -> reports/[<profile>/]tables, README.md."""
import argparse

from clusterbench import config, scoring, tables


@config.main_guard
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("profile")
    args = ap.parse_args()
    params = config.load()
    result = tables.render_all(params, args.profile, scoring.load_scores(params.profiles[args.profile].reports))
    print(f"rendered {result['tables']} tables")


if __name__ == "__main__":
    main()

"""baselines@<run>: a classic baseline on one view, over the profile's seeds."""
import argparse

from clusterbench import config, runs


@config.main_guard
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run")
    args = ap.parse_args()
    record = runs.execute(config.load(), "baselines", args.run)
    print(f"{args.run}: {len(record['per_seed'])} seeds, "
          f"{sum(s['wall_s'] for s in record['per_seed']):.1f} s")


if __name__ == "__main__":
    main()

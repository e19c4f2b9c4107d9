"""baselines@<run>: a classic baseline on one view, over the profile's seeds."""
from clusterbench import threads  # noqa: F401  (first: pins BLAS/OpenMP threads)
import argparse  # noqa: E402

from clusterbench import config, resolve, runs  # noqa: E402


@config.main_guard
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run")
    args = ap.parse_args()
    params = resolve.load_params("runs", args.run)
    if args.run not in params.baselines:
        raise config.ParamsError(f"{args.run!r} is a train run, not a baseline run: use `dvc repro train@{args.run}`")
    record = runs.execute(params, "baselines", args.run)
    print(f"{args.run}: {len(record['per_seed'])} seeds, {sum(s['wall_s'] for s in record['per_seed']):.1f} s")


if __name__ == "__main__":
    main()

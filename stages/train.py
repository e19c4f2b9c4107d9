"""train@<run>: a paper method on one view and its kNN graph, over the profile's seeds."""
import argparse

from clusterbench import config, runs


@config.main_guard
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run")
    args = ap.parse_args()
    params = config.load()
    if args.run not in params.train:
        raise config.ParamsError(f"no run {args.run!r} under train in params.yaml; allowed: {', '.join(params.train)}")
    run = params.train[args.run]
    if run.seeds:  # the run's own seeds replace its profile's
        params.profiles[run.profile] = params.profiles[run.profile].model_copy(update={"seeds": run.seeds})
    record = runs.execute(params, "train", args.run)
    print(f"{args.run}: {len(record['per_seed'])} seeds, "
          f"{sum(s['wall_s'] for s in record['per_seed']):.1f} s")


if __name__ == "__main__":
    main()

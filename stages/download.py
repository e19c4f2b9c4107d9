"""download@<dataset>: fetch, verify and parse one dataset into data/datasets/<dataset>/."""
import argparse

from clusterbench import config, datasets, io


@config.main_guard
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dataset")
    args = ap.parse_args()
    params = config.load()
    if args.dataset not in params.datasets:
        raise config.ParamsError(f"dataset {args.dataset!r} is not listed under datasets in params.yaml")
    fetcher = datasets.Fetcher(mirrors=params.data.mirrors, offline=params.data.offline,
                               local_dirs={"imagenet": params.data.imagenet_dir})
    arrays = datasets.prepare(args.dataset, io.dataset_dir(args.dataset), fetcher)
    print(f"{args.dataset}: {len(arrays.X)} samples, {arrays.n_classes} classes, X {arrays.X.shape[1:]}")


if __name__ == "__main__":
    main()

"""download@<dataset>: fetch, verify and parse one dataset into data/datasets/<dataset>/."""
from clusterbench import threads  # noqa: F401  (first: pins BLAS/OpenMP threads)
import argparse  # noqa: E402

from clusterbench import config, datasets, io, resolve  # noqa: E402


@config.main_guard
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dataset")
    args = ap.parse_args()
    settings = resolve.load_settings("download", args.dataset)
    data = config.DataParams(**settings["data"])
    fetcher = datasets.Fetcher(mirrors=data.mirrors, offline=data.offline, local_dirs={"imagenet": data.imagenet_dir})
    arrays = datasets.prepare(args.dataset, io.dataset_dir(args.dataset), fetcher)
    print(f"{args.dataset}: {len(arrays.X)} samples, {arrays.n_classes} classes, X {arrays.X.shape[1:]}")


if __name__ == "__main__":
    main()

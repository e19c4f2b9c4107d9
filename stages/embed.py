"""embed@<view>: features of (a subsample of) one dataset -> data/<profile>/views/<view>.npz."""
from clusterbench import threads  # noqa: F401  (first: pins BLAS/OpenMP threads)
import argparse  # noqa: E402
import os  # noqa: E402

from clusterbench import config, datasets, embeddings, io, resolve  # noqa: E402
from clusterbench.methods import pick_device


@config.main_guard
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("view")
    args = ap.parse_args()
    spec = resolve.load_settings("embed", args.view)
    if spec["offline"]:  # no pretrained-weights download either (docs/embeddings.md)
        os.environ["CLUSTERBENCH_OFFLINE"] = "1"
    arrays = datasets.load(spec["dataset"])
    rows = datasets.stratified_subsample(arrays.y, spec["max_samples"], spec["subsample_seed"])
    steps = spec["steps"]
    view = embeddings.build_view(arrays, rows, steps, seed=spec["subsample_seed"], device=pick_device(),
                                 meta={"dataset": spec["dataset"], "embedding": spec["embedding"],
                                       "steps": steps, "profile": spec["profile"]}, name=args.view)
    view.save(io.view_path(spec["profile"], args.view))
    print(f"{args.view}: {view.X.shape[0]} rows x {view.X.shape[1]} features")


if __name__ == "__main__":
    main()

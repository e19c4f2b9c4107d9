"""embed@<view>: features of (a subsample of) one dataset -> data/<profile>/views/<view>.npz."""
import argparse
import os

from clusterbench import config, datasets, embeddings, io
from clusterbench.methods import pick_device


@config.main_guard
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("view")
    args = ap.parse_args()
    params = config.load()
    if params.data.offline:  # no pretrained-weights download either (docs/embeddings.md)
        os.environ["CLUSTERBENCH_OFFLINE"] = "1"
    view_spec = params.views[args.view]
    profile = params.profiles[view_spec.profile]
    arrays = datasets.load(view_spec.dataset)
    rows = datasets.stratified_subsample(arrays.y, profile.max_samples, profile.subsample_seed)
    steps = [step.model_dump() for step in params.embeddings[view_spec.embedding]]
    view = embeddings.build_view(arrays, rows, steps, seed=profile.subsample_seed, device=pick_device(),
                                 meta={"dataset": view_spec.dataset, "embedding": view_spec.embedding,
                                       "steps": steps, "profile": view_spec.profile})
    view.save(io.view_path(view_spec.profile, args.view))
    print(f"{args.view}: {view.X.shape[0]} rows x {view.X.shape[1]} features")


if __name__ == "__main__":
    main()

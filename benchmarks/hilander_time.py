"""Time Hi-LANDER on an open-set data set: training epochs (scaled to ``--full-epochs``) and the
inference level loop, for the joint model and the two-model baseline (Table 1's comparison), and
report F_P / F_B / NMI of the test split per level. For docs/methods/hilander.md and the not-run
reasons. Prints one JSON line per model.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/hilander_time.py --dataset openset-faces-synth \\
        --epochs 2 --hidden 512

``--dataset``: a registered open-set data set (split 0 = train, split 1 = test), built in a
temporary folder from the download cache / mirrors (nothing is written under data/); ``--pca``
reduces it first (as the pca50 views). ``--override key=value`` sets further Config fields.
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time

import numpy as np
import torch


def load(name: str, pca: int | None):
    from clusterbench.datasets import Fetcher, prepare
    from clusterbench.embeddings import raw_pixels

    with tempfile.TemporaryDirectory() as tmp:
        arrays = prepare(name, f"{tmp}/out", Fetcher(progress=False))
    x, _ = raw_pixels(arrays)
    if pca:
        from sklearn.decomposition import PCA

        x = PCA(n_components=pca, random_state=0).fit_transform(x).astype(np.float32)
    return x, arrays.y, arrays.split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="openset-faces-synth")
    ap.add_argument("--pca", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=2, help="epochs timed here")
    ap.add_argument("--full-epochs", type=int, default=250, help="epochs the estimate scales to")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--models", default="joint,two", help="joint, two or both")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="timed forward passes over the level-0 test graph")
    ap.add_argument("--override", action="append", default=[], help="Config field=value (json value)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from clusterbench import metrics
    from clusterbench.methods import hilander as H

    x, y, split = load(args.dataset, args.pca)
    tr, te = H.training.open_set_rows(split)
    extra = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.override)}
    for kind in args.models.split(","):
        cfg = H.Config(epochs=args.epochs, hidden=args.hidden, joint=(kind == "joint"), torch_threads=args.threads,
                       **extra)
        torch.manual_seed(0)
        epochs: list[float] = []
        model, info = H.training.train(x[tr], y[tr], cfg, "cpu", 0, log=lambda row: epochs.append(row["wall_s"]))
        levels, rows, infer_s = H.inference.infer(model, x[te], cfg)
        # Table 1's comparison without the level count: one full forward pass (linkage + density
        # of every edge and node) over the level-0 test graph, median of --repeats.
        f = H.hierarchy.l2norm(x[te])
        g = H.hierarchy.level_graph(f, f, cfg.knn_k)
        tensors = model.tensors(g)
        model.train(False)
        passes = []
        with torch.no_grad():
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                for nodes in torch.arange(g.n).split(cfg.infer_batch_size):
                    model.predict(tensors, nodes)
                passes.append(time.perf_counter() - t0)
        for row, lab in zip(rows, levels):
            row.update({m: round(metrics.CLUSTERING_METRICS[m](y[te], lab), 4) for m in ("fp", "fb", "nmi")})
        per_epoch = float(np.median(epochs))
        print(json.dumps({
            "dataset": args.dataset, "pca": args.pca, "model": kind, "n_train": int(len(tr)), "n_test": int(len(te)),
            "hidden": args.hidden, "overrides": extra, "params": model.n_params(), "epochs_timed": args.epochs,
            "graph_build_s": info["graph_build_s"], "train_graphs": info["train_graphs"],
            "steps_per_epoch": info["steps_per_epoch"], "epoch_s": round(per_epoch, 3),
            "train_estimate_s": round(info["graph_build_s"] + per_epoch * args.full_epochs, 1),
            "full_epochs": args.full_epochs, "inference_s": round(infer_s, 3), "levels": rows,
            "forward_pass_s": round(float(np.median(passes)), 3),
            "host": {"machine": platform.machine(), "threads": args.threads},
        }), flush=True)


if __name__ == "__main__":
    main()

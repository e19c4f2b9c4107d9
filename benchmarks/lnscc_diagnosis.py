"""LNSCC diagnosis (issue 19): per-epoch traces of the head and the embedding under one variant.

Each run trains `lnscc.fit_predict` on a development view with the method's defaults plus the
variant's overrides and records, after every epoch, on all rows (``snapshot_rows`` = n):
the label-free health the method logs (rows changed, clusters used, mean max U, |Z|, head / k-means
agreement, the loss split) and, scored with labels (never used to choose anything here), the
head's ACC / NMI and those of k-means on the same Z. One JSON line per epoch and one per run.

    OMP_NUM_THREADS=1 python benchmarks/lnscc_diagnosis.py --data digits --variants default eta-epoch \\
        --seeds 0 1 2 --epochs 8 --jobs 2 --out benchmarks/lnscc-diagnosis.jsonl

Views: ``digits`` (scikit-learn, 1,797 rows), ``fmnist-train-<n>`` (n random rows of
Fashion-MNIST's *train* split, seed 0; Debian's dataset-fashion-mnist), ``uci-<name>``
(clustering-data-v1), ``mnist-sample10k[-<n>]`` and ``fashion-mnist-test`` (paper-table sets: diagnosis only, nothing
chosen on them).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

# Variants: overrides of lnscc.Config. Each names the candidate cause it isolates.
VARIANTS: dict[str, dict] = {
    "default": {},
    "no-clu": {"use_clu": False},                      # the embedding alone (k-means(Z) is the diagnostic)
    "eta-epoch": {"eta_unit": "epoch"},                # eq. 19's n_i counted in epochs
    "no-im": {"use_im": False},                        # Table 4's w/o L_im
    "no-im-neg": {"use_im_neg": False},                    # E^{im-} alone removed (diagnostic)
    # The released code's choices at the three measured fault points (deviations from the text):
    "umap-sim": {"similarity": "umap"},                    # O = 1 / (1 + a d^2b) instead of exp(-d)
    "clu-start": {"clu_start_epoch": 3},                   # L_clu (and eta's ramp) only from epoch 4
    "released": {"similarity": "umap", "use_im_neg": False, "clu_start_epoch": 3},
    # ... and L_clu trains the head only (its gradient does not reach the encoder): is the drop of
    # k-means(Z) when L_clu starts the encoder collapsing into the head's partition?
    "released-detached": {"similarity": "umap", "use_im_neg": False, "clu_start_epoch": 3, "_detach_head": True},
    "detached": {"_detach_head": True},
    # ... and the released code's head instead of FC + softmax (Config head: dec): Student-t assignment
    # to centres that are set by k-means on Z when L_clu starts (DEC), trained by the same eq. 18
    "released-dec-head": {"similarity": "umap", "use_im_neg": False, "clu_start_epoch": 3, "head": "dec"},
}


def _detached_head_model(build_model):
    """lnscc.model.build_model with the head reading Z through detach(): L_clu then trains the head only."""
    import torch

    class Detach(torch.nn.Module):
        def forward(self, z):
            return z.detach()

    def build(in_dim, config, n_clusters):
        encoder, head = build_model(in_dim, config, n_clusters)
        return encoder, torch.nn.Sequential(Detach(), *head)
    return build


def fashion_train_subset(n: int, seed: int = 0):
    base = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
    with gzip.open(base / "train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(base / "train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    rows = np.sort(np.random.default_rng(seed).choice(len(y), n, replace=False))
    return (x[rows] / 255.0).astype(np.float32), y[rows]


def load_view(name: str):
    from clusterbench.embeddings import View

    if name.startswith("fmnist-train-"):
        x, y = fashion_train_subset(int(name.rsplit("-", 1)[1]))
        return View(x, y, np.zeros(len(y), np.uint8), np.arange(len(y)), (28, 28))
    if name.startswith("mnist-sample10k") or name == "fashion-mnist-test":
        from clusterbench.datasets import load
        from clusterbench.embeddings import raw_pixels

        arrays = load("fashion-mnist-test" if name == "fashion-mnist-test" else "mnist-sample10k")
        x, shape = raw_pixels(arrays)
        y = arrays.y.astype(np.int64)
        if name not in ("mnist-sample10k", "fashion-mnist-test"):
            rows = np.sort(np.random.default_rng(0).choice(len(y), int(name.rsplit("-", 1)[1]), replace=False))
            x, y = x[rows], y[rows]
        return View(x, y, np.zeros(len(y), np.uint8), np.arange(len(y)), shape)
    import importlib.util

    spec = importlib.util.spec_from_file_location("sens", Path(__file__).with_name("lnscc_sensitivity.py"))
    sens = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sens)
    return sens.load_view(name)


def run_one(data: str, variant: str, seed: int, epochs: int, extra: dict) -> list[dict]:
    from clusterbench import graphs, metrics
    from clusterbench.methods import RunContext, lnscc
    from sklearn.cluster import KMeans

    view = load_view(data)
    overrides = {**VARIANTS[variant], **extra}
    original_build = lnscc.training.build_model
    if overrides.pop("_detach_head", False):   # restored below: pool workers run several jobs
        lnscc.training.build_model = _detached_head_model(original_build)
    config = lnscc.Config(**{"torch_threads": 1, "progress_snapshots": False, "epochs": epochs,
                             "snapshot_rows": len(view.y), "stop_changed": None, "plateau_tol": None, **overrides})
    graph = graphs.knn(view.X, config.n_neighbors)
    rows: list[dict] = []
    y = view.y

    def score(labels):
        return round(metrics.hungarian_accuracy(y, labels), 4), round(metrics.nmi(y, labels), 4)

    def on_epoch(epoch, idx, z, u):
        km = KMeans(view.n_clusters, n_init=3, random_state=seed).fit_predict(z.astype(np.float64))
        (ha, hn), (ka, kn) = score(u.argmax(1)), score(km)
        rows.append({"data": data, "variant": variant, "seed": seed, "epoch": epoch,
                     "head_acc": ha, "head_nmi": hn, "kmeans_acc": ka, "kmeans_nmi": kn})

    t0 = time.time()
    try:
        result = lnscc.fit_predict(RunContext(view=view, graph=graph, seed=seed, n_clusters=view.n_clusters,
                                              progress=False), config, on_epoch=on_epoch)
    finally:
        lnscc.training.build_model = original_build
    for row, hist in zip(rows, result.history):
        row.update({k: (round(v, 4) if isinstance(v, float) else v) for k, v in hist.items()
                    if k not in ("epoch", "steps")})
    acc, nmi = score(result.labels)
    rows.append({"data": data, "variant": variant, "seed": seed, "final": True, "acc": acc, "nmi": nmi,
                 "epochs": result.extra["epochs"], "wall_s": round(time.time() - t0, 1),
                 "pair_sets": result.extra["pair_sets"], **{k: v for k, v in VARIANTS[variant].items()}})
    return rows


def summary(path: str) -> None:
    """Mean ± s.d. over seeds per data set and variant: the final head (the method's output) and
    k-means on the final Z, ACC / NMI, with the epoch from which the head stopped changing."""
    import statistics
    from collections import defaultdict

    runs, traces = defaultdict(list), defaultdict(list)
    for line in open(path):
        row = json.loads(line)
        key = (row["data"], row["variant"])
        (runs if row.get("final") else traces)[key].append(row)
    f = lambda xs: f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}" if len(xs) > 1 else f"{xs[0]:.3f}"
    print("| data | variant | seeds | head ACC | head NMI | k-means(Z) NMI | frozen from epoch |")
    print("|---|---|---|---|---|---|---|")
    for key in sorted(runs):
        finals = runs[key]
        last = {(r["seed"]): r for r in traces[key]}
        km = [max((r for r in traces[key] if r["seed"] == s), key=lambda r: r["epoch"])["kmeans_nmi"]
              for s in sorted(last)]
        frozen = []
        for s in sorted(last):
            rows = sorted((r for r in traces[key] if r["seed"] == s), key=lambda r: r["epoch"])
            still = [r["epoch"] for r in rows if r.get("changed") == 0.0]
            frozen.append(str(min(e for e in still if all(r.get("changed") == 0.0 for r in rows if r["epoch"] >= e)))
                          if still and rows[-1].get("changed") == 0.0 else "–")
        print(f"| {key[0]} | {key[1]} | {len(finals)} | {f([r['acc'] for r in finals])} | "
              f"{f([r['nmi'] for r in finals])} | {f(km)} | {', '.join(frozen)} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=["digits"])
    ap.add_argument("--variants", nargs="+", default=["default"], choices=sorted(VARIANTS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON", help="extra Config overrides for every run")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/lnscc-diagnosis.jsonl")
    ap.add_argument("--summary", action="store_true", help="print the table of --out and exit")
    args = ap.parse_args(argv)
    if args.summary:
        return summary(args.out)
    extra = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    jobs = [(d, v, s, args.epochs, extra) for d in args.data for v in args.variants for s in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool, open(args.out, "a") as out:
        for rows in pool.map(run_one, *zip(*jobs)):
            for row in rows:
                out.write(json.dumps(row) + "\n")
            out.flush()
            final = rows[-1]
            print(f"{final['data']} {final['variant']} seed {final['seed']}: ACC {final['acc']} NMI {final['nmi']} "
                  f"({final['wall_s']} s) | per epoch head/kmeans NMI "
                  + " ".join(f"{r['head_nmi']:.2f}/{r['kmeans_nmi']:.2f}" for r in rows[:-1]), flush=True)


if __name__ == "__main__":
    main()

"""LNSCC's embedding objective at its optimum, without the network (issue 19).

Z is a free N x 64 matrix optimised with full-batch Adam on the expected per-step loss of the
paper's pair sets (eqs. 4, 9, 13, 17 with the QA counts of eqs. 6, 11, 16): under
``batching: per_set`` every step draws the same number of pairs from each set, so the expected
loss is the mean over E^{im+} + the mean over E^{im-} + the mean over E^{ba} + the mean over
E^{dis}; under ``union`` it is the mean over all copies. A fresh E^{dis} is drawn every iteration.
k-means on the optimised Z then says how good a clustering the objective itself can give: if
it is below UMAP + k-means, no network or schedule can lift LNSCC above it; if it is above,
the gap is in the network, its optimisation or the head.

    OMP_NUM_THREADS=1 python benchmarks/lnscc_free_embedding.py --data digits fmnist-train-2000 \\
        --variants paper no-im-neg --seeds 0 1 2 --out benchmarks/lnscc-free-embedding.jsonl

``--init umap`` starts Z at UMAP's own embedding (10-d, min_dist 0, zero-padded to 64-d, scaled
by the factor that minimises the paper's loss: label-free) instead of PCA, and records k-means on
Z and the paper's loss along the way (``trace``): whether the objective keeps UMAP's clusters or
leaves them, and whether it scores the partition it leaves for lower than UMAP's. The loss in
``trace`` is the expected loss with one fixed draw of E^{dis} (the same for both starts).

Labels only score (ACC / NMI of k-means on Z); nothing here chooses a setting.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

VARIANTS = {
    "paper": {},                                   # the defaults: squared d, per-set weights
    "union": {"batching": "union"},
    "euclidean": {"distance": "euclidean"},
    "no-im-neg": {"use_im_neg": False},            # E^{im-} removed
    "no-im": {"use_im": False},
    "umap-kernel": {"kernel": "umap"},             # O = 1 / (1 + a d^2b) (UMAP's, min_dist 0): diagnostic
    "umap+kmeans": {},                             # the family's baseline on the same rows: UMAP 10-d, min_dist 0
    "kmeans-pixels": {},                           # k-means on the input features
}


def run_one(data: str, variant: str, seed: int, iters: int, lr: float, init: str = "pca") -> dict:
    import torch
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    from clusterbench import graphs, metrics
    from clusterbench.methods import lnscc
    from lnscc_diagnosis import load_view

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    view = load_view(data)
    if variant in ("umap+kmeans", "kmeans-pixels"):
        t0 = time.time()
        x = view.X
        if variant == "umap+kmeans":
            import umap

            x = umap.UMAP(n_components=10, min_dist=0.0, random_state=seed, n_jobs=1).fit_transform(view.X)
        labels = KMeans(view.n_clusters, n_init=10, random_state=seed).fit_predict(x)
        return {"data": data, "variant": variant, "seed": seed, "acc": round(metrics.hungarian_accuracy(view.y, labels), 4),
                "nmi": round(metrics.nmi(view.y, labels), 4), "wall_s": round(time.time() - t0, 1)}
    opts = dict(VARIANTS[variant])
    kernel = opts.pop("kernel", "exp")
    config = lnscc.Config(**opts)
    graph = graphs.knn(view.X, config.n_neighbors)
    sets = lnscc.pairs.build_pair_sets(graph, config)
    t0 = time.time()
    if init == "umap":
        import umap

        z0 = np.zeros((len(view.X), config.embedding_dim), np.float32)
        z0[:, :10] = umap.UMAP(n_components=10, min_dist=0.0, random_state=seed, n_jobs=1).fit_transform(view.X)
        z0 -= z0.mean(0)
    else:
        z0 = PCA(config.embedding_dim, random_state=seed).fit_transform(view.X).astype(np.float32)
    z0 /= np.sqrt(np.mean(np.sum((z0[graph.indices[:, 0]] - z0) ** 2, 1)))   # nearest neighbour at d^2 ~ 1
    z = torch.tensor(z0, requires_grad=True)
    opt = torch.optim.Adam([z], lr=lr)
    fixed = torch.as_tensor(sets.fixed)
    kinds_fixed = [(k, fixed[fixed[:, 2] == k]) for k in (lnscc.config.IM_POS, lnscc.config.IM_NEG, lnscc.config.BA)]
    kinds_fixed = [(k, t) for k, t in kinds_fixed if len(t)]
    a_umap, b_umap = 1.896, 0.8006   # UMAP's curve for min_dist 0, spread 1

    def terms(pairs, attract):
        sq = ((z[pairs[:, 0]] - z[pairs[:, 1]]) ** 2).sum(1)
        if kernel == "umap":
            o = 1 / (1 + a_umap * sq.clamp_min(1e-12) ** b_umap)
            return -torch.log(o.clamp_min(1e-12)) if attract else -torch.log((1 - o).clamp_min(1e-4))
        d = sq if config.distance == "squared" else torch.sqrt(sq + 1e-12)
        return d if attract else lnscc.losses.neg_log_one_minus_o(d, config.log_eps)

    def objective(dis):
        parts = [terms(t, k in (lnscc.config.IM_POS, lnscc.config.BA)) for k, t in kinds_fixed]
        if dis is not None:
            parts.append(terms(dis, False))
        return sum(p.mean() for p in parts) if config.batching == "per_set" else torch.cat(parts).mean()

    # One fixed draw of E^dis (its own generator) scores every start and every checkpoint alike.
    fixed_dis = (torch.as_tensor(lnscc.pairs.sample_disconnected(sets.a, sets.n_dis, np.random.default_rng(12345)))
                 if sets.n_dis else None)

    def expected_loss() -> float:
        with torch.no_grad():
            return round(float(objective(fixed_dis)), 4)

    if init == "umap":   # the scale of UMAP's coordinates is arbitrary: take the one the objective likes best
        scales = np.logspace(-1.5, 1.5, 31)
        losses = []
        for scale in scales:
            with torch.no_grad():
                z.copy_(torch.from_numpy(z0 * scale))
            losses.append(expected_loss())
        with torch.no_grad():
            z.copy_(torch.from_numpy(z0 * scales[int(np.argmin(losses))]))
    trace = []

    def checkpoint(it):
        emb = z.detach().numpy().astype(np.float64)
        labels = KMeans(view.n_clusters, n_init=10, random_state=seed).fit_predict(emb)
        trace.append({"iter": it, "loss": expected_loss(), "nmi": round(metrics.nmi(view.y, labels), 4)})

    marks = {0, 25, 50, 100, 200} if init == "umap" else set()
    for it in range(iters):
        if it in marks:
            checkpoint(it)
        dis = torch.as_tensor(lnscc.pairs.sample_disconnected(sets.a, sets.n_dis, rng)) if sets.n_dis else None
        loss = objective(dis)
        opt.zero_grad()
        loss.backward()
        opt.step()
    emb = z.detach().numpy().astype(np.float64)
    out = {"data": data, "variant": variant, "seed": seed, "iters": iters, "lr": lr, "loss": round(float(loss.detach()), 4)}
    if init != "pca":
        out["init"] = init
    out["expected_loss"] = expected_loss()
    if trace:
        out["trace"] = trace
    for k_seed in range(1):
        labels = KMeans(view.n_clusters, n_init=10, random_state=seed).fit_predict(emb)
        out.update(acc=round(metrics.hungarian_accuracy(view.y, labels), 4), nmi=round(metrics.nmi(view.y, labels), 4))
    out["wall_s"] = round(time.time() - t0, 1)
    return out


def main(argv=None):
    import sys
    from concurrent.futures import ProcessPoolExecutor
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=["digits"])
    ap.add_argument("--variants", nargs="+", default=["paper"], choices=sorted(VARIANTS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--iters", type=int, default=400)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--init", choices=["pca", "umap"], default="pca", help="where Z starts (see the docstring)")
    ap.add_argument("--out", default="benchmarks/lnscc-free-embedding.jsonl")
    args = ap.parse_args(argv)
    jobs = [(d, v, s, args.iters, args.lr, args.init) for d in args.data for v in args.variants for s in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool, open(args.out, "a") as out:
        for row in pool.map(run_one, *zip(*jobs)):
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(row, flush=True)


if __name__ == "__main__":
    main()

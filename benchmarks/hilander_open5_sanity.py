"""Reduced-budget sanity check of Hi-LANDER on the 5-seen / 5-unseen PCA-50 splits (docs/methods/hilander.md):
hidden 64, lr 0.1, 60 epochs, seed 0, tau 0.8 and 0.5 with the same model; k-means told k = 5 on the same
test rows for reference. ~45 s on one core.

    OMP_NUM_THREADS=1 CLUSTERBENCH_MIRROR=$PWD/../shared/datasets PYTHONPATH=. python benchmarks/hilander_open5_sanity.py
"""
import sys, time, numpy as np, torch
torch.set_num_threads(1)
sys.path.insert(0, 'benchmarks')
from hilander_time import load
from clusterbench.methods import hilander as H
from clusterbench import metrics
from sklearn.cluster import KMeans
for ds in ("fashion-mnist-test-open5", "mnist-sample10k-open5"):
    x, y, split = load(ds, 50)
    tr, te = H.training.open_set_rows(split)
    yt = y[te]
    km = KMeans(5, n_init=10, random_state=0).fit_predict(x[te])
    print(ds, "kmeans(k=5)", [round(metrics.CLUSTERING_METRICS[m](yt, km), 3) for m in ("fp", "fb", "nmi")])
    for tau in (0.8, 0.5):
        cfg = H.Config(hidden=64, lr=0.1, epochs=60, tau=tau)
        torch.manual_seed(0)
        t = time.time()
        m, info = H.training.train(x[tr], y[tr], cfg, "cpu", 0) if tau == 0.8 else (m, info)
        lv, rows, s = H.inference.infer(m, x[te], cfg)
        print(ds, "hilander tau", tau, "levels", len(rows), "clusters", rows[-1]["clusters"],
              [round(metrics.CLUSTERING_METRICS[k](yt, lv[-1]), 3) for k in ("fp", "fb", "nmi")], "train_s", info["train_s"], "infer_s", round(s, 2))

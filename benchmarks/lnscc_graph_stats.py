"""LNSCC's locally normalised graph and QA counts per view and distance unit (issue 19).

For each view: the mean perplexity of W's rows (eq. 1; 10 = uniform over the M = 10 neighbours),
A_max and A_mean over the edges (eq. 2), the pair-set sizes (eqs. 6, 11), and — scored with the
labels, for the diagnosis only — the share of same-class edges and how well A separates them
(ROC AUC), and under per-set batches the edges whose equilibrium similarity
O* = (p+ + p_ba) / (p+ + p_ba + p−) exceeds 1/2 (p = each set's copies of the edge / its size).

    OMP_NUM_THREADS=1 python benchmarks/lnscc_graph_stats.py digits fmnist-train-2000 mnist-sample10k
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def main(names: list[str]) -> None:
    from sklearn.metrics import roc_auc_score

    from clusterbench import graphs
    from clusterbench.methods import lnscc

    sys.path.insert(0, str(Path(__file__).parent))
    from lnscc_diagnosis import load_view

    for name in names:
        view = load_view(name)
        g = graphs.knn(view.X, 10)
        for unit in ("auto", 0.5, 2.0):
            u = lnscc.pairs.auto_distance_unit(g.indices, g.distances, 2.0) if unit == "auto" else unit
            w_rows = graphs.local_softmax(g.distances / u)
            perplexity = np.exp(-(w_rows * np.log(w_rows + 1e-30)).sum(1)).mean()
            i, j, w = lnscc.pairs.undirected_edges(lnscc.pairs.locally_normalised_graph(g.indices, g.distances / u))
            qa = lnscc.pairs.quantity_augmentation(w, 2.0, max_copies=1000)
            same = view.y[i] == view.y[j]
            share = lambda q: q / max(q.sum(), 1)
            pp, pn, pb = share(qa.im_pos), share(qa.im_neg), share(qa.ba)
            o_eq = (pp + pb) / np.maximum(pp + pb + pn, 1e-30)
            print(f"{name} unit {u:.3f}: W perplexity {perplexity:.2f}, A_max {w.max():.2f}, A_mean {w.mean():.3f}, "
                  f"|E^im+| {qa.im_pos.sum()}, |E^im-| {qa.im_neg.sum()}, |E^ba| {qa.ba.sum()}, edges {len(w)}; "
                  f"same-class edges {same.mean():.3f}, AUC(A) {roc_auc_score(same, w):.3f}, "
                  f"O*>1/2 on {np.mean(o_eq > 0.5):.2f} of edges", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["digits"])

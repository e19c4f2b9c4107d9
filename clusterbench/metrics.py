"""Clustering and classification metrics, one definition each, used by the score stage.

Points whose true label is negative (noise in the clustering-data-v1 batteries) are left out
of every clustering metric, as the benchmark suite's own scoring does. A predicted label of -1
(DBSCAN's noise) is an ordinary cluster id here: it counts as one more cluster.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix


def _labelled(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    keep = y_true >= 0
    return y_true[keep], y_pred[keep]


@dataclass(frozen=True)
class ClusterMatching:
    """The Hungarian matching of predicted clusters to true classes on the labelled rows.

    ``counts`` is the contingency table (rows: ``classes``, columns: ``clusters``, both sorted);
    class ``classes[r]`` is matched to cluster ``clusters[c]`` for every (r, c) in
    ``zip(rows, cols)``. With more clusters than classes some clusters stay unmatched."""
    counts: np.ndarray
    classes: np.ndarray
    clusters: np.ndarray
    rows: np.ndarray
    cols: np.ndarray

    @property
    def matched(self) -> int:
        return int(self.counts[self.rows, self.cols].sum())

    @property
    def accuracy(self) -> float:
        return float(self.matched / self.counts.sum())

    @property
    def cluster_to_class(self) -> dict:
        return {self.clusters[c].item(): self.classes[r].item() for r, c in zip(self.rows, self.cols)}


def match_clusters(y_true, y_pred) -> ClusterMatching:
    """The one matching of clusters to classes (scipy's Hungarian solver, maximum agreement) that
    ACC, the confusion figures and the renamed predictions all use."""
    y_true, y_pred = _labelled(y_true, y_pred)
    counts = contingency_matrix(y_true, y_pred)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return ClusterMatching(counts, np.unique(y_true), np.unique(y_pred), rows, cols)


def hungarian_accuracy(y_true, y_pred) -> float:
    """ACC: the best one-to-one matching of clusters to classes (``match_clusters``)."""
    return match_clusters(y_true, y_pred).accuracy


def nmi(y_true, y_pred) -> float:
    """NMI with the arithmetic-mean normaliser (sklearn's default)."""
    y_true, y_pred = _labelled(y_true, y_pred)
    return float(normalized_mutual_info_score(y_true, y_pred, average_method="arithmetic"))


def ari(y_true, y_pred) -> float:
    y_true, y_pred = _labelled(y_true, y_pred)
    return float(adjusted_rand_score(y_true, y_pred))


def _pairs(n: np.ndarray) -> np.ndarray:
    n = n.astype(np.float64)
    return n * (n - 1) / 2


def pairwise_f(y_true, y_pred) -> float:
    """Fp: F-score of "same cluster" decisions over all pairs of points (Hi-LANDER's F_P)."""
    y_true, y_pred = _labelled(y_true, y_pred)
    c = contingency_matrix(y_true, y_pred)
    tp = _pairs(c).sum()
    pred_pairs = _pairs(c.sum(axis=0)).sum()
    true_pairs = _pairs(c.sum(axis=1)).sum()
    if tp == 0:
        return 0.0
    precision, recall = tp / pred_pairs, tp / true_pairs
    return float(2 * precision * recall / (precision + recall))


def bcubed_f(y_true, y_pred) -> float:
    """Fb: BCubed F-score, per-point precision and recall averaged over points (Hi-LANDER's F_B)."""
    y_true, y_pred = _labelled(y_true, y_pred)
    c = contingency_matrix(y_true, y_pred).astype(np.float64)
    n = c.sum()
    precision = (c ** 2 / c.sum(axis=0, keepdims=True)).sum() / n
    recall = (c ** 2 / c.sum(axis=1, keepdims=True)).sum() / n
    return float(2 * precision * recall / (precision + recall))


def dmon_pairwise_accuracy(y_true, y_pred) -> float:
    """The "accuracy" ConstellationNet's released notebooks report (taken from DMoN's code).

    NOT Hungarian accuracy: a pair-counting score built from the contingency matrix's row and
    column maxima, where true negatives dominate with many clusters (k-means on MNIST scores
    ~0.9). Reproduced exactly, for comparison with that paper's numbers only.
    """
    y_true, y_pred = _labelled(y_true, y_pred)
    c = contingency_matrix(y_true, y_pred).astype(np.float64)
    same_true = c.max(axis=1)
    same_pred = c.max(axis=0)
    diff_true = c.sum(axis=1) - same_true
    diff_pred = c.sum(axis=0) - same_pred
    total = c.sum()
    tp = (same_true * (same_true - 1)).sum()
    fp = (diff_true * same_true * 2).sum()
    fn = (diff_pred * same_pred * 2).sum()
    tn = total * (total - 1) - tp - fp - fn
    return float((tp + tn) / (tp + fp + fn + tn))


def top1_accuracy(y_true, y_pred) -> float:
    """Supervised top-1 accuracy (labels compared directly, no matching)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean())


CLUSTERING_METRICS = {
    "acc": hungarian_accuracy,
    "nmi": nmi,
    "ari": ari,
    "pairwise_acc": dmon_pairwise_accuracy,
    "fp": pairwise_f,
    "fb": bcubed_f,
}
CLASSIFICATION_METRICS = {"top1": top1_accuracy}


# A method's TASK -> its metrics. "open-set clustering" (Hi-LANDER): trained on labelled identities,
# it clusters unseen ones (the view's test split, Result.index); scored like clustering.
TASK_METRICS = {"clustering": CLUSTERING_METRICS, "open-set clustering": CLUSTERING_METRICS,
                "classification": CLASSIFICATION_METRICS}


def score(y_true, y_pred, task: str = "clustering") -> dict[str, float]:
    if task not in TASK_METRICS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASK_METRICS)}")
    return {name: fn(y_true, y_pred) for name, fn in TASK_METRICS[task].items()}

"""The level graphs of Hi-LANDER's hierarchy: cosine kNN, parent choice, connected components,
and the ground-truth levels training learns from.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ... import graphs


def l2norm(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


@dataclass
class LevelGraph:
    """k - 1 incoming edges per node: nbrs[i, j] -> i with cosine similarity sims[i, j]."""

    features: np.ndarray          # (n, d) L2-normalised (the peaks' own features)
    cluster_features: np.ndarray  # (n, d) mean member feature of each super-node
    nbrs: np.ndarray              # (n, k - 1) int64
    sims: np.ndarray              # (n, k - 1) float32
    density: np.ndarray | None = None  # ground-truth density (training)
    linkage: np.ndarray | None = None  # (n, k - 1) bool, same label (training)

    @property
    def n(self) -> int:
        return len(self.features)

    @property
    def valid(self) -> np.ndarray:
        return self.sims >= 0  # the reference drops edges of negative similarity (th_sim = 0)


def knn_cosine(features: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k - 1 nearest other points by inner product of unit vectors (= Euclidean order), with faiss."""
    g = graphs.knn(features, k - 1, label="Hi-LANDER level features", setting="knn_k")
    sims = 1.0 - g.distances.astype(np.float32) ** 2 / 2.0  # |a - b|^2 = 2 - 2 a.b for unit vectors
    return g.indices.astype(np.int64), np.clip(sims, -1.0, 1.0)


def level_graph(features: np.ndarray, cluster_features: np.ndarray, k: int,
                labels: np.ndarray | None = None) -> LevelGraph:
    nbrs, sims = knn_cosine(features, k)
    g = LevelGraph(features, cluster_features, nbrs, sims)
    if labels is not None:
        same = labels[nbrs] == labels[:, None]
        g.linkage = same
        g.density = (np.where(same, sims, -sims).sum(1) / (k - 1)).astype(np.float32)
    return g


def choose_parents(nbrs: np.ndarray, keep: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Each node's kept incoming edge of highest ``score`` (its parent), -1 where none is kept."""
    masked = np.where(keep, score, -np.inf)
    best = masked.argmax(1)
    rows = np.arange(len(nbrs))
    return np.where(keep.any(1), nbrs[rows, best], -1)


def components(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Connected components of an edge list over n nodes, numbered 0.. in order of first node."""
    from scipy.sparse.csgraph import connected_components

    adj = sp.coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    _, labels = connected_components(adj, directed=True, connection="weak")
    _, first = np.unique(labels, return_index=True)
    order = np.empty(len(first), dtype=np.int64)
    order[np.argsort(first)] = np.arange(len(first))
    return order[labels]


class Hierarchy:
    """Super-nodes over the original points: merges accumulate as edges between original ids."""

    def __init__(self, features: np.ndarray):
        self.global_features = features
        self.n = len(features)
        self.ids = np.arange(self.n)  # original id of each current node
        self.src: list[np.ndarray] = []
        self.dst: list[np.ndarray] = []
        self.labels = np.arange(self.n)

    def merge(self, parent: np.ndarray) -> tuple[int, np.ndarray]:
        """Add parent -> child edges of the current level; return (edges added, peak mask)."""
        child = np.flatnonzero(parent >= 0)
        self.src.append(self.ids[parent[child]])
        self.dst.append(self.ids[child])
        self.labels = components(self.n, np.concatenate(self.src), np.concatenate(self.dst))
        return len(child), parent < 0

    def next_level(self, features: np.ndarray, peaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(peak features, mean member features) of the super-nodes; the peaks become the nodes."""
        self.ids = self.ids[peaks]
        n_clusters = int(self.labels.max()) + 1
        sums = np.zeros((n_clusters, self.global_features.shape[1]), dtype=np.float64)
        np.add.at(sums, self.labels, self.global_features)
        means = sums / np.bincount(self.labels, minlength=n_clusters)[:, None]
        return features[peaks], means[self.labels[self.ids]].astype(np.float32)


def ground_truth_levels(features: np.ndarray, labels: np.ndarray, k: int, levels: int) -> list[LevelGraph]:
    """The training graphs of one k: level 0 on the points, then super-nodes decoded from the
    ground-truth density (keep j -> i when d_j > d_i and s_ij > 0; parent = most similar), as the
    reference's LanderDataset (decode with use_gt, tau 0, threshold 'sim')."""
    hier = Hierarchy(features)
    feats, cluster, lab = features, features, labels
    out = []
    for level in range(levels):
        if len(feats) <= k:
            break
        g = level_graph(feats, cluster, k, lab)
        out.append(g)
        if level == levels - 1:
            break
        keep = g.valid & (g.density[g.nbrs] > g.density[:, None]) & (g.sims > 0)
        added, peaks = hier.merge(choose_parents(g.nbrs, keep, g.sims))
        if added == 0:
            break
        lab = lab[peaks]
        feats, cluster = hier.next_level(feats, peaks)
    return out

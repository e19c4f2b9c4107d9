"""Density peaks clustering (Rodriguez & Laio, Science 344:1492, 2014): LNSCC's "DenPeak" row.

Each point gets a local density rho and the distance delta to its nearest point of higher
density. Cluster centres are the points where both are large (largest gamma = rho * delta, the
automatic reading of the paper's decision graph when the number of clusters is given); every
other point takes the label of its nearest higher-density neighbour, in order of decreasing
density. The cut-off distance dc is the ``percent`` percentile of all pairwise distances (the
authors' rule of thumb: each point has on average 1-2% of the data as neighbours), and the
Gaussian kernel is the one of the authors' released code (``kernel: cutoff`` is the paper's
chi(d - dc) count).

Exact and O(N^2) in time, O(N * block) in memory: distances are computed block by block.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..methods import MethodConfig, Result, RunContext
from ..resources import check_memory
from ._common import subsample_rows, take

BLOCK = 1024


def _block(n: int) -> int:
    """Rows per distance block: about 50M entries (~0.4 GB per float64 block) at most."""
    return int(max(64, min(BLOCK, 50_000_000 // max(n, 1))))


class DenPeakConfig(MethodConfig):
    percent: float = Field(2.0, gt=0, lt=100, description="dc = this percentile of the pairwise distances")
    kernel: Literal["gaussian", "cutoff"] = "gaussian"
    dc_sample_pairs: int = Field(2_000_000, ge=1000, description="pairs sampled to estimate dc on large data "
                                                                  "(exact below that many pairs)")
    max_samples: int | None = Field(None, ge=10)
    subsample_seed: int = 0


def _sq_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


def _block_distances(q: np.ndarray, x: np.ndarray, x_sq: np.ndarray) -> np.ndarray:
    d2 = _sq_norms(q)[:, None] + x_sq[None, :] - 2.0 * (q @ x.T)
    return np.sqrt(np.maximum(d2, 0.0))


def cutoff_distance(x: np.ndarray, percent: float, sample_pairs: int, seed: int) -> float:
    """The distance at rank round(percent% of the pairs) among all pairwise distances.

    Exact (the authors' sort of every pair) when there are at most ``sample_pairs`` pairs,
    else estimated from that many uniformly drawn pairs of distinct points.
    """
    n = len(x)
    n_pairs = n * (n - 1) // 2
    if n_pairs <= sample_pairs:
        from scipy.spatial.distance import pdist

        distances = np.sort(pdist(x.astype(np.float64)))
    else:
        rng = np.random.default_rng(seed)
        i = rng.integers(0, n, sample_pairs)
        j = rng.integers(0, n - 1, sample_pairs)
        j = j + (j >= i)  # distinct from i
        distances = np.empty(sample_pairs)
        step = max(1, 20_000_000 // max(x.shape[1], 1))  # ~160 MB of float64 differences at a time
        for start in range(0, sample_pairs, step):
            a, b = i[start:start + step], j[start:start + step]
            distances[start:start + step] = np.linalg.norm(x[a].astype(np.float64) - x[b].astype(np.float64), axis=1)
        distances.sort()
    position = int(round(len(distances) * percent / 100.0))
    return float(distances[min(max(position - 1, 0), len(distances) - 1)])


def local_density(x: np.ndarray, dc: float, kernel: str) -> np.ndarray:
    """rho_i = sum_{j != i} exp(-(d_ij / dc)^2)  (gaussian) or #{j != i : d_ij < dc}  (cutoff)."""
    xf = x.astype(np.float64)
    x_sq = _sq_norms(xf)
    rho = np.zeros(len(x))
    block = _block(len(x))
    for start in range(0, len(x), block):
        d = _block_distances(xf[start:start + block], xf, x_sq)
        rows = np.arange(d.shape[0])
        if kernel == "gaussian":
            k = np.exp(-(d / dc) ** 2)
        else:
            k = (d < dc).astype(np.float64)
        k[rows, start + rows] = 0.0  # no self-contribution
        rho[start:start + block] = k.sum(1)
    return rho


def nearest_higher_density(x: np.ndarray, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """delta_i and the nearest point of higher density of each point.

    Density ties are broken by index (the earlier point counts as denser), so "higher" is a strict
    total order and every point but the densest has a parent. The densest point gets
    delta = its largest distance to any point, as in the paper, and parent -1.
    Returns (delta, parent, order) with ``order`` the points by decreasing density.
    """
    n = len(x)
    order = np.lexsort((np.arange(n), -rho))  # decreasing rho, then increasing index
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    xf = x.astype(np.float64)
    x_sq = _sq_norms(xf)
    delta = np.empty(n)
    parent = np.full(n, -1, dtype=np.int64)
    block = _block(n)
    for start in range(0, n, block):
        stop = min(start + block, n)
        d = _block_distances(xf[start:stop], xf, x_sq)
        higher = rank[None, :] < rank[start:stop, None]
        masked = np.where(higher, d, np.inf)
        parent[start:stop] = np.argmin(masked, axis=1)
        delta[start:stop] = masked[np.arange(stop - start), parent[start:stop]]
        top = ~higher.any(axis=1)
        if top.any():
            delta[start:stop][top] = d[top].max(axis=1)
            parent[start:stop][top] = -1
    return delta, parent, order


def density_peaks(x: np.ndarray, n_clusters: int, dc: float, kernel: str = "gaussian") -> dict:
    """The whole algorithm on ``x``; returns labels and the decision-graph quantities."""
    rho = local_density(x, dc, kernel)
    delta, parent, order = nearest_higher_density(x, rho)
    gamma = rho * delta
    centres = list(np.argsort(-gamma, kind="stable")[:n_clusters])
    densest = int(order[0])
    if densest not in centres:  # it has no parent, so it must head a cluster
        centres[-1] = densest
    labels = np.full(len(x), -1, dtype=np.int64)
    labels[np.asarray(centres)] = np.arange(len(centres))
    for i in order:
        if labels[i] < 0:
            labels[i] = labels[parent[i]]
    return {"labels": labels, "rho": rho, "delta": delta, "parent": parent, "centres": np.asarray(centres)}


class DenPeakBaseline:
    TASK = "clustering"
    Config = DenPeakConfig

    def fit_predict(self, ctx: RunContext, config: DenPeakConfig) -> Result:
        rows = subsample_rows(len(ctx.view.X), config.max_samples, config.subsample_seed)
        x = take(ctx.view.X, rows)
        n = len(x)
        check_memory(_block(n) * n * 8 * 4 + n * x.shape[1] * 8, f"density peaks on {n} points")
        dc = cutoff_distance(x, config.percent, config.dc_sample_pairs, config.subsample_seed)
        out = density_peaks(x, ctx.n_clusters, dc, config.kernel)
        return Result(labels=out["labels"], index=rows,
                      extra={"dc": dc, "fit_rows": int(n), "centres": out["centres"].tolist()})


DENPEAK = DenPeakBaseline()

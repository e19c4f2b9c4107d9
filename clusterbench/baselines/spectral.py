"""Spectral baselines of LNSCC's and IcicleGCN's tables, all on sparse kNN affinities.

- ``ncut``: normalised cut (Shi & Malik 2000) in its multiclass form (Yu & Shi 2003): Gaussian
  kNN affinity, leading eigenvectors of D^-1/2 W D^-1/2 mapped back by D^-1/2, discretised by
  the Yu-Shi rotation.
- ``sc-st``: self-tuning spectral clustering (Zelnik-Manor & Perona 2004): local scales
  sigma_i = distance to the 7th neighbour, A_ij = exp(-d_ij^2 / (sigma_i sigma_j)), NJW
  embedding (row-normalised leading eigenvectors) and k-means.
- ``sc-ls``: landmark-based spectral clustering (Chen & Cai 2011): p landmarks (k-means
  centres: LSC-K, or random points: LSC-R), each point coded by its r nearest landmarks with a
  Gaussian kernel, SVD of the normalised p x N code matrix, k-means on the right singular vectors.
- ``ldmgi``: local discriminant models and global integration (Yang et al., TIP 2010): one ridge
  discriminant model per kNN clique, summed into a global Laplacian, relaxed to its smallest
  eigenvectors and discretised like N-Cut.

The dense N x N affinities of the original papers are replaced by kNN-sparse ones (exact faiss
neighbours) so MNIST/CIFAR-sized inputs fit in memory; ``k`` is each baseline's hyperparameter.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field, model_validator

from ..graphs import knn
from ..methods import MethodConfig, Result, RunContext
from ..resources import check_memory
from ._common import (discretize, kmeans_labels, knn_graph, smallest_eigenvectors, subsample_rows,
                      symmetric_sparse, take, top_eigenvectors)


class SpectralBase(MethodConfig):
    max_samples: int | None = Field(None, ge=10)
    subsample_seed: int = 0


def _sparse_budget(n: int, k: int, what: str) -> None:
    # kNN lists + a symmetric CSR matrix (<= 2 n k entries, data + indices) + a few copies.
    check_memory(n * k * 8 * 12 + n * 64 * 8, what)


# --- N-Cut -----------------------------------------------------------------------------------

class NCutConfig(SpectralBase):
    k: int = Field(10, ge=1, description="neighbours of the sparse Gaussian affinity")
    sigma: float | None = Field(None, gt=0, description="kernel width; null = mean kNN distance")


def gaussian_knn_affinity(x: np.ndarray, k: int, sigma: float | None) -> tuple[sp.csr_matrix, float]:
    graph = knn_graph(x, k, "ncut affinity")
    d = graph.distances.astype(np.float64)
    sigma = float(sigma if sigma is not None else (d.mean() or 1.0))
    w = np.exp(-(d ** 2) / (2.0 * sigma ** 2))
    return symmetric_sparse(graph.indices, w, len(x)), sigma


def ncut_labels(affinity: sp.spmatrix, n_clusters: int, seed: int) -> np.ndarray:
    vectors, deg = top_eigenvectors(affinity, n_clusters, seed)
    return discretize(vectors / np.sqrt(deg)[:, None], seed)


class NCutBaseline:
    TASK = "clustering"
    Config = NCutConfig

    def fit_predict(self, ctx: RunContext, config: NCutConfig) -> Result:
        rows = subsample_rows(len(ctx.view.X), config.max_samples, config.subsample_seed)
        x = take(ctx.view.X, rows)
        _sparse_budget(len(x), config.k, f"N-Cut on {len(x)} points")
        affinity, sigma = gaussian_knn_affinity(x, config.k, config.sigma)
        labels = ncut_labels(affinity, ctx.n_clusters, ctx.seed)
        return Result(labels=labels, index=rows, extra={"sigma": sigma, "k": config.k, "fit_rows": len(x)})


# --- self-tuning spectral clustering ------------------------------------------------------------

class SelfTuningConfig(SpectralBase):
    k: int = Field(15, ge=1, description="neighbours kept in the sparse affinity")
    scale_neighbor: int = Field(7, ge=1, description="sigma_i = distance to this neighbour (paper: 7)")
    n_init: int = Field(10, ge=1)

    @model_validator(mode="after")
    def _scale_within_k(self):
        if self.scale_neighbor > self.k:
            raise ValueError(f"scale_neighbor ({self.scale_neighbor}) must be <= k ({self.k})")
        return self


def self_tuning_affinity(indices: np.ndarray, distances: np.ndarray, scale_neighbor: int) -> sp.csr_matrix:
    """A_ij = exp(-d_ij^2 / (sigma_i sigma_j)) on the kNN pattern (symmetric by construction)."""
    n = len(indices)
    d = distances.astype(np.float64)
    sigma = d[:, scale_neighbor - 1].copy()
    sigma[sigma <= 0] = np.finfo(float).tiny ** 0.25  # duplicates: avoid 0/0
    a = np.exp(-(d ** 2) / (sigma[:, None] * sigma[indices]))
    return symmetric_sparse(indices, a, n)


class SelfTuningBaseline:
    TASK = "clustering"
    Config = SelfTuningConfig

    def fit_predict(self, ctx: RunContext, config: SelfTuningConfig) -> Result:
        rows = subsample_rows(len(ctx.view.X), config.max_samples, config.subsample_seed)
        x = take(ctx.view.X, rows)
        _sparse_budget(len(x), config.k, f"self-tuning spectral clustering on {len(x)} points")
        k = min(config.k, len(x) - 1)
        graph = knn_graph(x, k, "sc-st affinity")
        affinity = self_tuning_affinity(graph.indices, graph.distances, min(config.scale_neighbor, k))
        vectors, _ = top_eigenvectors(affinity, ctx.n_clusters, ctx.seed)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        labels = kmeans_labels(vectors / norms, ctx.n_clusters, ctx.seed, n_init=config.n_init)
        return Result(labels=labels, index=rows, extra={"k": k, "fit_rows": len(x)})


# --- landmark-based spectral clustering -----------------------------------------------------------

class LandmarkConfig(SpectralBase):
    n_landmarks: int = Field(1000, ge=2, description="p (paper: 1000)")
    r: int = Field(5, ge=1, description="nearest landmarks coding each point (paper: 5)")
    landmarks: Literal["kmeans", "random"] = Field("kmeans", description="LSC-K or LSC-R")
    landmark_kmeans_iter: int = Field(10, ge=1, description="Lloyd iterations of the landmark k-means")
    n_init: int = Field(10, ge=1, description="restarts of the final k-means")


def landmark_embedding(x: np.ndarray, n_clusters: int, config: LandmarkConfig, seed: int) -> tuple[np.ndarray, dict]:
    """The N x c spectral embedding of LSC (right singular vectors of D^-1/2 Z)."""
    from sklearn.cluster import KMeans

    n = len(x)
    p = min(config.n_landmarks, max(n // 2, n_clusters + 1))
    rng = np.random.default_rng(seed)
    if config.landmarks == "random":
        centres = x[np.sort(rng.choice(n, size=p, replace=False))]
    else:
        km = KMeans(n_clusters=p, n_init=1, max_iter=config.landmark_kmeans_iter, random_state=seed)
        centres = km.fit(x).cluster_centers_
    r = min(config.r, p)
    near = knn(np.asarray(centres, np.float32), r, queries=x)  # each point's r nearest landmarks
    d = near.distances.astype(np.float64)
    bandwidth = float(d.mean()) or 1.0
    w = np.exp(-(d ** 2) / (2.0 * bandwidth ** 2))
    w_sum = w.sum(1, keepdims=True)
    w_sum[w_sum == 0] = 1.0
    w /= w_sum  # each point's code sums to 1
    z = sp.csr_matrix((w.ravel(), (near.indices.ravel(), np.repeat(np.arange(n), r))), shape=(p, n))
    row_sums = np.asarray(z.sum(1)).ravel()
    row_sums[row_sums == 0] = 1.0
    z_hat = sp.diags(1.0 / np.sqrt(row_sums)) @ z
    gram = (z_hat @ z_hat.T).toarray()
    vals, vecs = np.linalg.eigh(gram)
    top = np.argsort(vals)[::-1][:n_clusters]
    singular = np.sqrt(np.maximum(vals[top], 1e-300))
    embedding = (z_hat.T @ vecs[:, top]) / singular[None, :]
    return np.asarray(embedding), {"n_landmarks": int(p), "r": int(r), "bandwidth": bandwidth}


class LandmarkBaseline:
    TASK = "clustering"
    Config = LandmarkConfig

    def fit_predict(self, ctx: RunContext, config: LandmarkConfig) -> Result:
        rows = subsample_rows(len(ctx.view.X), config.max_samples, config.subsample_seed)
        x = take(ctx.view.X, rows)
        n = len(x)
        p = min(config.n_landmarks, n)
        check_memory(n * p * 8 * 2 + p * p * 8 * 3, f"landmark spectral clustering ({n} points, {p} landmarks)")
        embedding, info = landmark_embedding(x, ctx.n_clusters, config, ctx.seed)
        labels = kmeans_labels(embedding, ctx.n_clusters, ctx.seed, n_init=config.n_init)
        return Result(labels=labels, index=rows, extra={**info, "fit_rows": n})


# --- LDMGI -----------------------------------------------------------------------------------

class LDMGIConfig(SpectralBase):
    k: int = Field(5, ge=1, description="neighbours in each local clique (clique = point + k neighbours)")
    lam: float = Field(1.0, gt=0, description="ridge regulariser lambda of the local discriminant models")


def ldmgi_laplacian(x: np.ndarray, neighbours: np.ndarray, lam: float, chunk: int = 2048) -> sp.csr_matrix:
    """L = sum_i S_i L_i S_i^T with L_i = H (X~_i X~_i^T + lam I)^-1 H on clique i.

    X~_i holds the clique's points centred (rows), H = I - 11^T/m centres; L_i is the
    kernel-form solution of the local ridge discriminant model (LDMGI eq. 11). Every L_i maps
    the constant vector to 0, so L is PSD with the constant vector in its null space.
    """
    n = len(x)
    cliques = np.concatenate([np.arange(n)[:, None], neighbours], axis=1)
    m = cliques.shape[1]
    h = np.eye(m) - 1.0 / m
    rows, cols, vals = [], [], []
    for start in range(0, n, chunk):
        idx = cliques[start:start + chunk]
        pts = x[idx].astype(np.float64)  # (b, m, d)
        pts -= pts.mean(axis=1, keepdims=True)
        gram = pts @ pts.transpose(0, 2, 1) + lam * np.eye(m)
        local = h @ np.linalg.inv(gram) @ h
        rows.append(np.repeat(idx, m, axis=1).ravel())
        cols.append(np.tile(idx, (1, m)).ravel())
        vals.append(local.ravel())
    lap = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    lap.sum_duplicates()
    return ((lap + lap.T) * 0.5).tocsr()


class LDMGIBaseline:
    TASK = "clustering"
    Config = LDMGIConfig

    def fit_predict(self, ctx: RunContext, config: LDMGIConfig) -> Result:
        rows = subsample_rows(len(ctx.view.X), config.max_samples, config.subsample_seed)
        x = take(ctx.view.X, rows)
        n = len(x)
        k = min(config.k, n - 1)
        check_memory(n * (k + 1) ** 2 * 8 * 8 + 2048 * (k + 1) * x.shape[1] * 8 * 2,
                     f"LDMGI on {n} points (cliques of {k + 1})")
        graph = knn_graph(x, k, "ldmgi cliques")
        lap = ldmgi_laplacian(x, graph.indices, config.lam)
        vectors = smallest_eigenvectors(lap, ctx.n_clusters, ctx.seed)
        labels = discretize(vectors, ctx.seed)
        return Result(labels=labels, index=rows, extra={"k": k, "lam": config.lam, "fit_rows": n})


NCUT = NCutBaseline()
SC_ST = SelfTuningBaseline()
SC_LS = LandmarkBaseline()
LDMGI = LDMGIBaseline()

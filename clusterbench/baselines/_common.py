"""Pieces shared by the baselines: subsamples, kNN affinities, spectral embeddings, memory bounds.

Baselines get no precomputed graph (``ctx.graph`` is None): a baseline that needs neighbours
builds them here with ``clusterbench.graphs.knn`` (exact, faiss), its ``k`` being one of its own
hyperparameters. Everything quadratic is bounded up front with ``resources.check_memory`` so a
configuration that cannot fit is refused with a message instead of being killed by the OS.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..graphs import KnnGraph, knn
from ..resources import check_memory

FLOAT64 = 8
GIB = 1 << 30


def subsample_rows(n: int, max_samples: int | None, seed: int) -> np.ndarray | None:
    """Rows a baseline that the paper ran on a subsample is fitted and scored on.

    Uniform without replacement (never label-stratified: labels are for scoring only), drawn
    with a fixed ``seed`` that is a hyperparameter, not the run seed, so every seed of a run
    evaluates the same rows. ``None`` = all rows.
    """
    if max_samples is None or max_samples >= n:
        return None
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_samples, replace=False))


def take(x: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    return x if rows is None else x[rows]


SCALINGS = ("none", "proportional", "standard")


def rescale(x: np.ndarray, how: str) -> np.ndarray:
    """The feature scalings of the clustering-benchmarks suite (Gagolewski's clustering-results-v1).

    - ``none``: the view as it is.
    - ``proportional``: the suite's default ("original" results, ``clustbench.preprocess_data``):
      centre every column and divide all of them by one number, the standard deviation (ddof 1)
      of all entries of the varying columns. Distances shrink by a common factor, so only
      algorithms with an absolute length parameter (BIRCH's threshold) see a difference.
    - ``standard``: the suite's ``scale_standard`` results: every column to mean 0, std 1 (ddof 1).

    Constant columns end up all-zero (the suite drops them; the distances are the same). The
    suite's tiny white noise (1e-6 std, against ties in hierarchical methods) is not added.
    Returns float64; unsupervised (labels play no part).
    """
    if how == "none":
        return x
    if how not in SCALINGS:
        raise ValueError(f"unknown scaling {how!r}; allowed: {', '.join(SCALINGS)}")
    x = np.asarray(x, dtype=np.float64)
    varying = x.var(axis=0) > 0
    out = np.zeros_like(x)
    if not varying.any() or len(x) < 2:
        return out
    v = x[:, varying]
    scale = v.std(axis=0, ddof=1) if how == "standard" else v.std(ddof=1)
    out[:, varying] = (v - v.mean(axis=0)) / scale
    return out


def knn_graph(x: np.ndarray, k: int, what: str) -> KnnGraph:
    """Exact kNN (self excluded); k is clipped to n - 1 so tiny data sets still work."""
    n = len(x)
    if n < 2:
        raise ValueError(f"{what}: needs at least 2 points, got {n}")
    check_memory(n * k * 16 * 2, f"{what}: kNN lists of {n} points x {k} neighbours")
    return knn(x, min(k, n - 1))


def symmetric_sparse(indices: np.ndarray, weights: np.ndarray, n: int, mode: str = "max") -> sp.csr_matrix:
    """Symmetrise a directed kNN weight matrix: ``max`` keeps an edge present in either direction."""
    rows = np.repeat(np.arange(n), indices.shape[1])
    w = sp.csr_matrix((weights.ravel(), (rows, indices.ravel())), shape=(n, n))
    w.sum_duplicates()
    if mode == "max":
        return w.maximum(w.T).tocsr()
    if mode == "mean":
        return ((w + w.T) * 0.5).tocsr()
    raise ValueError(f"unknown symmetrisation {mode!r}; allowed: max, mean")


def connectivity(x: np.ndarray, k: int, what: str) -> sp.csr_matrix:
    """0/1 symmetric kNN connectivity (sklearn's kneighbors_graph, made symmetric)."""
    g = knn_graph(x, k, what)
    return symmetric_sparse(g.indices, np.ones_like(g.distances, dtype=np.float64), len(x))


def dense_pairwise_bytes(n: int, copies: float = 1.0) -> float:
    """Memory of ``copies`` float64 n x n matrices."""
    return float(n) * float(n) * FLOAT64 * copies


def top_eigenvectors(affinity: sp.spmatrix, n_vectors: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Leading eigenvectors of the normalised affinity D^-1/2 W D^-1/2 (NJW / Shi-Malik).

    Returns ``(vectors, degrees)``: the ``n_vectors`` eigenvectors of largest eigenvalue of the
    symmetric normalised matrix, and the degrees (so callers can map back to D^-1/2 space).
    Eigenvalues of that matrix lie in [-1, 1]; asking ARPACK for the largest algebraic ones of
    (M + I) keeps the problem well separated from the negative end.
    """
    from scipy.sparse.linalg import eigsh

    w = sp.csr_matrix(affinity, dtype=np.float64)
    n = w.shape[0]
    deg = np.asarray(w.sum(axis=1)).ravel()
    if np.any(deg <= 0):
        raise ValueError("affinity has isolated points (zero degree): raise the number of neighbours")
    d_inv_sqrt = sp.diags(1.0 / np.sqrt(deg))
    m = (d_inv_sqrt @ w @ d_inv_sqrt).tocsr()
    m = (m + m.T) * 0.5
    if n_vectors >= n - 1 or n <= 300:
        vals, vecs = np.linalg.eigh(m.toarray())
        order = np.argsort(vals)[::-1][:n_vectors]
        return vecs[:, order], deg
    rng = np.random.default_rng(seed)
    v0 = rng.uniform(-1, 1, n)
    shifted = (m + sp.identity(n, format="csr")).tocsr()
    vals, vecs = eigsh(shifted, k=n_vectors, which="LA", v0=v0, tol=1e-8, maxiter=max(1000, 20 * n))
    order = np.argsort(vals)[::-1]
    return vecs[:, order], deg


def smallest_eigenvectors(matrix: sp.spmatrix, n_vectors: int, seed: int) -> np.ndarray:
    """Eigenvectors of the ``n_vectors`` smallest eigenvalues of a symmetric PSD sparse matrix.

    Computed as the largest eigenvectors of (c I - M), c a Gershgorin bound on M's spectrum,
    which avoids a sparse factorisation (shift-invert) of M.
    """
    from scipy.sparse.linalg import eigsh

    m = sp.csr_matrix(matrix, dtype=np.float64)
    m = (m + m.T) * 0.5
    n = m.shape[0]
    if n_vectors >= n - 1 or n <= 300:
        vals, vecs = np.linalg.eigh(m.toarray())
        return vecs[:, np.argsort(vals)[:n_vectors]]
    bound = float(np.abs(m).sum(axis=1).max())
    shifted = (bound * sp.identity(n, format="csr") - m).tocsr()
    v0 = np.random.default_rng(seed).uniform(-1, 1, n)
    vals, vecs = eigsh(shifted, k=n_vectors, which="LA", v0=v0, tol=1e-10, maxiter=max(2000, 50 * n))
    return vecs[:, np.argsort(vals)[::-1]]


def discretize(vectors: np.ndarray, seed: int, max_iter: int = 300) -> np.ndarray:
    """Yu & Shi (2003) multiclass spectral discretisation: the discrete partition closest to
    the continuous eigenvector solution up to an orthogonal rotation.

    ``vectors`` are n x c (already scaled as the caller's objective requires). Rows are
    normalised, a rotation R is initialised from c mutually far-apart rows, then we alternate
    X = argmax rows of V R (discrete) and R = U W^T from the SVD of X^T V, until the objective
    stops improving.
    """
    v = np.asarray(vectors, dtype=np.float64)
    n, c = v.shape
    if c == 1:
        return np.zeros(n, dtype=np.int64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    v = v / norms
    rng = np.random.default_rng(seed)
    rotation = np.zeros((c, c))
    rotation[:, 0] = v[rng.integers(n)]
    closeness = np.zeros(n)
    for j in range(1, c):
        closeness += np.abs(v @ rotation[:, j - 1])
        rotation[:, j] = v[int(np.argmin(closeness))]
    last = 0.0
    labels = np.zeros(n, dtype=np.int64)
    for _ in range(max_iter):
        labels = np.argmax(v @ rotation, axis=1)
        indicator = np.zeros((n, c))
        indicator[np.arange(n), labels] = 1.0
        u, s, wt = np.linalg.svd(indicator.T @ v)
        ncut = 2.0 * (n - s.sum())
        if abs(ncut - last) < np.finfo(float).eps:
            break
        last = ncut
        rotation = (u @ wt).T
    return labels.astype(np.int64)


def kmeans_labels(x: np.ndarray, n_clusters: int, seed: int, n_init: int = 10, max_iter: int = 300) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=n_clusters, n_init=n_init, max_iter=max_iter, random_state=seed).fit_predict(x)


def relabel_consecutive(labels: np.ndarray) -> np.ndarray:
    """Cluster ids 0..c-1 in order of first appearance; -1 (noise) is kept as -1."""
    labels = np.asarray(labels)
    out = np.full(len(labels), -1, dtype=np.int64)
    keep = labels >= 0
    _, inverse = np.unique(labels[keep], return_inverse=True)
    out[keep] = inverse
    return out

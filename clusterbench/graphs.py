"""kNN graphs (faiss) and the edge weightings the papers build on them.

The knn stage stores, per view, each point's k nearest neighbours (self excluded) and their
Euclidean distances, and the content hash of the view's features (``io.features_sha256``), so
a run refuses a graph built from other or older features. Weightings are pure functions of
those arrays, so a method can derive ConstellationNet's inverse-distance edges, a heat kernel,
or LNSCC's locally normalised softmax from the same cached graph.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import checks, io


@dataclass
class KnnGraph:
    indices: np.ndarray  # (N, k) int64, neighbours sorted by distance, self excluded
    distances: np.ndarray  # (N, k) float32 Euclidean distances
    view_sha256: str | None = None  # io.features_sha256 of the features it was built from (None: unknown)

    @property
    def n(self) -> int:
        return self.indices.shape[0]

    @property
    def k(self) -> int:
        return self.indices.shape[1]

    def truncate(self, k: int) -> "KnnGraph":
        """The k-NN graph for a smaller k: exact neighbour lists are prefixes of each other."""
        if k > self.k:
            raise ValueError(f"graph has k={self.k} neighbours per node, {k} were asked for: "
                             f"raise model.k in params.yaml to at least {k}")
        return KnnGraph(self.indices[:, :k], self.distances[:, :k], self.view_sha256)

    def save(self, path) -> None:
        stamp = {} if self.view_sha256 is None else {"view_sha256": np.asarray(self.view_sha256)}
        io.write_npz(path, indices=self.indices, distances=self.distances, **stamp)

    @classmethod
    def load(cls, path) -> "KnnGraph":
        """A graph file; one written before graphs recorded their view loads with view_sha256 None."""
        d = io.read_npz(path)
        return cls(d["indices"], d["distances"], str(d["view_sha256"]) if "view_sha256" in d else None)


def faiss_gpu_available() -> bool:
    try:
        import faiss
    except ImportError:
        return False
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def knn(x: np.ndarray, k: int, queries: np.ndarray | None = None, use_gpu: bool | None = None,
        batch_size: int = 16384, label: str = "the data", setting: str = "k") -> KnnGraph:
    """Exact Euclidean k nearest neighbours with faiss.

    Without ``queries``, neighbours of every row of ``x`` among the other rows (self excluded,
    also when duplicates exist). With ``queries``, neighbours of each query among ``x``.
    ``label`` and ``setting`` name the data and the parameter behind ``k`` in error messages:
    faiss pads what it cannot find with index -1, so empty, non-finite or too small inputs are
    refused (DataError) rather than turned into a graph.
    """
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    fix = "remove or repair those rows before building a kNN graph"
    checks.check_features(x, label, fix)
    n, d = x.shape
    self_search = queries is None
    q = x if self_search else np.ascontiguousarray(queries, dtype=np.float32)
    if not self_search:
        checks.check_features(q, f"the queries of {label}", fix)
    checks.check_knn_k(n, k, label, setting, queries=not self_search)
    want = k + 1 if self_search else k
    index = faiss.IndexFlatL2(d)
    if use_gpu is None:
        use_gpu = faiss_gpu_available()
    if use_gpu:
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    index.add(x)
    idx_out = np.empty((len(q), k), dtype=np.int64)
    dist_out = np.empty((len(q), k), dtype=np.float32)
    for start in range(0, len(q), batch_size):
        stop = min(start + batch_size, len(q))
        dist, idx = index.search(q[start:stop], want)
        if self_search:
            rows = np.arange(start, stop)[:, None]
            is_self = idx == rows
            # Drop self wherever faiss placed it (ties with duplicates); else drop the last column.
            drop = np.where(is_self.any(1), is_self.argmax(1), want - 1)
            keep = np.ones_like(idx, dtype=bool)
            keep[np.arange(len(idx)), drop] = False
            idx = idx[keep].reshape(len(idx), k)
            dist = dist[keep].reshape(len(idx), k)
        idx_out[start:stop] = idx
        dist_out[start:stop] = np.sqrt(np.maximum(dist, 0.0))
    _refuse_missing_neighbours(idx_out, dist_out, n, label)
    return KnnGraph(idx_out, dist_out)


def view_graph(x: np.ndarray, k: int, **kwargs) -> KnnGraph:
    """The kNN graph of a view's features (what the knn stage stores): ``knn`` plus the hash of
    ``x``, which runs compare with the view they load (checks.check_graph)."""
    graph = knn(x, k, **kwargs)
    graph.view_sha256 = io.features_sha256(x)
    return graph


def _refuse_missing_neighbours(idx: np.ndarray, dist: np.ndarray, n: int, label: str) -> None:
    """faiss marks a neighbour it could not find with -1 (and a 3.4e38 distance): never return one."""
    rows = checks.invalid_neighbour_rows(idx, dist, n)
    if len(rows):
        raise checks.DataError(f"faiss found no valid neighbour list for {len(rows)} rows of {label} (first: row "
                               f"{rows[0]}; index -1 or a non-finite distance): its values are too large for float32 "
                               "distances; rescale the features")


# --- edge weightings -------------------------------------------------------------------------

def inverse_distance(distances: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """w_ij = 1 / (d_ij + eps): ConstellationNet's edge weight ("inverting the distance")."""
    return 1.0 / (distances.astype(np.float64) + eps)


def heat_kernel(distances: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """w_ij = exp(-d_ij^2 / (2 sigma^2)); sigma defaults to the mean neighbour distance."""
    d = distances.astype(np.float64)
    if sigma is None:
        sigma = float(d.mean()) or 1.0
    return np.exp(-(d ** 2) / (2.0 * sigma ** 2))


def local_softmax(distances: np.ndarray) -> np.ndarray:
    """W_i. = softmax(-D_i.): LNSCC's locally normalised weights (eq. 1), rows sum to 1."""
    z = -distances.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def to_sparse(indices: np.ndarray, weights: np.ndarray, n: int | None = None) -> sp.csr_matrix:
    """The directed N x N matrix with W_hat[i, indices[i, j]] = weights[i, j]."""
    n_rows, k = indices.shape
    n = n or n_rows
    rows = np.repeat(np.arange(n_rows), k)
    return sp.csr_matrix((weights.ravel(), (rows, indices.ravel())), shape=(n_rows, n))


def fuzzy_union(w: sp.spmatrix) -> sp.csr_matrix:
    """A = W + W^T - W o W^T (LNSCC eq. 2): symmetric, keeps one-sided edges, stays in [0, 1]."""
    w = sp.csr_matrix(w)
    wt = w.T.tocsr()
    return (w + wt - w.multiply(wt)).tocsr()


def edge_index(indices: np.ndarray, symmetric: bool = False) -> np.ndarray:
    """PyG edge_index (2, E) with source = neighbour, target = node (messages flow to the node)."""
    n, k = indices.shape
    target = np.repeat(np.arange(n), k)
    source = indices.ravel()
    ei = np.stack([source, target])
    if symmetric:
        ei = np.unique(np.concatenate([ei, ei[::-1]], axis=1), axis=1)
    return ei.astype(np.int64)

"""Data checks where data enters a stage: a bad view stops with one line, never a wrong output.

faiss turns NaN rows into a graph of -1 indices and 1.8e19 distances without complaint, and
scikit-learn stops with a traceback that names neither the view nor the fix; these checks run
first and say which input is wrong, how, and what to change.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import io

# Largest |value| a view may hold. Squared distances, and sums of squares over a whole view
# (70,000 x 784 x 1e30 = 5.5e37), must stay below float32's 3.4e38: beyond, faiss and the
# methods compute inf and NaN (ten arbitrary clusters, density peaks' NaN warning). Real
# data is far below: pixels 0..255, the largest clustering-data-v1 coordinates are 1e6 (sipu).
MAX_ABS_FEATURE = 1e15
FLOAT32_MAX = float(np.finfo(np.float32).max)


class DataError(ValueError):
    """Input data a stage cannot use; the message names the input, what is wrong and the fix."""


def rebuild_view(name: str) -> str:
    """The fix for a view that is wrong on disk."""
    return f"rebuild it (dvc repro embed@{name}) and check its dataset and embedding steps"


def nonfinite_rows(x: np.ndarray) -> np.ndarray:
    """Indices of the rows of ``x`` (N, ...) holding NaN or inf; no N x d temporary when there are none."""
    x = np.asarray(x)
    if x.dtype.kind not in "fc" or len(x) == 0:
        return np.empty(0, np.int64)
    with np.errstate(all="ignore"):
        if np.isfinite(x.sum(dtype=np.complex128 if x.dtype.kind == "c" else np.float64)):
            return np.empty(0, np.int64)  # a float64 sum of finite values cannot overflow
    flat = x.reshape(len(x), -1)
    step = max(1, (1 << 22) // max(flat.shape[1], 1))
    bad = np.concatenate([~np.isfinite(flat[i:i + step]).all(axis=1) for i in range(0, len(flat), step)])
    return np.flatnonzero(bad)


def check_features(x: Any, label: str, fix: str) -> None:
    """Refuse a feature matrix that is empty, not 2-D or holds NaN/inf (``label`` names it)."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise DataError(f"{label} has features of shape {x.shape}, not (rows, features): {fix}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"{label} is empty ({x.shape[0]} rows x {x.shape[1]} features): {fix}")
    rows = nonfinite_rows(x)
    if len(rows):
        raise DataError(f"{label} has NaN or inf values in {len(rows)} of {len(x)} rows "
                        f"(first: row {rows[0]}): {fix}")


def check_spread(x: Any, label: str, fix: str) -> None:
    """Refuse finite features no method can cluster: every row identical (no feature varies), or
    values so large that float32 squared distances overflow (``MAX_ABS_FEATURE``, lower for very
    wide views). Constant columns alone are fine (UCI ionosphere and statlog have one)."""
    x = np.asarray(x)
    if x.ndim != 2 or x.size == 0 or x.dtype.kind not in "fiu":
        return
    lo, hi = x.min(axis=0), x.max(axis=0)  # two passes, no N x d temporary
    if len(x) > 1 and np.array_equal(lo, hi):
        raise DataError(f"{label} has {len(x)} identical rows (no feature varies), so there is nothing to cluster: "
                        f"{fix}")
    biggest = max(abs(float(lo.min())), abs(float(hi.max())))
    limit = min(MAX_ABS_FEATURE, math.sqrt(FLOAT32_MAX / (4 * x.shape[1])))
    if biggest > limit:
        raise DataError(f"{label} has values up to {biggest:.3g} in absolute value, above the {limit:.3g} that float32 "
                        "squared distances can take: rescale the data before embedding (divide it by a constant or "
                        "standardise each feature)")


def distinct_rows(x: Any, enough: int) -> int:
    """How many distinct rows ``x`` has, counted only until ``enough`` are found: growing prefixes,
    so a view of distinct points costs a look at its first rows. Rows compare as bytes (-0.0 and
    0.0 count as two: it can only over-count, never refuse a good view)."""
    flat = np.ascontiguousarray(x).reshape(len(x), -1)
    if flat.size == 0:
        return 0
    rows = flat.view(np.dtype((np.void, flat.dtype.itemsize * flat.shape[1]))).ravel()
    m = min(len(rows), max(2 * enough, 64))
    while True:
        found = len(np.unique(rows[:m]))
        if found >= enough or m == len(rows):
            return found
        m = min(len(rows), 8 * m)


def check_view(view: Any, name: str, fix: str | None = None) -> None:
    """A loaded view: non-empty, finite features, one label and split per row, not all rows
    identical and not too large for float32 distances."""
    fix = fix or rebuild_view(name)
    check_features(view.X, f"view {name}", fix)
    n = len(view.X)
    if len(view.y) != n or len(view.split) != n:
        raise DataError(f"view {name} has {n} rows but {len(view.y)} labels and {len(view.split)} split codes: {fix}")
    check_spread(view.X, f"view {name}", fix)


def check_knn_k(n: int, k: int, label: str, setting: str = "k", queries: bool = False) -> None:
    """A kNN graph with self excluded needs more than k rows (k rows when searching for queries)."""
    need = k if queries else k + 1
    if n < need:
        rule = "at least k rows" if queries else "more than k rows"
        raise DataError(f"{label} has {n} rows; {setting} = {k} needs {rule}: lower {setting} "
                        f"(at most {max(n - (need - k), 0)})")


def invalid_neighbour_rows(indices: Any, distances: Any, n: int) -> np.ndarray:
    """Rows whose neighbour list has an index outside [0, n) (faiss pads with -1) or a non-finite distance."""
    idx = np.asarray(indices)
    bad = ((idx < 0) | (idx >= n)).any(axis=1) | ~np.isfinite(np.asarray(distances)).all(axis=1)
    return np.flatnonzero(bad)


def check_graph(graph: Any, n: int, name: str, view: str, view_sha256: str | None = None) -> None:
    """A stored kNN graph must be the graph of this view: same rows, built from the features the
    view holds now (``view_sha256``: io.features_sha256 of the features of view ``name``, the
    graph's own view), valid indices, finite distances. Without the hash check, re-embedding a
    view and training without re-running knn trained on the old graph, exit 0."""
    fix = f"rebuild it (dvc repro knn@{name})"
    if graph.n != n:
        raise DataError(f"graph {name} has {graph.n} nodes but view {view} has {n} rows: {fix}")
    if view_sha256 is not None:
        if graph.view_sha256 is None:
            raise DataError(f"graph {name} records no hash of the features it was built from (written by an older "
                            f"clusterbench), so it cannot be matched to view {name} (sha256 {view_sha256}): {fix}")
        if graph.view_sha256 != view_sha256:
            raise DataError(f"graph {name} was built from other features than view {name} holds now (graph built "
                            f"from sha256 {graph.view_sha256}, view sha256 {view_sha256}): {fix}")
    rows = invalid_neighbour_rows(graph.indices, graph.distances, n)
    if len(rows):
        raise DataError(f"graph {name} has invalid neighbours (index -1 or out of range, or a non-finite distance) "
                        f"in {len(rows)} of {n} rows (first: row {rows[0]}): {fix}")


def check_fits(view: Any, name: str, config: Any = None, graph: Any = None, graph_name: str | None = None,
               graph_view_sha256: str | None = None) -> None:
    """Refuse a run whose method cannot take the view, before any seed runs: a graph not built
    from the features of its view (``graph_view_sha256``: the hash of the graph's view when that
    is not this one; else this view's features are hashed), no or one class, too few rows or
    too few distinct rows for the clusters."""
    n = len(view.X)
    if graph is not None:
        check_graph(graph, n, graph_name or name, name, graph_view_sha256 or io.features_sha256(view.X))
    labelled = view.n_clusters
    own = getattr(config, "n_clusters", None)
    n_clusters = own or labelled
    if labelled < 1:  # also with the method's own n_clusters: nothing to score its clusters against
        consequence = "nothing to score the clusters against" if own else "so its number of clusters is 0"
        raise DataError(f"view {name} has no labelled rows (every label is -1), {consequence}: {rebuild_view(name)}")
    if labelled == 1:  # one cluster found for one class scores 1.0 on every metric, and means nothing
        only = int(view.y[view.y >= 0][0])
        raise DataError(f"view {name} has one class (label {only}) in its {int((view.y >= 0).sum())} labelled rows: "
                        f"its scores would be meaningless (every metric 1.0 for one cluster): use a view with at "
                        f"least 2 classes ({rebuild_view(name)})")
    max_samples = getattr(config, "max_samples", None)
    fit_rows = min(n, max_samples) if max_samples else n
    if n_clusters > fit_rows:  # without its own n_clusters, only a max_samples subsample can be too small
        rows = f"{fit_rows} rows (max_samples = {max_samples})" if fit_rows < n else f"{n} rows"
        if own:
            raise DataError(f"view {name}: n_clusters = {own} is more than the {rows} the method fits: "
                            f"lower n_clusters (at most {fit_rows})")
        raise DataError(f"view {name} has {labelled} classes but the method fits only {rows}: "
                        f"raise max_samples to at least {labelled}")
    distinct = distinct_rows(view.X, n_clusters)
    if distinct < n_clusters:  # identical rows always share a cluster: k-means would invent the rest
        if own:
            raise DataError(f"view {name} has {distinct} distinct rows (of {n}), fewer than n_clusters = {own}: "
                            f"identical rows always share a cluster: lower n_clusters (at most {distinct})")
        raise DataError(f"view {name} has {distinct} distinct rows (of {n}), fewer than its {labelled} classes: "
                        f"identical rows always share a cluster: {rebuild_view(name)}")

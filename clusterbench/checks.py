"""Data checks where data enters a stage: a bad view stops with one line, never a wrong output.

faiss turns NaN rows into a graph of -1 indices and 1.8e19 distances without complaint, and
scikit-learn stops with a traceback that names neither the view nor the fix; these checks run
first and say which input is wrong, how, and what to change.
"""
from __future__ import annotations

from typing import Any

import numpy as np


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


def check_view(view: Any, name: str, fix: str | None = None) -> None:
    """A loaded view: non-empty, finite features, one label and split per row."""
    fix = fix or rebuild_view(name)
    check_features(view.X, f"view {name}", fix)
    n = len(view.X)
    if len(view.y) != n or len(view.split) != n:
        raise DataError(f"view {name} has {n} rows but {len(view.y)} labels and {len(view.split)} split codes: {fix}")


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


def check_graph(graph: Any, n: int, name: str, view: str) -> None:
    """A stored kNN graph must be the graph of this view: same rows, valid indices, finite distances."""
    fix = f"rebuild it (dvc repro knn@{name})"
    if graph.n != n:
        raise DataError(f"graph {name} has {graph.n} nodes but view {view} has {n} rows: {fix}")
    rows = invalid_neighbour_rows(graph.indices, graph.distances, n)
    if len(rows):
        raise DataError(f"graph {name} has invalid neighbours (index -1 or out of range, or a non-finite distance) "
                        f"in {len(rows)} of {n} rows (first: row {rows[0]}): {fix}")


def check_fits(view: Any, name: str, config: Any = None, graph: Any = None, graph_name: str | None = None) -> None:
    """Refuse a run whose method cannot take the view's size, before any seed runs."""
    n = len(view.X)
    if graph is not None:
        check_graph(graph, n, graph_name or name, name)
    labelled = view.n_clusters
    own = getattr(config, "n_clusters", None)
    n_clusters = own or labelled
    if n_clusters < 1:
        raise DataError(f"view {name} has no labelled rows (every label is -1), so its number of clusters is 0: "
                        f"{rebuild_view(name)}")
    max_samples = getattr(config, "max_samples", None)
    fit_rows = min(n, max_samples) if max_samples else n
    if n_clusters > fit_rows:  # without its own n_clusters, only a max_samples subsample can be too small
        rows = f"{fit_rows} rows (max_samples = {max_samples})" if fit_rows < n else f"{n} rows"
        if own:
            raise DataError(f"view {name}: n_clusters = {own} is more than the {rows} the method fits: "
                            f"lower n_clusters (at most {fit_rows})")
        raise DataError(f"view {name} has {labelled} classes but the method fits only {rows}: "
                        f"raise max_samples to at least {labelled}")

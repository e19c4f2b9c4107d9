"""Embed stage: turn a prepared dataset into the feature matrix ("view") that methods consume.

A view is a chain of steps (params.yaml ``embeddings.<name>``), e.g. ``[dinov2, umap]``. The
view file keeps the rows' labels, split and dataset indices next to the features, so every
later stage reads one file and never re-derives the subsample.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .. import io
from ..datasets import DatasetArrays


class EmbeddingError(RuntimeError):
    """An embedding cannot be computed; the message says why and what to do."""


@dataclass
class View:
    """Features of (a subsample of) one dataset, with everything needed to score them."""

    X: np.ndarray  # (N, d) float32
    y: np.ndarray  # (N,) int64, -1 = noise / unlabelled
    split: np.ndarray  # (N,) uint8, 0 = train, 1 = test
    index: np.ndarray  # (N,) rows of the prepared dataset
    image_shape: tuple[int, ...] = ()  # (H, W) or (H, W, C) when X holds flattened pixels
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_clusters(self) -> int:
        return int(len(np.unique(self.y[self.y >= 0])))

    def images(self) -> np.ndarray:
        """Pixels as (N, C, H, W) float32 in [0, 1]; only for views of raw image pixels."""
        if not self.image_shape:
            raise EmbeddingError("this view holds features, not pixels: use a raw-pixel view")
        h, w = self.image_shape[:2]
        c = self.image_shape[2] if len(self.image_shape) == 3 else 1
        return self.X.reshape(len(self.X), h, w, c).transpose(0, 3, 1, 2)

    def save(self, path) -> None:
        io.write_npz(path, X=self.X, y=self.y, split=self.split, index=self.index,
                     image_shape=np.asarray(self.image_shape, dtype=np.int64),
                     meta=np.asarray(json.dumps(self.meta, sort_keys=True)))

    @classmethod
    def load(cls, path) -> "View":
        d = io.read_npz(path)
        return cls(d["X"], d["y"], d["split"], d["index"], tuple(int(v) for v in d["image_shape"]),
                   json.loads(str(d["meta"])))


def raw_pixels(arrays: DatasetArrays) -> tuple[np.ndarray, tuple[int, ...]]:
    """Flattened features; uint8 images scaled to [0, 1]."""
    x = arrays.X
    if x.dtype == np.uint8:
        shape = tuple(x.shape[1:])
        return (x.reshape(len(x), -1).astype(np.float32) / 255.0), shape
    return x.reshape(len(x), -1).astype(np.float32), ()


def _pca(x: np.ndarray, step: dict, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    n = int(step.get("n_components", 50))
    if n > min(x.shape):
        raise EmbeddingError(f"pca.n_components={n} exceeds min(n_samples, n_features)={min(x.shape)}")
    return PCA(n_components=n, random_state=seed).fit_transform(x).astype(np.float32)


def _umap(x: np.ndarray, step: dict, seed: int) -> np.ndarray:
    import umap

    allowed = {"backend", "n_components", "n_neighbors", "min_dist", "metric"}
    unknown = set(step) - allowed
    if unknown:
        raise EmbeddingError(f"umap: unknown option(s) {sorted(unknown)}; allowed: {sorted(allowed - {'backend'})}")
    reducer = umap.UMAP(n_components=int(step.get("n_components", 2)),
                        n_neighbors=int(step.get("n_neighbors", 15)),
                        min_dist=float(step.get("min_dist", 0.1)),
                        metric=str(step.get("metric", "euclidean")),
                        random_state=seed)  # a seed makes UMAP deterministic (single-threaded)
    return reducer.fit_transform(x).astype(np.float32)


def apply_steps(arrays: DatasetArrays, steps: Sequence[dict], seed: int = 0,
                device: str | None = None) -> tuple[np.ndarray, tuple[int, ...]]:
    """Run an embedding chain; returns features and the pixel shape (empty unless raw pixels)."""
    x, shape = None, ()
    for i, step in enumerate(steps):
        backend = step["backend"]
        if backend == "raw":
            if i != 0:
                raise EmbeddingError("'raw' can only be the first step of an embedding")
            x, shape = raw_pixels(arrays)
            continue
        if backend in ("dinov2", "vgg16"):
            if i != 0:
                raise EmbeddingError(f"'{backend}' reads images, so it must be the first step")
            from .pretrained import embed_images

            x, shape = embed_images(arrays, step, device=device), ()
            continue
        if x is None:
            x, _ = raw_pixels(arrays)
        if backend == "pca":
            x = _pca(x, step, seed)
        elif backend == "umap":
            x = _umap(x, step, seed)
        else:
            raise EmbeddingError(f"unknown embedding backend {backend!r}; allowed: raw, pca, umap, dinov2, vgg16")
        shape = ()
    assert x is not None
    return x, shape


def build_view(arrays: DatasetArrays, rows: np.ndarray, steps: Sequence[dict], seed: int = 0,
               device: str | None = None, meta: dict | None = None) -> View:
    subset = arrays.select(rows)
    x, shape = apply_steps(subset, steps, seed=seed, device=device)
    return View(np.ascontiguousarray(x, dtype=np.float32), subset.y, subset.split, rows.astype(np.int64),
                shape, dict(meta or {}))

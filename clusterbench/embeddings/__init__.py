"""Embed stage: turn a prepared dataset into the feature matrix ("view") that methods consume.

A view is a chain of steps (params.yaml ``embeddings.<name>``), e.g. ``[dinov2, umap]``. The
view file keeps the rows' labels, split and dataset indices next to the features, so every
later stage reads one file and never re-derives the subsample. Its ``meta`` also records, per
step, what was run (model, weights file and sha256, output layer, preprocessing): a view can be
traced back to the exact weights that made it.

Backends: ``raw``, ``pca``, ``umap`` (here), ``dinov2``, ``vgg16``, ``simclr`` (``pretrained``).
Options are validated by ``steps`` before any compute; docs/embeddings.md describes each one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .. import checks, io
from ..datasets import DatasetArrays
from .errors import EmbeddingError, MissingWeightsError, WeightsChecksumError
from .steps import IMAGE_BACKENDS, PcaStep, UmapStep, parse_step, step_errors

__all__ = ["EmbeddingError", "MissingWeightsError", "WeightsChecksumError", "View", "apply_steps",
           "build_view", "raw_pixels", "step_errors"]


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
    """Flattened features; uint8 images scaled to [0, 1] (and their pixel shape kept)."""
    x = arrays.X
    if x.dtype == np.uint8:
        shape = tuple(x.shape[1:])
        return (x.reshape(len(x), -1).astype(np.float32) / 255.0), shape
    return x.reshape(len(x), -1).astype(np.float32), ()


def _pca(x: np.ndarray, opts: PcaStep, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    n = opts.n_components
    if n > min(x.shape):
        raise EmbeddingError(f"pca.n_components={n} exceeds min(n_samples, n_features)={min(x.shape)}")
    return PCA(n_components=n, whiten=opts.whiten, random_state=seed).fit_transform(x).astype(np.float32)


def _umap(x: np.ndarray, opts: UmapStep, seed: int) -> np.ndarray:
    import umap

    if opts.n_components >= len(x) - 1:
        raise EmbeddingError(f"umap.n_components={opts.n_components} needs more than {opts.n_components + 1} "
                             f"rows; the view has {len(x)}")
    if opts.n_neighbors >= len(x):
        raise EmbeddingError(f"umap.n_neighbors={opts.n_neighbors} must be smaller than the number of rows ({len(x)})")
    # A seed makes UMAP deterministic and single-threaded; n_jobs=1 says so (else umap warns it overrode -1).
    reducer = umap.UMAP(n_components=opts.n_components, n_neighbors=opts.n_neighbors, min_dist=opts.min_dist,
                        metric=opts.metric, random_state=seed, n_jobs=1)
    return reducer.fit_transform(x).astype(np.float32)


def apply_steps(arrays: DatasetArrays, steps: Sequence[dict], seed: int = 0,
                device: str | None = None, provenance: list | None = None) -> tuple[np.ndarray, tuple[int, ...]]:
    """Run an embedding chain; returns features and the pixel shape (empty unless raw pixels).

    Every step is validated before the first one runs. ``provenance``, if given, receives one
    dict per step saying what ran (for pretrained backends: model, weights sha256, layer).
    """
    errors = step_errors(steps)
    if errors:
        raise EmbeddingError("; ".join(errors))
    if not steps:
        raise EmbeddingError("an embedding needs at least one step")
    x, shape = None, ()
    for i, step in enumerate(steps):
        opts = parse_step(step)
        record: dict = {"backend": opts.backend, **opts.model_dump(exclude={"backend"})}
        if opts.backend == "raw":
            x, shape = raw_pixels(arrays)
        elif opts.backend in IMAGE_BACKENDS:
            from .pretrained import embed_images

            info: list = []
            x, shape = embed_images(arrays, opts, device=device, provenance=info), ()
            record.update(info[0] if info else {})
        else:
            if x is None:
                x, _ = raw_pixels(arrays)
            x = _pca(x, opts, seed) if opts.backend == "pca" else _umap(x, opts, seed)
            shape = ()
            record["seed"] = seed
        record["output_dim"] = int(x.shape[1])
        if provenance is not None:
            provenance.append(record)
    assert x is not None
    return x, shape


def build_view(arrays: DatasetArrays, rows: np.ndarray, steps: Sequence[dict], seed: int = 0,
               device: str | None = None, meta: dict | None = None, name: str = "") -> View:
    """Embed the ``rows`` of ``arrays``; ``meta`` plus the chain's provenance go into View.meta.

    The output is checked (DataError naming view ``name``): an empty or non-finite view would
    only fail later, in faiss or scikit-learn, far from its cause.
    """
    label = f"view {name}" if name else "the view"
    if len(rows) == 0:
        raise checks.DataError(f"{label} selects no rows of its dataset ({len(arrays.X)} rows): check the "
                               "dataset and the profile's max_samples")
    subset = arrays.select(rows)
    bad = checks.nonfinite_rows(subset.X)  # scikit-learn / umap would stop on these with a traceback
    if len(bad):
        raise checks.DataError(f"{label}: its dataset has NaN or inf values in {len(bad)} of the {len(rows)} "
                               f"selected rows (first: dataset row {int(rows[bad[0]])}): repair the dataset or "
                               "drop those rows before embedding")
    provenance: list = []
    x, shape = apply_steps(subset, steps, seed=seed, device=device, provenance=provenance)
    x = np.ascontiguousarray(x, dtype=np.float32)
    checks.check_features(x, f"{label} (after its embedding steps)",
                          "check the embedding's steps and their settings (docs/embeddings.md)")
    return View(x, subset.y, subset.split, rows.astype(np.int64),
                shape, {**(meta or {}), "provenance": provenance})

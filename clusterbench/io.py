"""Atomic file output and the on-disk layout of pipeline artefacts.

Every stage writes through these helpers so that a crash never leaves a half-written file
where DVC (or the next stage) would take it for a finished one: content goes to a temporary
file in the same directory (for the entries of data/<profile>/runs, /views and /graphs, in
data/<profile>/.tmp: see temp_home) and is renamed into place only once complete.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


def umask() -> int:
    """The process umask. Read from /proc where it can be: os.umask only reads by also setting
    it, which would race with other threads creating files."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def normal_mode(path: str | os.PathLike, directory: bool = False) -> None:
    """Give a mkstemp/mkdtemp result (0600/0700) the mode open()/mkdir would have given it, so a
    shared DVC cache or another user can read the output."""
    os.chmod(path, (0o777 if directory else 0o666) & ~umask())


# Folders of data/<profile>/ that later stages read, and DVC hashes, as a whole (score, figures and
# the leaderboard depend on data/<profile>/runs and /views). A temporary left inside one by a
# SIGKILLed writer would change that hash, and would stay there when DVC restores the entry from
# its run-cache instead of running the stage that would clean it up.
HASHED_AS_A_WHOLE = ("runs", "views", "graphs")
SCRATCH = ".tmp"   # data/<profile>/.tmp: the temporaries of those folders' entries


def temp_home(path: str | os.PathLike) -> Path:
    """The folder the temporaries of ``path`` are made in: ``path``'s own folder, except for an
    entry of a folder in HASHED_AS_A_WHOLE, whose temporaries go to ``<that folder>/../.tmp``
    (outside every DVC output and dependency) when it is on the same file system (os.replace)."""
    path = Path(path)
    if path.parent.name not in HASHED_AS_A_WHOLE:
        return path.parent
    scratch = path.parent.parent / SCRATCH
    try:
        scratch.mkdir(exist_ok=True)
        if os.stat(scratch).st_dev == os.stat(path.parent).st_dev:
            return scratch
    except OSError:
        pass
    return path.parent


def remove_stale_parts(path: str | os.PathLike) -> None:
    """Remove what a killed writer of ``path`` left, beside it or in its temp_home:
    ``.<name>.XXXX.part`` and ``.<name>.old``.

    Only the exact temporary names of ``path`` are matched (mkstemp's suffix has no dot), so the
    temporaries of ``<name>.json`` survive a write of ``<name>``.
    """
    path = Path(path)
    stale = re.compile(re.escape(f".{path.name}.") + r"[A-Za-z0-9_]+" + re.escape(".part"))
    for folder in dict.fromkeys([path.parent, temp_home(path)]):
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            if stale.fullmatch(entry.name) or entry.name == f".{path.name}.old":
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path (in temp_home(path)); rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=temp_home(path))
    os.close(fd)
    tmp_path = Path(tmp)
    normal_mode(tmp_path)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory (in temp_home(path)); it replaces ``path`` as a whole only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(path)
    home = temp_home(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=home))
    normal_mode(tmp, directory=True)
    try:
        yield tmp
        if path.exists():
            old = home / f".{path.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_npz(path: str | os.PathLike, **arrays: Any) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def file_hash(path: str | os.PathLike, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def features_sha256(x: Any) -> str:
    """Content hash of a feature matrix: dtype, shape and its bytes in C order.

    A kNN graph records it for the view it was built from, so a run can tell a graph of stale
    or other features from the graph of its view (row counts alone cannot). sha256 runs at about
    1 GB/s: a 70,000 x 784 float32 view (220 MB) takes ~0.2 s, no copy when ``x`` is contiguous.
    """
    x = np.ascontiguousarray(x)
    h = hashlib.sha256(f"{x.dtype.str} {tuple(x.shape)}\n".encode())
    h.update(x.reshape(-1).view(np.uint8))
    return h.hexdigest()


def npz_member_sha256(path: str | os.PathLike, key: str = "X") -> str:
    """features_sha256 of the array ``key`` stored in an .npz, streamed from the archive: the
    array is never held whole (a run whose graph is of another view hashes that view this way)."""
    with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as fh:
        version = np.lib.format.read_magic(fh)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version in readers:
            shape, fortran_order, dtype = readers[version](fh)
            if not fortran_order and not dtype.hasobject:  # the stored bytes are the C-order bytes
                h = hashlib.sha256(f"{dtype.str} {tuple(shape)}\n".encode())
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
                return h.hexdigest()
    with np.load(path, allow_pickle=False) as data:  # rare layouts: load the member and hash it
        return features_sha256(data[key])


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


# --- artefact layout -------------------------------------------------------------------------
# One place that knows where each stage reads and writes, so stage scripts and dvc.yaml agree.

DATA = Path("data")
REPORTS = Path("reports")


def dataset_dir(name: str) -> Path:
    return DATA / "datasets" / name


def view_path(profile: str, view: str) -> Path:
    return DATA / profile / "views" / f"{view}.npz"


def graph_path(profile: str, view: str) -> Path:
    return DATA / profile / "graphs" / f"{view}.npz"


def run_dir(profile: str, run: str) -> Path:
    return DATA / profile / "runs" / run


def checkpoint_dir(profile: str, run: str, seed: int) -> Path:
    """Resumable training state of one seed of a run: beside, not inside, its output folder
    (DVC removes a stage's outputs before it runs, and a failed run's output folder is discarded)."""
    return DATA / profile / "checkpoints" / run / f"seed-{seed}"


def checkpoint_dir_of(workdir: str | os.PathLike) -> Path:
    """checkpoint_dir of the run whose seed folder is ``workdir``: ``<data>/<profile>/runs/<run>/seed-<s>``
    or its atomic_dir temporary ``<data>/<profile>/.tmp/.<run>.XXXX.part/seed-<s>`` (``runs/.<run>.XXXX.part``
    before temporaries moved out of runs/) -> ``<data>/<profile>/checkpoints/<run>/seed-<s>``.
    A workdir outside a runs folder keeps its checkpoints inside itself."""
    workdir = Path(workdir)
    run_folder, runs = workdir.parent, workdir.parent.parent
    if runs.name == SCRATCH and run_folder.name.endswith(".part"):
        runs = runs.parent / "runs"
    if runs.name != "runs":
        return workdir / "state"
    temporary = re.fullmatch(r"\.(?P<run>.+)\.[A-Za-z0-9_]+\.part", run_folder.name)
    run = temporary.group("run") if temporary else run_folder.name
    return runs.parent / "checkpoints" / run / workdir.name


"""What a dataset is, and how its source files are found, downloaded and verified.

A dataset is described once (``DatasetSpec``): where its files come from, their published
checksums, how to parse them into arrays, and which split a paper used. ``Fetcher`` gets each
file from the first place that has it: a mirror directory (``data.mirrors`` in params.yaml,
the ``CLUSTERBENCH_MIRROR`` environment variable, /usr/share/datasets), the local download
cache, then the canonical URLs. Every file is verified before use; downloads are written to a
temporary file and renamed only when complete and verified.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

DEFAULT_MIRRORS = ("/usr/share/datasets",)
MIRROR_ENV = "CLUSTERBENCH_MIRROR"
CACHE_ENV = "CLUSTERBENCH_DOWNLOADS"
SPLIT_TRAIN, SPLIT_TEST = 0, 1


class DatasetError(RuntimeError):
    """A dataset cannot be obtained; the message says what to do."""


class ChecksumError(DatasetError):
    def __init__(self, path: Path, algorithm: str, expected: str, actual: str):
        self.path, self.expected, self.actual = path, expected, actual
        super().__init__(f"checksum mismatch for {path}: expected {algorithm} {expected}, "
                         f"got {actual}. The file is corrupt or not the published one; "
                         "delete it and run the download stage again.")


@dataclass(frozen=True)
class RemoteFile:
    """One published source file and the hashes that identify it.

    ``payload_md5`` is the MD5 of the gunzipped content: mirrors that re-compress a file
    (Debian re-gzipped Fashion-MNIST) change the archive's hash but not the payload's.
    """

    filename: str
    urls: tuple[str, ...] = ()
    md5: str | None = None
    sha256: str | None = None
    payload_md5: str | None = None
    mirror_subdirs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (self.md5 or self.sha256 or self.payload_md5):
            raise ValueError(f"{self.filename}: a RemoteFile needs at least one checksum")


@dataclass
class DatasetArrays:
    """A parsed dataset: images (N,H,W[,C]) uint8 or vectors (N,D) float32, labels, split."""

    X: np.ndarray
    y: np.ndarray
    split: np.ndarray
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=np.int64)
        self.split = np.asarray(self.split, dtype=np.uint8)
        n = len(self.X)
        if len(self.y) != n or len(self.split) != n:
            raise ValueError(f"X, y and split disagree in length: {n}, {len(self.y)}, {len(self.split)}")

    @property
    def n_classes(self) -> int:
        return int(len(np.unique(self.y[self.y >= 0])))

    def select(self, mask_or_index: np.ndarray) -> "DatasetArrays":
        return DatasetArrays(self.X[mask_or_index], self.y[mask_or_index],
                             self.split[mask_or_index], list(self.class_names))


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the project knows about one dataset, as one paper (or more) used it."""

    name: str
    description: str
    n_samples: int
    n_classes: int
    split: str  # which official split(s) the dataset denotes: "train", "test" or "train+test"
    modality: str  # "image", "vector" or "text"
    files: tuple[RemoteFile, ...]
    build: Callable[[Mapping[str, Path]], DatasetArrays]
    homepage: str = ""
    citation: str = ""
    # Datasets assembled from a user's own copy (ImageNet) name the params key / env var here.
    local_dir_env: str | None = None
    how_to_get: str = ""


def _hash_file(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _payload_md5(path: Path) -> str | None:
    try:
        h = hashlib.md5()
        with gzip.open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    except (OSError, EOFError):
        return None


def verify(path: Path, rf: RemoteFile) -> None:
    """Raise ChecksumError unless ``path`` is the published file (or its re-compressed payload)."""
    for algorithm in ("sha256", "md5"):
        expected = getattr(rf, algorithm)
        if expected is None:
            continue
        actual = _hash_file(path, algorithm)
        if actual == expected:
            return
        if rf.payload_md5 and _payload_md5(path) == rf.payload_md5:
            return
        raise ChecksumError(path, algorithm, expected, actual)
    # Only a payload hash was published.
    actual = _payload_md5(path) or "not a gzip file"
    if actual != rf.payload_md5:
        raise ChecksumError(path, "md5 of the decompressed payload", rf.payload_md5, actual)


def mirror_dirs(extra: Sequence[str | os.PathLike] = ()) -> list[Path]:
    """Mirror directories in search order: params, the environment variable, system defaults."""
    dirs: list[Path] = [Path(d).expanduser() for d in extra]
    env = os.environ.get(MIRROR_ENV, "")
    dirs += [Path(d).expanduser() for d in env.split(os.pathsep) if d]
    dirs += [Path(d) for d in DEFAULT_MIRRORS]
    seen, out = set(), []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


class Fetcher:
    """Finds, downloads and verifies source files. ``offline`` forbids network access."""

    def __init__(self, mirrors: Sequence[str | os.PathLike] = (), cache_dir: str | os.PathLike | None = None,
                 offline: bool = False, retries: int = 3, timeout: float = 60.0,
                 progress: bool = True):
        self.mirrors = mirror_dirs(mirrors)
        self.cache_dir = Path(cache_dir or os.environ.get(CACHE_ENV) or "data/downloads")
        self.offline = offline
        self.retries = retries
        self.timeout = timeout
        self.progress = progress

    def locate_in_mirrors(self, rf: RemoteFile) -> Path | None:
        for mirror in self.mirrors:
            for sub in rf.mirror_subdirs or ("",):
                candidate = mirror / sub / rf.filename
                if candidate.is_file():
                    return candidate
        return None

    def get(self, rf: RemoteFile) -> Path:
        found = self.locate_in_mirrors(rf)
        if found is not None:
            verify(found, rf)
            return found
        cached = self.cache_dir / rf.filename
        if cached.is_file():
            verify(cached, rf)
            return cached
        if self.offline or not rf.urls:
            looked = ", ".join(str(m / (rf.mirror_subdirs[0] if rf.mirror_subdirs else "")) for m in self.mirrors)
            raise DatasetError(
                f"{rf.filename} is not in any mirror ({looked}) nor in {self.cache_dir}, and "
                + ("downloads are disabled (offline)." if self.offline else "it has no download URL.")
                + f" Put the file in a mirror directory (set {MIRROR_ENV} or data.mirrors in params.yaml)"
                + (f" or allow downloads from {rf.urls[0]}." if rf.urls else "."))
        return self._download(rf, cached)

    def _download(self, rf: RemoteFile, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        errors = []
        for url in rf.urls:
            for attempt in range(1, self.retries + 1):
                part = dest.with_name(dest.name + ".part")
                try:
                    self._stream(url, part)
                    verify(part, rf)
                    os.replace(part, dest)
                    return dest
                except ChecksumError:
                    part.unlink(missing_ok=True)
                    raise
                except (urllib.error.URLError, OSError, TimeoutError) as exc:
                    part.unlink(missing_ok=True)
                    errors.append(f"{url} (try {attempt}): {exc}")
                    if attempt < self.retries:
                        time.sleep(min(2 ** attempt, 30) * 0.5)
        raise DatasetError(f"could not download {rf.filename}:\n  " + "\n  ".join(errors))

    def _stream(self, url: str, part: Path) -> None:
        from tqdm import tqdm

        request = urllib.request.Request(url, headers={"User-Agent": "clusterbench/0.1"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=Path(url).name,
                      disable=not self.progress, leave=False) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))


"""What a dataset is, and how its source files are found, downloaded and verified.

A dataset is described once (``DatasetSpec``): where its files come from, their published
checksums, how to parse them into arrays, and which split a paper used. ``Fetcher`` gets each
file from the first place that has it:

1. a mirror directory (``data.mirrors`` in params.yaml, then the ``CLUSTERBENCH_MIRROR``
   environment variable, then /usr/share/datasets), under any of the file's ``mirror_subdirs``;
2. the local download cache (``CLUSTERBENCH_DOWNLOADS``, default ``data/downloads``);
3. the canonical URLs, in order, with retries and a progress bar;
4. for a file that is made from other published files (``Derivation``), those files.

Every file is verified before use (``verify``). Downloads and conversions are written to a
temporary file next to their destination and renamed only once complete and verified, so an
interrupted run never leaves a half file under the final name. A checksum mismatch stops with
an error naming the file, the expected and the actual hash.
"""
from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import http.client
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .. import io

DEFAULT_MIRRORS = ("/usr/share/datasets",)
MIRROR_ENV = "CLUSTERBENCH_MIRROR"
CACHE_ENV = "CLUSTERBENCH_DOWNLOADS"
DEFAULT_CACHE = "data/downloads"
# Split codes of DatasetArrays.split. Official validation splits (Flowers-102) and unlabelled
# pools (STL-10) get their own codes so that "train" and "test" keep their official meaning.
SPLIT_TRAIN, SPLIT_TEST, SPLIT_VAL, SPLIT_UNLABELED = 0, 1, 2, 3
SPLIT_NAMES = {SPLIT_TRAIN: "train", SPLIT_TEST: "test", SPLIT_VAL: "val", SPLIT_UNLABELED: "unlabeled"}
# Whole-file hash algorithms a RemoteFile may pin, strongest first.
HASH_ALGORITHMS = ("sha512", "sha256", "sha1", "md5")


class DatasetError(RuntimeError):
    """A dataset cannot be obtained; the message says what to do."""


class ChecksumError(DatasetError):
    """A file is not the published one. ``source`` says where it came from (path or URL)."""

    def __init__(self, filename: str, source: str, algorithm: str, expected: str, actual: str,
                 advice: str = "delete it and run the download stage again"):
        self.filename, self.source, self.algorithm = filename, source, algorithm
        self.expected, self.actual = expected, actual
        super().__init__(f"checksum mismatch for {filename} (from {source}): expected {algorithm} {expected}, "
                         f"got {actual}. The file is corrupt or not the published one; {advice}.")


class IncompleteDownload(OSError):
    """The server closed the connection before sending the announced number of bytes."""


@dataclass(frozen=True)
class Derivation:
    """How to make a file from other published files when no mirror or URL has it.

    ``convert(sources, out)`` writes the file to ``out``; ``sources`` maps each source's
    filename to its verified local path. The result is verified like a download.
    """

    sources: tuple["RemoteFile", ...]
    convert: Callable[[Mapping[str, Path], Path], None]
    description: str


@dataclass(frozen=True)
class RemoteFile:
    """One published source file and the hashes that identify it.

    ``payload_md5`` is the MD5 of the gunzipped content: mirrors that re-compress a file
    (Debian re-gzipped Fashion-MNIST) change the archive's hash but not the payload's; a
    mirror may also hold the payload itself, uncompressed, under the name without ``.gz``.
    ``unpinned`` explains why a file has no published checksum (then the dataset's builder
    checks its content, e.g. document counts, and the manifest records the file's sha256).
    """

    filename: str
    urls: tuple[str, ...] = ()
    md5: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    sha512: str | None = None
    payload_md5: str | None = None
    mirror_subdirs: tuple[str, ...] = ()
    derive: Derivation | None = None
    unpinned: str | None = None
    # Unpinned files only: record size + sha256 of the first verified copy (``<cache>/<file>.pin.json``)
    # and refuse any later copy that differs (trust on first download).
    pin_first: bool = False

    def __post_init__(self) -> None:
        if not (self.checksums() or self.payload_md5 or self.unpinned):
            raise ValueError(f"{self.filename}: a RemoteFile needs a checksum (or an `unpinned` reason)")
        for algorithm, value in self.checksums().items():
            if len(value) != hashlib.new(algorithm).digest_size * 2:
                raise ValueError(f"{self.filename}: {algorithm} {value!r} has the wrong length")

    def checksums(self) -> dict[str, str]:
        """Published whole-file hashes, strongest first."""
        return {a: getattr(self, a).lower() for a in HASH_ALGORITHMS if getattr(self, a)}

    def checksum_kind(self) -> str:
        kinds = list(self.checksums())
        if self.payload_md5:
            kinds.append("payload md5")
        return " + ".join(kinds) if kinds else "none published"


@dataclass(frozen=True)
class LocalSource:
    """A dataset assembled from the user's own copy of a collection (ImageNet)."""

    key: str  # the name under which the builder receives the folder, and the Fetcher's local_dirs key
    param: str  # the params.yaml key that names the folder
    env: str  # the environment variable that may name it instead
    layout: str  # what the folder must contain, for error messages and docs


@dataclass
class DatasetArrays:
    """A parsed dataset: images (N,H,W[,C]) uint8 or vectors (N,D) float32, labels, split.

    ``info`` goes into the manifest (recipe details, counts); ``extra_files`` are written next
    to arrays.npz (e.g. the list of source images with their hashes).
    """

    X: np.ndarray
    y: np.ndarray
    split: np.ndarray
    class_names: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    extra_files: dict[str, str] = field(default_factory=dict)

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
    split: str  # which official split(s) the dataset denotes: "train", "test", "train+test", "all"
    modality: str  # "image", "vector" or "text"
    files: tuple[RemoteFile, ...]
    build: Callable[[Mapping[str, Path]], DatasetArrays]
    homepage: str = ""
    citation: str = ""
    local_source: LocalSource | None = None
    how_to_get: str = ""
    # Values the builder must report in DatasetArrays.info for the published files (e.g. the
    # number of RCV1 documents): a content check for files without a published checksum.
    expected_info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.how_to_get:
            object.__setattr__(self, "how_to_get", default_how_to_get(self))


def default_how_to_get(spec: DatasetSpec) -> str:
    """The sentence a user reads when a dataset is missing."""
    if not spec.files and spec.local_source is None:
        return "nothing to download (bundled with an installed package)"
    parts = []
    if spec.local_source is not None:
        src = spec.local_source
        parts.append(f"set {src.param} in params.yaml (or ${src.env}) to your local copy; {src.layout}")
    if spec.files:
        urls = [rf.urls[0] for rf in spec.files if rf.urls]
        if urls:
            parts.append("downloaded automatically (unless data.offline is true) from " + ", ".join(urls))
        sub = next((rf.mirror_subdirs[0] for rf in spec.files if rf.mirror_subdirs), "")
        names = ", ".join(rf.filename for rf in spec.files)
        parts.append(f"or put {names} into <mirror>/{sub + '/' if sub else ''} "
                     f"(mirrors: data.mirrors in params.yaml, ${MIRROR_ENV}, /usr/share/datasets)")
    return "; ".join(parts)


# --- hashing and verification ------------------------------------------------------------------

def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def hash_file(path: Path, algorithms: Iterable[str]) -> dict[str, str]:
    """Several hashes of one file in a single read."""
    hashes = {a: hashlib.new(a) for a in dict.fromkeys(algorithms)}
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            for h in hashes.values():
                h.update(block)
    return {a: h.hexdigest() for a, h in hashes.items()}


def _gzip_members(fh, h) -> int:
    """Feed the decompressed content of every gzip member in ``fh`` to ``h``; return the number of
    bytes after the last member. (Python's gzip module silently skips zero bytes there, so a
    zero-padded copy would pass a payload check.)"""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    buf = b""
    while True:
        if not buf:
            buf = fh.read(1 << 20)
            if not buf:
                if not d.eof:
                    raise EOFError("compressed file ended before the end-of-stream marker was reached")
                return 0
        if d.eof:   # between members: another member, or bytes that belong to none
            while len(buf) < 2 and (more := fh.read(1 << 20)):
                buf += more
            if buf[:2] != b"\x1f\x8b":
                return len(buf) + sum(len(b) for b in iter(lambda: fh.read(1 << 20), b""))
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        h.update(d.decompress(buf))
        buf = d.unused_data


def payload(path: Path) -> tuple[str, int]:
    """(MD5 of a gzip file's decompressed content, or of the file itself if it is not gzip;
    the number of bytes after its last gzip member). The MD5 is ``unreadable (...)`` for a
    broken file."""
    h = hashlib.md5()
    try:
        with open(path, "rb") as fh:
            if _is_gzip(path):
                trailing = _gzip_members(fh, h)
            else:
                trailing = 0
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    except (OSError, EOFError, zlib.error) as exc:
        return f"unreadable ({exc})", 0
    return h.hexdigest(), trailing


def payload_md5(path: Path) -> str:
    """MD5 of a gzip file's decompressed content, or of the file itself if it is not gzip."""
    return payload(path)[0]


# How verify_detail accepted a file; the manifest marks the payload route (clusterbench.datasets.prepare).
BY_PAYLOAD = "payload md5"


def verify_detail(path: Path, rf: RemoteFile, source: str | None = None,
                  advice: str = "delete it and run the download stage again") -> tuple[str, str]:
    """Raise ChecksumError unless ``path`` is the published file; return (its sha256, what it was
    checked against: the published whole-file hashes, BY_PAYLOAD, or "none published").

    Accepted: every published whole-file hash matches, or the decompressed payload matches
    ``payload_md5`` (a re-compressed or uncompressed copy of the same content) and nothing
    follows the gzip data: the whole-file hash of a padded copy does not match, and its size is
    not the publisher's, so padding is refused rather than read past.
    """
    path = Path(path)
    source = source or str(path)
    published = rf.checksums()
    actual = hash_file(path, list(published) + ["sha256"])
    mismatched = [a for a, v in published.items() if actual[a] != v]
    if published and not mismatched:
        return actual["sha256"], " + ".join(published)
    if rf.payload_md5:
        got, trailing = payload(path)
        if got == rf.payload_md5 and trailing:
            extra = (f"{trailing} bytes follow the end of its gzip data (padding, or another file appended): "
                     f"its payload matches but the file is not the published one, so it is refused; {advice}")
            if published:
                algorithm = mismatched[0]
                raise ChecksumError(rf.filename, source, algorithm, published[algorithm], actual[algorithm], extra)
            raise ChecksumError(rf.filename, source, "bytes after the gzip data:", "0", str(trailing), extra)
        if got == rf.payload_md5:
            return actual["sha256"], BY_PAYLOAD
        if not published:
            raise ChecksumError(rf.filename, source, "md5 of the decompressed payload", rf.payload_md5, got, advice)
    if not published:  # unpinned: nothing to compare; the builder checks the content
        return actual["sha256"], "none published"
    algorithm = mismatched[0]
    raise ChecksumError(rf.filename, source, algorithm, published[algorithm], actual[algorithm], advice)


def verify(path: Path, rf: RemoteFile, source: str | None = None,
           advice: str = "delete it and run the download stage again") -> str:
    """verify_detail's sha256 (see there for what is accepted)."""
    return verify_detail(path, rf, source, advice)[0]


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


# --- progress for long builders ------------------------------------------------------------------

_PROGRESS = {"enabled": True}


def progress(iterable: Iterable, total: int | None = None, desc: str = "", unit: str = "it"):
    """A tqdm bar that honours the Fetcher's ``progress`` flag (builders have no ctx)."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False,
                disable=not _PROGRESS["enabled"], file=sys.stderr)


# --- the fetcher ---------------------------------------------------------------------------------

@dataclass
class Fetched:
    """Where a verified file came from (logged by ``prepare``; the manifest keeps only its hash)."""

    path: Path
    origin: str  # "mirror", "cache", "download <url>", "derived from <files>"
    sha256: str
    inputs: dict[str, str] = field(default_factory=dict)  # derived files: source filename -> sha256
    verified_by: str = ""   # what the file matched (verify_detail): published hashes, BY_PAYLOAD, ...


class Fetcher:
    """Finds, downloads and verifies source files. ``offline`` forbids network access.

    ``local_dirs`` maps a LocalSource key (e.g. ``"imagenet"``) to the user's folder; an unset
    entry falls back to the LocalSource's environment variable.
    """

    def __init__(self, mirrors: Sequence[str | os.PathLike] = (), cache_dir: str | os.PathLike | None = None,
                 offline: bool = False, retries: int = 3, timeout: float = 60.0, progress: bool = True,
                 local_dirs: Mapping[str, str | os.PathLike | None] | None = None, backoff: float = 1.0):
        self.mirrors = mirror_dirs(mirrors)
        self.cache_dir = Path(cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
        self.offline = offline
        self.retries = max(1, retries)
        self.timeout = timeout
        self.progress = progress
        self.local_dirs = dict(local_dirs or {})
        self.backoff = backoff
        self.fetched: dict[str, Fetched] = {}

    # where a file may already be
    def candidates(self, rf: RemoteFile) -> list[Path]:
        names = [rf.filename]
        if rf.payload_md5 and rf.filename.endswith(".gz"):
            names.append(rf.filename[:-3])  # the uncompressed payload
        return [mirror / sub / name for mirror in self.mirrors for sub in (rf.mirror_subdirs or ("",))
                for name in names]

    def locate_in_mirrors(self, rf: RemoteFile) -> Path | None:
        return next((c for c in self.candidates(rf) if c.is_file()), None)

    def get(self, rf: RemoteFile) -> Path:
        """A verified local path of ``rf``; raises DatasetError saying how to get it."""
        found = self.locate_in_mirrors(rf)
        if found is not None:
            advice = "replace the mirror's copy by the published file, or remove it to download a fresh one"
            return self._record(rf, found, "mirror", *verify_detail(found, rf, advice=advice))
        cached = self.cache_dir / rf.filename
        if cached.is_file():
            return self._record(rf, cached, "cache", *verify_detail(cached, rf))
        if rf.urls and not self.offline:
            path, (sha, how), url = self._download(rf, cached)
            return self._record(rf, path, f"download {url}", sha, how)
        if rf.derive is not None:
            return self._derive(rf, cached)
        raise DatasetError(self._missing_message(rf))

    def local_dir(self, source: LocalSource) -> Path:
        """The user's folder for a LocalSource, or a DatasetError that says what to set."""
        value = self.local_dirs.get(source.key) or os.environ.get(source.env)
        if not value:
            raise DatasetError(f"no local copy configured: set {source.param} in params.yaml or the "
                               f"environment variable {source.env}. {source.layout}")
        path = Path(value).expanduser()
        if not path.is_dir():
            raise DatasetError(f"{source.param} / {source.env} points at {path}, which is not a folder. "
                               f"{source.layout}")
        return path

    def pin_path(self, rf: RemoteFile) -> Path:
        return self.cache_dir / f"{rf.filename}.pin.json"

    def check_pin(self, rf: RemoteFile, path: Path, sha256: str) -> dict | None:
        """``pin_first`` files: the first verified copy's size and sha256 are recorded; a later copy
        that differs is refused (ChecksumError, one line). Returns the record."""
        if not rf.pin_first:
            return None
        size = Path(path).stat().st_size
        pin = self.pin_path(rf)
        if pin.is_file():
            rec = json.loads(pin.read_text())
            if rec.get("sha256") != sha256 or rec.get("size") != size:
                raise ChecksumError(rf.filename, str(path), "sha256 recorded on first download",
                                    f"{rec.get('sha256')} ({rec.get('size')} bytes)", f"{sha256} ({size} bytes)",
                                    f"the publisher changed the file or the copy is corrupt; if the new file is "
                                    f"wanted, delete {pin} and run the download stage again")
            return rec
        rec = {"file": rf.filename, "size": size, "sha256": sha256, "recorded": "first verified copy"}
        pin.parent.mkdir(parents=True, exist_ok=True)
        pin.write_text(json.dumps(rec, indent=1, sort_keys=True) + "\n")
        return rec

    def _record(self, rf: RemoteFile, path: Path, origin: str, sha256: str, verified_by: str = "",
                inputs: dict[str, str] | None = None) -> Path:
        self.check_pin(rf, path, sha256)
        if not rf.checksums() and not rf.payload_md5:
            print(f"warning: {rf.filename} has no published checksum ({rf.unpinned}); its sha256 is "
                  f"{sha256} (recorded in the manifest)", file=sys.stderr)
        self.fetched[rf.filename] = Fetched(path, origin, sha256, dict(inputs or {}), verified_by)
        return path

    def _missing_message(self, rf: RemoteFile) -> str:
        looked = ", ".join(dict.fromkeys(str(c.parent) for c in self.candidates(rf))) or "(no mirror configured)"
        why = ("downloads are disabled (data.offline: true)" if self.offline and rf.urls
               else "it has no download URL")
        hint = f" or allow downloads from {rf.urls[0]}" if rf.urls and self.offline else ""
        return (f"{rf.filename} is not in any mirror ({looked}) nor in the download cache {self.cache_dir}, and "
                f"{why}. Put the file into a mirror directory (data.mirrors in params.yaml or ${MIRROR_ENV})"
                f"{hint}.")

    def _derive(self, rf: RemoteFile, dest: Path) -> Path:
        deriv = rf.derive
        try:
            sources = {s.filename: self.get(s) for s in deriv.sources}
        except DatasetError as exc:
            raise DatasetError(f"{self._missing_message(rf)} It can also be made from "
                               f"{', '.join(s.filename for s in deriv.sources)} ({deriv.description}), "
                               f"but: {exc}") from exc
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_next_to(dest)
        try:
            deriv.convert(sources, tmp)
            sha, how = verify_detail(tmp, rf, source=f"conversion of {', '.join(sources)}",
                                     advice="nothing was kept; the conversion does not reproduce the published file")
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        inputs = {name: self.fetched[name].sha256 for name in sources if name in self.fetched}
        return self._record(rf, dest, f"derived from {', '.join(sources)}", sha, how, inputs)

    def _download(self, rf: RemoteFile, dest: Path) -> tuple[Path, tuple[str, str], str]:
        """Try each URL (with retries for transient errors); the first verified copy wins."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        errors: list[str] = []
        mismatch: ChecksumError | None = None
        for url in rf.urls:
            for attempt in range(1, self.retries + 1):
                tmp = _temp_next_to(dest)
                try:
                    self._stream(url, tmp)
                    checked = verify_detail(tmp, rf, source=url, advice="nothing was kept; if every URL serves "
                                            "this file, the publisher changed it and the registry's checksum needs review")
                    os.replace(tmp, dest)
                    return dest, checked, url
                except ChecksumError as exc:
                    mismatch = exc  # a wrong file will not get right by retrying: next URL
                    errors.append(f"{url}: {exc}")
                    break
                except urllib.error.HTTPError as exc:
                    errors.append(f"{url} (try {attempt}): HTTP {exc.code} {exc.reason}")
                    if 400 <= exc.code < 500 and exc.code not in (408, 429):
                        break  # not found / forbidden: retrying will not help
                except (urllib.error.URLError, OSError, http.client.HTTPException, TimeoutError) as exc:
                    errors.append(f"{url} (try {attempt}): {exc}")
                finally:
                    tmp.unlink(missing_ok=True)
                if attempt < self.retries:
                    time.sleep(min(2 ** (attempt - 1), 30) * self.backoff)
        if mismatch is not None and len(errors) == 1:
            raise mismatch
        if mismatch is not None:
            raise ChecksumError(rf.filename, ", ".join(rf.urls), mismatch.algorithm, mismatch.expected,
                                mismatch.actual, advice="no URL served the published file:\n  "
                                + "\n  ".join(errors))
        raise DatasetError(f"could not download {rf.filename}:\n  " + "\n  ".join(errors))

    def _stream(self, url: str, part: Path) -> None:
        from tqdm import tqdm

        request = urllib.request.Request(url, headers={"User-Agent": "clusterbench/0.1"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            received = 0
            with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
                      disable=not self.progress, leave=False, file=sys.stderr) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
            if total is not None and received != total:
                raise IncompleteDownload(f"received {received} of {total} bytes")


def _temp_next_to(dest: Path) -> Path:
    """A fresh temporary file in ``dest``'s folder (same file system, so os.replace is atomic).

    What a killed download of ``dest`` left there is removed first; the file gets ordinary
    permissions (mkstemp makes 0600).
    """
    io.remove_stale_parts(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    io.normal_mode(tmp)
    return Path(tmp)


def open_compressed(path: Path, mode: str = "rb"):
    """Open a plain, gzip or bzip2 file by its magic bytes (mirrors may re-compress)."""
    with open(path, "rb") as fh:
        magic = fh.read(3)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, mode)
    if magic == b"BZh":
        return bz2.open(path, mode)
    return open(path, mode)

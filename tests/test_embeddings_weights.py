"""Weights cache: lookup order, downloads (from a local HTTP server), published-hash and
trust-on-first-use verification, and the single missing-weights error."""
from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest

from clusterbench.embeddings import weights
from clusterbench.embeddings.errors import MissingWeightsError, WeightsChecksumError

PAYLOAD = b"PK\x03\x04" + bytes(range(256)) * 64  # looks like a torch zip checkpoint
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("CLUSTERBENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("CLUSTERBENCH_OFFLINE", raising=False)


@pytest.fixture
def server():
    """A local HTTP server; ``routes[path] = (content_type, body)``."""
    routes: dict[str, tuple[str, bytes]] = {}
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            key = self.path.split("?")[0]
            if key not in routes:
                self.send_response(404)
                self.end_headers()
                return
            ctype, body = routes[key]
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield base, routes, hits
    httpd.shutdown()
    httpd.server_close()


def wfile(base: str, **kw) -> weights.WeightsFile:
    return weights.WeightsFile(model="Toy net", filename="toy.pth", urls=(f"{base}/toy.pth",), **kw)


def test_search_order_honours_clusterbench_weights_then_torch_home(tmp_path):
    assert weights.search_dirs() == [tmp_path / "weights", tmp_path / "torch-home" / "hub" / "checkpoints"]


def test_download_records_sha256_and_later_loads_verify_without_network(server, tmp_path):
    base, routes, hits = server
    routes["/toy.pth"] = ("application/octet-stream", PAYLOAD)
    path, digest = weights.locate(wfile(base))
    assert path == tmp_path / "weights" / "toy.pth" and path.read_bytes() == PAYLOAD and digest == DIGEST
    lock = json.loads((path.parent / weights.LOCK_NAME).read_text())
    assert lock["toy.pth"]["sha256"] == DIGEST and lock["toy.pth"]["source"] == f"{base}/toy.pth"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part")]
    routes.clear()
    assert weights.locate(wfile(base)) == (path, DIGEST)  # from the cache
    assert len(hits) == 1


def test_a_file_changed_after_first_use_is_refused(server):
    base, routes, _ = server
    routes["/toy.pth"] = ("application/octet-stream", PAYLOAD)
    path, _ = weights.locate(wfile(base))
    path.write_bytes(PAYLOAD[:-1] + b"\x00")
    with pytest.raises(WeightsChecksumError, match="was recorded when toy.pth was first seen"):
        weights.locate(wfile(base))


def test_upstream_replacement_is_detected_on_redownload(server):
    base, routes, _ = server
    routes["/toy.pth"] = ("application/octet-stream", PAYLOAD)
    path, _ = weights.locate(wfile(base))
    path.unlink()  # the lock entry stays
    routes["/toy.pth"] = ("application/octet-stream", PAYLOAD + b"changed")
    with pytest.raises(WeightsChecksumError, match="the download from .* has sha256"):
        weights.locate(wfile(base))
    assert not path.exists()


def test_published_hash_prefix_is_enforced(server):
    base, routes, _ = server
    routes["/toy.pth"] = ("application/octet-stream", PAYLOAD)
    assert weights.locate(wfile(base, sha256_prefix=DIGEST[:8]))[1] == DIGEST
    with pytest.raises(WeightsChecksumError, match="does not start with the published prefix 00000000"):
        weights.verify(weights.search_dirs()[0] / "toy.pth", wfile(base, sha256_prefix="00000000"))


def test_a_file_found_in_the_torch_hub_cache_is_used_and_recorded(tmp_path):
    hub = tmp_path / "torch-home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "toy.pth").write_bytes(PAYLOAD)
    path, digest = weights.locate(wfile("http://127.0.0.1:9"))
    assert path == hub / "toy.pth" and digest == DIGEST
    assert json.loads((hub / weights.LOCK_NAME).read_text())["toy.pth"]["source"] == "found in cache"


def test_a_web_page_instead_of_the_file_is_a_missing_weights_error(server, tmp_path):
    base, routes, _ = server
    routes["/toy.pth"] = ("text/html; charset=utf-8", b"<!DOCTYPE html><html>quota exceeded</html>")
    with pytest.raises(MissingWeightsError, match="web page instead of the file"):
        weights.locate(wfile(base))
    assert not (tmp_path / "weights" / "toy.pth").exists()


def test_google_drive_confirmation_form_is_followed(server):
    base, routes, hits = server
    form = (f'<!DOCTYPE html><html><form id="download-form" action="{base}/download" method="get">'
            '<input type="hidden" name="id" value="abc"><input type="hidden" name="export" value="download">'
            '<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="u-1">'
            '</form></html>').encode()
    routes["/toy.pth"] = ("text/html", form)
    routes["/download"] = ("application/octet-stream", PAYLOAD)
    path, digest = weights.locate(wfile(base, google_drive_id="abc"))
    assert digest == DIGEST and path.read_bytes() == PAYLOAD
    assert hits[-1].startswith("/download?") and "confirm=t" in hits[-1] and "uuid=u-1" in hits[-1]


def test_offline_missing_weights_error_names_model_places_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("CLUSTERBENCH_OFFLINE", "1")
    wf = weights.WeightsFile("Toy net", "toy.pth", ("https://example.org/toy.pth",))
    with pytest.raises(MissingWeightsError) as err:
        weights.locate(wf, downloader=lambda *a: pytest.fail("must not download when offline"))
    msg = str(err.value)
    for part in ("Toy net weights (toy.pth) are not available", str(tmp_path / "weights"),
                 str(tmp_path / "torch-home" / "hub" / "checkpoints"), "downloads are disabled",
                 "https://example.org/toy.pth", str(tmp_path / "weights" / "toy.pth"), "CLUSTERBENCH_WEIGHTS"):
        assert part in msg, part


def test_failed_download_reason_is_in_the_error():
    def no_network(wf, folder):
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    with pytest.raises(MissingWeightsError, match="the download failed .*Name or service not known"):
        weights.locate(weights.WeightsFile("Toy net", "toy.pth", ("https://example.org/toy.pth",)), downloader=no_network)


def test_drive_file_has_both_download_endpoints():
    wf = weights.WeightsFile("m", "f", (), google_drive_id="XYZ")
    urls = weights._candidate_urls(wf)
    assert urls[0].startswith("https://drive.usercontent.google.com/download?id=XYZ") and "confirm=t" in urls[0]
    assert urls[1] == "https://drive.google.com/uc?export=download&id=XYZ"
    assert "trust on first use" in wf.verification
    assert Path(weights.LOCK_NAME).suffix == ".json"


def test_pinned_full_sha256_is_enforced(server):
    base, routes, _ = server
    routes["/toy.pth"] = ("application/octet-stream", PAYLOAD)
    with pytest.raises(WeightsChecksumError, match="not the published sha256|the published sha256 is"):
        weights.locate(wfile(base, sha256="0" * 64))
    assert not (weights.search_dirs()[0] / "toy.pth").exists()
    assert weights.locate(wfile(base, sha256=DIGEST))[1] == DIGEST
    assert wfile(base, sha256=DIGEST).verification == "published sha256"

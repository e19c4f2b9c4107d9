"""DVC remotes: results pushed from one clone are pulled into a fresh clone, bit for bit, and the
pipeline there is already up to date (nothing re-runs).

A module fixture clones this repository's committed HEAD into a scratch folder and runs a small
real subgraph of the pipeline there (digits, bundled with scikit-learn: no download, no mirror):
download@digits -> embed@smoke-digits-raw -> knn@smoke-digits-raw, baselines@smoke-kmeans-digits.
Each test then pushes that cache to a remote (the committed default folder remote, a folder set
in .dvc/config.local, or an S3 bucket served by moto on 127.0.0.1) and pulls it into a new clone.
"""
import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
MIRROR = REPO.parent / "shared" / "datasets"   # the development mirror, beside the repository
DEFAULT_REMOTE = "store"                       # name in .dvc/config
DEFAULT_REMOTE_DIR = "clusterbench-dvc-store"  # folder beside the repository
TARGETS = ["knn@smoke-digits-raw", "baselines@smoke-kmeans-digits"]
STAGES = ["resolve", "download@digits", "embed@smoke-digits-raw", *TARGETS]  # TARGETS and their upstream
GIT_IDENTITY = ["-c", "user.name=clusterbench-tests", "-c", "user.email=tests@clusterbench.invalid"]


def _base_env(repo: Path) -> dict:
    """Environment of a DVC/stage subprocess: the clone's own code, no outside credentials."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"))}
    env.update(PYTHONPATH=str(repo), DVC_NO_ANALYTICS="1", PYTHONUNBUFFERED="1")
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    if MIRROR.is_dir():
        env.setdefault("CLUSTERBENCH_MIRROR", str(MIRROR))
    return env


def dvc(repo: Path, *args: str, env: dict | None = None) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=env or _base_env(repo),
                          text=True, capture_output=True)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed ({proc.returncode}):\n{output}"
    return output


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", *GIT_IDENTITY, *args], cwd=repo, env=_base_env(repo), text=True,
                          capture_output=True)
    assert proc.returncode == 0, f"git {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def cache_object(md5: str) -> Path:
    """Where DVC 3 keeps an object in a cache or a local remote: files/md5/<2 chars>/<rest>."""
    return Path("files", "md5", md5[:2], md5[2:])


def locked_outputs(repo: Path) -> dict[str, str]:
    """{output path: md5} of STAGES in the clone's dvc.lock (dir outputs end in .dir)."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    missing = [stage for stage in STAGES if stage not in lock]
    assert not missing, f"dvc.lock lacks {missing}"
    return {out["path"]: out["md5"] for stage in STAGES for out in lock[stage].get("outs", [])}


def expected_objects(repo: Path) -> set[str]:
    """Every object a push of STAGES must send: file md5s, .dir manifests and their entries."""
    objects = set()
    for md5 in locked_outputs(repo).values():
        objects.add(md5)
        if md5.endswith(".dir"):
            manifest = json.loads((repo / ".dvc/cache" / cache_object(md5)).read_text())
            objects.update(entry["md5"] for entry in manifest)
    return objects


def assert_outputs_restored(fresh: Path, origin: Path) -> None:
    """Every output of STAGES in `fresh` has dvc.lock's md5 and the same bytes as in `origin`."""
    outputs = locked_outputs(fresh)
    assert outputs == locked_outputs(origin)
    for rel, md5 in outputs.items():
        path = fresh / rel
        if md5.endswith(".dir"):
            manifest = json.loads((fresh / ".dvc/cache" / cache_object(md5)).read_text())
            expected = {entry["relpath"]: entry["md5"] for entry in manifest}
            present = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
            assert present == set(expected), f"{rel}: files differ from the locked manifest"
            files = [(path / relpath, entry_md5) for relpath, entry_md5 in expected.items()]
        else:
            files = [(path, md5)]
        for file, file_md5 in files:
            assert file.is_file(), f"{file} was not restored"
            assert md5_of(file) == file_md5, f"{file}: md5 differs from dvc.lock"
            assert file.read_bytes() == (origin / file.relative_to(fresh)).read_bytes()


def assert_up_to_date_and_repro_is_a_no_op(fresh: Path) -> None:
    status = json.loads(dvc(fresh, "status", "--with-deps", "--json", *TARGETS).strip() or "{}")
    assert status == {}, f"dvc status after pull: {status}"
    out = dvc(fresh, "repro", *TARGETS)
    assert "Running stage" not in out, out
    for stage in STAGES:
        assert f"Stage '{stage}' didn't change, skipping" in out, out


def fresh_clone(origin: Path, name: str) -> Path:
    git(origin.parent, "clone", "-q", str(origin), name)
    return origin.parent / name


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Path:
    """A clone of this repository's HEAD with STAGES run and dvc.lock committed."""
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout: the remote round trip clones the repository")
    base = tmp_path_factory.mktemp("remote")
    git(base, "clone", "-q", str(REPO), "origin")
    repo = base / "origin"
    out = dvc(repo, "repro", *TARGETS)
    for stage in STAGES:
        assert f"Running stage '{stage}'" in out, out
    git(repo, "add", "dvc.lock")
    git(repo, "commit", "-q", "-m", "results of the digits subgraph")
    return repo


def test_default_remote_is_a_folder_beside_the_repository(origin):
    # "store <absolute path> (default)"; DVC fits its table to the terminal width and cuts long
    # paths, so give it a terminal wide enough for any scratch path.
    tokens = dvc(origin, "remote", "list", env={**_base_env(origin), "COLUMNS": "100000"}).split()
    at = tokens.index(DEFAULT_REMOTE)
    assert Path(tokens[at + 1]) == origin.parent / DEFAULT_REMOTE_DIR and tokens[at + 2] == "(default)"
    beside = origin.parent / DEFAULT_REMOTE_DIR

    out = dvc(origin, "push", "--with-deps", *TARGETS)  # no remote configured by hand
    assert f"{len(expected_objects(origin))} files pushed" in out, out
    stored = {p.relative_to(beside).as_posix() for p in beside.rglob("*") if p.is_file()}
    assert stored == {cache_object(md5).as_posix() for md5 in expected_objects(origin)}
    assert "in sync" in dvc(origin, "status", "--cloud", "--with-deps", *TARGETS)

    fresh = fresh_clone(origin, "fresh-default")        # beside origin: same default folder
    dvc(fresh, "pull", "--with-deps", *TARGETS)
    assert_outputs_restored(fresh, origin)
    assert_up_to_date_and_repro_is_a_no_op(fresh)


def test_local_folder_remote_set_in_config_local_round_trip(origin, tmp_path):
    team_folder = tmp_path / "team-share"
    dvc(origin, "remote", "add", "--local", "team", str(team_folder))
    dvc(origin, "push", "-r", "team", "--with-deps", *TARGETS)
    assert "in sync" in dvc(origin, "status", "--cloud", "-r", "team", "--with-deps", *TARGETS)

    fresh = fresh_clone(origin, "fresh-team")
    dvc(fresh, "remote", "modify", "--local", DEFAULT_REMOTE, "url", str(team_folder))
    assert git(fresh, "status", "--porcelain") == "", "config.local must stay out of git"
    # "deleted": in the remote, not yet in this clone's cache.
    missing = dvc(fresh, "status", "--cloud", "--with-deps", *TARGETS)
    assert "deleted:" in missing and "data/smoke/views/smoke-digits-raw.npz" in missing, missing

    dvc(fresh, "pull", "--with-deps", *TARGETS)
    assert_outputs_restored(fresh, origin)
    assert_up_to_date_and_repro_is_a_no_op(fresh)


@pytest.fixture
def s3_server():
    """moto's S3 on loopback only, on a free port; yields the endpoint url."""
    moto_server = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    assert host == "127.0.0.1"
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_s3_remote_round_trip_through_a_loopback_server(origin, s3_server):
    boto3 = pytest.importorskip("boto3")
    pytest.importorskip("dvc_s3")
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="clusterbench")
    url = "s3://clusterbench/dvc-store"

    # Pushing side: credentials from the AWS environment variables.
    env = {**_base_env(origin), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    dvc(origin, "remote", "add", "--local", "s3", url, env=env)
    dvc(origin, "remote", "modify", "--local", "s3", "endpointurl", s3_server, env=env)
    dvc(origin, "push", "-r", "s3", "--with-deps", *TARGETS, env=env)

    keys = {obj["Key"] for obj in s3.list_objects_v2(Bucket="clusterbench")["Contents"]}
    pushed = {md5: f"dvc-store/{cache_object(md5).as_posix()}" for md5 in expected_objects(origin)}
    assert keys == set(pushed.values())
    for md5, key in pushed.items():
        body = s3.get_object(Bucket="clusterbench", Key=key)["Body"].read()
        assert body == (origin / ".dvc/cache" / cache_object(md5)).read_bytes(), key
        if not md5.endswith(".dir"):
            assert hashlib.md5(body).hexdigest() == md5, key

    # Pulling side: a fresh clone, credentials only in its untracked .dvc/config.local.
    fresh = fresh_clone(origin, "fresh-s3")
    dvc(fresh, "remote", "add", "--local", "--default", "s3", url)
    dvc(fresh, "remote", "modify", "--local", "s3", "endpointurl", s3_server)
    dvc(fresh, "remote", "modify", "--local", "s3", "access_key_id", "testing")
    dvc(fresh, "remote", "modify", "--local", "s3", "secret_access_key", "testing")
    assert git(fresh, "status", "--porcelain") == ""
    dvc(fresh, "pull", "--with-deps", *TARGETS)
    assert_outputs_restored(fresh, origin)
    assert_up_to_date_and_repro_is_a_no_op(fresh)

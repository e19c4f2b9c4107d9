"""The pipeline end to end: in-process on digits, and through DVC in a scratch repository."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from clusterbench import config, datasets, embeddings, graphs, io, runs, scoring

REPO = Path(__file__).resolve().parents[1]

SMOKE_PARAMS = {
    "data": {"mirrors": [], "offline": True, "imagenet_dir": None},
    "model": {"k": 10},
    "profiles": {"smoke": {"max_samples": 300, "seeds": [0, 1], "max_epochs": 2, "subsample_seed": 0,
                           "reports": "reports/smoke"}},
    "datasets": ["digits"],
    "embeddings": {"raw": [{"backend": "raw"}], "pca10": [{"backend": "pca", "n_components": 10}]},
    "views": {"smoke-digits-raw": {"dataset": "digits", "embedding": "raw", "profile": "smoke"},
              "smoke-digits-pca10": {"dataset": "digits", "embedding": "pca10", "profile": "smoke"}},
    "methods": {"kmeans": {"n_init": 3}},
    "train": {},
    "baselines": {"smoke-kmeans-digits": {"method": "kmeans", "view": "smoke-digits-raw", "profile": "smoke"},
                  "smoke-kmeans-pca10-digits": {"method": "kmeans", "view": "smoke-digits-pca10",
                                                "profile": "smoke"}},
}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump(SMOKE_PARAMS))
    return tmp_path


def test_in_process_pipeline_scores_and_records_costs(workdir):
    params = config.load()
    arrays = datasets.prepare("digits", io.dataset_dir("digits"), datasets.Fetcher(offline=True, progress=False))
    manifest = io.read_json(io.dataset_dir("digits") / "manifest.json")
    assert manifest["n_samples"] == 1797 and manifest["n_classes"] == 10
    rows = datasets.stratified_subsample(arrays.y, 300, 0)
    view = embeddings.build_view(arrays, rows, [{"backend": "raw"}])
    view.save(io.view_path("smoke", "smoke-digits-raw"))
    graphs.knn(view.X, 10).save(io.graph_path("smoke", "smoke-digits-raw"))
    first = runs.execute(params, "baselines", "smoke-kmeans-digits", progress=False)
    labels_a = io.read_npz(io.run_dir("smoke", "smoke-kmeans-digits") / "predictions.npz")["labels"]
    runs.execute(params, "baselines", "smoke-kmeans-digits", progress=False)
    labels_b = io.read_npz(io.run_dir("smoke", "smoke-kmeans-digits") / "predictions.npz")["labels"]
    assert np.array_equal(labels_a, labels_b), "same seeds must give the same labels"
    assert first["n_eval"] == 300 and len(first["per_seed"]) == 2

    summary = scoring.score_profile(params, "smoke")
    assert summary["scored"] == ["smoke-kmeans-digits"]
    assert summary["not_run"] == ["smoke-kmeans-pca10-digits"]
    result = io.read_json("reports/smoke/metrics/smoke-kmeans-digits.json")
    assert len(result["per_seed"]["acc"]) == 2
    assert result["mean"]["acc"] == pytest.approx(np.mean(result["per_seed"]["acc"]), abs=1e-6)
    assert 0.6 < result["mean"]["acc"] <= 1.0  # k-means on digits is well above chance
    assert result["wall_s"]["total"] > 0 and result["peak_rss_mb"] > 10


def _dvc(*args, cwd, env):
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, text=True,
                          capture_output=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


@pytest.fixture
def scratch_repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    # The stages list the package's modules as dependencies: the scratch repository carries its own copy.
    for item in ("dvc.yaml", "stages", "reports/paper", "clusterbench"):
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, repo / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, repo / item)
    (repo / "params.yaml").write_text(yaml.safe_dump(SMOKE_PARAMS))
    env = {**os.environ, "PYTHONPATH": str(repo), "DVC_NO_ANALYTICS": "1"}
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    _dvc("init", "-q", cwd=repo, env=env)
    return repo, env


def test_dvc_smoke_pipeline_repro_is_cached_and_k_change_reruns_only_graph_dependents(scratch_repo):
    repo, env = scratch_repo
    out = _dvc("repro", "tables@smoke", cwd=repo, env=env)
    assert "Running stage 'baselines@smoke-kmeans-digits'" in out
    assert (repo / "reports/smoke/README.md").exists()
    assert (repo / "reports/smoke/metrics/smoke-kmeans-digits.json").exists()
    again = _dvc("repro", "tables@smoke", cwd=repo, env=env)
    assert "Running stage" not in again
    # k only feeds the knn stages; k-means reads views, so nothing else re-runs.
    _dvc("repro", "knn@smoke-digits-raw", cwd=repo, env=env)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["model"]["k"] = 5
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    status = _dvc("status", cwd=repo, env=env)
    assert "knn@smoke-digits-raw" in status
    assert "baselines@" not in status and "embed@" not in status

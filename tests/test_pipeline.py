"""The pipeline end to end: in-process on digits, and through DVC in a scratch repository."""
import os
import re
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


RUN_BLOCKS = ("datasets", "views", "train", "baselines")


def write_params(repo: Path, params: dict) -> None:
    """params.yaml (knobs) and runs.yaml (what runs), as in the repository."""
    (repo / "params.yaml").write_text(yaml.safe_dump({k: v for k, v in params.items() if k not in RUN_BLOCKS}))
    (repo / "runs.yaml").write_text(yaml.safe_dump({k: v for k, v in params.items() if k in RUN_BLOCKS}))


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path, SMOKE_PARAMS)
    return tmp_path


def test_in_process_pipeline_scores_and_records_costs(workdir):
    params = config.load()
    arrays = datasets.prepare("digits", io.dataset_dir("digits"), datasets.Fetcher(offline=True, progress=False))
    manifest = io.read_json(io.dataset_dir("digits") / "manifest.json")
    assert manifest["n_samples"] == 1797 and manifest["n_classes"] == 10
    rows = datasets.stratified_subsample(arrays.y, 300, 0)
    view = embeddings.build_view(arrays, rows, [{"backend": "raw"}])
    view.save(io.view_path("smoke", "smoke-digits-raw"))
    graphs.view_graph(view.X, 10).save(io.graph_path("smoke", "smoke-digits-raw"))
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


def test_seeds_side_by_side_give_the_same_run_as_one_after_another(workdir, monkeypatch):
    """CLUSTERBENCH_JOBS=2 runs the seeds in two spawned processes: same labels, same histories."""
    params = SMOKE_PARAMS | {
        "methods": {"kmeans": {"n_init": 3}, "lnscc": {"epochs": 2, "steps_per_epoch": 3, "min_epochs": 2,
                                                        "progress_snapshots": False, "torch_threads": 1}},
        "train": {"smoke-lnscc-digits": {"method": "lnscc", "view": "smoke-digits-raw", "graph": "smoke-digits-raw",
                                         "profile": "smoke"}}}
    write_params(workdir, params)
    params = config.load()
    arrays = datasets.prepare("digits", io.dataset_dir("digits"), datasets.Fetcher(offline=True, progress=False))
    view = embeddings.build_view(arrays, datasets.stratified_subsample(arrays.y, 300, 0), [{"backend": "raw"}])
    view.save(io.view_path("smoke", "smoke-digits-raw"))
    graphs.view_graph(view.X, 10).save(io.graph_path("smoke", "smoke-digits-raw"))
    for block, name in (("baselines", "smoke-kmeans-digits"), ("train", "smoke-lnscc-digits")):
        outputs = []
        for jobs in ("1", "2"):
            monkeypatch.setenv("CLUSTERBENCH_JOBS", jobs)
            record = runs.execute(params, block, name, progress=False)
            labels = io.read_npz(io.run_dir("smoke", name) / "predictions.npz")["labels"]
            histories = [[{k: v for k, v in row.items() if k != "wall_s"} for row in s["history"]]
                         for s in record["per_seed"]]
            outputs.append((labels, histories, record["host"]["seed_jobs"]))
        (seq, seq_hist, seq_jobs), (par, par_hist, par_jobs) = outputs
        assert (seq_jobs, par_jobs) == (1, 2)
        assert np.array_equal(seq, par) and seq_hist == par_hist, name
        assert len(seq) == 2 and not np.array_equal(seq[0], seq[1])  # two seeds, two different runs
    monkeypatch.setenv("CLUSTERBENCH_JOBS", "two")
    with pytest.raises(SystemExit, match="CLUSTERBENCH_JOBS='two': expected a whole number >= 1"):
        runs.execute(params, "baselines", "smoke-kmeans-digits", progress=False)


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
    for item in ("dvc.yaml", "stages", "reports/paper", "clusterbench", "tests/expected"):
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, repo / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, repo / item)
    write_params(repo, SMOKE_PARAMS)
    env = {**os.environ, "PYTHONPATH": str(repo), "DVC_NO_ANALYTICS": "1"}
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    _dvc("init", "-q", cwd=repo, env=env)
    _plan(repo, env)
    return repo, env


def _plan(repo, env):
    proc = subprocess.run([sys.executable, "-m", "clusterbench.plan"], cwd=repo, env=env, text=True,
                          capture_output=True)
    assert proc.returncode == 0, proc.stderr


def _dvc_fails(*args, cwd, env) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, text=True, capture_output=True)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_dvc_smoke_pipeline_repro_is_cached_and_k_change_reruns_only_graph_dependents(scratch_repo):
    repo, env = scratch_repo
    out = _dvc("repro", "tables@smoke", "figures@smoke", cwd=repo, env=env)
    assert "Running stage 'baselines@smoke-kmeans-digits'" in out
    assert (repo / "reports/smoke/README.md").exists()
    assert (repo / "reports/smoke/metrics/smoke-kmeans-digits.json").exists()
    summary = yaml.safe_load((repo / "reports/smoke/summary.json").read_text())
    assert summary["baselines"]["runs"] == 2 and 0.5 < summary["baselines"]["acc"] <= 1
    again = _dvc("repro", "tables@smoke", cwd=repo, env=env)
    assert "Running stage" not in again
    # k only feeds the knn stages; k-means reads views, so nothing else re-runs.
    _dvc("repro", "knn@smoke-digits-raw", cwd=repo, env=env)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["model"]["k"] = 5
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    out = _dvc("repro", "tables@smoke", "knn@smoke-digits-raw", cwd=repo, env=env)
    ran = set(re.findall(r"Running stage '([^']+)'", out))
    assert ran == {"resolve", "knn@smoke-digits-raw"}, ran


def test_bad_parameters_stop_before_any_output_is_touched(scratch_repo):
    """resolve validates first: DVC never deletes a good output to re-run a stage with bad settings,
    and our one-line message comes before any DVC error about missing paths or parameters."""
    repo, env = scratch_repo
    _dvc("repro", "tables@smoke", cwd=repo, env=env)
    run = repo / "data/smoke/runs/smoke-kmeans-digits/predictions.npz"
    before = run.read_bytes()
    cases = [
        ("params.yaml", lambda p: p["methods"]["kmeans"].update(n_init="many"), "methods.kmeans.n_init"),
        ("runs.yaml", lambda r: r["datasets"].append("digitz"), "did you mean 'digits'"),
        ("runs.yaml", lambda r: r["views"]["smoke-digits-raw"].update(dataset="digitz"), "views.smoke-digits-raw"),
        ("runs.yaml", lambda r: r["baselines"]["smoke-kmeans-digits"].update(method="kmeanz"), "kmeanz"),
    ]
    for name, mutate, expected in cases:
        path = repo / name
        original = path.read_text()
        data = yaml.safe_load(original)
        mutate(data)
        path.write_text(yaml.safe_dump(data))
        out = _dvc_fails("repro", "tables@smoke", cwd=repo, env=env)
        errors = [line for line in out.splitlines() if line.startswith("error:") or "params.yaml:" in line]
        assert any(expected in line for line in errors), out
        assert "No such file or directory" not in out and "are missing" not in out, out
        assert out.count(expected) <= 2, out   # said once (plus DVC's echo of the failing stage), not per run
        assert run.read_bytes() == before      # the good output survived the failed check
        path.write_text(original)
    assert "Running stage" not in _dvc("repro", "tables@smoke", cwd=repo, env=env)

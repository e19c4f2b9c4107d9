"""`make gpu-check` (benchmarks/gpu_check.py): its dry run times every check on the CPU at tiny sizes
and writes them where it is told (never over the GPU results); without a GPU and without the dry
run it stops with one line."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_dry_run_times_every_check_on_the_cpu(gpu_check, tmp_path, capsys):
    out = tmp_path / "gpu-check-dry.json"
    gpu_file = gpu_check.GPU_OUT
    gpu_before = gpu_file.stat().st_mtime_ns if gpu_file.exists() else None
    assert gpu_check.main(["--dry-run", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["dry_run"] is True and report["device"] == "cpu" and report["torch"]
    assert report["device_name"].startswith("CPU")
    assert sorted(report["checks"]) == sorted(gpu_check.CHECKS)  # written with sorted keys
    for name, check in report["checks"].items():
        assert "error" not in check, f"{name}: {check.get('error')}"
        assert check["steps"] >= 1, name
        assert check["seconds_per_step"] > 0 and check["epoch_s"] > 0, name
        assert 0 <= check["data_wait_share"] <= 1, name
        assert check["peak_memory_mb"] > 0 and check["peak_memory_source"].startswith("CPU"), name
        assert check["sizes"], name
    assert report["checks"]["knn"]["faiss_gpu"] is False
    assert report["graph"]["dataset"] == "generated"  # the dry run needs no mirror
    lines = capsys.readouterr().out.splitlines()
    for i, name in enumerate(gpu_check.CHECKS, 1):  # a progress line per check
        assert any(line.startswith(f"gpu-check [{i}/5] {name}: ") and "s/step" in line for line in lines), name
    assert (gpu_file.stat().st_mtime_ns if gpu_file.exists() else None) == gpu_before
    assert gpu_check.DRY_OUT.name == "gpu-check-dry.json" and gpu_check.DRY_OUT != gpu_file


def test_without_a_gpu_it_stops_with_one_line_suggesting_the_dry_run(gpu_check, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    out = tmp_path / "gpu-check.json"
    assert gpu_check.main(["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no CUDA GPU found" in err[0] and "DRY_RUN=1" in err[0]
    assert not out.exists()


def test_an_unknown_check_is_refused_by_name(gpu_check, tmp_path, capsys):
    assert gpu_check.main(["--dry-run", "--only", "cc,knnn", "--out", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "knnn" in err[0] and "--only" in err[0]

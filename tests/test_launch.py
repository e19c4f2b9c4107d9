"""The parallel launcher (clusterbench.launch) on a small real DVC project: the same dvc.lock as
a serial `dvc repro`, keep-going on a failure, resume on the next launch."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from clusterbench import bill, launch

pytest.importorskip("submitit")

# a -> (b, c) -> d, and e alone: a diamond plus an independent stage
STAGE_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    name, *inputs = sys.argv[1:]
    if Path(f"fail-{name}").exists():
        print(f"error: stage {name} was told to fail", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.3)
    text = name + ":" + "+".join(Path(p).read_text() for p in inputs)
    Path("out").mkdir(exist_ok=True)
    tmp = Path(f"out/{name}.tmp")
    tmp.write_text(text)
    tmp.replace(f"out/{name}.txt")
""")

DVC_YAML = {"stages": {
    "a": {"cmd": "python step.py a", "deps": ["step.py"], "outs": ["out/a.txt"]},
    "b": {"cmd": "python step.py b out/a.txt", "deps": ["step.py", "out/a.txt"], "outs": ["out/b.txt"]},
    "c": {"cmd": "python step.py c out/a.txt", "deps": ["step.py", "out/a.txt"], "outs": ["out/c.txt"]},
    "d": {"cmd": "python step.py d out/b.txt out/c.txt", "deps": ["step.py", "out/b.txt", "out/c.txt"],
          "outs": ["out/d.txt"]},
    "e": {"cmd": "python step.py e", "deps": ["step.py"], "outs": ["out/e.txt"]},
}}


def dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    env_path = str(Path(sys.executable).parent)
    import os
    env = {**os.environ, "PATH": env_path + os.pathsep + os.environ.get("PATH", ""), "DVC_NO_ANALYTICS": "1"}
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True, env=env)


def make_project(root: Path) -> Path:
    root.mkdir()
    assert dvc(root, "init", "--no-scm", "-q").returncode == 0
    (root / "step.py").write_text(STAGE_SCRIPT)
    (root / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML))
    (root / "params.yaml").write_text("launcher:\n  executor: local\n  gpu_stages: [b]\n"
                                      "  slurm: {cpus_per_task: 1, time_min: 10, gpus_per_job: 0}\n")
    return root


def lock(root: Path) -> dict:
    return yaml.safe_load((root / "dvc.lock").read_text())


@pytest.fixture
def python_on_path(monkeypatch):
    """Stage commands say `python`: make that this interpreter (as the Makefile does with .venv)."""
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + ":" + __import__("os").environ["PATH"])


def slurm_up() -> bool:
    """A Slurm cluster answers here (CI starts one: scripts/slurm_localhost.sh)."""
    import shutil
    if shutil.which("sinfo") is None:
        return False
    proc = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    return proc.returncode == 0 and "idle" in proc.stdout or "mix" in proc.stdout


@pytest.mark.parametrize("executor", ["local", "debug", pytest.param("slurm", marks=pytest.mark.skipif(
    not slurm_up(), reason="no Slurm cluster here (bash scripts/slurm_localhost.sh start)"))])
def test_parallel_launch_gives_the_serial_lock(tmp_path, python_on_path, executor):
    serial = make_project(tmp_path / "serial")
    proc = dvc(serial, "repro")
    assert proc.returncode == 0, proc.stderr
    parallel = make_project(tmp_path / "parallel")
    result = launch.launch(parallel, [], jobs=2, executor=executor, log=lambda *_: None)
    assert sorted(result["ran"]) == ["a", "b", "c", "d", "e"] and not result["failed"]
    # a stage ran only after everything it reads
    order = result["ran"]
    assert order.index("a") < order.index("b") < order.index("d") and order.index("c") < order.index("d")
    assert lock(parallel) == lock(serial)
    assert (parallel / "out/d.txt").read_text() == (serial / "out/d.txt").read_text() == "d:b:a:+c:a:"
    assert dvc(parallel, "status", "--json").stdout.strip() in ("{}", "")
    # nothing changed: a second launch runs nothing
    again = launch.launch(parallel, [], jobs=2, executor=executor, log=lambda *_: None)
    assert again["ran"] == [] and sorted(again["up_to_date"]) == ["a", "b", "c", "d", "e"]


def test_a_failed_stage_stops_only_what_needs_it_and_reruns_next_time(tmp_path, python_on_path):
    root = make_project(tmp_path / "p")
    (root / "fail-b").write_text("")
    result = launch.launch(root, [], jobs=2, executor="local", log=lambda *_: None)
    assert result["failed"] == {"b": "stage b was told to fail"}
    assert result["skipped"] == ["d"]
    assert sorted(result["ran"]) == ["a", "c", "e"]
    assert set(lock(root)["stages"]) == {"a", "c", "e"}      # the others' results are committed
    assert not (root / "out/b.txt").exists()
    text = launch.summarise(result, ["a", "b", "c", "d", "e"], [])
    assert "failed: 1" in text and "not run (an upstream stage failed): 1" in text
    (root / "fail-b").unlink()
    second = launch.launch(root, [], jobs=2, executor="local", log=lambda *_: None)
    assert sorted(second["ran"]) == ["b", "d"] and sorted(second["up_to_date"]) == ["a", "c", "e"]
    serial = make_project(tmp_path / "serial")
    assert dvc(serial, "repro").returncode == 0
    assert lock(root) == lock(serial)


def test_targets_limit_the_plan_and_unknown_names_are_one_line(tmp_path, python_on_path):
    root = make_project(tmp_path / "p")
    plan = launch.build_plan(root, ["d"])
    assert set(plan.order) == {"a", "b", "c", "d"} and plan.order[0] == "a" and plan.order[-1] == "d"
    assert plan.needs["d"] == {"b", "c"}
    with pytest.raises(SystemExit, match="no stage named dd"):
        launch.build_plan(root, ["dd"])


def test_job_environment_and_slurm_resources(tmp_path):
    assert launch.job_env(1, 2, gpus=0, cores=8) == {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4",
                                                     "CLUSTERBENCH_JOBS": "1"}
    assert launch.job_env(3, 4, gpus=2, cores=16)["CUDA_VISIBLE_DEVICES"] == "1"
    params = launch.LauncherParams(executor="slurm", slurm={"partition": "gpu", "time_min": 90, "gpus_per_job": 2})
    gpu, cpu = launch.slurm_options(params, gpu=True), launch.slurm_options(params, gpu=False)
    assert gpu == {"time": 90, "cpus_per_task": 4, "partition": "gpu", "gpus_per_node": 2}
    assert "gpus_per_node" not in cpu and cpu["partition"] == "gpu"
    with pytest.raises(Exception, match="executor"):
        launch.LauncherParams(executor="kubernetes")


def _resolved_run(root: Path, run: str, method: str, seeds=(0, 1, 2)) -> None:
    folder = root / "data/resolved/runs"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{run}.json").write_text(json.dumps({
        "train": {run: {"method": method, "profile": "full", "seeds": None}},
        "profiles": {"full": {"seeds": list(seeds), "reports": "reports"}}}))


def test_the_bill_costs_runs_leaves_out_gpu_sized_ones_and_blocks_what_cannot_run(tmp_path):
    root = tmp_path
    (root / "benchmarks").mkdir()
    (root / "benchmarks/run-costs.yaml").write_text(
        '- runs: "big-*"\n  gpu_h: 2\n  gpu_sized: true\n  source: docs\n'
        '- runs: "*"\n  cpu_h: 0.5\n  source: docs\n')
    _resolved_run(root, "big-a", "iciclegcn")
    _resolved_run(root, "small-b", "lnscc")
    _resolved_run(root, "small-c", "lnscc")
    (root / "reports/metrics").mkdir(parents=True)
    (root / "reports/metrics/small-c.json").write_text(json.dumps({"wall_s": {"mean": 1800.0}}))
    (root / "data/resolved/download").mkdir(parents=True)
    (root / "data/resolved/download/imagenet-10.json").write_text(json.dumps({"data": {"imagenet_dir": None}}))
    order = ["resolve", "download@imagenet-10", "embed@imagenet-10-raw", "train@big-a", "train@small-b",
             "train@small-c", "score@full"]
    needs = {"download@imagenet-10": {"resolve"}, "embed@imagenet-10-raw": {"download@imagenet-10"},
             "train@big-a": {"resolve"}, "train@small-b": {"resolve"}, "train@small-c": {"resolve"},
             "score@full": {"train@big-a", "train@small-b", "train@small-c"}}
    changed = {"resolve", "download@imagenet-10", "embed@imagenet-10-raw", "train@big-a", "train@small-b",
               "train@small-c"}
    import os
    os.environ.pop("CLUSTERBENCH_IMAGENET_DIR", None)
    cpu = bill.make_bill(root, order, needs, changed, gpu=False, include_gpu_sized=False, in_place={"resolve"})
    assert cpu.cannot_run == {"download@imagenet-10": "needs your imagenet_dir (set data.imagenet_dir in "
                              "params.yaml or $CLUSTERBENCH_IMAGENET_DIR)",
                              "embed@imagenet-10-raw": "needs download@imagenet-10"}
    assert cpu.left_out == ["train@big-a"]
    assert cpu.will_run == ["resolve", "train@small-b", "train@small-c", "score@full"]
    costs = {c.run: c for c in cpu.costs}
    assert costs["small-c"].source == "measured" and costs["small-c"].hours == pytest.approx(1.5)
    assert costs["small-b"].hours == pytest.approx(1.5) and costs["small-b"].unit == "CPU-h"
    text = bill.render(cpu, gpu=False, include_gpu_sized=False)
    assert "left out on this machine (no GPU): 1" in text and "LNSCC: 2 runs, ~3.0 CPU-h (1 measured)" in text
    everything = bill.make_bill(root, order, needs, changed, gpu=False, include_gpu_sized=True, in_place={"resolve"})
    assert not everything.left_out and {c.run: c.hours for c in everything.costs}["big-a"] == 6
    # a persistent, rewritten-in-place upstream (resolve) does not by itself make a stage run
    quiet = bill.make_bill(root, order, needs, {"resolve"}, gpu=True, include_gpu_sized=False, in_place={"resolve"})
    assert quiet.will_run == ["resolve"] and "score@full" in quiet.up_to_date

"""`make repro JOBS=N`: run the stages DVC says must run, up to N at once, through submitit.

`dvc repro` runs one stage at a time (it holds the repository lock for the whole run). This
launcher asks DVC for the stages the targets need (in DAG order), runs each stage's own command
as a submitit job (the local executor on one machine, Slurm on a cluster, the debug executor
in tests), and records every finished stage in dvc.lock with `dvc commit` from this one
process, so dvc.lock and the cache end exactly as after a serial `dvc repro`. A stage starts
when every stage it depends on is committed (or was up to date); whether it must run is asked
of DVC at that moment, so a stage whose inputs came out unchanged is skipped as DVC would.
A failed stage stops only what depends on it (keep-going); its outputs are not committed, and
the next launch runs it again (training resumes from its checkpoints).

Resources per job come from ``launcher:`` in params.yaml: on the local executor each job gets
``CUDA_VISIBLE_DEVICES`` of its own GPU (when there are GPUs) or an equal share of the CPU
cores as its thread count; on Slurm, GPU stages (``gpu_stages``) ask for GPUs, the others not.

    python -m clusterbench.launch --jobs 2 [--executor local|slurm|debug] [targets ...]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .repro import summarise

EXECUTORS = ("local", "slurm", "debug")


class SlurmParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    partition: str | None = Field(None, description="Slurm partition (empty: the cluster's default)")
    time_min: int = Field(24 * 60, ge=1, description="time limit of one stage's job, minutes")
    cpus_per_task: int = Field(4, ge=1)
    mem_gb: int | None = Field(None, ge=1, description="memory per job (empty: the partition's default)")
    gpus_per_job: int = Field(1, ge=0, description="GPUs of a job whose stage is in gpu_stages")
    extra: dict[str, str] = Field(default_factory=dict, description="further sbatch options (e.g. account)")


class LauncherParams(BaseModel):
    """params.yaml ``launcher:``: how `make repro JOBS=N` runs stages."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    executor: Literal["local", "slurm", "debug"] = Field("local", description="submitit executor")
    gpu_stages: list[str] = Field(["train"], description="stage names (before the @) whose jobs get a GPU")
    slurm: SlurmParams = SlurmParams()


@dataclass
class Plan:
    order: list[str]                                   # the targets' stages, dependencies first
    needs: dict[str, set[str]] = field(default_factory=dict)   # stage -> stages it depends on
    commands: dict[str, str] = field(default_factory=dict)
    outs: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)  # (path, persist)


class Dvc:
    """One DVC repository handle for the whole launch: the graph is built once (seconds on the
    full DAG), each status or commit then costs well under a second. DVC resolves stage names
    from the cwd, so it is used with the cwd at its root (``launch`` and ``build_plan`` chdir)."""

    def __init__(self, root: Path):
        from dvc.repo import Repo

        self.root = Path(root).resolve()
        self.repo = Repo(str(self.root))

    def plan(self, targets: list[str]) -> Plan:
        """The stages the targets need (all stages when none are given), dependencies first."""
        import networkx as nx

        graph = self.repo.index.graph          # edges: stage -> a stage it depends on
        by_name = {s.addressing: s for s in graph.nodes}
        if targets:
            missing = [t for t in targets if t not in by_name]
            if missing:
                raise SystemExit(f"launch: no stage named {', '.join(missing)} (`dvc stage list` names them)")
            keep = set()
            for t in targets:
                keep |= {by_name[t], *nx.descendants(graph, by_name[t])}
            graph = graph.subgraph(keep)
        plan = Plan(order=[s.addressing for s in reversed(list(nx.topological_sort(graph)))])
        for stage in graph.nodes:
            name = stage.addressing
            plan.needs[name] = {d.addressing for d in graph.successors(stage)}
            plan.commands[name] = stage.cmd if isinstance(stage.cmd, str) else " && ".join(stage.cmd or [])
            plan.outs[name] = [(str(o.def_path), bool(o.persist)) for o in stage.outs]
        return plan

    def changed(self, stages: list[str] | None = None) -> set[str]:
        """What `dvc repro` asks before running a stage: do its deps, params, outs or command differ
        from dvc.lock (or is it not in dvc.lock)? ``None``: every stage of the project."""
        self.repo._reset()                 # dvc.lock may have changed since the last question
        found = self.repo.status(targets=list(stages)) if stages is not None else self.repo.status()
        return {key.rsplit(":", 1)[-1] for key in found}

    def commit(self, stage: str) -> None:
        """Record a finished stage in dvc.lock and the cache, as `dvc repro` would after running it."""
        self.repo._reset()
        self.repo.commit(stage, force=True)

    def close(self) -> None:
        self.repo.close()


def build_plan(root: Path, targets: list[str]) -> Plan:
    with contextlib.chdir(root):
        dvc = Dvc(root)
        try:
            return dvc.plan(targets)
        finally:
            dvc.close()


def remove_outputs(root: Path, outs: list[tuple[str, bool]]) -> None:
    """`dvc repro` removes a stage's non-persistent outputs before running it: so does this."""
    for path, persist in outs:
        target = root / path
        if persist or not (target.exists() or target.is_symlink()):
            continue
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()


def run_command(command: str, cwd: str, env: dict[str, str]) -> dict:
    """One stage's command in a job (what submitit pickles): exit code and the stage's own
    one-line `error:` message, if it printed one."""
    start = time.time()
    proc = subprocess.run(command, shell=True, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    errors = [line[len("error: "):] for line in proc.stderr.splitlines() if line.startswith("error: ")]
    tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    return {"returncode": proc.returncode, "error": errors[-1] if errors else tail, "seconds": time.time() - start}


def gpu_count() -> int:
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def job_env(slot: int, jobs: int, gpus: int, cores: int) -> dict[str, str]:
    """Slot ``slot`` of ``jobs`` parallel jobs: its own GPU, or an equal share of the cores."""
    threads = str(max(1, cores // jobs))
    env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "CLUSTERBENCH_JOBS": "1"}
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)
    return env


def slurm_options(params: LauncherParams, gpu: bool) -> dict:
    """submitit SlurmExecutor parameters of one stage's job: GPUs only for ``gpu_stages``."""
    s = params.slurm
    options = {"time": s.time_min, "cpus_per_task": s.cpus_per_task}
    if s.partition:
        options["partition"] = s.partition
    if s.mem_gb:
        options["mem"] = f"{s.mem_gb}G"
    if gpu and s.gpus_per_job:
        options["gpus_per_node"] = s.gpus_per_job
    if s.extra:
        options["additional_parameters"] = dict(s.extra)
    return options


def make_executor(kind: str, folder: Path, params: LauncherParams, gpu: bool):
    import submitit

    if kind == "debug":
        return submitit.DebugExecutor(folder=str(folder))
    if kind == "local":
        return submitit.LocalExecutor(folder=str(folder))
    if shutil.which("sbatch") is None:
        raise SystemExit("launch: executor slurm needs sbatch on the PATH (a Slurm login node); "
                         "use --executor local on one machine")
    executor = submitit.SlurmExecutor(folder=str(folder))
    executor.update_parameters(**slurm_options(params, gpu))
    return executor


def load_launcher_params(root: Path) -> LauncherParams:
    import yaml

    raw = (yaml.safe_load((root / "params.yaml").read_text()) or {}).get("launcher") or {}
    try:
        return LauncherParams(**raw)
    except Exception as exc:   # pydantic's message, one line per problem
        raise SystemExit(f"params.yaml launcher: {exc}") from None


def launch(root: Path, targets: list[str], jobs: int, executor: str | None = None, include_gpu_sized: bool = False,
           dry_run: bool = False, poll_s: float = 0.5, log=print) -> dict:
    """Print the plan and its bill, then run what the targets need, ``jobs`` stages at once;
    returns repro's summary dict (ran / up_to_date / failed {stage: reason} / skipped), plus
    cannot_run {stage: why} and left_out (GPU-sized stages on a machine without a GPU)."""
    params = load_launcher_params(root)
    kind = executor or params.executor
    if kind not in EXECUTORS:
        raise SystemExit(f"launch: executor {kind!r} unknown; allowed: {', '.join(EXECUTORS)}")
    with contextlib.chdir(root):
        return _launch(Path(root).resolve(), targets, jobs, kind, params, include_gpu_sized, dry_run, poll_s, log)


def _launch(root, targets, jobs, kind, params, include_gpu_sized, dry_run, poll_s, log) -> dict:
    from .bill import make_bill, render

    dvc = Dvc(root)
    try:
        plan = dvc.plan(targets)
        gpus, cores = (gpu_count(), os.cpu_count() or 1) if kind == "local" else (0, 1)
        has_gpu = gpus > 0 or kind == "slurm"
        bill = make_bill(root, plan.order, plan.needs, dvc.changed() & set(plan.order), has_gpu, include_gpu_sized,
                         in_place={s for s, outs in plan.outs.items() if outs and all(persist for _, persist in outs)})
        log(render(bill, has_gpu, include_gpu_sized))
        result = {"ran": [], "up_to_date": [], "failed": {}, "skipped": [], "cannot_run": dict(bill.cannot_run),
                  "left_out": list(bill.left_out)}
        if dry_run:
            return result
        return _run(root, dvc, plan, params, kind, jobs, gpus, cores, bill, result, poll_s, log)
    finally:
        dvc.close()


def _run(root, dvc, plan, params, kind, jobs, gpus, cores, bill, result, poll_s, log) -> dict:
    folder = root / "data" / "launch-logs"
    status: dict[str, str] = {s: "pending" for s in plan.order}
    for stage in bill.cannot_run:
        status[stage] = "cannot_run"
    for stage in bill.left_out:       # not run, and not in the way: downstream stages use what exists
        status[stage] = "left_out"
    running: dict[str, tuple[object, int]] = {}   # stage -> (job, slot)
    free_slots = list(range(jobs))
    while True:
        progressed = False
        for stage in plan.order:
            if status[stage] != "pending":
                continue
            upstream = [status[d] for d in plan.needs[stage] if d in status]
            if any(s in ("failed", "skipped") for s in upstream):
                status[stage] = "skipped"
                result["skipped"].append(stage)
                progressed = True
                continue
            if any(s in ("pending", "running") for s in upstream) or not free_slots:
                continue
            if not plan.commands[stage] or not dvc.changed([stage]):
                status[stage] = "up_to_date"
                result["up_to_date"].append(stage)
                log(f"Stage '{stage}' didn't change, skipping")
                progressed = True
                continue
            slot = free_slots.pop(0)
            remove_outputs(root, plan.outs[stage])
            gpu = stage.split("@")[0] in params.gpu_stages
            ex = make_executor(kind, folder / stage.replace("@", "_"), params, gpu)
            env = job_env(slot, jobs, gpus, cores) if kind == "local" else {"CLUSTERBENCH_JOBS": "1"}
            job = ex.submit(run_command, plan.commands[stage], str(root), env)
            running[stage] = (job, slot)
            status[stage] = "running"
            log(f"Running stage '{stage}' (job {job.job_id}, slot {slot}):\n> {plan.commands[stage]}")
            progressed = True
        if not running and not progressed:
            break
        finished = [s for s, (job, _) in running.items() if job.done()]
        for stage in finished:
            job, slot = running.pop(stage)
            free_slots.append(slot)
            try:
                outcome = job.result()
            except Exception as exc:      # the job itself died (killed, timed out, node lost)
                outcome = {"returncode": -1, "error": f"job failed: {str(exc).strip().splitlines()[-1][:300]}"}
            if outcome["returncode"] != 0:
                status[stage] = "failed"
                result["failed"][stage] = outcome["error"]
                log(f"ERROR: failed to reproduce '{stage}': {outcome['error']}")
                continue
            try:
                dvc.commit(stage)
            except Exception as exc:      # e.g. an output the stage did not write
                status[stage] = "failed"
                result["failed"][stage] = f"dvc commit: {exc}"
                log(f"ERROR: failed to commit '{stage}': {exc}")
                continue
            status[stage] = "done"
            result["ran"].append(stage)
            log(f"Stage '{stage}' done in {outcome.get('seconds', 0):.0f} s, recorded in dvc.lock")
        if not finished and running:
            time.sleep(poll_s)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("targets", nargs="*", help="stages to bring up to date (default: all)")
    ap.add_argument("--jobs", "-j", type=int, default=2, help="stages run at once (default 2)")
    ap.add_argument("--executor", choices=EXECUTORS, default=None, help="default: params.yaml launcher.executor")
    ap.add_argument("--all", action="store_true", help="also GPU-sized training runs on a machine without a GPU")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and its bill, run nothing")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        raise SystemExit(f"launch: --jobs must be >= 1, got {args.jobs}")
    root = Path.cwd()
    result = launch(root, args.targets, args.jobs, args.executor, include_gpu_sized=args.all, dry_run=args.dry_run)
    if args.dry_run:
        return 0
    print(summarise({k: result[k] for k in ("ran", "up_to_date", "failed", "skipped")}, [], ["(plan)"]))
    if result["cannot_run"]:
        print(f"cannot run here: {len(result['cannot_run'])} (the plan above says why)")
    if result["left_out"]:
        print(f"left out (GPU-sized, no GPU here; ALL=1 runs them): {len(result['left_out'])}")
    out = root / "data" / "repro-summary.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({**result, "jobs": args.jobs}, indent=1) + "\n")
    tmp.replace(out)
    return 0 if not result["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""The plan and the bill of `make repro`, printed before anything runs.

A new user on a CPU machine should not find out hours later that the full DAG means days of
training. Before the launcher starts a job it says how many stages will run, are up to date,
or cannot run (a data set needs a download, or the user's ImageNet folder), which training runs
are GPU-sized and left out on a machine without a GPU (``ALL=1`` keeps them), and what the runs
cost per paper: measured wall time where a run was executed before (its
reports/<profile>/metrics/<run>.json), else the per-seed estimate of benchmarks/run-costs.yaml
(from the docs' "Cost" sections).
"""
from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

COSTS_FILE = Path("benchmarks/run-costs.yaml")
PAPER_OF_METHOD = {"lnscc": "LNSCC", "constellationnet": "ConstellationNet",
                   "constellationnet-supervised": "ConstellationNet", "iciclegcn": "IcicleGCN",
                   "cc": "CC (IcicleGCN, GHDCC tables)", "ghdcc": "GHDCC", "hilander": "Hi-LANDER"}


@dataclass
class RunCost:
    run: str
    paper: str
    seeds: int
    hours: float | None          # for all seeds
    unit: str                    # "CPU-h" or "GPU-h"
    source: str                  # "measured" or the estimate's source
    gpu_sized: bool = False


@dataclass
class Bill:
    will_run: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    cannot_run: dict[str, str] = field(default_factory=dict)     # stage -> why
    left_out: list[str] = field(default_factory=list)             # GPU-sized, no GPU here
    downloads: list[str] = field(default_factory=list)            # data sets that will be downloaded
    costs: list[RunCost] = field(default_factory=list)


def read_costs(root: Path) -> list[dict]:
    path = root / COSTS_FILE
    return yaml.safe_load(path.read_text()) if path.is_file() else []


def resolved(root: Path, kind: str, name: str) -> dict:
    path = root / "data" / "resolved" / kind / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def run_cost(root: Path, kind: str, run: str, costs: list[dict]) -> RunCost:
    """Cost of a train/baselines stage's run, all its seeds: measured if it ran before, else estimated."""
    settings = resolved(root, "runs", run)
    block = settings.get("train" if kind == "train" else "baselines", {}).get(run, {})
    profile = settings.get("profiles", {}).get(block.get("profile", ""), {})
    seeds = len(block.get("seeds") or profile.get("seeds") or [0])
    method = block.get("method", "")
    paper = PAPER_OF_METHOD.get(method, "baselines" if kind == "baselines" else method or "?")
    metrics = root / profile.get("reports", "reports") / "metrics" / f"{run}.json"
    if metrics.is_file():
        wall = json.loads(metrics.read_text()).get("wall_s") or {}
        if isinstance(wall, dict) and wall.get("mean"):
            return RunCost(run, paper, seeds, wall["mean"] * seeds / 3600, "CPU-h", "measured")
    entry = next((e for e in costs if fnmatch.fnmatchcase(run, e["runs"])), None)
    if entry is None:
        return RunCost(run, paper, seeds, None, "CPU-h", "no estimate")
    gpu = bool(entry.get("gpu_sized"))
    if entry.get("gpu_h") is not None:
        return RunCost(run, paper, seeds, entry["gpu_h"] * seeds, "GPU-h", entry.get("source", ""), gpu)
    return RunCost(run, paper, seeds, entry.get("cpu_h", 0) * seeds, "CPU-h", entry.get("source", ""), gpu)


def dataset_availability(root: Path, dataset: str) -> str:
    """"local", "download" (files fetched on first use) or why it cannot run here."""
    from .datasets import REGISTRY
    from .datasets.base import CACHE_ENV, DEFAULT_CACHE, Fetcher

    spec = REGISTRY.get(dataset)
    if spec is None:
        return "local"
    data = resolved(root, "download", dataset).get("data", {})
    if spec.local_source is not None:
        src = spec.local_source
        if not (data.get(src.param.split(".")[-1]) or os.environ.get(src.env)):
            return f"needs your {src.param.split('.')[-1]} (set {src.param} in params.yaml or ${src.env})"
        return "local"
    fetcher = Fetcher(mirrors=data.get("mirrors", []), progress=False)
    cache = Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
    missing = [rf for rf in spec.files if fetcher.locate_in_mirrors(rf) is None and not (cache / rf.filename).is_file()]
    if not missing:
        return "local"
    return "download needed (offline: data.offline is true)" if data.get("offline") else "download"


def make_bill(root: Path, order: list[str], needs: dict[str, set[str]], changed: set[str], gpu: bool,
              include_gpu_sized: bool, in_place: set[str] = frozenset()) -> Bill:
    """Classify the plan's stages (``order``: dependencies first; ``changed``: what DVC reports
    as changed now) and cost the training and baseline runs that will run. A stage runs when it
    changed or a stage it depends on runs, except stages in ``in_place`` (persistent outputs
    rewritten file by file, like `resolve`: what downstream reads mostly keeps its hash)."""
    bill = Bill()
    costs = read_costs(root)
    blocked: set[str] = set()
    runs_now: set[str] = set()
    for stage in order:
        kind, _, item = stage.partition("@")
        upstream_blocked = [d for d in needs.get(stage, ()) if d in blocked]
        if upstream_blocked:
            bill.cannot_run[stage] = f"needs {upstream_blocked[0]}"
            blocked.add(stage)
            continue
        if kind == "download" and stage in changed:
            status = dataset_availability(root, item)
            if status.startswith("needs") or status.startswith("download needed"):
                bill.cannot_run[stage] = status
                blocked.add(stage)
                continue
            if status == "download":
                bill.downloads.append(item)
        if stage in changed or any(d in runs_now and d not in in_place for d in needs.get(stage, ())):
            if kind in ("train", "baselines"):
                cost = run_cost(root, kind, item, costs)
                if cost.gpu_sized and not gpu and not include_gpu_sized:
                    bill.left_out.append(stage)
                    continue
                bill.costs.append(cost)
            bill.will_run.append(stage)
            runs_now.add(stage)
        else:
            bill.up_to_date.append(stage)
    return bill


def render(bill: Bill, gpu: bool, include_gpu_sized: bool) -> str:
    lines = ["== plan ==",
             f"will run: {len(bill.will_run)}   up to date: {len(bill.up_to_date)}   "
             f"cannot run here: {len(bill.cannot_run)}"
             + (f"   GPU-sized, left out: {len(bill.left_out)}" if bill.left_out else "")]
    if bill.downloads:
        lines.append(f"  downloads first: {', '.join(sorted(bill.downloads))}")
    reasons: dict[str, int] = {}
    for why in bill.cannot_run.values():
        key = "an upstream stage cannot run" if why.startswith("needs ") and "@" in why else why
        reasons[key] = reasons.get(key, 0) + 1
    for why, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
        lines.append(f"  cannot run ({n}): {why}")
    if bill.left_out:
        lines.append(f"  left out on this machine (no GPU): {len(bill.left_out)} GPU-sized training runs; "
                     "`make repro ALL=1` runs them anyway (days on a CPU)")
    by_paper: dict[tuple[str, str], list[RunCost]] = {}
    for c in bill.costs:
        by_paper.setdefault((c.paper, c.unit), []).append(c)
    if by_paper:
        lines.append("  expected cost of the runs that will run (all seeds; measured where a run ran before):")
    for (paper, unit), items in sorted(by_paper.items()):
        known = [c.hours for c in items if c.hours is not None]
        measured = sum(c.source == "measured" for c in items)
        unknown = len(items) - len(known)
        total = sum(known)
        amount = f"~{total:.1f} {unit}" if total >= 1 or not known else f"~{total * 60:.0f} {unit[:-2]}-min"
        lines.append(f"    {paper}: {len(items)} run{'s' if len(items) != 1 else ''}, {amount}"
                     + (f" ({measured} measured)" if measured else "")
                     + (f", {unknown} without an estimate" if unknown else ""))
    if not gpu and any(c.unit == "GPU-h" for c in bill.costs):
        lines.append("  GPU-h are estimates for one A100-class GPU; on this CPU they take ~800x longer")
    return "\n".join(lines)

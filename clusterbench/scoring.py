"""Score stage: per-seed metrics of every finished run of a profile, mean and std over seeds.

Writes ``<reports>/metrics/<run>.json`` per run and ``<reports>/metrics.json`` (the file DVC
tracks as metrics, so ``dvc exp show`` and ``dvc metrics diff`` compare runs).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import io, metrics
from .config import Params, ParamsError
from .embeddings import View


# Numbers a method reports in Result.extra that are scored like metrics (mean / std over seeds), so
# a table cell can show them: Hi-LANDER's inference wall time (its Table 1 compares inference times).
TIMED_EXTRAS = ("inference_s",)


def runs_of_profile(params: Params, profile: str) -> dict[str, object]:
    out = {}
    for block in ("train", "baselines"):
        for name, run in getattr(params, block).items():
            if run.profile == profile:
                out[name] = run
    return out


def score_run(run_dir: Path, view: View) -> dict:
    record = io.read_json(run_dir / "run.json")
    pred = io.read_npz(run_dir / "predictions.npz")
    y_true = view.y[pred["index"]]
    per_seed: dict[str, list[float]] = {}
    for labels in pred["labels"]:
        for key, value in metrics.score(y_true, labels, record["task"]).items():
            per_seed.setdefault(key, []).append(round(value, 6))
    for key in TIMED_EXTRAS:  # measured by the method itself (e.g. Hi-LANDER's inference, Table 1)
        values = [s["extra"].get(key) for s in record["per_seed"]]
        if values and all(isinstance(v, (int, float)) for v in values):
            per_seed[key] = [round(float(v), 3) for v in values]
    walls = [s["wall_s"] for s in record["per_seed"]]
    summary = {
        "run": record["run"], "method": record["method"], "task": record["task"],
        "dataset": record["dataset"], "view": record["view"], "embedding": record["embedding"],
        "profile": record["profile"], "n_eval": record["n_eval"], "n_clusters": record["n_clusters"],
        "seeds": [int(s) for s in pred["seeds"]], "device": record["device"],
        "per_seed": per_seed,
        "mean": {k: round(float(np.mean(v)), 6) for k, v in per_seed.items()},
        "std": {k: round(float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, 6) for k, v in per_seed.items()},
        "wall_s": {"per_seed": walls, "mean": round(float(np.mean(walls)), 3), "total": round(float(np.sum(walls)), 3)},
        "peak_rss_mb": max(s["peak_rss_mb"] for s in record["per_seed"]),
    }
    gpu = [s["peak_gpu_mb"] for s in record["per_seed"] if "peak_gpu_mb" in s]
    if gpu:
        summary["peak_gpu_mb"] = max(gpu)
    epochs = [s["extra"].get("epochs") for s in record["per_seed"] if s["extra"].get("epochs")]
    if epochs:
        summary["epochs"] = epochs
        summary["wall_s_per_epoch"] = round(float(np.sum(walls) / np.sum(epochs)), 4)
    return summary


def score_profile(params: Params, profile: str, only: list[str] | None = None) -> dict:
    """Score every finished run of the profile. ``only``: re-score just these runs and keep the
    committed metrics of the others (their data may live on another machine); a named run
    that has not finished here is an error, not a silently dropped row."""
    reports = Path(params.profiles[profile].reports)
    out_dir = reports / "metrics"
    summaries, missing = {}, []
    views: dict[str, View] = {}
    planned = runs_of_profile(params, profile)
    if only is not None:
        unknown = sorted(set(only) - set(planned))
        if unknown:
            raise ParamsError(f"--runs: {', '.join(unknown)} are not runs of profile {profile!r}")
        unfinished = [n for n in only if not (io.run_dir(profile, n) / "predictions.npz").is_file()]
        if unfinished:
            raise ParamsError(f"--runs: {', '.join(unfinished)} have no predictions in data/{profile}/runs: "
                             f"run them first (dvc repro train@<run>)")
        kept = {p.stem: io.read_json(p) for p in sorted(out_dir.glob("*.json"))} if out_dir.is_dir() else {}
        summaries = {n: s for n, s in kept.items() if n in planned and n not in only}
    for name, run in planned.items():
        if only is not None and name not in only:
            if name not in summaries:
                missing.append(name)
            continue
        rdir = io.run_dir(profile, name)
        if not (rdir / "predictions.npz").is_file():
            missing.append(name)
            continue
        if run.view not in views:
            views[run.view] = View.load(io.view_path(profile, run.view))
        summaries[name] = score_run(rdir, views[run.view])
    with io.atomic_dir(out_dir) as tmp:
        for name, summary in summaries.items():
            io.write_json(tmp / f"{name}.json", summary)
    compact = {name: {**s["mean"], "wall_s": s["wall_s"]["total"], "peak_rss_mb": s["peak_rss_mb"]}
               for name, s in sorted(summaries.items())}
    io.write_json(reports / "metrics.json", {"runs": compact, "not_run": sorted(missing)})
    return {"scored": sorted(summaries), "not_run": sorted(missing)}


def load_scores(reports: str | Path) -> dict[str, dict]:
    folder = Path(reports) / "metrics"
    if not folder.is_dir():
        return {}
    return {p.stem: io.read_json(p) for p in sorted(folder.glob("*.json"))}

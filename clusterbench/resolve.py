"""The resolve stage: validate params.yaml and runs.yaml once, before any stage touches an output,
and give every stage its own settings file.

Every stage of the DAG depends on its file ``data/resolved/<kind>/<name>.json`` instead of on
params.yaml keys, so

- a mistake anywhere in the parameters stops the pipeline here, with one line per problem,
  before DVC deletes any stage's outputs to re-run it (and before DVC's own errors about a
  missing path or parameter);
- a stage re-runs exactly when its own settings change (files are rewritten only when their
  content changes), and DVC does not re-read the parameter files once per stage, which was most
  of a no-op ``dvc repro``'s time.

Files hold what a stage's output depends on and nothing else: an embedding does not re-run when
the seeds change, a baseline does not re-run when ``model.k`` changes.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from . import io, plan
from .config import Params, ParamsError, method_config

RESOLVED = io.DATA / "resolved"


def settings_path(kind: str, name: str) -> Path:
    return RESOLVED / kind / f"{name}.json"


def _dump(model) -> Any:
    return model.model_dump(mode="json", exclude_defaults=False)


def _run_params(params: Params, block: str, name: str) -> dict:
    """A self-contained params dict for one run: only the entries the run reads."""
    run = getattr(params, block)[name]
    view_names = list(dict.fromkeys([run.view, getattr(run, "graph", run.view)]))
    views = {v: _dump(params.views[v]) for v in view_names}
    profile = _dump(params.profiles[run.profile])
    if getattr(run, "seeds", None):
        profile["seeds"] = list(run.seeds)
    _, config = method_config(params, block, name)
    return {
        "profiles": {run.profile: profile},
        "datasets": list(dict.fromkeys(v["dataset"] for v in views.values())),
        "embeddings": {v["embedding"]: [_dump(s) for s in params.embeddings[v["embedding"]]] for v in views.values()},
        "views": views,
        "methods": {run.method: params.methods.get(run.method, {})},
        block: {name: _dump(run)},
        "effective_config": _dump(config),
    }


def _profile_params(params: Params, profile: str) -> dict:
    """Everything of one profile: the tables and the leaderboard read all its runs."""
    views = {n: v for n, v in params.views.items() if v.profile == profile}
    train = {n: r for n, r in params.train.items() if r.profile == profile}
    baselines = {n: r for n, r in params.baselines.items() if r.profile == profile}
    methods = {r.method for r in (*train.values(), *baselines.values())}
    return {   # no `data` / `model`: tables, figures and the leaderboard do not read them
        "profiles": {profile: _dump(params.profiles[profile])},
        "datasets": list(dict.fromkeys(v.dataset for v in views.values())),
        "embeddings": {e: [_dump(s) for s in params.embeddings[e]] for e in dict.fromkeys(v.embedding for v in views.values())},
        "views": {n: _dump(v) for n, v in views.items()},
        "methods": {m: params.methods[m] for m in sorted(methods) if m in params.methods},
        "train": {n: _dump(r) for n, r in train.items()},
        "baselines": {n: _dump(r) for n, r in baselines.items()},
    }


def stage_settings(params: Params) -> dict[str, dict]:
    """<kind>/<name> -> the settings of that stage."""
    out: dict[str, dict] = {}
    for ds in params.datasets:
        out[f"download/{ds}"] = {"dataset": ds, "data": _dump(params.data)}
    for name, view in params.views.items():
        prof = params.profiles[view.profile]
        out[f"embed/{name}"] = {
            "view": name, "dataset": view.dataset, "embedding": view.embedding, "profile": view.profile,
            "max_samples": prof.max_samples, "subsample_seed": prof.subsample_seed,
            "steps": [_dump(s) for s in params.embeddings[view.embedding]], "offline": params.data.offline,
        }
        out[f"knn/{name}"] = {"view": name, "profile": view.profile, "k": max(params.model.k, view.min_k),
                              "k_from": "model.k" if params.model.k >= view.min_k else f"views.{name}.min_k"}
    for block in ("train", "baselines"):
        for name in getattr(params, block):
            out[f"runs/{name}"] = _run_params(params, block, name)
    for profile in params.profiles:
        out[f"profiles/{profile}"] = _profile_params(params, profile)
    return out


def write_settings(settings: dict[str, dict], root: Path = RESOLVED) -> tuple[int, int]:
    """Write changed files, remove files of stages that no longer exist; (written, removed)."""
    written = removed = 0
    wanted = set()
    for key, value in settings.items():
        path = root / f"{key}.json"
        wanted.add(path)
        text = json.dumps(value, indent=1, sort_keys=True) + "\n"
        if not path.is_file() or path.read_text() != text:
            io.write_text(path, text)
            written += 1
    if root.is_dir():
        for path in root.rglob("*.json"):
            if path not in wanted:
                path.unlink()
                removed += 1
    return written, removed


def load_settings(kind: str, name: str) -> dict:
    path = settings_path(kind, name)
    if not path.is_file():
        raise ParamsError(f"{path} not found: no {kind} stage named {name!r} in params.yaml/runs.yaml "
                          "(run `dvc repro resolve`, or check the name)")
    return json.loads(path.read_text())


def load_params(kind: str, name: str) -> Params:
    """The validated params subset a run or profile stage reads (see _run_params, _profile_params)."""
    from .config import from_dict

    raw = load_settings(kind, name)
    raw.pop("effective_config", None)
    return from_dict(raw, str(settings_path(kind, name)))


def main(params_file: str = "params.yaml") -> int:
    from .config import load

    params = load(params_file)
    old = plan.PLAN_FILE.read_text() if plan.PLAN_FILE.is_file() else ""
    if plan.write(params):
        raise ParamsError(f"plan.yaml was out of date with params.yaml/runs.yaml "
                          f"({plan.diff_summary(old, plan.PLAN_FILE.read_text())}) and has been regenerated: "
                          "run the same command again")
    written, removed = write_settings(stage_settings(params))
    print(f"resolve: parameters valid; {written} stage settings written, {removed} removed", file=sys.stderr)
    return 0

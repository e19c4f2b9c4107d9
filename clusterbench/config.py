"""params.yaml: loading and validation before any compute.

A mistake in params.yaml should cost one line of output, not an hour of training: every stage
validates the whole file first, and an unknown name, a wrong type or an out-of-range value
stops it with a message naming the key, the bad value and what is allowed.
"""
from __future__ import annotations

import difflib
import json
import signal
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

PARAMS_FILE = Path("params.yaml")
RUNS_FILE_NAME = "runs.yaml"   # beside params.yaml: datasets, views, train, baselines
RUN_BLOCKS = ("datasets", "views", "train", "baselines")


from .launch import LauncherParams  # noqa: E402  (pydantic model only)


class ParamsError(ValueError):
    """params.yaml is invalid; the message is one line per problem."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(Strict):
    mirrors: list[str] = Field(default_factory=list)
    offline: bool = False
    imagenet_dir: str | None = None


class ModelParams(Strict):
    k: int = Field(50, ge=1, le=1000, description="neighbours per node in the kNN graphs")


class Profile(Strict):
    max_samples: int | None = Field(None, ge=10)
    seeds: list[int] = Field(min_length=1)
    max_epochs: int | None = Field(None, ge=1)
    subsample_seed: int = 0
    reports: str = Field(description="folder of this profile's metrics, tables and figures")


EmbeddingBackend = Literal["raw", "pca", "umap", "dinov2", "vgg16", "simclr"]


class EmbeddingStep(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    backend: EmbeddingBackend


class View(Strict):
    dataset: str
    embedding: str
    profile: str
    min_k: int = Field(0, ge=0)


class Run(Strict):
    method: str
    view: str
    graph: str
    profile: str
    overrides: dict[str, Any] = Field(default_factory=dict)
    # This run's seeds instead of its profile's: for a run whose cost forces fewer seeds on the
    # machine at hand (the tables show n for every cell, so the reader sees it).
    seeds: list[int] | None = Field(None, min_length=1)


class BaselineRun(Strict):
    method: str
    view: str
    profile: str
    overrides: dict[str, Any] = Field(default_factory=dict)
    group: str | None = None   # the params.yaml group that declared it (clusterbench.plan)
    # "test": fit and score on the view's test split only (split 1): the rows an open-set method
    # (Hi-LANDER) clusters, so the baseline is compared on the same unseen identities.
    eval_split: Literal["all", "test"] = "all"


class Params(Strict):
    data: DataParams = DataParams()
    model: ModelParams = ModelParams()
    profiles: dict[str, Profile]
    datasets: list[str]
    embeddings: dict[str, list[EmbeddingStep]]
    views: dict[str, View]
    methods: dict[str, dict[str, Any]] = Field(default_factory=dict)
    train: dict[str, Run] = Field(default_factory=dict)
    baselines: dict[str, BaselineRun] = Field(default_factory=dict)
    launcher: LauncherParams = LauncherParams()   # how `make repro JOBS=N` runs stages (clusterbench.launch)

    @field_validator("embeddings")
    @classmethod
    def _non_empty_steps(cls, value: dict[str, list[EmbeddingStep]]):
        for name, steps in value.items():
            if not steps:
                raise ValueError(f"embedding {name!r} has no steps")
        return value


def _choice(kind: str, value: str, allowed) -> str:
    allowed = sorted(allowed)
    close = difflib.get_close_matches(value, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {kind} {value!r}{hint}; allowed: {', '.join(allowed)}"


def _cross_check(p: Params) -> list[str]:
    """References between blocks: every name must point at something defined."""
    from .baselines import BASELINES, load_baseline
    from .datasets import REGISTRY
    from .embeddings.steps import step_errors
    from .methods import METHODS, load_method

    errors = []
    for name, steps in p.embeddings.items():
        errors += [f"embeddings.{name}: {m}" for m in step_errors([st.model_dump() for st in steps])]
    for name in p.datasets:
        if name not in REGISTRY:
            errors.append(f"datasets: {_choice('dataset', name, REGISTRY)}")
    for key, view in p.views.items():
        where = f"views.{key}"
        if view.dataset not in REGISTRY:
            errors.append(f"{where}.dataset: {_choice('dataset', view.dataset, REGISTRY)}")
        elif view.dataset not in p.datasets:
            errors.append(f"{where}.dataset: {view.dataset!r} is not listed under datasets")
        if view.embedding not in p.embeddings:
            errors.append(f"{where}.embedding: {_choice('embedding', view.embedding, p.embeddings)}")
        if view.profile not in p.profiles:
            errors.append(f"{where}.profile: {_choice('profile', view.profile, p.profiles)}")
    for block, runs, registry in (("train", p.train, METHODS), ("baselines", p.baselines, BASELINES)):
        for key, run in runs.items():
            where = f"{block}.{key}"
            if run.method not in registry:
                errors.append(f"{where}.method: {_choice('method', run.method, registry)}")
            views = [("view", run.view)] + ([("graph", run.graph)] if isinstance(run, Run) else [])
            for field, view in views:
                if view not in p.views:
                    errors.append(f"{where}.{field}: {_choice('view', view, p.views)}")
                elif p.views[view].profile != run.profile:
                    errors.append(f"{where}.{field}: view {view!r} belongs to profile "
                                  f"{p.views[view].profile!r}, the run to {run.profile!r}")
            if run.profile not in p.profiles:
                errors.append(f"{where}.profile: {_choice('profile', run.profile, p.profiles)}")
    clash = set(p.train) & set(p.baselines)
    if clash:
        errors.append(f"train and baselines share run names {sorted(clash)}: outputs would collide")
    for key in p.methods:
        if key not in METHODS and key not in BASELINES:
            errors.append(f"methods: {_choice('method', key, set(METHODS) | set(BASELINES))}")
    errors += _method_config_errors(p)
    return errors


def _method_config_errors(p: Params) -> list[str]:
    """Each method block validated once, and each distinct set of run overrides once: a bad
    value is one message, not one per run that uses the method."""
    from .baselines import BASELINES, load_baseline
    from .methods import METHODS, load_method

    errors: list[str] = []
    used: dict[str, dict[str, tuple[dict, str]]] = {}   # method -> {overrides key: (overrides, where)}
    for block in ("train", "baselines"):
        for run_key, run in getattr(p, block).items():
            where = f"baselines.{run.group}" if getattr(run, "group", None) else f"{block}.{run_key}"
            key = json.dumps(run.overrides, sort_keys=True, default=str)
            used.setdefault(run.method, {}).setdefault(key, (run.overrides, where))
    for method, variants in used.items():
        if method not in METHODS and method not in BASELINES:
            continue
        impl = load_method(method) if method in METHODS else load_baseline(method)
        base = p.methods.get(method, {})
        try:
            impl.Config(**base)
            base_ok = True
        except ValidationError as exc:
            errors += [f"methods.{method}.{m}" for m in _messages(exc, impl.Config)]
            base_ok = False
        for run_overrides, where in variants.values():
            if not run_overrides or not base_ok:
                continue
            try:
                impl.Config(**{**base, **run_overrides})
            except ValidationError as exc:
                errors += [f"{where} (overrides of {method}): {m}" for m in _messages(exc, impl.Config)]
    return list(dict.fromkeys(errors))


def _model_at(model: Any, path: tuple) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``path`` inside ``model`` (through model
    fields, ``dict[str, X]`` values, list items and ``X | None``), or None when there is none."""
    def unwrap(tp):
        if get_origin(tp) in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            return args[0] if len(args) == 1 else tp
        return tp

    tp = model
    for part in path:
        tp = unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return None
            tp = field.annotation
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        elif get_origin(tp) is list and isinstance(part, int):
            tp = get_args(tp)[0]
        else:
            return None
    tp = unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _messages(exc: ValidationError, model: type[BaseModel] | None = None) -> list[str]:
    """One line per pydantic error; an unknown key (extra="forbid") gets the keys allowed at its
    level and a did-you-mean, since a typo is the usual reason for one."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        owner = _model_at(model, tuple(err["loc"][:-1])) if model is not None else None
        if err["type"] == "extra_forbidden" and owner is not None:
            out.append(f"{loc}: {_choice('key', str(err['loc'][-1]), owner.model_fields)}")
        else:
            out.append(f"{loc}: {err['msg']}{shown}")
    return out


def load(path: str | Path = PARAMS_FILE, check_references: bool = True) -> Params:
    """params.yaml as written (baseline groups, derived views and downloads), validated."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path} not found: run from the repository root")
    raw = _read_mapping(path, "blocks (data, model, profiles, ...)")
    runs_path = path.with_name(RUNS_FILE_NAME)
    sources: dict[str, str] = {}
    if runs_path.is_file():
        runs = _read_mapping(runs_path, ", ".join(RUN_BLOCKS))
        for key in runs:
            if key not in RUN_BLOCKS:
                raise ParamsError(f"{runs_path}: {_choice('block', str(key), RUN_BLOCKS)}")
            if key in raw:
                raise ParamsError(f"{key} is declared in both {path} and {runs_path}: keep it in {runs_path}")
        raw.update(runs)
        sources = {key: str(runs_path) for key in runs}
    raw, errors = expand(raw)
    return _validate(raw, str(path), errors, check_references, sources)


# --- params.yaml as written -> the explicit form -------------------------------------------
# Naming (the tables find a cell's run by it): a group's run is ``<variant>-<dataset>`` in the
# full profile and ``<profile>-<variant>-<dataset>`` in any other; its view is
# ``[<profile>-]<dataset>-<embedding>``.

GROUP_KEYS = ("profile", "embedding", "datasets", "methods", "eval_split")   # of a baselines group


def prefix(profile: str) -> str:
    return "" if profile == "full" else f"{profile}-"


def view_name(profile: str, dataset: str, embedding: str) -> str:
    return f"{prefix(profile)}{dataset}-{embedding}"


def expand(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """params.yaml as written -> the explicit form (views, datasets, baselines runs) plus the
    problems found in the group declarations (one line each, already located)."""
    from .baselines import BASELINES
    from .datasets import REGISTRY

    raw = dict(raw)
    errors: list[str] = []
    profiles = raw.get("profiles") or {}
    embeddings = raw.get("embeddings") or {}
    views = dict(raw.get("views") or {})
    groups = raw.get("baselines") or {}
    runs: dict[str, dict] = {}
    origin: dict[str, str] = {}
    if not isinstance(groups, dict):
        return raw, ["baselines: expected groups `<group>: {profile, embedding, datasets, methods}`"]
    for gname, group in groups.items():
        where = f"baselines.{gname}"
        if not isinstance(group, dict):
            errors.append(f"{where}: expected a mapping with datasets and methods")
            continue
        if "method" in group and "datasets" not in group:   # one explicit run: <run>: {method, view, profile}
            if gname in runs:
                errors.append(f"{where}: run {gname!r} is also declared by baselines.{origin[gname]}; keep one")
            runs[gname] = dict(group)
            origin[gname] = gname
            continue
        for key in sorted(set(group) - set(GROUP_KEYS), key=str):
            errors.append(f"{where}.{key}: {_choice('key', str(key), GROUP_KEYS)}")
        profile = group.get("profile", "full")
        embedding = group.get("embedding", "raw")
        datasets = group.get("datasets") or []
        methods = group.get("methods") or {}
        if profile not in profiles:
            errors.append(f"{where}.profile: {_choice('profile', str(profile), profiles)}")
            continue
        if embedding not in embeddings:
            errors.append(f"{where}.embedding: {_choice('embedding', str(embedding), embeddings)}")
            continue
        if not isinstance(datasets, list) or not datasets:
            errors.append(f"{where}.datasets: expected a non-empty list of data sets")
            continue
        if not isinstance(methods, dict) or not methods:
            errors.append(f"{where}.methods: expected `<variant>: {{method: <baseline>, <overrides>}}` entries")
            continue
        good_datasets = []
        for ds in datasets:
            if ds not in REGISTRY:
                errors.append(f"{where}.datasets: {_choice('dataset', str(ds), REGISTRY)}")
            else:
                good_datasets.append(ds)
        for variant, spec in methods.items():
            spec = dict(spec or {})
            method = spec.pop("method", variant)
            if method not in BASELINES:
                errors.append(f"{where}.methods.{variant}: {_choice('baseline', str(method), BASELINES)}")
                continue
            for ds in good_datasets:
                view = view_name(profile, ds, embedding)
                if view not in views:
                    views[view] = {"dataset": ds, "embedding": embedding, "profile": profile}
                name = f"{prefix(profile)}{variant}-{ds}"
                run = {"method": method, "view": view, "profile": profile, "group": gname}
                if spec:
                    run["overrides"] = spec
                if "eval_split" in group:   # "test": the open-set protocol's unseen rows only
                    run["eval_split"] = group["eval_split"]
                if name in runs:
                    errors.append(f"{where}.methods.{variant}: run {name!r} is also declared by "
                                  f"baselines.{origin[name]}; keep one")
                    continue
                runs[name] = run
                origin[name] = gname
    raw["views"] = views
    listed = list(raw.get("datasets") or [])
    # only registered names: a misspelt view dataset is reported at the view, not as a download
    raw["datasets"] = listed + [d for d in dict.fromkeys(v.get("dataset") for v in views.values()
                                                           if isinstance(v, dict)) if d in REGISTRY and d not in listed]
    raw["baselines"] = runs
    return raw, errors


def _read_mapping(path: Path, expected: str) -> dict:
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of {expected}")
    return raw


def from_dict(raw: dict, source: str, check_references: bool = False) -> Params:
    """Already expanded params (a resolved stage file, see clusterbench.resolve)."""
    return _validate(dict(raw), source, [], check_references)


def _validate(raw: dict, source: str, errors: list[str], check_references: bool,
              sources: dict[str, str] | None = None) -> Params:
    """Params from raw blocks; every problem one line, prefixed by the file its block is in."""
    def located(lines: list[str]) -> str:
        out = []
        for line in lines:
            block = line.split(".", 1)[0].split(":", 1)[0].split(" ", 1)[0]
            out.append(f"{(sources or {}).get(block, source)}: {line}")
        return "\n".join(out)

    try:
        params = Params(**raw)
    except ValidationError as exc:
        raise ParamsError(located(errors + _messages(exc, Params))) from None
    if check_references:
        errors = errors + _cross_check(params)
    if errors:
        raise ParamsError(located(errors))
    return params


def method_config(params: Params, block: str, run_name: str):
    """The validated config object of one run: methods.<m> with the run's overrides applied,
    and the profile's epoch cap applied where the method has epochs."""
    from .baselines import load_baseline
    from .methods import load_method

    run = getattr(params, block)[run_name]
    impl = load_method(run.method) if block == "train" else load_baseline(run.method)
    values = {**params.methods.get(run.method, {}), **run.overrides}
    profile = params.profiles[run.profile]
    config = impl.Config(**values)
    if profile.max_epochs is not None and hasattr(config, "epochs"):
        config = config.model_copy(update={"epochs": min(config.epochs, profile.max_epochs)})
    return impl, config


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def main_guard(fn):
    """Run a stage entry point; print a ParamsError/DatasetError/EmbeddingError as one clean message."""
    import sys

    from .checks import DataError
    from .datasets import DatasetError
    from .embeddings.errors import EmbeddingError

    def wrapper(*args, **kwargs):
        # A killed stage (SIGTERM from a scheduler, `kill`, a CI timeout) unwinds like Ctrl-C, so
        # the atomic writers remove their temporary files instead of leaving them behind.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            return fn(*args, **kwargs)
        except (ParamsError, DataError, DatasetError, EmbeddingError, MemoryError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)

    return wrapper

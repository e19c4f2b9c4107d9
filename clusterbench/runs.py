"""Execute one run (a method or baseline on one view, over the profile's seeds).

Shared by the train and baselines stages: both produce ``data/<profile>/runs/<name>/`` with
``predictions.npz`` (labels per seed), ``run.json`` (config, wall time and peak memory per
seed, training history) and, when the method learns one, ``embedding.npz`` of the first seed.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time

import numpy as np

from . import checks, io
from .config import Params, method_config
from .embeddings import View
from .graphs import KnnGraph
from .methods import RunContext, pick_device, seed_everything
from .resources import Stopwatch


def execute(params: Params, block: str, name: str, progress: bool = True) -> dict:
    run = getattr(params, block)[name]
    impl, config = method_config(params, block, name)
    profile = params.profiles[run.profile]
    view, eval_rows = load_run_view(run)
    graph = KnnGraph.load(io.graph_path(run.profile, run.graph)) if block == "train" else None
    checks.check_view(view, name=run.view)  # NaN/empty views stop here, not in scikit-learn or faiss
    warnings = class_warnings(name, run.view, view, eval_rows, config, impl.TASK)
    checks.check_fits(view, run.view, config, graph, getattr(run, "graph", None),
                      graph_view_sha256(run, view) if graph is not None else None)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    # Baselines run on CPU unless they declare they can use an accelerator (the deep ones).
    device = pick_device() if block == "train" or getattr(impl, "USES_DEVICE", False) else "cpu"
    n_clusters = view.n_clusters

    labels, index, per_seed = [], None, []
    jobs = min(seed_jobs(), len(profile.seeds))
    with io.atomic_dir(io.run_dir(run.profile, name)) as out:
        if jobs > 1:  # seeds side by side, one process each; each seed's result is what it is alone
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                fits = list(pool.map(_fit_seed_job, *zip(*[(params, block, name, seed, out / f"seed-{seed}", device)
                                                           for seed in profile.seeds])))
        else:
            fits = (_fit_seed(name, run, impl, config, view, graph, seed, n_clusters, device, progress,
                              out / f"seed-{seed}") for seed in profile.seeds)
        for seed, fit in zip(profile.seeds, fits):
            result = fit["result"]
            rows = evaluated_rows(result, view, eval_rows)
            if index is None:
                index = rows
            elif not np.array_equal(index, rows):
                raise RuntimeError(f"{name}: seeds evaluated different rows")
            if len(result.labels) != len(rows):
                raise RuntimeError(f"{name}: {len(result.labels)} labels for {len(rows)} evaluated rows")
            labels.append(np.asarray(result.labels, dtype=np.int64))
            if result.embedding is not None and len(per_seed) == 0:
                io.write_npz(out / "embedding.npz", embedding=np.asarray(result.embedding, np.float32),
                             labels=labels[-1], seed=seed)
            per_seed.append({"seed": seed, **fit["resources"], "history": result.history or fit["history"],
                             "extra": result.extra})
        io.write_npz(out / "predictions.npz", labels=np.stack(labels), index=index,
                     seeds=np.asarray(profile.seeds, dtype=np.int64))
        record = {
            "run": name, "block": block, "method": run.method, "task": impl.TASK,
            "view": run.view, "graph": getattr(run, "graph", None), "profile": run.profile,
            "dataset": params.views[run.view].dataset, "embedding": params.views[run.view].embedding,
            "config": config.model_dump(), "n_clusters": n_clusters, "n_rows": int(len(view.X)),
            "eval_split": getattr(run, "eval_split", "all"),
            "n_eval": int(len(index)), "device": device, "per_seed": per_seed,
            "host": {"python": platform.python_version(), "machine": platform.machine(),
                     "threads": os.environ.get("OMP_NUM_THREADS"), "seed_jobs": jobs,
                     "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
        }
        if warnings:  # only then: run.json of every other run is unchanged
            record["warnings"] = warnings
        io.write_json(out / "run.json", record)
    return record


def evaluated_rows(result, view: View, eval_rows: np.ndarray | None) -> np.ndarray:
    """The rows of the run's view that a seed's labels belong to (its ``index``, else every row
    of the view it was given; a test-split sub-view's rows mapped back to the whole view)."""
    rows = np.arange(len(view.X)) if result.index is None else np.asarray(result.index)
    return rows if eval_rows is None else eval_rows[rows]


def load_run_view(run) -> tuple[View, np.ndarray | None]:
    """The run's view, and for a baseline with ``eval_split: test`` only its test split (split 1)
    with those rows' positions in the view (None: all rows). The sub-view's number of clusters
    is that of the test split, what a baseline that needs k is told."""
    view = View.load(io.view_path(run.profile, run.view))
    if getattr(run, "eval_split", "all") != "test":
        return view, None
    rows = np.flatnonzero(view.split == 1)
    if len(rows) == 0:
        raise checks.DataError(f"{run.view}: eval_split test, but the view has no test rows (split 1)")
    return View(view.X[rows], view.y[rows], view.split[rows], view.index[rows], view.image_shape, view.meta), rows


def class_warnings(name: str, view_name: str, view: View, eval_rows: np.ndarray | None, config, task: str) -> list[str]:
    """The classes of the rows a run is scored on (``view`` as load_run_view returns it: all rows,
    or the test split), checked before any seed runs; it only counts classes and hands the method
    nothing (its view and number of clusters are as before). Fewer than 2 classes: refused
    (DataError), every metric would read 1.0 and mean nothing (a whole view of one class is
    refused by check_fits, which names its rebuild).
    Fewer classes than the clusters the run asks for (its config's own ``n_clusters``, else for a
    clustering method the number it is told): run, with a warning (over-clustering is a choice a
    user may make). Open-set runs are not warned: told the whole view's classes and scored, by
    design, on the unseen split's, they find their number of clusters themselves."""
    classes = np.unique(view.y[view.y >= 0])
    if eval_rows is not None and len(classes) < 2:
        held = "no labelled rows" if len(classes) == 0 else f"one class (label {int(classes[0])})"
        raise checks.DataError(f"run {name}: the test split of view {view_name} (eval_split: test, {len(view.y)} rows) "
                               f"holds {held}: scores against fewer than 2 classes are meaningless (every metric 1.0 "
                               f"for one cluster): use a view whose test split has at least 2 classes, or eval_split: "
                               f"all ({checks.rebuild_view(view_name)})")
    if task == "open-set clustering" or len(classes) < 2:  # the latter: check_fits refuses it
        return []
    own = getattr(config, "n_clusters", None)
    asked = own or (view.n_clusters if task == "clustering" else None)  # told: equal to the classes, by construction
    if not asked or len(classes) >= asked:
        return []
    rows = f"the {len(view.y)} rows of the test split of view {view_name}" if eval_rows is not None \
        else f"the {len(view.y)} rows of view {view_name}"
    setting = f"n_clusters = {own}" if own else "the number it is told"
    return [f"run {name}: {rows} it is scored on hold {len(classes)} classes, fewer than the {asked} clusters it asks "
            f"for ({setting}): ACC can match at most {len(classes)} of them to a class"]


def graph_view_sha256(run, view: View) -> str | None:
    """The features hash a train run's graph must carry. None when the graph is of the run's own
    view (check_fits hashes the loaded features); else that of the graph's view file, streamed,
    once it is known to hold the same dataset rows in the same order as the run's view (e.g.
    UMAP features over the raw-pixel graph)."""
    if run.graph == run.view:
        return None
    path = io.view_path(run.profile, run.graph)
    try:
        with np.load(path, allow_pickle=False) as stored:
            index, dataset = stored["index"], json.loads(str(stored["meta"])).get("dataset")
    except FileNotFoundError:
        raise checks.DataError(f"graph {run.graph}: its view file {path} is missing: rebuild it "
                               f"(dvc repro embed@{run.graph} knn@{run.graph})") from None
    own_dataset = view.meta.get("dataset")
    if not np.array_equal(index, view.index) or dataset != own_dataset:
        raise checks.DataError(f"graph {run.graph} is of view {run.graph} ({dataset}, {len(index)} rows), whose rows "
                               f"are not those of view {run.view} ({own_dataset}, {len(view.index)} rows): "
                               f"a run's graph must be of a view of the same dataset and profile; rebuild both "
                               f"(dvc repro embed@{run.view} embed@{run.graph} knn@{run.graph})")
    return io.npz_member_sha256(path, "X")


def seed_jobs() -> int:
    """Seeds run side by side (CLUSTERBENCH_JOBS, default 1), one process each. It changes no
    result: every seed seeds its own RNGs and runs alone in its process (test_runs)."""
    raw = os.environ.get("CLUSTERBENCH_JOBS", "1")
    try:
        jobs = int(raw)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise SystemExit(f"error: CLUSTERBENCH_JOBS={raw!r}: expected a whole number >= 1 (seeds run side by side)")
    return jobs


def _fit_seed(name, run, impl, config, view, graph, seed, n_clusters, device, progress, workdir) -> dict:
    seed_everything(seed)
    history: list[dict] = []

    def log(row: dict) -> None:
        history.append(row)
        if not progress:  # seeds side by side have no bars: one line per epoch instead
            shown = ", ".join(f"{k} {v:.4g}" for k, v in row.items()
                              if k in ("loss", "loss_contrastive", "loss_clu", "wall_s") and isinstance(v, float))
            print(f"[{name}] seed {seed} epoch {row.get('epoch', len(history))}: {shown}", file=sys.stderr, flush=True)

    ctx = RunContext(view=view, graph=graph, seed=seed, n_clusters=n_clusters, device=device,
                     progress=progress, workdir=workdir, log=log)
    print(f"[{name}] seed {seed}: {run.method} on {run.view} ({len(view.X)} x {view.X.shape[1]}, "
          f"{n_clusters} clusters, {device})", file=sys.stderr, flush=True)
    with Stopwatch() as sw:
        result = impl.fit_predict(ctx, config)
    return {"result": result, "resources": sw.as_dict(), "history": history}


def _fit_seed_job(params: Params, block: str, name: str, seed: int, workdir, device: str) -> dict:
    """One seed in a fresh process (spawn): loads the run's view and graph itself; no progress
    bar (bars of parallel seeds would overwrite each other)."""
    from . import threads  # noqa: F401  (pins BLAS/OpenMP threads before torch is imported)

    run = getattr(params, block)[name]
    impl, config = method_config(params, block, name)
    view, _ = load_run_view(run)
    graph = KnnGraph.load(io.graph_path(run.profile, run.graph)) if block == "train" else None
    return _fit_seed(name, run, impl, config, view, graph, seed, view.n_clusters, device, False, workdir)

"""Execute one run (a method or baseline on one view, over the profile's seeds).

Shared by the train and baselines stages: both produce ``data/<profile>/runs/<name>/`` with
``predictions.npz`` (labels per seed), ``run.json`` (config, wall time and peak memory per
seed, training history) and, when the method learns one, ``embedding.npz`` of the first seed.
"""
from __future__ import annotations

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
    view = View.load(io.view_path(run.profile, run.view))
    graph = KnnGraph.load(io.graph_path(run.profile, run.graph)) if block == "train" else None
    checks.check_view(view, name=run.view)  # NaN/empty views stop here, not in scikit-learn or faiss
    checks.check_fits(view, run.view, config, graph, getattr(run, "graph", None))
    # Baselines run on CPU unless they declare they can use an accelerator (the deep ones).
    device = pick_device() if block == "train" or getattr(impl, "USES_DEVICE", False) else "cpu"
    n_clusters = view.n_clusters

    labels, index, per_seed = [], None, []
    with io.atomic_dir(io.run_dir(run.profile, name)) as out:
        for seed in profile.seeds:
            seed_everything(seed)
            history: list[dict] = []
            workdir = out / f"seed-{seed}"
            ctx = RunContext(view=view, graph=graph, seed=seed, n_clusters=n_clusters, device=device,
                             progress=progress, workdir=workdir, log=history.append)
            print(f"[{name}] seed {seed}: {run.method} on {run.view} ({len(view.X)} x {view.X.shape[1]}, "
                  f"{n_clusters} clusters, {device})", file=sys.stderr, flush=True)
            with Stopwatch() as sw:
                result = impl.fit_predict(ctx, config)
            rows = np.arange(len(view.X)) if result.index is None else np.asarray(result.index)
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
            per_seed.append({"seed": seed, **sw.as_dict(), "history": result.history or history,
                             "extra": result.extra})
        io.write_npz(out / "predictions.npz", labels=np.stack(labels), index=index,
                     seeds=np.asarray(profile.seeds, dtype=np.int64))
        record = {
            "run": name, "block": block, "method": run.method, "task": impl.TASK,
            "view": run.view, "graph": getattr(run, "graph", None), "profile": run.profile,
            "dataset": params.views[run.view].dataset, "embedding": params.views[run.view].embedding,
            "config": config.model_dump(), "n_clusters": n_clusters, "n_rows": int(len(view.X)),
            "n_eval": int(len(index)), "device": device, "per_seed": per_seed,
            "host": {"python": platform.python_version(), "machine": platform.machine(),
                     "threads": os.environ.get("OMP_NUM_THREADS"),
                     "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
        }
        io.write_json(out / "run.json", record)
    return record

"""How far a long run has got, read from its seeds' resumable checkpoints, never continuing them:
``python -m clusterbench.progress <run> [<run> ...] [--score]``.

A seed of a sampled ConstellationNet row or of LNSCC is hours on a CPU and may be spread over
several sessions, and a run's numbers reach reports/ only once all its seeds have finished
(score@<profile> reads whole runs). This prints, per seed, the epoch reached, the last training
loss, the mean epoch time and whether training has ended (the method's label-free stop, or its
epoch cap). ``--score`` also scores every finished seed: its checkpoint folder is copied, the
method resumes from the copy, which has nothing left to train, and predicts; the labels score
that prediction and choose nothing. A copy that would train (an unfinished seed, or a checkpoint
written by other code or settings, which the method would not continue) is stopped at its first
epoch and reported, and the run's own checkpoints are never written.
"""
from __future__ import annotations

from . import threads  # noqa: F401  (first: pins BLAS/OpenMP threads, as every stage does)
import argparse  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from . import config, io, metrics, runs  # noqa: E402
from .config import method_config  # noqa: E402
from .graphs import KnnGraph  # noqa: E402
from .methods import RunContext, checkpoints, seed_everything  # noqa: E402

CHECKPOINT = checkpoints.LATEST


class WouldTrain(RuntimeError):
    """Raised from the method's epoch log: the copy was about to be trained, not just read."""


def _seconds(row: dict) -> float | None:
    value = row.get("seconds", row.get("wall_s"))
    return float(value) if isinstance(value, (int, float)) else None


def checkpoint_status(path: Path, max_epochs: int | None) -> dict:
    """One checkpoint file's progress (its epoch, stop flag and per-epoch history)."""
    state = checkpoints.load(path)
    epoch = int(state.get("epoch", 0))
    history = [row for row in state.get("history", []) if isinstance(row, dict)]
    seconds = [s for s in map(_seconds, history) if s is not None]
    stopped = state.get("stopped")
    capped = max_epochs is not None and epoch >= max_epochs
    status = {"checkpoint": str(path), "epoch": epoch, "max_epochs": max_epochs,
              "stopped": stopped if isinstance(stopped, str) else bool(stopped),
              "finished": bool(stopped) or capped,
              "loss": history[-1].get("loss") if history else None,
              "best_loss": min((r["loss"] for r in history if isinstance(r.get("loss"), (int, float))), default=None),
              "seconds_per_epoch": round(float(np.mean(seconds)), 1) if seconds else None}
    if not status["finished"] and max_epochs is not None and seconds:
        status["at_most_s_left"] = round((max_epochs - epoch) * float(np.mean(seconds)), 0)
    return status


def run_progress(params, name: str) -> list[dict]:
    """Every seed of a train run: its checkpoints' status, or ``started: False``."""
    if name not in params.train:
        raise config.ParamsError(f"{name!r} is not a train run (runs.yaml `train:`); only training methods "
                                 f"keep resumable checkpoints")
    run = params.train[name]
    _, settings = method_config(params, "train", name)
    max_epochs = getattr(settings, "epochs", None)
    seeds = []
    for seed in params.profiles[run.profile].seeds:
        folder = io.checkpoint_dir(run.profile, name, seed)
        files = sorted(folder.glob(f"*/{CHECKPOINT}")) + sorted(folder.glob(CHECKPOINT))
        parts = [checkpoint_status(path, max_epochs) for path in files]
        seeds.append({"seed": int(seed), "started": bool(parts), "checkpoints": parts,
                      "finished": bool(parts) and all(p["finished"] for p in parts)})
    return seeds


def score_finished_seed(params, name: str, seed: int) -> dict:
    """Metrics of one finished seed: the method resumes from a copy of its checkpoints and only
    predicts (WouldTrain if it would train an epoch instead)."""
    run = params.train[name]
    impl, settings = method_config(params, "train", name)
    view, eval_rows = runs.load_run_view(run)
    graph = KnnGraph.load(io.graph_path(run.profile, run.graph))

    def refuse(row: dict) -> None:
        raise WouldTrain(f"{name} seed {seed}: its checkpoint would be trained further (epoch {row.get('epoch')}), "
                         f"not read: the seed has not finished, or its checkpoint was written by other code or "
                         f"settings; nothing was written to {io.checkpoint_dir(run.profile, name, seed)}")

    with tempfile.TemporaryDirectory(prefix="clusterbench-progress-") as scratch:
        state = Path(scratch) / "state"
        shutil.copytree(io.checkpoint_dir(run.profile, name, seed), state)
        seed_everything(seed)
        ctx = RunContext(view=view, graph=graph, seed=seed, n_clusters=view.n_clusters, device="cpu",
                         progress=False, workdir=Path(scratch) / "work", checkpoint_dir=state, log=refuse)
        result = impl.fit_predict(ctx, settings)
    rows = runs.evaluated_rows(result, view, eval_rows)
    scores = metrics.score(view.y[rows], np.asarray(result.labels), impl.TASK)
    return {key: round(float(value), 6) for key, value in scores.items()}


def describe(name: str, seeds: list[dict]) -> list[str]:
    lines = [f"{name}: {sum(s['finished'] for s in seeds)} of {len(seeds)} seeds finished"]
    for s in seeds:
        if not s["started"]:
            lines.append(f"  seed {s['seed']}: not started")
            continue
        for part in s["checkpoints"]:
            where = Path(part["checkpoint"]).parent.name
            cap = f"/{part['max_epochs']}" if part["max_epochs"] else ""
            state = (f"stopped ({part['stopped']})" if isinstance(part["stopped"], str) else "stopped (label-free)") \
                if part["stopped"] else ("finished (epoch cap)" if part["finished"] else "running or interrupted")
            loss = "" if part["loss"] is None else f", loss {part['loss']:.4f} (best {part['best_loss']:.4f})"
            speed = "" if part["seconds_per_epoch"] is None else f", {part['seconds_per_epoch']:.0f} s/epoch"
            left = f", at most {part['at_most_s_left'] / 3600:.1f} h left at that pace" \
                if "at_most_s_left" in part else ""
            lines.append(f"  seed {s['seed']} [{where}]: epoch {part['epoch']}{cap}{loss}{speed}; {state}{left}")
        if "scores" in s:
            lines.append("    " + ", ".join(f"{k} {v:.4f}" for k, v in s["scores"].items()
                                          if k in ("acc", "nmi", "ari")))
    scored = [s["scores"] for s in seeds if "scores" in s]
    if scored:
        means = {k: (np.mean([x[k] for x in scored]), np.std([x[k] for x in scored], ddof=1) if len(scored) > 1 else 0.0)
                 for k in ("acc", "nmi", "ari") if all(k in x for x in scored)}
        lines.append(f"  finished seeds (n={len(scored)}): " + ", ".join(f"{k} {m:.3f} ± {sd:.3f}"
                                                                      for k, (m, sd) in means.items()))
    return lines


@config.main_guard
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="RUN", help="train runs (runs.yaml `train:`)")
    ap.add_argument("--score", action="store_true",
                    help="also score each finished seed (inference from a copy of its checkpoint; labels only score)")
    args = ap.parse_args(argv)
    params = config.load()
    for name in args.runs:
        seeds = run_progress(params, name)
        if args.score:
            for s in seeds:
                if s["finished"]:
                    try:
                        s["scores"] = score_finished_seed(params, name, s["seed"])
                    except WouldTrain as exc:
                        print(f"warning: {exc}", file=sys.stderr)
        print("\n".join(describe(name, seeds)))


if __name__ == "__main__":
    main()

"""figures@<profile>: the plots a researcher looks at, as DVC plot files.

For every finished run of a profile (runs not executed on this machine are skipped):

- ``<reports>/plots/curves/<run>.csv``: the per-epoch training history of the first seed
  (``epoch``, ``loss`` and whatever else the method logs), for ``dvc plots show`` / ``diff``;
- ``<reports>/plots/confusion/<run>.csv``: true class vs predicted cluster of the first seed for
  the paper methods (clusters renamed to their Hungarian-matched class so the diagonal reads as
  agreement), drawn by DVC's confusion template;
- ``<reports>/plots/embeddings/<run>.png``: the learnt embedding of the first seed in 2-D
  (PCA when it has more dimensions), coloured by true class.

Labels are used here only to draw, never to choose anything.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from . import io, metrics
from .config import Params

LOSS_ALIASES = ("loss", "train_loss")


def _curve_rows(history: list[dict]) -> list[dict]:
    rows = []
    for i, row in enumerate(history):
        flat = {k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        flat["epoch"] = int(row.get("epoch", i + 1))
        loss = next((row[k] for k in LOSS_ALIASES if isinstance(row.get(k), (int, float))), None)
        if loss is None:
            continue
        flat["loss"] = float(loss)
        rows.append(flat)
    return rows


def _write_csv(path: Path, rows: list[dict], first: list[str]) -> None:
    fields = first + sorted({k for r in rows for k in r} - set(first))
    with io.atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)


def matched_predictions(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Predicted clusters renamed to the class ``metrics.match_clusters`` pairs them with;
    unmatched clusters keep a name of their own (``cluster <c>``)."""
    name = {cluster: str(cls) for cluster, cls in metrics.match_clusters(y_true, y_pred).cluster_to_class.items()}
    return np.array([name.get(p, f"cluster {p}") for p in np.asarray(y_pred).tolist()])


def _embedding_png(path: Path, emb: np.ndarray, y: np.ndarray, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    emb = np.asarray(emb, dtype=np.float64)
    how = "2-D"
    if emb.shape[1] > 2:
        centred = emb - emb.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        emb, how = centred @ vt[:2].T, "PCA to 2-D"
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.scatter(emb[:, 0], emb[:, 1], c=y, s=3, cmap="tab10" if len(np.unique(y)) <= 10 else "tab20", linewidths=0)
    ax.set_title(f"{title}\n(embedding, {how}; colour = true class)", fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def build(params: Params, profile: str) -> dict:
    from .embeddings import View

    out = Path(params.profiles[profile].reports) / "plots"
    written = {"curves": 0, "confusion": 0, "embeddings": 0}
    with io.atomic_dir(out) as tmp:
        for sub in written:
            (tmp / sub).mkdir()
        views: dict[str, View] = {}
        for block in ("train", "baselines"):
            for name, run in sorted(getattr(params, block).items()):
                rdir = io.run_dir(profile, name)
                if run.profile != profile or not (rdir / "predictions.npz").is_file():
                    continue
                record = io.read_json(rdir / "run.json")
                rows = _curve_rows((record.get("per_seed") or [{}])[0].get("history") or [])
                if rows:
                    _write_csv(tmp / "curves" / f"{name}.csv", rows, ["epoch", "loss"])
                    written["curves"] += 1
                if block != "train" or record.get("task") != "clustering":
                    continue
                if run.view not in views:
                    views[run.view] = View.load(io.view_path(profile, run.view))
                pred = io.read_npz(rdir / "predictions.npz")
                y_true = views[run.view].y[pred["index"]]
                matched = matched_predictions(y_true, pred["labels"][0])
                _write_csv(tmp / "confusion" / f"{name}.csv",
                           [{"actual": str(t), "predicted": p} for t, p in zip(y_true, matched)],
                           ["actual", "predicted"])
                written["confusion"] += 1
                if (rdir / "embedding.npz").is_file():
                    emb = io.read_npz(rdir / "embedding.npz")["embedding"]
                    if len(emb) != len(y_true):   # an embedding of other rows than the evaluated ones
                        continue
                    _embedding_png(tmp / "embeddings" / f"{name}.png", emb, y_true, name)
                    written["embeddings"] += 1
        for sub in written:  # keep empty folders visible to DVC and git
            if not any((tmp / sub).iterdir()):
                (tmp / sub / ".gitkeep").write_text("")
    return written

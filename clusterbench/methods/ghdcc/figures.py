"""GHDCC figures from finished run folders (no training here; labels only colour and score).

* Embedding (the paper's Fig. 4): a 2-d map (UMAP, or t-SNE as the paper) of GCN1's features of
  the first seed (``embedding.npz``), two panels: coloured by true class and by predicted
  cluster (clusters renamed to their Hungarian-matched class, so a colour means the same thing
  in both panels). At most ``max_points`` rows are drawn, a fixed-seed random subset.
* Confusion matrix (the paper's Fig. 7): true class x predicted cluster of the first seed,
  columns ordered by the Hungarian matching (matched pairs on the diagonal), counts annotated.
* Fig. 6: ACC and NMI (mean +- std over seeds) against the interpolation lambda. Runs that were
  not run are named in a note on the plot; with none, the empty axes (lambda 0.1-0.9) carry the
  reason in their centre.

Each function writes its PNG atomically (``io.atomic_path``) and returns a small dict of what it
drew, so tests can check the content and not only that a file appeared; ``write_all`` writes a
set of them all-or-nothing (the stage's outputs).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ... import io, metrics

PROJECTIONS = ("umap", "tsne")
MAX_POINTS = 5000
SUBSAMPLE_SEED = 0
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_png: Path, dpi: int) -> Path:
    out_png = Path(out_png)
    with io.atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return out_png


def _true_labels(view, index: np.ndarray) -> np.ndarray:
    """y of the evaluated rows; ``view`` is a View, a path to a view .npz, or y itself."""
    if isinstance(view, (str, Path)):
        from ...embeddings import View

        view = View.load(view)
    y = view if isinstance(view, np.ndarray) else view.y
    return np.asarray(y)[index]


def _first_seed(run_dir: Path, view) -> tuple[np.ndarray, np.ndarray, int]:
    """(y_true, y_pred, seed) of the first seed, evaluated rows only."""
    pred = io.read_npz(Path(run_dir) / "predictions.npz")
    return _true_labels(view, pred["index"]), pred["labels"][0], int(pred["seeds"][0])


def matched_confusion(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Contingency table (true class x predicted cluster) with the clusters' columns ordered by
    ``metrics.match_clusters``: column i is the cluster matched to class i; clusters left
    unmatched (more clusters than classes) follow. Rows with a negative true label (noise) are
    left out, as the metrics do."""
    m = metrics.match_clusters(y_true, y_pred)
    order = [int(c) for _, c in sorted(zip(m.rows, m.cols))]    # by class
    order += [c for c in range(len(m.clusters)) if c not in set(order)]
    return {"matrix": m.counts[:, order], "classes": m.classes, "clusters": m.clusters[order],
            "matched": m.matched, "n": int(m.counts.sum()), "acc": m.accuracy,
            "cluster_to_class": {int(k): int(v) for k, v in m.cluster_to_class.items()}}


def _project(x: np.ndarray, projection: str, seed: int) -> np.ndarray:
    if projection == "umap":
        import umap

        return umap.UMAP(n_components=2, random_state=seed, n_jobs=1).fit_transform(x)
    if projection == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
        return TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed,
                    n_jobs=1).fit_transform(x)
    raise ValueError(f"projection {projection!r}: expected one of {', '.join(PROJECTIONS)}")


def embedding_figure(run_dir, view, out_png, projection: str = "umap", max_points: int = MAX_POINTS,
                     seed: int = SUBSAMPLE_SEED, title: str | None = None,
                     project: Callable[[np.ndarray, int], np.ndarray] | None = None) -> dict[str, Any]:
    """Two panels of a 2-d map of GCN1's features: colour = true class | predicted cluster.

    ``project(x, seed) -> (n, 2)`` replaces UMAP / t-SNE (tests); ``projection`` names the method
    in the title either way."""
    if project is None and projection not in PROJECTIONS:
        raise ValueError(f"projection {projection!r}: expected one of {', '.join(PROJECTIONS)}")
    run_dir = Path(run_dir)
    emb = io.read_npz(run_dir / "embedding.npz")
    z, labels, emb_seed = emb["embedding"], emb["labels"], int(emb["seed"])
    pred = io.read_npz(run_dir / "predictions.npz")
    y = _true_labels(view, pred["index"])
    if len(z) != len(y) or len(labels) != len(y):
        raise ValueError(f"{run_dir}: embedding.npz has {len(z)} rows, the evaluated rows are {len(y)}")
    acc, nmi = metrics.hungarian_accuracy(y, labels), metrics.nmi(y, labels)
    mapping = matched_confusion(y, labels)["cluster_to_class"]
    # unmatched clusters get colours past the classes'
    extra = {c: int(y.max()) + 1 + i for i, c in enumerate(sorted(set(np.unique(labels)) - set(mapping)))}
    coloured = np.array([mapping.get(int(c), extra.get(int(c))) for c in labels])
    n = len(z)
    rows = np.arange(n)
    if n > max_points:
        rows = np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))
    x = np.asarray(z[rows], dtype=np.float32)
    xy = np.asarray(project(x, seed) if project is not None else _project(x, projection, seed))
    if xy.shape != (len(rows), 2):
        raise ValueError(f"projection returned shape {xy.shape}, expected {(len(rows), 2)}")

    plt = _plt()
    n_colours = max(int(y.max()), int(coloured.max())) + 1
    cmap = "tab10" if n_colours <= 10 else "tab20" if n_colours <= 20 else "nipy_spectral"
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.6))
    for ax, c, what in ((axes[0], y[rows], "true class"),
                        (axes[1], coloured[rows], "predicted cluster (coloured as its matched class)")):
        ax.scatter(xy[:, 0], xy[:, 1], c=c, cmap=cmap, vmin=0, vmax=n_colours - 1, s=2, alpha=0.7,
                   linewidths=0)
        ax.set_title(f"colour = {what}", fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    method = {"umap": "UMAP", "tsne": "t-SNE"}.get(projection, projection)
    drawn = (f"all {n} points" if len(rows) == n
             else f"{len(rows)} of {n} points (random subset, seed {seed})")
    fig.suptitle(f"{title or run_dir.name}: GCN1 features (first seed, {emb_seed}), {method} to 2-d, {drawn}\n"
                 f"ACC {acc:.3f}  NMI {nmi:.3f} (seed {emb_seed}, all {n} evaluated rows)", fontsize=9)
    fig.tight_layout()
    path = _save(fig, out_png, dpi=120)
    plt.close(fig)
    return {"path": path, "projection": projection, "n": n, "drawn": len(rows), "acc": acc, "nmi": nmi,
            "seed": emb_seed}


def confusion_figure(run_dir, view, out_png, title: str | None = None, annotate_max: int = 30) -> dict[str, Any]:
    """True class x predicted cluster of the first seed after the Hungarian matching, counts
    annotated (up to ``annotate_max`` clusters; past that the cells are too small to read)."""
    run_dir = Path(run_dir)
    y, pred, seed = _first_seed(run_dir, view)
    conf = matched_confusion(y, pred)
    m = conf["matrix"]
    plt = _plt()
    side = max(5.0, min(16.0, 0.5 * m.shape[1] + 2))
    fig, ax = plt.subplots(figsize=(side, side * m.shape[0] / m.shape[1] * 0.9 + 0.8))
    ax.imshow(m, cmap="Blues", aspect="auto")
    if max(m.shape) <= annotate_max:
        top = m.max() or 1
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if m[i, j] > 0.5 * top else "black")
        ax.set_xticks(range(m.shape[1]), [str(c) for c in conf["clusters"]], fontsize=7)
        ax.set_yticks(range(m.shape[0]), [str(c) for c in conf["classes"]], fontsize=7)
    ax.set_xlabel("predicted cluster (ordered by its Hungarian-matched class)", fontsize=8)
    ax.set_ylabel("true class", fontsize=8)
    ax.set_title(f"{title or run_dir.name}: confusion matrix, seed {seed}\n"
                 f"matched {conf['matched']} of {conf['n']} = ACC {conf['acc']:.3f}", fontsize=9)
    fig.tight_layout()
    path = _save(fig, out_png, dpi=120)
    plt.close(fig)
    return {**conf, "path": path, "seed": seed}


def _run_scores(run_dir: Path, view) -> dict[str, np.ndarray]:
    pred = io.read_npz(run_dir / "predictions.npz")
    y = _true_labels(view, pred["index"])
    labels = pred["labels"]
    return {"acc": np.array([metrics.hungarian_accuracy(y, p) for p in labels]),
            "nmi": np.array([metrics.nmi(y, p) for p in labels])}


def _is_run(run_dir) -> bool:
    return run_dir is not None and (Path(run_dir) / "predictions.npz").is_file()


def lambda_sweep_figure(runs: Sequence[tuple], out_png, view=None, reason: str | dict = "not run",
                        title: str = "GHDCC Fig. 6: interpolation λ", xlim: tuple[float, float] = (0.1, 0.9)
                        ) -> dict[str, Any]:
    """ACC and NMI (mean +- std over seeds) against lambda.

    ``runs``: ``(lambda, run_dir or None)`` or ``(lambda, run_dir or None, view)``; a run whose
    folder is None or has no predictions.npz is "not run". ``view`` (View, view path or y) is the
    default data for the 2-tuples. ``reason``: why the missing runs were not run, one string or
    ``{lambda: reason}``."""
    plotted: dict[float, dict[str, tuple[float, float, int]]] = {}
    missing: dict[float, str] = {}
    for entry in runs:
        lam, run_dir = float(entry[0]), entry[1]
        run_view = entry[2] if len(entry) > 2 else view
        if not _is_run(run_dir):
            missing[lam] = reason.get(lam, "not run") if isinstance(reason, dict) else reason
            continue
        scores = _run_scores(Path(run_dir), run_view)
        plotted[lam] = {k: (float(v.mean()), float(v.std()), len(v)) for k, v in scores.items()}
    lams = sorted(plotted)

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for key, colour, marker in (("acc", "tab:blue", "o"), ("nmi", "tab:orange", "s")):
        if lams:
            ax.errorbar(lams, [plotted[l][key][0] for l in lams], yerr=[plotted[l][key][1] for l in lams],
                        color=colour, marker=marker, capsize=3, label=key.upper())
    lo, hi = min([xlim[0], *lams, *missing]), max([xlim[1], *lams, *missing])
    ax.set_xlim(lo - 0.05, hi + 0.05)
    ax.set_ylim(0, 1)
    ax.set_xticks(np.round(np.arange(round(lo * 10), round(hi * 10) + 1) / 10, 1))
    ax.set_xlabel("λ (weight of the linear interpolation)")
    ax.set_ylabel("score (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    if lams:
        seeds = sorted({plotted[l]["acc"][2] for l in lams})
        ax.legend(loc="lower right", fontsize=8, title=f"n seeds = {', '.join(map(str, seeds))}",
                  title_fontsize=7)
    by_reason: dict[str, list[float]] = {}
    for lam in sorted(missing):
        by_reason.setdefault(missing[lam], []).append(lam)
    notes = [f"not run (λ = {', '.join(f'{l:g}' for l in ls)}): {why}" for why, ls in by_reason.items()]
    import textwrap

    if not lams:
        text = "\n".join(textwrap.fill(n, 60) for n in notes) or "no runs"
        ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=7.5,
                bbox={"boxstyle": "round", "facecolor": "whitesmoke", "edgecolor": "grey"})
    elif notes:
        fig.text(0.01, 0.01, "\n".join(textwrap.fill(n, 120) for n in notes), fontsize=6.5, va="bottom")
    n_lines = sum(len(textwrap.fill(n, 120).splitlines()) for n in notes) if lams else 0
    ax.set_title(title, fontsize=9)
    fig.tight_layout(rect=(0, min(0.4, 0.03 * n_lines + (0.02 if n_lines else 0)), 1, 1))
    path = _save(fig, out_png, dpi=120)
    plt.close(fig)
    return {"path": path, "plotted": lams, "missing": sorted(missing), "scores": plotted, "notes": notes}


def write_all(figures: dict[str, Callable[[Path], Any]]) -> dict[str, Any]:
    """Write several PNGs all-or-nothing: ``{out_png: draw(tmp_png)}``. Each is drawn to a
    temporary file beside its output; only when every one succeeded are they renamed onto their
    outputs, so a failure leaves the previous outputs (or none) and no temporaries."""
    results = {}
    with contextlib.ExitStack() as stack:
        tmps = {out: stack.enter_context(io.atomic_path(out)) for out in figures}
        for out, draw in figures.items():
            results[out] = draw(tmps[out])
            if tmps[out].read_bytes()[:8] != PNG_MAGIC:
                raise RuntimeError(f"{out}: the figure was not written as a PNG")
    # the ExitStack renamed every temporary onto its output; the results name the outputs
    for out, result in results.items():
        if isinstance(result, dict) and "path" in result:
            result["path"] = Path(out)
    return results

"""LNSCC figures from a finished run folder (no training here, no labels used).

* Figure 1d: the learnt embedding of every evaluated row, coloured by its LNSCC cluster
  (argmax U). A 2-d Z is drawn as it is; a wider Z (the paper's 64-d) is drawn through a
  2-d PCA of Z, and the title says so.
* Figure 5: the training progression saved by the method (``seed-<s>/progress.npz``): top, the
  snapshot rows in 2-d coloured by their cluster at that step; bottom, the distribution of
  O_ij = exp(-||Z_i - Z_j||) for pairs inside each of the two closest final clusters and
  between them. The paper picks the two closest *classes*; we pick the two clusters whose
  final centroids in Z are closest, so the figure needs no labels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ... import io


def _pca_2d(z: np.ndarray, basis: tuple[np.ndarray, np.ndarray] | None = None):
    """Project on the top-2 principal axes (of ``z`` unless ``basis`` = (mean, axes) is given)."""
    if z.shape[1] <= 2:
        return (z if z.shape[1] == 2 else np.concatenate([z, np.zeros_like(z)], 1)), None
    if basis is None:
        mean = z.mean(0)
        _, _, vt = np.linalg.svd(z - mean, full_matrices=False)
        basis = (mean, vt[:2].T)
    return (z - basis[0]) @ basis[1], basis


def closest_clusters(z: np.ndarray, labels: np.ndarray, min_size: int = 5) -> tuple[int, int] | None:
    """The two clusters (with at least ``min_size`` rows) whose centroids in Z are closest;
    None when fewer than two clusters are that large (e.g. after a few smoke steps)."""
    ids = [c for c in np.unique(labels) if np.sum(labels == c) >= min_size]
    if len(ids) < 2:
        return None
    cents = np.stack([z[labels == c].mean(0) for c in ids])
    dist = np.linalg.norm(cents[:, None] - cents[None], axis=2)
    dist[np.diag_indices_from(dist)] = np.inf
    a, b = np.unravel_index(np.argmin(dist), dist.shape)
    return int(ids[a]), int(ids[b])


def pair_similarities(z: np.ndarray, rows_a: np.ndarray, rows_b: np.ndarray | None = None,
                      max_pairs: int = 20000, seed: int = 0) -> np.ndarray:
    """O = exp(-d) for (a sample of) the pairs inside ``rows_a`` or between ``rows_a`` and ``rows_b``."""
    rng = np.random.default_rng(seed)
    if rows_b is None:
        i = rng.choice(rows_a, max_pairs)
        j = rng.choice(rows_a, max_pairs)
        keep = i != j
        i, j = i[keep], j[keep]
    else:
        i, j = rng.choice(rows_a, max_pairs), rng.choice(rows_b, max_pairs)
    return np.exp(-np.linalg.norm(z[i] - z[j], axis=1))


def figure_embedding(run_dir: Path, out_png: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = io.read_npz(Path(run_dir) / "embedding.npz")
    z, labels = data["embedding"], data["labels"]
    xy, _ = _pca_2d(z)
    how = "learnt 2-d Z" if z.shape[1] == 2 else f"2-d PCA of the learnt {z.shape[1]}-d Z"
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=2, alpha=0.7, linewidths=0)
    ax.set_title(f"{title}\nLNSCC embedding ({how}), colour = LNSCC cluster (seed {int(data['seed'])})",
                 fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    out_png = Path(out_png)
    with io.atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    plt.close(fig)
    return out_png


def figure_progress(run_dir: Path, out_png: Path, title: str = "", seed: int | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    seed_dirs = sorted(run_dir.glob("seed-*")) if seed is None else [run_dir / f"seed-{seed}"]
    seed_dirs = [d for d in seed_dirs if (d / "progress.npz").is_file()]
    if not seed_dirs:
        raise FileNotFoundError(f"{run_dir}: no seed-*/progress.npz (run LNSCC with snapshots > 0)")
    prog = io.read_npz(seed_dirs[0] / "progress.npz")
    z_all, lab_all, epochs = prog["z"].astype(np.float32), prog["labels"].astype(np.int64), prog["epochs"]
    final_z, final_lab = z_all[-1], lab_all[-1]
    pair = closest_clusters(final_z, final_lab)
    if pair is None:  # one cluster only: show the similarities of all pairs instead
        groups = [(np.arange(len(final_lab)), None, "tab:gray", "all pairs (one cluster)")]
    else:
        a, b = pair
        rows_a, rows_b = np.flatnonzero(final_lab == a), np.flatnonzero(final_lab == b)
        groups = [(rows_a, None, "tab:red", f"intra {a}"), (rows_b, None, "tab:blue", f"intra {b}"),
                  (rows_a, rows_b, "tab:purple", f"inter {a}-{b}")]
    n = len(z_all)
    fig, axes = plt.subplots(2, n, figsize=(2.6 * n, 5.4), squeeze=False)
    _, basis = _pca_2d(final_z)
    bins = np.linspace(0, 1, 41)
    for k in range(n):
        xy, _ = _pca_2d(z_all[k], basis)
        ax = axes[0, k]
        ax.scatter(xy[:, 0], xy[:, 1], c=lab_all[k], cmap="tab10", s=1.5, alpha=0.7, linewidths=0)
        ax.set_title(f"epoch {epochs[k]:.2f}", fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
        ax = axes[1, k]
        for rows, other, colour, name in groups:
            ax.hist(pair_similarities(z_all[k], rows, other), bins=bins, density=True, histtype="step",
                    color=colour, label=name)
        ax.set_xlabel("O = exp(-d)", fontsize=8)
        ax.tick_params(labelsize=7)
        if k == 0:
            ax.legend(fontsize=7)
    how = "" if final_z.shape[1] == 2 else f" (2-d PCA of {final_z.shape[1]}-d Z, axes of the final step)"
    fig.suptitle(f"{title} LNSCC training progression{how}; bottom: similarities within and between the "
                 f"two closest final clusters ({seed_dirs[0].name})", fontsize=9)
    fig.tight_layout()
    out_png = Path(out_png)
    with io.atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return out_png

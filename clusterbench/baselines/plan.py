"""Which baseline runs on which data set, with which protocol: the source of params.yaml's
``# --- baselines ---`` entries (views and runs).

``python -m clusterbench.baselines.plan`` prints the YAML blocks; run names follow
``<variant>-<dataset>`` (full) and ``smoke-<variant>-<dataset>`` (smoke). Entries whose data
set or embedding is not registered in this checkout (a pretrained embedding, a download-only
data set) are printed in a separate "pending" block, so the list is complete once the
datasets and embeddings of the other areas are merged.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

# Paper-image data sets available offline, and the scalable subset used on 70k points.
IMAGE_OFFLINE = ["mnist-sample10k", "fashion-mnist-test", "digits"]
LARGE_OFFLINE = ["fashion-mnist"]
FCPS = ["fcps-atom", "fcps-chainlink", "fcps-engytime", "fcps-hepta", "fcps-lsun", "fcps-target", "fcps-tetra",
        "fcps-twodiamonds", "fcps-wingnut"]
UCI = ["uci-ecoli", "uci-glass", "uci-ionosphere", "uci-sonar", "uci-statlog", "uci-wdbc", "uci-wine", "uci-yeast"]
BATTERIES = FCPS + UCI
# Download-only data sets the papers' tables need (registered by the datasets area).
PENDING_IMAGES = ["mnist", "mnist-test", "usps", "cifar-10", "cifar-100-20", "imagenet-10", "imagenet-dogs",
                  "cifar-100", "oxford-flowers-102"]

SHALLOW = ["kmeans", "dbscan", "optics", "birch", "ward", "agglomerative", "hdbscan", "nmf", "umap-kmeans",
           "denpeak", "ncut", "sc-st", "sc-ls", "ldmgi"]
DEEP = ["ae-kmeans", "dec", "idec", "dcn", "dkm"]

# ConstellationNet Table 4 "+UMAP" k-means: UMAP as in its code (256 dims, 50 neighbours, min_dist 0).
CONSTELLATION_UMAP = {"n_components": 256, "n_neighbors": 50, "min_dist": 0.0}
# On the low-dimensional batteries: the density methods' paper settings (eps 3 on pixels, OPTICS on
# 1k points) make no sense; sklearn's defaults with a label-free eps, UMAP to 2-d.
BATTERY_OVERRIDES = {
    "dbscan": {"eps": None, "min_samples": 5},
    "optics": {"min_samples": 5, "max_samples": None},
    "birch": {"max_samples": None},
    "umap-kmeans": {"n_components": 2},
}
# On 70k points: agglomerative without connectivity would need ~59 GB (refused up front), and the
# exact O(N^2 d) HDBSCAN (~5 min at 10k here) and density peaks (~1 min at 10k) would take hours
# over three seeds, so those three are left out of this extra (no paper table uses 70k Fashion-MNIST).
LARGE_SHALLOW = ["kmeans", "dbscan", "optics", "birch", "ward", "nmf", "umap-kmeans", "ncut", "sc-st", "sc-ls",
                 "ldmgi"]


@dataclass
class Run:
    variant: str
    method: str
    dataset: str
    embedding: str = "raw"
    overrides: dict = field(default_factory=dict)

    @property
    def view(self) -> str:
        return f"{self.dataset}-{self.embedding}"


def full_runs() -> list[Run]:
    runs: list[Run] = []
    for ds in IMAGE_OFFLINE:
        runs += [Run(m, m, ds) for m in SHALLOW + DEEP]
        runs.append(Run("kmeans-umap256", "umap-kmeans", ds, overrides=dict(CONSTELLATION_UMAP)))
    for ds in LARGE_OFFLINE:
        runs += [Run(m, m, ds) for m in LARGE_SHALLOW]
    for ds in BATTERIES:
        runs += [Run(m, m, ds, overrides=dict(BATTERY_OVERRIDES.get(m, {}))) for m in SHALLOW if m != "nmf"]
    return runs


def pending_runs() -> list[Run]:
    """Runs that need a download-only data set or a pretrained embedding from another area."""
    runs: list[Run] = []
    # LNSCC Table 2: MNIST (70k), MNIST-test, USPS columns; VGG rows on every image column.
    for ds in ["mnist", "mnist-test", "usps"]:
        runs += [Run(m, m, ds) for m in ["kmeans", "dbscan", "denpeak", "ncut", "ldmgi", "sc-st", "sc-ls",
                                         "umap-kmeans", "dec", "idec", "dkm", "dcn"]]
    runs += [Run(m, m, "reuters-10k") for m in ["kmeans", "dbscan", "umap-kmeans", "dec", "idec"]]
    for ds in ["mnist", "mnist-test", "usps", "fashion-mnist-test", "mnist-sample10k"]:
        runs.append(Run("kmeans-vgg16", "kmeans", ds, embedding="vgg16"))
        runs.append(Run("umap-kmeans-vgg16", "umap-kmeans", ds, embedding="vgg16"))
    # ConstellationNet Tables 1, 3, 4, 5 on the real MNIST / CIFAR / Flowers.
    runs += [Run(m, m, "mnist", overrides=o) for m, o in [("optics", {}), ("birch", {}), ("ward", {}),
                                                         ("hdbscan", {}), ("agglomerative", {"max_samples": 10000})]]
    runs.append(Run("kmeans-umap256", "umap-kmeans", "mnist", overrides=dict(CONSTELLATION_UMAP)))
    runs += [Run("kmeans", "kmeans", ds) for ds in ["cifar-10", "cifar-100", "oxford-flowers-102"]]
    runs.append(Run("agglomerative", "agglomerative", "cifar-10", overrides={"connectivity_k": 10}))
    runs.append(Run("kmeans-umap256", "umap-kmeans", "cifar-10", overrides=dict(CONSTELLATION_UMAP)))
    runs.append(Run("kmeans-dinov2", "kmeans", "cifar-10", embedding="dinov2-l"))
    runs.append(Run("kmeans-dinov2-umap256", "kmeans", "cifar-10", embedding="dinov2-l-umap256"))
    # IcicleGCN Tables 1-3 on raw pixels.
    for ds in ["cifar-10", "cifar-100-20", "imagenet-10", "imagenet-dogs"]:
        runs += [Run(m, m, ds) for m in ["kmeans", "sc-st", "ward", "nmf", "ae-kmeans", "dec"]]
    return runs


def smoke_runs() -> list[Run]:
    runs = [Run(m, m, "mnist-sample10k") for m in SHALLOW + DEEP]
    # 256 UMAP dimensions of 600 points cost 20 s a seed; the smoke run checks the code path.
    runs.append(Run("kmeans-umap256", "umap-kmeans", "mnist-sample10k",
                    overrides={**CONSTELLATION_UMAP, "n_components": 16}))
    runs += [Run(m, m, "fcps-hepta", overrides=dict(BATTERY_OVERRIDES.get(m, {})))
             for m in ["kmeans", "dbscan", "sc-st"]]  # the leaderboard's code path, at ~5 s of DVC per stage
    return runs


def _yaml_value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def _overrides(o: dict) -> str:
    if not o:
        return ""
    return ", overrides: {" + ", ".join(f"{k}: {_yaml_value(v)}" for k, v in o.items()) + "}"


def render(runs: list[Run], profile: str, known_views: set[str] = frozenset()) -> tuple[list[str], list[str]]:
    """(view lines, run lines) of ``runs`` in ``profile``; views in ``known_views`` are not repeated."""
    prefix = "" if profile == "full" else f"{profile}-"
    views, lines, seen = [], [], set(known_views)
    for r in runs:
        view = f"{prefix}{r.view}"
        if view not in seen:
            seen.add(view)
            views.append(f"  {view}: {{dataset: {r.dataset}, embedding: {r.embedding}, profile: {profile}}}")
        name = f"{prefix}{r.variant}-{r.dataset}"
        lines.append(f"  {name}: {{method: {r.method}, view: {view}, profile: {profile}{_overrides(r.overrides)}}}")
    return views, lines


def main() -> None:
    """Print the views and runs of the plan that params.yaml (argument, default ./params.yaml) lacks."""
    from pathlib import Path

    import yaml

    params = yaml.safe_load(Path(sys.argv[1] if len(sys.argv) > 1 else "params.yaml").read_text())
    known_views = set(params.get("views") or {})
    known_runs = set(params.get("baselines") or {})
    out = []
    for title, runs, profile in (("full", full_runs(), "full"), ("smoke", smoke_runs(), "smoke"),
                                 ("pending (after the datasets and embeddings areas are merged)", pending_runs(),
                                  "full")):
        views, lines = render(runs, profile, known_views)
        known_views |= {v.split(":")[0].strip() for v in views}
        lines = [line for line in lines if line.split(":")[0].strip() not in known_runs]
        out += [f"# {title}: views", *views, f"# {title}: runs", *lines, ""]
    print("\n".join(out))


if __name__ == "__main__":
    main()

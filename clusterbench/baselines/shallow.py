"""Shallow baselines from scikit-learn (and umap-learn), each a thin adapter to the common interface.

Every adapter: takes the view's features, honours a paper-stated subsample (``max_samples``,
drawn with a fixed ``subsample_seed`` so that all seeds score the same rows), builds any kNN
connectivity it needs itself (``connectivity_k``), bounds its memory before computing, and
returns the labels plus the protocol it actually ran (rows fitted, clusters found, noise).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..methods import MethodConfig, Result, RunContext
from ..resources import check_memory
from ._common import connectivity, dense_pairwise_bytes, knn_graph, rescale, subsample_rows, take


def _protocol(labels: np.ndarray, rows: np.ndarray | None, n_total: int, **more) -> dict:
    labels = np.asarray(labels)
    found = np.unique(labels[labels >= 0])
    return {"fit_rows": int(n_total if rows is None else len(rows)), "n_clusters_found": int(len(found)),
            "n_noise": int((labels < 0).sum()), **more}


def _result(labels: np.ndarray, rows: np.ndarray | None, n_total: int, **more) -> Result:
    labels = np.asarray(labels, dtype=np.int64)
    return Result(labels=labels, index=rows, extra=_protocol(labels, rows, n_total, **more))


class Subsampled(MethodConfig):
    max_samples: int | None = Field(None, ge=10, description="fit on a uniform subsample of this size (paper's protocol)")
    subsample_seed: int = Field(0, description="seed of that subsample; fixed so every run seed scores the same rows")


# --- k-means ---------------------------------------------------------------------------------

class KMeansConfig(MethodConfig):
    n_init: int = Field(10, ge=1)
    max_iter: int = Field(300, ge=1)
    init: Literal["k-means++", "random"] = "k-means++"


class KMeansBaseline:
    TASK = "clustering"
    Config = KMeansConfig

    def fit_predict(self, ctx: RunContext, config: KMeansConfig) -> Result:
        from sklearn.cluster import KMeans

        model = KMeans(n_clusters=ctx.n_clusters, n_init=config.n_init, max_iter=config.max_iter,
                       init=config.init, random_state=ctx.seed)
        labels = model.fit_predict(ctx.view.X)
        return Result(labels=labels, extra={"inertia": float(model.inertia_), "n_iter": int(model.n_iter_)})


# --- DBSCAN ----------------------------------------------------------------------------------

class DBSCANConfig(Subsampled):
    eps: float | None = Field(3.0, gt=0, description="neighbourhood radius; null = eps_quantile of the "
                                                      "min_samples-th neighbour distances (label-free)")
    eps_quantile: float = Field(0.9, gt=0, le=1)
    min_samples: int = Field(2, ge=1)


def estimate_radius_pairs(x: np.ndarray, eps: float, seed: int, probes: int = 256) -> float:
    """Expected number of (point, neighbour within eps) pairs, from a random sample of points."""
    n = len(x)
    rng = np.random.default_rng(seed)
    q = x[rng.choice(n, size=min(probes, n), replace=False)].astype(np.float32)
    xf = x.astype(np.float32)
    sq = (xf ** 2).sum(1)
    counts = np.zeros(len(q))
    for start in range(0, n, 8192):
        block = xf[start:start + 8192]
        d2 = (q ** 2).sum(1)[:, None] + sq[start:start + 8192][None, :] - 2.0 * q @ block.T
        counts += (d2 <= eps * eps).sum(1)
    return float(counts.mean() * n)


def resolve_eps(x: np.ndarray, config: DBSCANConfig) -> float:
    if config.eps is not None:
        return float(config.eps)
    k = max(1, config.min_samples - 1)  # sklearn counts the point itself among min_samples
    graph = knn_graph(x, k, "dbscan eps")
    return float(np.quantile(graph.distances[:, -1], config.eps_quantile))


class DBSCANBaseline:
    TASK = "clustering"
    Config = DBSCANConfig

    def fit_predict(self, ctx: RunContext, config: DBSCANConfig) -> Result:
        from sklearn.cluster import DBSCAN

        rows = subsample_rows(len(ctx.view.X), config.max_samples, config.subsample_seed)
        x = take(ctx.view.X, rows)
        eps = resolve_eps(x, config)
        pairs = estimate_radius_pairs(x, eps, config.subsample_seed)
        check_memory(pairs * 16 + len(x) * 64, f"DBSCAN(eps={eps:g}) on {len(x)} points "
                     f"(about {pairs / max(len(x), 1):.0f} neighbours per point)",
                     "Lower dbscan.eps or set dbscan.max_samples.")
        labels = DBSCAN(eps=eps, min_samples=config.min_samples).fit_predict(x)
        return _result(labels, rows, len(ctx.view.X), eps=eps)


# --- OPTICS ----------------------------------------------------------------------------------

class OPTICSConfig(Subsampled):
    max_samples: int | None = Field(1000, ge=10)
    min_samples: int = Field(2, ge=2)
    xi: float = Field(0.05, gt=0, lt=1)
    cluster_method: Literal["xi", "dbscan"] = "xi"


class OPTICSBaseline:
    TASK = "clustering"
    Config = OPTICSConfig

    def fit_predict(self, ctx: RunContext, config: OPTICSConfig) -> Result:
        from sklearn.cluster import OPTICS

        rows = subsample_rows(len(ctx.view.X), config.max_samples, config.subsample_seed)
        x = take(ctx.view.X, rows)
        check_memory(len(x) * 8 * 64 + 256 * len(x) * 8 * 4, f"OPTICS on {len(x)} points")
        from threadpoolctl import threadpool_limits

        # OPTICS issues one tiny radius query per point: OpenMP threads only add barrier waits
        # (50x slower on a busy 2-core machine), so its distance kernels run single-threaded.
        with threadpool_limits(1, user_api="openmp"):
            labels = OPTICS(min_samples=config.min_samples, xi=config.xi,
                            cluster_method=config.cluster_method).fit_predict(x)
        return _result(labels, rows, len(ctx.view.X))


# --- BIRCH -----------------------------------------------------------------------------------

class BirchConfig(Subsampled):
    max_samples: int | None = Field(10000, ge=10)
    n_clusters: int | None = Field(None, ge=2, description="null = the data set's number of classes")
    threshold: float = Field(0.5, gt=0, description="subcluster radius bound, in the units of the scaled features")
    branching_factor: int = Field(50, ge=2)
    scale: Literal["none", "proportional", "standard"] = Field(
        "none", description="features before the CF-tree (the threshold is absolute): none = as the view gives "
                            "them (CN's [0,1] pixels); proportional = centred, all columns divided by the std of all "
                            "entries (the clustering-benchmarks suite's preprocessing); standard = per-column z-scores")
    adapt_threshold: bool = Field(False, description="when the CF-tree has fewer subclusters than clusters asked "
                                                     "for, halve the threshold and rebuild it (label-free); false = "
                                                     "scikit-learn's behaviour (fewer clusters, with a warning)")


MAX_THRESHOLD_HALVINGS = 30


class BirchBaseline:
    TASK = "clustering"
    Config = BirchConfig

    def fit_predict(self, ctx: RunContext, config: BirchConfig) -> Result:
        from sklearn.cluster import Birch

        rows = subsample_rows(len(ctx.view.X), config.max_samples, config.subsample_seed)
        # The threshold is a length: on unscaled features (uci-ecoli's span < 1) a fixed 0.5 can
        # swallow the data in fewer than k subclusters. Scaling is fitted on the rows clustered.
        x = rescale(take(ctx.view.X, rows), config.scale)
        n_clusters = config.n_clusters or ctx.n_clusters
        threshold, halvings = config.threshold, 0
        while True:
            model = Birch(threshold=threshold, branching_factor=config.branching_factor, n_clusters=None)
            model.fit(x)
            n_sub = len(model.subcluster_centers_)
            if n_sub >= n_clusters or not config.adapt_threshold or halvings == MAX_THRESHOLD_HALVINGS:
                break
            threshold, halvings = threshold / 2, halvings + 1
        # The global step is Ward on the subcluster centres (scipy: a condensed n_sub^2/2 matrix).
        check_memory(dense_pairwise_bytes(n_sub, 1.5), f"BIRCH global step on {n_sub} subclusters",
                     "Raise birch.threshold (fewer subclusters) or lower birch.max_samples.")
        model.set_params(n_clusters=n_clusters)
        model.partial_fit()  # no data: only the global clustering of the subclusters
        labels = model.predict(x)
        return _result(labels, rows, len(ctx.view.X), n_subclusters=n_sub, scale=config.scale, threshold=threshold)


# --- agglomerative (Ward and general linkage) --------------------------------------------------

class AgglomerativeConfig(Subsampled):
    n_clusters: int | None = Field(None, ge=2, description="null = the data set's number of classes")
    linkage: Literal["ward", "average", "complete", "single"] = "ward"
    connectivity_k: int | None = Field(None, ge=1, description="kNN connectivity (sparse, scales); "
                                                                "null = unstructured (quadratic memory)")


class WardConfig(AgglomerativeConfig):
    linkage: Literal["ward"] = "ward"
    connectivity_k: int | None = Field(10, ge=1)


class AgglomerativeBaseline:
    TASK = "clustering"

    def __init__(self, config_cls):
        self.Config = config_cls

    def fit_predict(self, ctx: RunContext, config: AgglomerativeConfig) -> Result:
        from sklearn.cluster import AgglomerativeClustering

        rows = subsample_rows(len(ctx.view.X), config.max_samples, config.subsample_seed)
        x = take(ctx.view.X, rows).astype(np.float64)
        n = len(x)
        conn = None
        if config.connectivity_k is None:
            # scipy's linkage keeps the condensed distance matrix (n^2/2 doubles) plus copies:
            # 1.0 GB measured at n = 10,000, so 1.5 n^2 doubles is the bound.
            check_memory(dense_pairwise_bytes(n, 1.5), f"unstructured {config.linkage} linkage on {n} points",
                         "Set connectivity_k (sparse kNN connectivity) or max_samples.")
        else:
            conn = connectivity(x, config.connectivity_k, f"{config.linkage} connectivity")
        model = AgglomerativeClustering(n_clusters=config.n_clusters or ctx.n_clusters, linkage=config.linkage,
                                        connectivity=conn)
        labels = model.fit_predict(x)
        return _result(labels, rows, len(ctx.view.X), connectivity_k=config.connectivity_k)


# --- HDBSCAN ---------------------------------------------------------------------------------

class HDBSCANConfig(Subsampled):
    min_cluster_size: int = Field(5, ge=2)
    min_samples: int | None = Field(None, ge=1)
    cluster_selection_method: Literal["eom", "leaf"] = "eom"
    algorithm: Literal["auto", "brute", "kd_tree", "ball_tree"] = "auto"


class HDBSCANBaseline:
    TASK = "clustering"
    Config = HDBSCANConfig

    def fit_predict(self, ctx: RunContext, config: HDBSCANConfig) -> Result:
        from sklearn.cluster import HDBSCAN

        rows = subsample_rows(len(ctx.view.X), config.max_samples, config.subsample_seed)
        x = take(ctx.view.X, rows)
        n = len(x)
        if config.algorithm == "brute":
            check_memory(dense_pairwise_bytes(n, 2.0), f"HDBSCAN (brute) on {n} points",
                         "Use algorithm: auto / kd_tree, or max_samples.")
        else:
            check_memory(n * 8 * 64, f"HDBSCAN on {n} points")
        # copy=True: scikit-learn 1.9 warns its default changes in 1.10; a copy never alters the view.
        labels = HDBSCAN(min_cluster_size=config.min_cluster_size, min_samples=config.min_samples,
                         cluster_selection_method=config.cluster_selection_method,
                         algorithm=config.algorithm, copy=True).fit_predict(x)
        return _result(labels, rows, len(ctx.view.X))


# --- NMF -------------------------------------------------------------------------------------

class NMFConfig(MethodConfig):
    init: Literal["nndsvda", "nndsvd", "random"] = "nndsvda"
    max_iter: int = Field(400, ge=1)
    assign: Literal["kmeans", "argmax"] = Field("kmeans", description="k-means on the coefficients (as in "
                                                                       "Cai et al.'s NMF clustering) or argmax")
    n_init: int = Field(10, ge=1, description="k-means restarts on the coefficients")


class NMFBaseline:
    TASK = "clustering"
    Config = NMFConfig

    def fit_predict(self, ctx: RunContext, config: NMFConfig) -> Result:
        from sklearn.cluster import KMeans
        from sklearn.decomposition import NMF

        x = ctx.view.X
        if float(x.min()) < 0:
            raise ValueError("nmf needs non-negative features (e.g. raw pixels); this view has negative "
                             f"values (min {float(x.min()):.3g})")
        check_memory(x.size * 8 * 6, f"NMF of a {x.shape[0]} x {x.shape[1]} matrix")
        model = NMF(n_components=ctx.n_clusters, init=config.init, max_iter=config.max_iter, random_state=ctx.seed)
        coefficients = model.fit_transform(x)
        if config.assign == "argmax":
            labels = coefficients.argmax(1)
        else:
            labels = KMeans(n_clusters=ctx.n_clusters, n_init=config.n_init, random_state=ctx.seed).fit_predict(
                coefficients)
        return Result(labels=labels, extra={"reconstruction_err": float(model.reconstruction_err_),
                                            "n_iter": int(model.n_iter_)})


# --- UMAP + k-means --------------------------------------------------------------------------

class UMAPKMeansConfig(MethodConfig):
    n_components: int = Field(10, ge=1)
    n_neighbors: int = Field(15, ge=2)
    min_dist: float = Field(0.0, ge=0)
    metric: str = "euclidean"
    n_init: int = Field(10, ge=1)


class UMAPKMeansBaseline:
    """UMAP of the view, then k-means: LNSCC's UMAP^kmeans and ConstellationNet's "+UMAP" rows.

    UMAP is stochastic, so it runs inside the baseline with the run's seed (every seed redraws
    the embedding), rather than once in the embed stage.
    """

    TASK = "clustering"
    Config = UMAPKMeansConfig

    def fit_predict(self, ctx: RunContext, config: UMAPKMeansConfig) -> Result:
        import umap
        from sklearn.cluster import KMeans

        x = ctx.view.X
        n_neighbors = min(config.n_neighbors, len(x) - 1)
        n_components = min(config.n_components, len(x) - 2)
        check_memory(len(x) * (n_neighbors * 24 + n_components * 8) * 4, f"UMAP of {len(x)} points")
        # A seed makes UMAP single-threaded; n_jobs=1 says so (else umap warns it overrode -1).
        embedding = umap.UMAP(n_components=n_components, n_neighbors=n_neighbors, min_dist=config.min_dist,
                              metric=config.metric, random_state=ctx.seed, n_jobs=1).fit_transform(x)
        labels = KMeans(n_clusters=ctx.n_clusters, n_init=config.n_init, random_state=ctx.seed).fit_predict(embedding)
        return Result(labels=labels, embedding=embedding if n_components <= 3 else None,
                      extra={"umap_components": n_components, "umap_neighbors": n_neighbors})


KMEANS = KMeansBaseline()
DBSCAN = DBSCANBaseline()
OPTICS = OPTICSBaseline()
BIRCH = BirchBaseline()
WARD = AgglomerativeBaseline(WardConfig)
AGGLOMERATIVE = AgglomerativeBaseline(AgglomerativeConfig)
HDBSCAN = HDBSCANBaseline()
NMF = NMFBaseline()
UMAP_KMEANS = UMAPKMeansBaseline()

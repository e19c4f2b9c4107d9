"""Baselines: known answers for what we implement ourselves, adapter checks for the sklearn ones."""
import math

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from clusterbench import leaderboard, resources
from clusterbench.baselines import BASELINES, load_baseline
from clusterbench.baselines import _common, density, spectral
from clusterbench.embeddings import View
from clusterbench.methods import RunContext

@pytest.fixture(autouse=True, scope="module")
def _single_threaded():
    """One BLAS/OpenMP thread: on a shared 2-core machine spinning worker threads make these
    tiny problems 10-50x slower (see docs/baselines.md); results do not depend on it."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield



def _view(x, y):
    x = np.asarray(x, dtype=np.float32)
    return View(x, np.asarray(y, dtype=np.int64), np.zeros(len(x), np.uint8), np.arange(len(x)))


def _ctx(view, seed=0, k=None):
    return RunContext(view=view, graph=None, seed=seed, n_clusters=k or view.n_clusters, progress=False)


@pytest.fixture(scope="module")
def blobs():
    """Four well separated Gaussian blobs in 5-d, 40 points each."""
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0, 0, 0, 0], [10, 0, 0, 0, 0], [0, 10, 0, 0, 0], [0, 0, 10, 0, 0]], float)
    x = 5.0 + np.concatenate([c + rng.normal(0, 0.5, (40, 5)) for c in centres])  # >= 0 for NMF
    y = np.repeat(np.arange(4), 40)
    perm = rng.permutation(len(x))
    return _view(x[perm], y[perm])


# --- density peaks: a hand-checked line ---------------------------------------------------------

LINE = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])


def test_density_peaks_known_answer_on_a_line():
    out = density.density_peaks(LINE, n_clusters=2, dc=1.5, kernel="cutoff")
    # rho: neighbours closer than 1.5 (self excluded)
    assert out["rho"].tolist() == [1, 2, 1, 1, 2, 1]
    # densest = point 1 (tie with 4 broken by index): delta = its largest distance, 11 (to x=12)
    # point 4: only point 1 is denser, at distance 10; every other point has a denser neighbour at 1
    assert out["delta"].tolist() == [1, 11, 1, 1, 10, 1]
    # parents: denser order is 1, 4, 0, 2, 3, 5; x=10 and x=12 attach to x=11, the rest to x=1
    assert out["parent"].tolist() == [1, -1, 1, 4, 1, 4]
    assert sorted(out["centres"].tolist()) == [1, 4]
    assert out["labels"][:3].tolist() == [out["labels"][1]] * 3
    assert out["labels"][3:].tolist() == [out["labels"][4]] * 3
    assert out["labels"][0] != out["labels"][3]


def test_density_peaks_gaussian_density_values():
    rho = density.local_density(LINE, dc=1.0, kernel="gaussian")
    d = np.abs(LINE - LINE.T)
    expected = np.exp(-(d / 1.0) ** 2).sum(1) - 1.0  # minus self
    assert np.allclose(rho, expected)


def test_cutoff_distance_is_the_percentile_of_pairwise_distances():
    # 6 points -> 15 pairs; 20% -> rank round(3) -> 3rd smallest distance.
    pairs = np.sort(np.abs(LINE - LINE.T)[np.triu_indices(6, 1)])
    assert density.cutoff_distance(LINE, 20.0, 10_000, 0) == pairs[2]


def test_denpeak_baseline_separates_blobs(blobs):
    impl = load_baseline("denpeak")
    res = impl.fit_predict(_ctx(blobs), impl.Config())
    assert adjusted_rand_score(blobs.y, res.labels) == 1.0


# --- self-tuning affinity: hand-computed values -----------------------------------------------

def test_self_tuning_affinity_values():
    # Points 0, 1, 3 on a line, 2 neighbours each, local scale = 1st neighbour distance.
    x = np.array([[0.0], [1.0], [3.0]])
    g = _common.knn_graph(x, 2, "test")
    a = spectral.self_tuning_affinity(g.indices, g.distances, scale_neighbor=1).toarray()
    sigma = np.array([1.0, 1.0, 2.0])  # nearest-neighbour distances
    d = np.abs(x - x.T)
    expected = np.exp(-(d ** 2) / np.outer(sigma, sigma))
    np.fill_diagonal(expected, 0.0)
    assert np.allclose(a, expected)
    assert np.isclose(a[0, 2], np.exp(-9 / 2))


def test_self_tuning_scale_neighbour_must_fit_in_k():
    with pytest.raises(ValueError, match="scale_neighbor"):
        spectral.SelfTuningConfig(k=5, scale_neighbor=7)


# --- spectral family on separable blobs ------------------------------------------------------

@pytest.mark.parametrize("name", ["sc-ls", "sc-st", "ncut", "ldmgi"])
def test_spectral_baselines_recover_separable_blobs(blobs, name):
    impl = load_baseline(name)
    res = impl.fit_predict(_ctx(blobs), impl.Config())
    assert adjusted_rand_score(blobs.y, res.labels) == 1.0


def test_landmark_embedding_with_random_landmarks(blobs):
    cfg = spectral.LandmarkConfig(n_landmarks=40, r=3, landmarks="random")
    emb, info = spectral.landmark_embedding(blobs.X, 4, cfg, seed=1)
    assert emb.shape == (len(blobs.X), 4) and info["n_landmarks"] == 40
    labels = _common.kmeans_labels(emb, 4, 0)
    assert adjusted_rand_score(blobs.y, labels) == 1.0


def test_discretize_recovers_a_rotated_indicator():
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(3), 20)
    indicator = np.eye(3)[labels] / np.sqrt(20)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    found = _common.discretize(indicator @ q, seed=0)
    assert adjusted_rand_score(labels, found) == 1.0


def test_ldmgi_laplacian_is_psd_with_constant_null_vector(blobs):
    g = _common.knn_graph(blobs.X, 5, "test")
    lap = spectral.ldmgi_laplacian(blobs.X, g.indices, lam=1.0).toarray()
    assert np.allclose(lap, lap.T)
    assert np.allclose(lap @ np.ones(len(lap)), 0.0, atol=1e-8)
    assert np.linalg.eigvalsh(lap).min() > -1e-8


# --- scikit-learn adapters --------------------------------------------------------------------

K_TAKING = ["kmeans", "birch", "ward", "agglomerative", "nmf", "sc-st", "sc-ls", "ncut", "ldmgi", "denpeak"]


@pytest.mark.parametrize("name", K_TAKING)
def test_k_taking_baselines_return_k_clusters_deterministically(blobs, name):
    impl = load_baseline(name)
    cfg = impl.Config()
    a = impl.fit_predict(_ctx(blobs, seed=3), cfg)
    b = impl.fit_predict(_ctx(blobs, seed=3), cfg)
    assert len(a.labels) == len(blobs.X) if a.index is None else len(a.index)
    assert len(np.unique(a.labels)) == 4
    assert np.array_equal(a.labels, b.labels), "a fixed seed must give the same labels"


def test_nmf_refuses_negative_features():
    impl = load_baseline("nmf")
    with pytest.raises(ValueError, match="non-negative"):
        impl.fit_predict(_ctx(_view([[-1.0, 2.0], [1.0, 2.0], [3.0, 1.0]], [0, 1, 1])), impl.Config())


@pytest.mark.parametrize("name", ["dbscan", "hdbscan"])
def test_density_adapters_find_the_blobs(blobs, name):
    impl = load_baseline(name)
    overrides = {"dbscan": {"eps": 2.0, "min_samples": 5}, "hdbscan": {}}[name]
    res = impl.fit_predict(_ctx(blobs), impl.Config(**overrides))
    assert adjusted_rand_score(blobs.y, res.labels) > 0.95
    assert res.extra["n_clusters_found"] == 4


def test_optics_clusters_are_pure(blobs):
    impl = load_baseline("optics")
    res = impl.fit_predict(_ctx(blobs), impl.Config(min_samples=5, max_samples=None))
    found = res.labels >= 0
    assert found.sum() > 40 and res.extra["n_clusters_found"] >= 4
    for c in np.unique(res.labels[found]):  # xi extraction may split a blob, never merge two
        assert len(np.unique(blobs.y[res.labels == c])) == 1


def test_dbscan_label_free_eps_is_a_knn_distance_quantile(blobs):
    cfg = load_baseline("dbscan").Config(eps=None, min_samples=5, eps_quantile=0.5)
    eps = load_baseline("dbscan").fit_predict(_ctx(blobs), cfg).extra["eps"]
    g = _common.knn_graph(blobs.X, 4, "test")
    assert np.isclose(eps, np.quantile(g.distances[:, -1], 0.5))


def test_subsampled_baseline_scores_the_same_rows_for_every_seed(blobs):
    impl = load_baseline("optics")
    cfg = impl.Config(max_samples=50, min_samples=5)
    a = impl.fit_predict(_ctx(blobs, seed=0), cfg)
    b = impl.fit_predict(_ctx(blobs, seed=1), cfg)
    assert a.index is not None and len(a.index) == 50 == len(a.labels)
    assert np.array_equal(a.index, b.index)


# --- BIRCH on the batteries: its threshold is a length ----------------------------------------

def _battery_birch_overrides():
    from clusterbench import config

    return dict(config.load("params.yaml").baselines["birch-uci-ecoli"].overrides)


def _scaled(view, factor):
    return _view(view.X * factor, view.y)


def test_rescale_proportional_is_the_suites_preprocessing():
    x = np.array([[1.0, 7.0, 2.0], [3.0, 7.0, 0.0], [5.0, 7.0, 4.0], [7.0, 7.0, 2.0]])
    varying = x[:, [0, 2]]
    s = varying.std(ddof=1)  # one number: the std of all entries of the non-constant columns
    out = _common.rescale(x, "proportional")
    assert np.allclose(out[:, [0, 2]], (varying - varying.mean(0)) / s)
    assert np.all(out[:, 1] == 0)  # constant column: dropped by the suite, zero here (same distances)
    # a similarity transform: pairwise distance ratios are kept
    d = lambda a: np.linalg.norm(a[:, None] - a[None], axis=-1)
    assert np.allclose(d(out) * s, d(x))
    std = _common.rescale(x, "standard")
    assert np.allclose(std[:, [0, 2]].std(0, ddof=1), 1.0) and np.allclose(std.mean(0), 0.0)
    assert _common.rescale(x, "none") is x
    with pytest.raises(ValueError, match="unknown scaling"):
        _common.rescale(x, "minmax")


def test_birch_battery_settings_split_data_narrower_than_the_threshold(blobs):
    """uci-ecoli / uci-yeast: features spanning less than the 0.5 threshold gave one cluster (NCA 0)."""
    small = _scaled(blobs, 0.01)  # the four blobs fit in a box of side ~0.1
    impl = load_baseline("birch")
    before = impl.fit_predict(_ctx(small), impl.Config(max_samples=None))  # default = the paper rows' settings
    assert before.extra["n_clusters_found"] == 1 and before.extra["n_subclusters"] == 1
    overrides = _battery_birch_overrides()
    assert overrides["scale"] == "proportional"
    res = impl.fit_predict(_ctx(small), impl.Config(**overrides))
    assert res.extra["n_clusters_found"] == 4
    assert adjusted_rand_score(small.y, res.labels) > 0.95


def test_birch_battery_settings_do_not_depend_on_the_units(blobs):
    impl = load_baseline("birch")
    cfg = impl.Config(**_battery_birch_overrides())
    labels = [impl.fit_predict(_ctx(_scaled(blobs, f)), cfg).labels for f in (0.01, 1.0, 100.0)]
    assert all(adjusted_rand_score(blobs.y, lab) > 0.95 for lab in labels)
    assert all(adjusted_rand_score(labels[0], lab) == 1.0 for lab in labels[1:])


def test_birch_adapt_threshold_halves_it_until_k_subclusters(blobs):
    small = _scaled(blobs, 0.01)
    impl = load_baseline("birch")
    res = impl.fit_predict(_ctx(small), impl.Config(max_samples=None, adapt_threshold=True))
    assert res.extra["threshold"] < 0.5 and res.extra["n_subclusters"] >= 4
    assert res.extra["n_clusters_found"] == 4
    kept = impl.fit_predict(_ctx(blobs), impl.Config(max_samples=None, adapt_threshold=True))
    assert kept.extra["threshold"] == 0.5  # enough subclusters already: the threshold is left alone


# --- memory refusal ---------------------------------------------------------------------------

def test_quadratic_configuration_is_refused_up_front(monkeypatch, blobs):
    monkeypatch.setattr(resources, "available_memory_bytes", lambda: 64 * 1024)  # 64 KiB
    impl = load_baseline("agglomerative")
    with pytest.raises(MemoryError) as err:
        impl.fit_predict(_ctx(blobs), impl.Config(connectivity_k=None))
    message = str(err.value)
    assert "unstructured ward linkage on 160 points" in message
    assert "GiB" in message and "connectivity_k" in message


def test_dbscan_neighbourhood_size_is_estimated_before_running(monkeypatch, blobs):
    monkeypatch.setattr(resources, "available_memory_bytes", lambda: 1024)
    impl = load_baseline("dbscan")
    with pytest.raises(MemoryError, match="Lower dbscan.eps"):
        impl.fit_predict(_ctx(blobs), impl.Config(eps=100.0))


def test_radius_pair_estimate_is_exact_when_all_points_are_probed():
    x = LINE.astype(np.float32)
    # within 1.5 (self included, as sklearn counts): ends of each triple 2, middles 3 -> 14
    from clusterbench.baselines.shallow import estimate_radius_pairs

    assert estimate_radius_pairs(x, 1.5, seed=0, probes=6) == pytest.approx(14.0)


# --- the leaderboard's NCA ----------------------------------------------------------------------

def test_nca_matches_the_suite_and_handles_other_cluster_counts():
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, -1])
    assert leaderboard.normalized_clustering_accuracy(y, np.array([5, 5, 5, 7, 7, 7, 9, 9, 9, 0])) == 1.0
    # two classes merged into one cluster: recall 1, 1, 0 -> NCA = mean((r - 1/3) / (2/3)) over classes
    merged = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 4])
    expected = np.mean([(1 - 1 / 3) / (2 / 3), (1 - 1 / 3) / (2 / 3), (0 - 1 / 3) / (2 / 3)])
    assert leaderboard.normalized_clustering_accuracy(y, merged) == pytest.approx(expected)
    assert math.isnan(leaderboard.normalized_clustering_accuracy(y, np.arange(10)))


def test_leaderboard_variant_names():
    assert leaderboard.variant_of("sc-st-uci-wine", "uci-wine", "full") == "sc-st"
    assert leaderboard.variant_of("smoke-sc-st-fcps-hepta", "fcps-hepta", "smoke") == "sc-st"
    assert leaderboard.is_battery_dataset("fcps-atom") and not leaderboard.is_battery_dataset("digits")


def test_leaderboard_render_marks_the_best_and_na():
    base = {"n": 10, "k": 3, "run": "r", "method": "m", "clusters_found": [3], "seeds": [0], "wall_s": 1.0,
            "peak_rss_mb": 10.0, "acc_mean": 1.0, "acc_std": 0.0, "nmi_mean": 1.0, "nmi_std": 0.0,
            "ari_mean": 1.0, "ari_std": 0.0, "nca_std": 0.0}
    records = [{**base, "dataset": "fcps-x", "variant": "a", "nca_mean": 0.9},
               {**base, "dataset": "fcps-x", "variant": "b", "nca_mean": math.nan}]
    md, table = leaderboard.render(records, "full")
    assert "| fcps-x | 10 | 3 | **0.900** | n/a |" in md
    assert table.splitlines()[0].startswith("dataset,variant")


# --- registry and plan --------------------------------------------------------------------------

def test_every_registered_baseline_loads_with_default_config():
    for name in BASELINES:
        impl = load_baseline(name)
        assert impl.TASK == "clustering"
        impl.Config()


def test_every_declared_baseline_run_uses_a_registered_baseline():
    from clusterbench import config

    params = config.load("params.yaml")
    assert len(params.baselines) > 300
    assert all(run.method in BASELINES for run in params.baselines.values())
    # the spatial leaderboard: every battery data set gets the battery group's baselines
    assert {"kmeans-uci-yeast", "birch-fcps-hepta", "smoke-kmeans-fcps-hepta"} <= set(params.baselines)

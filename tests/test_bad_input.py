"""Bad data never produces a wrong output or a traceback: one `error:` line, nothing written.

The stage entry points run in-process in a scratch folder on a hand-made view, with the
settings files the resolve stage would write; ``main_guard`` turns a DataError into
`error: ...` on stderr and exit status 2.
"""
import hashlib
import importlib.util
import json
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from clusterbench import checks, config, datasets, embeddings, graphs, io, resolve, runs
from clusterbench.checks import DataError
from clusterbench.datasets import base
from clusterbench.datasets.base import DatasetArrays, DatasetSpec, Fetcher, RemoteFile
from clusterbench.embeddings import View

REPO = Path(__file__).resolve().parents[1]
VIEW = "smoke-digits-raw"
PARAMS = {
    "data": {"mirrors": [], "offline": True, "imagenet_dir": None},
    "model": {"k": 5},
    "profiles": {"smoke": {"max_samples": 300, "seeds": [0], "max_epochs": 1, "subsample_seed": 0,
                           "reports": "reports/smoke"}},
    "datasets": ["digits"],
    "embeddings": {"raw": [{"backend": "raw"}]},
    "views": {VIEW: {"dataset": "digits", "embedding": "raw", "profile": "smoke"}},
    "methods": {"kmeans": {"n_init": 1}, "lnscc": {"epochs": 1}},
    "train": {"smoke-lnscc-digits": {"method": "lnscc", "view": VIEW, "graph": VIEW, "profile": "smoke"}},
    "baselines": {"smoke-kmeans-digits": {"method": "kmeans", "view": VIEW, "profile": "smoke"}},
}


def load_stage(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A scratch folder with the stages' resolved settings of PARAMS; ``project(**{"a/b": v})``
    changes them (and returns the params). main_guard installs a SIGTERM handler: pytest's is put
    back afterwards."""
    monkeypatch.chdir(tmp_path)
    previous = signal.getsignal(signal.SIGTERM)

    def set_params(**changes) -> config.Params:
        raw = json.loads(json.dumps(PARAMS))
        for dotted, value in changes.items():
            *path, key = dotted.split("/")
            node = raw
            for part in path:
                node = node[part]
            node[key] = value
        params = config.Params(**raw)
        resolve.write_settings(resolve.stage_settings(params))
        return params

    set_params()
    yield set_params
    signal.signal(signal.SIGTERM, previous)


def save_view(x, y=None) -> None:
    x = np.asarray(x, dtype=np.float32)
    y = np.arange(len(x)) % 3 if y is None else np.asarray(y)
    View(x, y.astype(np.int64), np.zeros(len(x), np.uint8), np.arange(len(x), dtype=np.int64)).save(
        io.view_path("smoke", VIEW))


def points(n: int, d: int = 3) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)


def stage_error(stage: str, arg: str, monkeypatch, capsys) -> str:
    """Run a stage's main(); it must stop with exit 2 and exactly one `error:` line."""
    monkeypatch.setattr(sys, "argv", [f"{stage}.py", arg])
    with pytest.raises(SystemExit) as exit_:
        load_stage(stage).main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err.strip()


def nothing_written(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


# --- knn stage ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_knn_stage_refuses_a_view_with_non_finite_rows(project, monkeypatch, capsys, bad):
    x = points(40)
    x[7, 1] = bad
    x[30, 0] = bad
    save_view(x)
    err = stage_error("knn", VIEW, monkeypatch, capsys)
    assert err == (f"error: view {VIEW} has NaN or inf values in 2 of 40 rows (first: row 7): rebuild it "
                   f"(dvc repro embed@{VIEW}) and check its dataset and embedding steps")
    assert nothing_written(io.graph_path("smoke", VIEW).parent)


def test_knn_stage_refuses_an_empty_view(project, monkeypatch, capsys):
    save_view(np.zeros((0, 3)))
    err = stage_error("knn", VIEW, monkeypatch, capsys)
    assert err.startswith(f"error: view {VIEW} is empty (0 rows x 3 features): rebuild it")
    assert nothing_written(io.graph_path("smoke", VIEW).parent)


def test_knn_stage_refuses_k_not_below_the_number_of_rows(project, monkeypatch, capsys):
    project(**{"model/k": 700})
    save_view(points(600, 2))
    err = stage_error("knn", VIEW, monkeypatch, capsys)
    assert err == (f"error: view {VIEW} has 600 rows; model.k = 700 needs more than k rows: "
                   "lower model.k (at most 599)")
    assert nothing_written(io.graph_path("smoke", VIEW).parent)


def test_knn_stage_names_min_k_when_it_sets_k(project, monkeypatch, capsys):
    project(**{f"views/{VIEW}/min_k": 12})
    save_view(points(12))
    err = stage_error("knn", VIEW, monkeypatch, capsys)
    assert err == (f"error: view {VIEW} has 12 rows; views.{VIEW}.min_k = 12 needs more than k rows: "
                   f"lower views.{VIEW}.min_k (at most 11)")


def test_knn_stage_still_writes_a_valid_graph(project, monkeypatch, capsys):
    save_view(points(40))
    monkeypatch.setattr(sys, "argv", ["knn.py", VIEW])
    load_stage("knn").main()
    graph = graphs.KnnGraph.load(io.graph_path("smoke", VIEW))
    assert graph.indices.shape == (40, 5) and graph.indices.min() >= 0 and np.isfinite(graph.distances).all()
    assert graph.view_sha256 == io.features_sha256(points(40))  # what runs compare with the view they load


# --- runs (baselines and train) -----------------------------------------------------------------

@pytest.mark.parametrize("case, message", [
    ("nan", f"view {VIEW} has NaN or inf values in 1 of 30 rows (first: row 4)"),
    ("empty", f"view {VIEW} is empty (0 rows x 3 features)"),
    ("unlabelled", f"view {VIEW} has no labelled rows (every label is -1), so its number of clusters is 0"),
])
def test_a_baseline_on_a_bad_view_stops_with_a_data_error(project, case, message):
    x, y = points(30), None
    if case == "nan":
        x[4, 2] = np.nan
    elif case == "empty":
        x = x[:0]
    else:
        y = np.full(30, -1)
    save_view(x, y)
    with pytest.raises(DataError) as err:  # not scikit-learn's "Input X contains NaN" / "Got 0"
        runs.execute(project(), "baselines", "smoke-kmeans-digits", progress=False)
    assert str(err.value).startswith(message)
    assert nothing_written(io.run_dir("smoke", "smoke-kmeans-digits").parent)


def test_a_baseline_run_through_its_stage_prints_one_line(project, monkeypatch, capsys):
    x = points(30)
    x[0, 0] = np.inf
    save_view(x)
    err = stage_error("baselines", "smoke-kmeans-digits", monkeypatch, capsys)
    assert err.startswith(f"error: view {VIEW} has NaN or inf values in 1 of 30 rows (first: row 0)")


def test_a_train_run_refuses_a_graph_with_missing_neighbours(project):
    """A graph written by the old faiss path (-1 indices, 1.8e19 distances) must not be trained on."""
    save_view(points(30))
    g = graphs.view_graph(points(30), 5)
    g.indices[3, -1], g.distances[3, -1] = -1, 1.8e19
    g.save(io.graph_path("smoke", VIEW))
    with pytest.raises(DataError, match=rf"graph {VIEW} has invalid neighbours .* in 1 of 30 rows \(first: row 3\): "
                                        rf"rebuild it \(dvc repro knn@{VIEW}\)"):
        runs.execute(project(), "train", "smoke-lnscc-digits", progress=False)
    assert not io.run_dir("smoke", "smoke-lnscc-digits").exists()


def test_a_graph_of_other_rows_is_refused():
    view = View(points(30), np.arange(30) % 3, np.zeros(30, np.uint8), np.arange(30))
    with pytest.raises(DataError, match="graph g has 20 nodes but view v has 30 rows: rebuild it"):
        checks.check_fits(view, "v", graph=graphs.knn(points(20), 3), graph_name="g")


def test_more_clusters_than_fitted_rows_is_refused():
    class Birch:
        n_clusters, max_samples = 25, None

    view = View(points(20), np.arange(20) % 3, np.zeros(20, np.uint8), np.arange(20))
    with pytest.raises(DataError, match=r"n_clusters = 25 is more than the 20 rows the method fits: lower n_clusters "
                                        r"\(at most 20\)"):
        checks.check_fits(view, "v", Birch())

    class Subsampled:
        max_samples = 10

    view = View(points(40), np.arange(40) % 15, np.zeros(40, np.uint8), np.arange(40))
    with pytest.raises(DataError, match=r"view v has 15 classes but the method fits only 10 rows \(max_samples = 10\): "
                                        r"raise max_samples to at least 15"):
        checks.check_fits(view, "v", Subsampled())


# --- a graph is refused unless built from the features its view holds now ------------------------

def test_a_train_run_refuses_a_graph_built_from_another_view_of_the_same_shape(project, monkeypatch, capsys):
    """`dvc repro -s embed@<view>` then `-s train@<run>` used to train the new view on the old graph."""
    a, b = points(30), points(30) * 2
    graphs.view_graph(a, 5).save(io.graph_path("smoke", VIEW))
    save_view(b)
    err = stage_error("train", "smoke-lnscc-digits", monkeypatch, capsys)
    assert err == (f"error: graph {VIEW} was built from other features than view {VIEW} holds now (graph built from "
                   f"sha256 {io.features_sha256(a)}, view sha256 {io.features_sha256(b)}): rebuild it "
                   f"(dvc repro knn@{VIEW})")
    assert nothing_written(io.run_dir("smoke", "smoke-lnscc-digits").parent)
    save_view(a)  # the view it was built from: accepted
    view, graph = View.load(io.view_path("smoke", VIEW)), graphs.KnnGraph.load(io.graph_path("smoke", VIEW))
    checks.check_fits(view, VIEW, graph=graph, graph_name=VIEW)
    assert runs.graph_view_sha256(project().train["smoke-lnscc-digits"], view) is None  # own view: hashed in memory


def test_a_graph_file_written_without_the_view_hash_is_refused(project):
    save_view(points(30))
    graphs.knn(points(30), 5).save(io.graph_path("smoke", VIEW))  # indices and distances only, as before
    with pytest.raises(DataError) as err:
        runs.execute(project(), "train", "smoke-lnscc-digits", progress=False)
    assert str(err.value) == (f"graph {VIEW} records no hash of the features it was built from (written by an older "
                              f"clusterbench), so it cannot be matched to view {VIEW} (sha256 "
                              f"{io.features_sha256(points(30))}): rebuild it (dvc repro knn@{VIEW})")
    assert not io.run_dir("smoke", "smoke-lnscc-digits").exists()


OTHER = "smoke-digits-umap"  # a run's features may be another view of the graph's rows (ConstellationNet Table 4)


def cross_view_project(project):
    return project(**{f"views/{OTHER}": {"dataset": "digits", "embedding": "raw", "profile": "smoke"},
                      "train/smoke-lnscc-cross": {"method": "lnscc", "view": OTHER, "graph": VIEW, "profile": "smoke"}})


def save_named_view(name, x, index=None, dataset="digits") -> None:
    index = np.arange(len(x)) if index is None else np.asarray(index)
    View(np.asarray(x, np.float32), np.arange(len(x)) % 3, np.zeros(len(x), np.uint8), index.astype(np.int64),
         meta={"dataset": dataset}).save(io.view_path("smoke", name))


def test_a_graph_of_another_view_is_checked_against_that_view_file(project):
    params = cross_view_project(project)
    run = params.train["smoke-lnscc-cross"]
    pixels, features = points(30, 8), points(30, 2) * 3
    graphs.view_graph(pixels, 5).save(io.graph_path("smoke", VIEW))
    save_named_view(VIEW, pixels)
    save_named_view(OTHER, features)
    view = View.load(io.view_path("smoke", OTHER))
    assert runs.graph_view_sha256(run, view) == io.features_sha256(pixels)  # streamed from the graph's view file
    checks.check_fits(view, OTHER, graph=graphs.KnnGraph.load(io.graph_path("smoke", VIEW)), graph_name=VIEW,
                      graph_view_sha256=runs.graph_view_sha256(run, view))

    save_named_view(VIEW, pixels + 1)  # the graph's view re-embedded, its graph not rebuilt
    with pytest.raises(DataError, match=rf"^graph {VIEW} was built from other features than view {VIEW} holds now "
                                        rf"\(graph built from sha256 {io.features_sha256(pixels)}, view sha256 "
                                        rf"{io.features_sha256(pixels + 1)}\): rebuild it \(dvc repro knn@{VIEW}\)$"):
        runs.execute(params, "train", "smoke-lnscc-cross", progress=False)

    save_named_view(VIEW, pixels, index=np.arange(30) + 100)  # same count, other dataset rows
    with pytest.raises(DataError, match=rf"^graph {VIEW} is of view {VIEW} \(digits, 30 rows\), whose rows are not "
                                        rf"those of view {OTHER} \(digits, 30 rows\): a run's graph must be of a view "
                                        "of the same dataset and profile"):
        runs.execute(params, "train", "smoke-lnscc-cross", progress=False)
    assert not io.run_dir("smoke", "smoke-lnscc-cross").exists()


# --- degenerate features ------------------------------------------------------------------------

HUGE = points(40) * np.float32(1e30)


@pytest.mark.parametrize("x, message", [
    (np.tile(np.float32([[1, 2, 3]]), (40, 1)),
     f"view {VIEW} has 40 identical rows (no feature varies), so there is nothing to cluster: rebuild it "
     f"(dvc repro embed@{VIEW}) and check its dataset and embedding steps"),
    (HUGE, f"view {VIEW} has values up to {np.abs(HUGE).max():.3g} in absolute value, above the 1e+15 that float32 "
           "squared distances can take: rescale the data before embedding (divide it by a constant or standardise "
           "each feature)"),
])
def test_degenerate_features_are_refused_by_knn_and_by_runs(project, monkeypatch, capsys, x, message):
    """Before: a graph of ties / inf distances, ten arbitrary k-means clusters, density peaks' NaN warning."""
    params = project(**{"baselines/smoke-denpeak-digits": {"method": "denpeak", "view": VIEW, "profile": "smoke"}})
    save_view(x)
    assert stage_error("knn", VIEW, monkeypatch, capsys) == f"error: {message}"
    assert nothing_written(io.graph_path("smoke", VIEW).parent)
    for run in ("smoke-kmeans-digits", "smoke-denpeak-digits"):
        with pytest.raises(DataError) as err:
            runs.execute(params, "baselines", run, progress=False)
        assert str(err.value) == message
    assert nothing_written(io.run_dir("smoke", "x").parent)


def test_the_scale_limit_is_1e15_and_lower_where_squared_distances_would_overflow(monkeypatch):
    x = np.zeros((2, 10), np.float32)
    x[0, 0] = 9.9e14
    checks.check_spread(x, "view w", "fix")
    x[0, 0] = -2e15
    with pytest.raises(DataError, match=r"^view w has values up to 2e\+15 in absolute value, above the 1e\+15 "):
        checks.check_spread(x, "view w", "fix")
    # 4 * d * max^2 must stay below float32's largest value (only views of ~1e8 features reach it at
    # 1e15): with a largest value of 4,000, 10 features allow |x| <= 10.
    monkeypatch.setattr(checks, "FLOAT32_MAX", 4000.0)
    x[0, 0] = 10
    checks.check_spread(x, "view w", "fix")
    x[0, 0] = 10.5
    with pytest.raises(DataError, match=r"^view w has values up to 10.5 in absolute value, above the 10 that"):
        checks.check_spread(x, "view w", "fix")


def test_too_few_distinct_rows_for_the_clusters_are_refused():
    x = np.repeat(points(3), 10, axis=0)  # 30 rows, 3 distinct
    view = View(x, np.arange(30) % 5, np.zeros(30, np.uint8), np.arange(30))
    with pytest.raises(DataError, match=r"^view v has 3 distinct rows \(of 30\), fewer than its 5 classes: identical "
                                        r"rows always share a cluster: rebuild it \(dvc repro embed@v\)"):
        checks.check_fits(view, "v")

    class Own:
        n_clusters = 4

    view.y = np.arange(30) % 2
    checks.check_fits(view, "v")  # 2 classes, 3 distinct rows: fine
    with pytest.raises(DataError, match=r"^view v has 3 distinct rows \(of 30\), fewer than n_clusters = 4: identical "
                                        r"rows always share a cluster: lower n_clusters \(at most 3\)$"):
        checks.check_fits(view, "v", Own())


def test_distinct_rows_counts_exactly_below_enough_and_stops_early_above():
    x = np.repeat(points(7), 500, axis=0)  # 3,500 rows, 7 distinct, the duplicates far apart
    assert checks.distinct_rows(x, 10) == 7 and checks.distinct_rows(x[::-1], 7) == 7
    assert checks.distinct_rows(points(5000), 10) == 64  # the first prefix already holds enough


def test_legitimate_views_pass_the_data_checks():
    """Large coordinates (sipu: up to 1e6), duplicate rows (iris, uci-statlog), a constant column
    (uci-ionosphere), pixels 0..1 and 0..255: none may be refused."""
    rng = np.random.default_rng(0)
    y = np.arange(200) % 4
    sipu = (rng.uniform(0, 1e6, size=(4, 2))[y] + rng.normal(scale=2e4, size=(200, 2))).astype(np.float32)
    sipu[150:] = sipu[:50]  # duplicates
    ionosphere = rng.uniform(-1, 1, size=(200, 34)).astype(np.float32)
    ionosphere[:, 1] = 0.0
    pixels = rng.integers(0, 256, size=(200, 784)).astype(np.float32)
    for x in (sipu, ionosphere, pixels, pixels / 255):
        view = View(x, y, np.zeros(200, np.uint8), np.arange(200))
        checks.check_view(view, "v")
        checks.check_fits(view, "v")


# --- classes: the rows a run is scored on, checked before any seed runs ------------------------------------

def test_a_view_with_one_class_is_refused_before_any_seed_runs(project):
    y = np.full(30, 4)
    y[:5] = -1
    save_view(points(30), y)
    with pytest.raises(DataError) as err:
        runs.execute(project(), "baselines", "smoke-kmeans-digits", progress=False)
    assert str(err.value) == (f"view {VIEW} has one class (label 4) in its 25 labelled rows: its scores would be "
                              f"meaningless (every metric 1.0 for one cluster): use a view with at least 2 classes "
                              f"(rebuild it (dvc repro embed@{VIEW}) and check its dataset and embedding steps)")
    assert nothing_written(io.run_dir("smoke", "smoke-kmeans-digits").parent)


def save_split_view(y, split) -> None:
    x = points(len(y))
    View(x, np.asarray(y, np.int64), np.asarray(split, np.uint8), np.arange(len(y), dtype=np.int64)).save(
        io.view_path("smoke", VIEW))


def test_a_test_split_with_one_class_is_refused_before_any_seed_runs(project, monkeypatch, capsys):
    """eval_split: test scores the test split only: the whole view's 3 classes do not count."""
    project(**{"baselines/smoke-kmeans-digits/eval_split": "test"})
    split = (np.arange(30) >= 20).astype(np.uint8)
    y = np.arange(30) % 3
    y[20:] = 1
    save_split_view(y, split)
    err = stage_error("baselines", "smoke-kmeans-digits", monkeypatch, capsys)
    assert err == (f"error: run smoke-kmeans-digits: the test split of view {VIEW} (eval_split: test, 10 rows) holds "
                   f"one class (label 1): scores against fewer than 2 classes are meaningless (every metric 1.0 for "
                   f"one cluster): use a view whose test split has at least 2 classes, or eval_split: all (rebuild it "
                   f"(dvc repro embed@{VIEW}) and check its dataset and embedding steps)")
    assert nothing_written(io.run_dir("smoke", "smoke-kmeans-digits").parent)
    y[20:] = -1
    save_split_view(y, split)
    assert "holds no labelled rows: " in stage_error("baselines", "smoke-kmeans-digits", monkeypatch, capsys)
    assert nothing_written(io.run_dir("smoke", "smoke-kmeans-digits").parent)


AGGLO = "smoke-agglomerative-digits"


def test_fewer_classes_than_clusters_asked_for_is_run_with_a_warning_in_run_json_and_on_stderr(project, capsys):
    from clusterbench import metrics

    assert set(metrics.score(np.zeros(10), np.zeros(10)).values()) == {1.0}  # why one class is refused
    params = project(**{f"baselines/{AGGLO}": {"method": "agglomerative", "view": VIEW, "profile": "smoke"},
                        "methods/agglomerative": {"n_clusters": 6}})
    save_view(points(30), np.arange(30) % 3)
    record = runs.execute(params, "baselines", AGGLO, progress=False)
    warning = (f"run {AGGLO}: the 30 rows of view {VIEW} it is scored on hold 3 classes, fewer than the 6 clusters "
               "it asks for (n_clusters = 6): ACC can match at most 3 of them to a class")
    assert record["warnings"] == [warning] and io.read_json(io.run_dir("smoke", AGGLO) / "run.json")["warnings"] == [
        warning]
    err = capsys.readouterr().err
    assert f"warning: {warning}\n" in err and err.index("warning: ") < err.index(f"[{AGGLO}] seed 0:")  # at start
    assert len(np.unique(io.read_npz(io.run_dir("smoke", AGGLO) / "predictions.npz")["labels"])) == 6


def test_runs_with_as_many_classes_as_clusters_get_no_warning(project, capsys):
    params = project(**{f"baselines/{AGGLO}": {"method": "agglomerative", "view": VIEW, "profile": "smoke"},
                        "methods/agglomerative": {"n_clusters": 3}})
    save_view(points(30), np.arange(30) % 3)
    for run in (AGGLO, "smoke-kmeans-digits"):  # its own n_clusters = 3; told the view's 3 classes
        runs.execute(params, "baselines", run, progress=False)
        assert "warnings" not in io.read_json(io.run_dir("smoke", run) / "run.json")
    assert "warning" not in capsys.readouterr().err


def test_open_set_runs_get_no_warning():
    """Hi-LANDER is told the whole view's classes and scored on the unseen split's, by design."""
    class Own:
        n_clusters = 6

    view = View(points(30), np.arange(30) % 3, np.zeros(30, np.uint8), np.arange(30))
    assert runs.class_warnings("r", "v", view, None, Own(), "open-set clustering") == []
    assert runs.class_warnings("r", "v", view, None, Own(), "clustering") == [  # the same run, were it clustering
        "run r: the 30 rows of view v it is scored on hold 3 classes, fewer than the 6 clusters it asks for "
        "(n_clusters = 6): ACC can match at most 3 of them to a class"]


# --- embed ------------------------------------------------------------------------------------

def test_build_view_refuses_a_dataset_with_nan_rows():
    x = points(20)
    x[[4, 9], 0] = np.nan  # row 4 is not selected
    arrays = DatasetArrays(x, np.arange(20) % 2, np.zeros(20))
    with pytest.raises(DataError, match=r"view v: its dataset has NaN or inf values in 1 of the 10 selected rows "
                                        r"\(first: dataset row 9\)"):
        embeddings.build_view(arrays, np.arange(1, 20, 2), [{"backend": "raw"}], name="v")


@pytest.mark.parametrize("bad, message", [
    (np.full((20, 2), np.nan, np.float32), r"view v \(after its embedding steps\) has NaN or inf values in 20 of 20"),
    (np.zeros((20, 0), np.float32), r"view v \(after its embedding steps\) is empty \(20 rows x 0 features\)"),
])
def test_build_view_refuses_a_non_finite_or_empty_embedding(monkeypatch, bad, message):
    monkeypatch.setattr(embeddings, "apply_steps", lambda *a, **k: (bad, ()))
    arrays = DatasetArrays(points(20), np.arange(20) % 2, np.zeros(20))
    with pytest.raises(DataError, match=message):
        embeddings.build_view(arrays, np.arange(20), [{"backend": "raw"}], name="v")


def test_build_view_refuses_an_empty_selection():
    arrays = DatasetArrays(points(0), np.zeros(0), np.zeros(0))
    with pytest.raises(DataError, match="view v selects no rows of its dataset"):
        embeddings.build_view(arrays, np.arange(0), [{"backend": "raw"}], name="v")


# --- dataset manifests depend on content only -------------------------------------------------------

PAYLOAD = bytes(range(256)) * 4


def _toy_spec(rf: RemoteFile) -> DatasetSpec:
    def build(paths):
        values = np.frombuffer(paths[rf.filename].read_bytes()[:8], np.uint8).astype(np.float32).reshape(4, 2)
        return DatasetArrays(values, [0, 1, 0, 1], [0, 0, 1, 1], ["a", "b"], info={"count": 4})

    return DatasetSpec("toy", "toy data", 4, 2, "train+test", "vector", (rf,), build)


def test_manifest_is_byte_identical_from_a_mirror_or_the_download_cache(tmp_path, monkeypatch, capsys):
    """The same bytes from elsewhere must not change the DVC output (else `make repro` dirties dvc.lock)."""
    monkeypatch.delenv(base.MIRROR_ENV, raising=False)
    monkeypatch.setattr(base, "DEFAULT_MIRRORS", ())
    rf = RemoteFile("f.bin", sha256=hashlib.sha256(PAYLOAD).hexdigest())
    (tmp_path / "mirror" / "deep").mkdir(parents=True)
    (tmp_path / "mirror" / "deep" / "f.bin").write_bytes(PAYLOAD)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "f.bin").write_bytes(PAYLOAD)
    from_mirror = Fetcher(mirrors=[tmp_path / "mirror" / "deep"], cache_dir=tmp_path / "empty", offline=True,
                          progress=False)
    from_cache = Fetcher(cache_dir=tmp_path / "cache", offline=True, progress=False)
    datasets.prepare("toy", tmp_path / "a", from_mirror, spec=_toy_spec(rf))
    datasets.prepare("toy", tmp_path / "b", from_cache, spec=_toy_spec(rf))
    assert from_mirror.fetched["f.bin"].origin == "mirror" and from_cache.fetched["f.bin"].origin == "cache"
    for name in ("manifest.json", "arrays.npz"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    manifest = (tmp_path / "a" / "manifest.json").read_text()
    assert str(tmp_path) not in manifest and hashlib.sha256(PAYLOAD).hexdigest() in manifest
    log = capsys.readouterr().err  # where the bytes came from is still told, on stderr
    assert "f.bin from mirror" in log and "f.bin from cache" in log

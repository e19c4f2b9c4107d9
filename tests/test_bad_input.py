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
    g = graphs.knn(points(30), 5)
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

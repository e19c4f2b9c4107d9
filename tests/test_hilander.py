"""Hi-LANDER: known answers of the level decode / merge and the stopping rule, the open-set
protocol (train split learnt, test split clustered and scored, test labels never read), the
two-model variant, the feature-pickle parser, the pin-on-first-download record and the generator."""
from __future__ import annotations

import io as _io
import json
import pickle
import tarfile

import numpy as np
import pytest

from clusterbench import metrics
from clusterbench.datasets import DatasetError, Fetcher, REGISTRY, RemoteFile
from clusterbench.datasets.parsers import parse_features_pickle, read_features_pickle, read_tar_pickles
from clusterbench.datasets.synthetic import openset_faces
from clusterbench.embeddings import View
from clusterbench.methods import RunContext, load_method
from clusterbench.methods import hilander as H

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

TINY = dict(train_knn_k=(4, 3), train_levels=(2, 2), hidden=16, epochs=2, batch_size=64, knn_k=4, levels=5,
            infer_batch_size=32)


# --- known answers: one level, the merge, the stop rule ---------------------------------------------

def test_one_level_of_linkage_and_merge_gives_the_expected_super_nodes():
    # 5 nodes, 2 incoming edges each (nbrs[i] -> i). Densities order the nodes 0 > 1 > 2 and 3 > 4.
    nbrs = np.array([[1, 2], [0, 2], [0, 1], [4, 0], [3, 2]])
    valid = np.ones_like(nbrs, dtype=bool)
    density = np.array([0.9, 0.5, 0.4, 0.8, 0.1])
    prob = np.array([[0.99, 0.99],   # into 0: no denser source -> 0 is a peak
                     [0.95, 0.20],   # into 1: 0 -> 1 kept (denser, p > tau)
                     [0.60, 0.90],   # into 2: 0 (p 0.6 < tau) dropped, 1 -> 2 kept
                     [0.99, 0.99],   # into 3: 4 is less dense, 0 -> 3 has p 0.99: kept (cross edge)
                     [0.95, 0.99]])  # into 4: 3 (0.95) and 2 (0.99) both denser, both pass: best p wins -> 2
    parent = H.inference.decode_level(nbrs, valid, prob, density, tau=0.8)
    assert parent.tolist() == [-1, 0, 1, 0, 2]
    hier = H.hierarchy.Hierarchy(np.eye(5, dtype=np.float32))
    added, peaks = hier.merge(parent)
    assert added == 4 and peaks.tolist() == [True, False, False, False, False]
    assert hier.labels.tolist() == [0, 0, 0, 0, 0]
    # tau above every probability: no edge, every node its own super-node
    parent = H.inference.decode_level(nbrs, valid, prob, density, tau=0.995)
    assert (parent == -1).all()


def test_merge_accumulates_over_levels_and_next_level_uses_peak_and_mean_features():
    feats = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=np.float32)
    hier = H.hierarchy.Hierarchy(feats)
    added, peaks = hier.merge(np.array([-1, 0, -1, 2]))  # {0, 1}, {2, 3}
    assert added == 2 and hier.labels.tolist() == [0, 0, 1, 1]
    nxt, cluster = hier.next_level(feats, peaks)
    assert nxt.tolist() == [[1, 0], [0, 1]] and cluster.tolist() == [[1, 0], [0, 1]]
    added, peaks = hier.merge(np.array([-1, 0]))  # level 2: super-node 1 -> super-node 0
    assert added == 1 and hier.labels.tolist() == [0, 0, 0, 0]


def test_stop_rule():
    assert H.inference.stop_iterating(0, 10, True, 0, np.inf, 10)          # no new edge
    assert H.inference.stop_iterating(9, 10, False, 5, 100, 10)            # last level
    assert not H.inference.stop_iterating(0, 10, True, 100, np.inf, 10)    # first level never stops early
    assert not H.inference.stop_iterating(1, 10, True, 10, 100, 10)        # 100 / 10 >= k - 1
    assert H.inference.stop_iterating(1, 10, True, 20, 100, 10)            # 100 / 20 < k - 1
    assert not H.inference.stop_iterating(1, 10, False, 20, 100, 10)       # ... unless early stop is off


class _NoLinkModel:
    """A model stub: every linkage probability 0 (so no edge ever passes tau)."""

    device = "cpu"

    def __init__(self):
        self.torch = torch

    def train(self, mode=True):
        pass

    def tensors(self, g):
        return (None, torch.as_tensor(g.nbrs), None, None)

    def predict(self, tensors, nodes):
        m = tensors[1].shape[1]
        logits = torch.zeros(len(nodes), m, 2)
        logits[..., 0] = 10.0
        return logits, torch.rand(len(nodes))


def test_level_loop_stops_when_no_edge_is_added():
    x = np.random.default_rng(0).standard_normal((40, 8)).astype(np.float32)
    labels, info, _ = H.inference.infer(_NoLinkModel(), x, H.Config(**TINY))
    assert len(info) == 1 and info[0]["edges_added"] == 0
    assert len(np.unique(labels[-1])) == 40


# --- the open-set protocol ----------------------------------------------------------------------

def _open_set_view(seed=0, n_ids=30):
    a = openset_faces(n_train_ids=n_ids, n_test_ids=n_ids, dim=16, max_size=12, seed=seed)
    return View(a.X, a.y, a.split, np.arange(len(a.X)))


def _fit(view, **over):
    method = load_method("hilander")
    ctx = RunContext(view=view, graph=None, seed=0, n_clusters=view.n_clusters, progress=False)
    return method.fit_predict(ctx, H.Config(**{**TINY, **over}))


def test_fit_predict_clusters_the_test_split_only_and_never_reads_its_labels():
    view = _open_set_view()
    res = _fit(view)
    test_rows = np.flatnonzero(view.split == 1)
    assert np.array_equal(res.index, test_rows) and len(res.labels) == len(test_rows)
    assert res.extra["levels"] and {"fp", "fb", "nmi", "wall_s", "edges_added"} <= set(res.extra["levels"][0])
    assert res.extra["inference_s"] > 0 and res.extra["n_train_identities"] == 30
    # permuting the test labels changes nothing but the scores
    y = view.y.copy()
    rng = np.random.default_rng(1)
    y[test_rows] = rng.permutation(y[test_rows]) + 1000
    shuffled = _fit(View(view.X, y, view.split, view.index))
    assert np.array_equal(shuffled.labels, res.labels)


def test_tau_sweep_rescores_the_same_model_without_changing_the_prediction():
    view = _open_set_view()
    plain = _fit(view)
    swept = _fit(view, sweep_tau=(TINY.get("tau", 0.8), 0.0, 0.99))
    assert np.array_equal(swept.labels, plain.labels)  # the prediction stays at tau
    same, loose, strict = swept.extra["tau_sweep"]
    last = plain.extra["levels"][-1]
    assert (same["fp"], same["fb"], same["nmi"], same["clusters"]) == (last["fp"], last["fb"], last["nmi"],
                                                                       last["clusters"])
    # a lower threshold keeps a superset of level 0's parents, so it merges at least as much (and does
    # here at the last level too)
    assert loose["clusters"] <= same["clusters"] <= strict["clusters"]
    with pytest.raises(ValueError, match="sweep_tau"):
        H.Config(sweep_tau=(1.5,))


def test_two_model_variant_and_gat_run():
    view = _open_set_view()
    for over in ({"joint": False}, {"conv": "gat", "gat_heads": 2}, {"num_conv": 2}):
        res = _fit(view, **over)
        assert len(res.labels) == int((view.split == 1).sum())
    joint = H.model.Model(16, H.Config(**TINY), "cpu").n_params()
    two = H.model.Model(16, H.Config(**TINY, joint=False), "cpu").n_params()
    assert two > joint


def test_view_without_a_test_split_is_refused():
    view = _open_set_view()
    with pytest.raises(ValueError, match="open-set view"):
        _fit(View(view.X, view.y, np.zeros_like(view.split), view.index))


def test_config_pairs_k_with_levels():
    with pytest.raises(ValueError, match="same length"):
        H.Config(train_knn_k=(10, 5), train_levels=(2,))


def test_open_set_task_is_scored_as_clustering():
    y = np.array([0, 0, 1, 1])
    assert metrics.score(y, y, "open-set clustering") == metrics.score(y, y, "clustering")
    assert "fp" in metrics.score(y, y, "open-set clustering")
    with pytest.raises(ValueError, match="unknown task"):
        metrics.score(y, y, "open set")


def test_baselines_eval_split_test_restricts_rows(monkeypatch, tmp_path):
    from clusterbench import io, runs
    from clusterbench.config import BaselineRun

    view = _open_set_view()
    view.save(tmp_path / "v.npz")
    monkeypatch.setattr(io, "view_path", lambda profile, name: tmp_path / "v.npz")
    sub, rows = runs.load_run_view(BaselineRun(method="kmeans", view="v", profile="full", eval_split="test"))
    assert np.array_equal(rows, np.flatnonzero(view.split == 1)) and (sub.split == 1).all()
    assert sub.n_clusters == 30
    full, rows = runs.load_run_view(BaselineRun(method="kmeans", view="v", profile="full"))
    assert rows is None and len(full.X) == len(view.X)


# --- data ---------------------------------------------------------------------------------------

def test_generator_is_seeded_open_set_and_on_the_unit_sphere():
    a, b = openset_faces(50, 40, dim=8, seed=3), openset_faces(50, 40, dim=8, seed=3)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    assert np.allclose(np.linalg.norm(a.X, axis=1), 1.0, atol=1e-5)
    assert not set(a.y[a.split == 0]) & set(a.y[a.split == 1])
    assert len(np.unique(a.y[a.split == 0])) == 50 and len(np.unique(a.y[a.split == 1])) == 40
    sizes = np.bincount(a.y)
    assert sizes.min() >= 2 and sizes.max() > 4 * np.median(sizes)  # heavy tail


def test_registered_open_set_datasets():
    a = REGISTRY["openset-faces-synth"].build({})
    assert len(a.X) == REGISTRY["openset-faces-synth"].n_samples and a.n_classes == 2000
    assert REGISTRY["fashion-mnist-test-open5"].files == REGISTRY["fashion-mnist-test"].files
    digits = REGISTRY["digits-open5"].build({})  # the development set: digits 0-4 seen, 5-9 unseen
    assert set(digits.y[digits.split == 0]) == {0, 1, 2, 3, 4} and set(digits.y[digits.split == 1]) == {5, 6, 7, 8, 9}
    for name in ("deepglint-hannah", "deepglint-imdb", "deepglint-imdb-samedist"):
        (rf,) = REGISTRY[name].files
        assert rf.pin_first and rf.urls[0].endswith("/dataset/hilander/data.tar.gz")


def _pickle_bytes(x, y) -> bytes:
    return pickle.dumps((x, y), protocol=4)


def test_feature_pickle_round_trip(tmp_path):
    x = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    y = np.array([3, 3, 1, 0, 0, 0, 9])
    path = tmp_path / "f.pkl"
    path.write_bytes(_pickle_bytes(x, y))
    gx, gy = read_features_pickle(path)
    assert np.array_equal(gx, x) and np.array_equal(gy, y) and gy.dtype == np.int64
    tar = tmp_path / "data.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        for name, payload in (("a.pkl", _pickle_bytes(x, y)), ("b.pkl", _pickle_bytes(x[:2], y[:2]))):
            info = tarfile.TarInfo(f"data/{name}")
            info.size = len(payload)
            t.addfile(info, _io.BytesIO(payload))
    got = read_tar_pickles(tar, ["b.pkl", "a.pkl"])
    assert np.array_equal(got["b.pkl"][0], x[:2])
    with pytest.raises(ValueError, match="no member named c.pkl"):
        read_tar_pickles(tar, ["c.pkl"])


def test_feature_pickle_refuses_code_and_bad_shapes():
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(ValueError, match="refusing builtins.print"):
        parse_features_pickle(_io.BytesIO(pickle.dumps((Evil(), np.zeros(2)))))
    with pytest.raises(ValueError, match="do not match"):
        parse_features_pickle(_io.BytesIO(_pickle_bytes(np.zeros((3, 2)), np.zeros(2, int))))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_feature_pickles_of_every_protocol_round_trip_exactly(protocol):
    """Protocol 2 writes array bytes through _codecs.encode, 5 through numpy._core.numeric._frombuffer:
    both were refused before; each protocol must give back exactly the arrays pickled."""
    from clusterbench.datasets.parsers import load_array_pickle

    rng = np.random.default_rng(protocol)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    y = np.array([5, 0, 0, 2, 9, 9], dtype=np.int64)
    gx, gy = parse_features_pickle(_io.BytesIO(pickle.dumps((x, y), protocol=protocol)))
    assert gx.dtype == np.float32 and np.array_equal(gx, x) and np.array_equal(gy, y)
    data = {"features": np.asfortranarray(x), "labels": y, "big_endian": x.astype(">f8"), "empty": x[:0],
            "scalars": [np.float32(1.5), np.int64(-3)], "meta": ("name", 3, 2.5, None, [True])}
    got = load_array_pickle(_io.BytesIO(pickle.dumps(data, protocol=protocol)))
    assert got.keys() == data.keys() and got["meta"] == data["meta"]
    for key in ("features", "labels", "big_endian", "empty"):
        assert got[key].dtype == data[key].dtype and got[key].shape == data[key].shape
        assert np.array_equal(got[key], data[key])
    assert got["scalars"] == data["scalars"] and type(got["scalars"][0]) is np.float32


def test_python2_numpy1_module_names_are_read():
    """CIFAR's batches and older example pickles name numpy.core.*, not numpy._core.*."""
    from clusterbench.datasets.parsers import load_array_pickle

    x = np.arange(6, dtype=np.uint8).reshape(2, 3)
    raw = pickle.dumps({"data": x, "labels": [1, 2]}, protocol=2).replace(b"numpy._core", b"numpy.core")
    assert b"numpy.core.multiarray" in raw
    got = load_array_pickle(_io.BytesIO(raw), encoding="latin1")
    assert np.array_equal(got["data"], x) and got["labels"] == [1, 2]


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("target", ["os.system", "builtins.eval"])
def test_feature_pickle_asking_for_code_is_refused_and_nothing_runs(tmp_path, protocol, target):
    import os

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            if target == "os.system":
                return (os.system, (f"touch {marker}",))
            return (eval, (f"open({str(marker)!r}, 'w').close()",))

    payload = pickle.dumps((Evil(), np.zeros(2)), protocol=protocol)
    with pytest.raises(ValueError) as err:
        parse_features_pickle(_io.BytesIO(payload), "f.pkl")
    message = str(err.value)
    assert "\n" not in message and "refusing" in message
    assert ("system" in message) if target == "os.system" else ("eval" in message)
    assert not marker.exists()


def test_object_arrays_and_forged_dtype_flags_are_refused():
    """An object array's items, or a dtype whose flags are edited to claim Python objects (numpy
    would then read raw bytes as object pointers), never reach numpy's __setstate__."""
    from clusterbench.datasets.parsers import load_array_pickle

    with pytest.raises(pickle.UnpicklingError, match="dtype 'O8'"):
        load_array_pickle(_io.BytesIO(pickle.dumps(np.array([1, "a"], dtype=object))))

    class ForgedDtype:  # a void dtype whose state sets the "holds Python objects" flags (63)
        def __reduce__(self):
            return (np.dtype, ("V8", False, True), (3, "|", None, None, None, 8, 1, 63))

    class ForgedArray:  # one item of raw bytes that numpy would take for an object pointer
        def __reduce__(self):
            return (np._core.multiarray._reconstruct, (np.ndarray, (0,), b"b"),
                    (1, (1,), ForgedDtype(), False, b"A" * 8))

    forged = pickle.dumps([ForgedArray()], protocol=4)
    assert b"_reconstruct" in forged and b"ForgedArray" not in forged
    with pytest.raises(pickle.UnpicklingError, match="dtype 'V8'"):
        load_array_pickle(_io.BytesIO(forged))


def test_pin_first_records_then_verifies(tmp_path, monkeypatch):
    monkeypatch.delenv("CLUSTERBENCH_MIRROR", raising=False)
    mirror = tmp_path / "mirror" / "hilander"
    mirror.mkdir(parents=True)
    (mirror / "data.tar.gz").write_bytes(b"first copy")
    rf = RemoteFile("data.tar.gz", mirror_subdirs=("hilander",), pin_first=True, unpinned="none published")
    f = Fetcher(mirrors=[tmp_path / "mirror"], cache_dir=tmp_path / "cache", offline=True, progress=False)
    f.get(rf)
    record = json.loads(f.pin_path(rf).read_text())
    assert record["size"] == len(b"first copy") and len(record["sha256"]) == 64
    f.get(rf)  # the same bytes again: accepted
    (mirror / "data.tar.gz").write_bytes(b"another copy")
    with pytest.raises(DatasetError) as err:
        f.get(rf)
    assert "recorded on first download" in str(err.value) and "\n" not in str(err.value)


def test_scoring_reports_open_set_metrics_on_evaluated_rows_and_inference_time(tmp_path):
    from clusterbench import io, scoring

    y = np.array([5, 5, 0, 0, 1, 1, 2])
    split = np.array([0, 0, 1, 1, 1, 1, 1], dtype=np.uint8)
    view = View(np.zeros((7, 2), np.float32), y, split, np.arange(7))
    io.write_npz(tmp_path / "predictions.npz", labels=np.array([[0, 0, 1, 1, 2], [0, 0, 0, 0, 0]]),
                 index=np.arange(2, 7), seeds=np.array([0, 1]))
    seed = {"wall_s": 1.0, "peak_rss_mb": 1.0, "extra": {"inference_s": 2.0}}
    io.write_json(tmp_path / "run.json", {
        "run": "r", "method": "hilander", "task": "open-set clustering", "dataset": "d", "view": "v",
        "embedding": "raw", "profile": "full", "n_eval": 5, "n_clusters": 4, "device": "cpu",
        "per_seed": [seed, {**seed, "extra": {"inference_s": 4.0}}]})
    s = scoring.score_run(tmp_path, view)
    assert s["per_seed"]["fp"] == pytest.approx([1.0, 2 * 0.2 * 1 / (0.2 + 1)], abs=1e-6)  # 2 true pairs of 10
    assert s["mean"]["inference_s"] == 3.0 and "top1" not in s["mean"]


def test_manifest_records_size_of_a_pinned_file(tmp_path, monkeypatch):
    from clusterbench.datasets import DatasetArrays, DatasetSpec, prepare

    monkeypatch.delenv("CLUSTERBENCH_MIRROR", raising=False)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "f.bin").write_bytes(b"12345")
    rf = RemoteFile("f.bin", pin_first=True, unpinned="none published")
    spec = DatasetSpec("toy", "toy", 2, 1, "train", "vector", (rf,),
                       lambda paths: DatasetArrays(np.zeros((2, 1), np.float32), np.zeros(2), np.zeros(2)))
    f = Fetcher(mirrors=[tmp_path / "m"], cache_dir=tmp_path / "cache", offline=True, progress=False)
    prepare("toy", tmp_path / "out", f, spec)
    (source,) = json.loads((tmp_path / "out" / "manifest.json").read_text())["sources"]
    assert source["size"] == 5 and source["sha256"] == json.loads(f.pin_path(rf).read_text())["sha256"]


def test_plan_passes_eval_split_of_a_group_to_its_runs():
    from clusterbench.config import expand

    raw = {"profiles": {"full": {}}, "embeddings": {"raw": [{"backend": "raw"}]}, "views": {},
           "baselines": {"g": {"eval_split": "test", "datasets": ["openset-faces-synth"], "methods": {"kmeans": {}}}}}
    out, errors = expand(raw)
    assert not errors and out["baselines"]["kmeans-openset-faces-synth"]["eval_split"] == "test"

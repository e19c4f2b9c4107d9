"""Known-answer tests for the kNN builder and the edge weightings."""
import hashlib

import numpy as np
import pytest

from clusterbench import graphs, io
from clusterbench.checks import DataError

LINE = np.array([[0.0], [1.0], [3.0], [7.0]], dtype=np.float32)


def test_knn_on_a_line_excludes_self_and_sorts_by_distance():
    g = graphs.knn(LINE, 2, use_gpu=False)
    assert g.indices.tolist() == [[1, 2], [0, 2], [1, 0], [2, 1]]
    np.testing.assert_allclose(g.distances, [[1, 3], [1, 2], [2, 3], [4, 6]])


def test_knn_excludes_self_even_with_duplicate_points():
    x = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 0.0]], dtype=np.float32)
    g = graphs.knn(x, 2, use_gpu=False)
    assert g.indices[0].tolist() == [1, 2]
    assert g.indices[1].tolist() == [0, 2]
    np.testing.assert_allclose(g.distances[:2], [[0, 5], [0, 5]])


def test_knn_queries_search_the_base_set():
    g = graphs.knn(LINE, 1, queries=np.array([[2.9], [6.0]], dtype=np.float32), use_gpu=False)
    assert g.indices.ravel().tolist() == [2, 3]


def test_knn_matches_brute_force_on_random_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    g = graphs.knn(x, 7, use_gpu=False, batch_size=64)
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    expected = np.argsort(d, axis=1, kind="stable")[:, :7]
    assert (g.indices == expected).mean() > 0.99  # ties may order differently
    np.testing.assert_allclose(g.distances, np.sort(d, axis=1)[:, :7], rtol=1e-4, atol=1e-4)


def test_knn_rejects_k_larger_than_candidates():
    with pytest.raises(DataError, match=r"has 4 rows; k = 4 needs more than k rows: lower k \(at most 3\)"):
        graphs.knn(LINE, 4, use_gpu=False)
    with pytest.raises(DataError, match=r"k = 5 needs at least k rows: lower k \(at most 4\)"):
        graphs.knn(LINE, 5, queries=LINE[:1], use_gpu=False)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_knn_refuses_non_finite_rows_and_queries(bad):
    x = LINE.copy()
    x[2, 0] = bad
    with pytest.raises(DataError, match=r"view v has NaN or inf values in 1 of 4 rows \(first: row 2\)"):
        graphs.knn(x, 2, use_gpu=False, label="view v")
    with pytest.raises(DataError, match="queries"):
        graphs.knn(LINE, 1, queries=x, use_gpu=False)


def test_knn_never_returns_a_missing_neighbour(monkeypatch):
    """faiss pads neighbours it cannot find with -1: such a list must never reach a graph file."""
    import faiss

    class Padding(faiss.IndexFlatL2):
        def search(self, q, k):
            d, i = super().search(q, k)
            i[1, -1], d[1, -1] = -1, np.finfo(np.float32).max
            return d, i

    monkeypatch.setattr(faiss, "IndexFlatL2", Padding)
    with pytest.raises(DataError, match="no valid neighbour list for 1 rows of the data \\(first: row 1"):
        graphs.knn(LINE, 2, use_gpu=False)


def test_truncate_takes_prefix_and_explains_too_large_k():
    g = graphs.knn(LINE, 3, use_gpu=False)
    assert g.truncate(1).indices.ravel().tolist() == [1, 0, 1, 2]
    with pytest.raises(ValueError, match="model.k"):
        g.truncate(5)


def test_graph_save_load_round_trip(tmp_path):
    g = graphs.knn(LINE, 2, use_gpu=False)
    g.save(tmp_path / "g.npz")
    back = graphs.KnnGraph.load(tmp_path / "g.npz")
    assert np.array_equal(back.indices, g.indices) and np.array_equal(back.distances, g.distances)


def test_inverse_distance():
    np.testing.assert_allclose(graphs.inverse_distance(np.array([[2.0, 0.5]]), eps=0.0), [[0.5, 2.0]])
    assert np.isfinite(graphs.inverse_distance(np.array([[0.0]]))).all()


def test_heat_kernel():
    np.testing.assert_allclose(graphs.heat_kernel(np.array([[0.0, 1.0]]), sigma=1.0), [[1.0, np.exp(-0.5)]])
    # Default sigma = mean distance: d = sigma gives exp(-1/2).
    np.testing.assert_allclose(graphs.heat_kernel(np.array([[2.0, 2.0]])), [[np.exp(-0.5)] * 2])


def test_local_softmax_rows_sum_to_one_and_favour_near_neighbours():
    w = graphs.local_softmax(np.array([[0.0, np.log(2.0)], [5.0, 5.0]]))
    np.testing.assert_allclose(w, [[2 / 3, 1 / 3], [0.5, 0.5]])


def test_local_softmax_is_stable_for_large_distances():
    w = graphs.local_softmax(np.array([[1000.0, 1001.0]]))
    np.testing.assert_allclose(w, [[1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1))]])


def test_fuzzy_union_hand_computed():
    w = graphs.to_sparse(np.array([[1], [0], [0]]), np.array([[0.5], [0.2], [0.4]]))
    a = graphs.fuzzy_union(w).toarray()
    # A01 = .5 + .2 - .1; A02 = 0 + .4 - 0; symmetric; diagonal empty.
    np.testing.assert_allclose(a, [[0, 0.6, 0.4], [0.6, 0, 0], [0.4, 0, 0]])


def test_edge_index_points_messages_from_neighbour_to_node():
    ei = graphs.edge_index(np.array([[1], [2], [0]]))
    assert ei.tolist() == [[1, 2, 0], [0, 1, 2]]
    sym = graphs.edge_index(np.array([[1], [0], [0]]), symmetric=True)
    assert {tuple(e) for e in sym.T} == {(0, 1), (1, 0), (0, 2), (2, 0)}


# --- the view a graph was built from ------------------------------------------------------------

def test_view_graph_records_the_features_hash_through_save_load_and_truncate(tmp_path):
    g = graphs.view_graph(LINE, 2, use_gpu=False)
    assert g.view_sha256 == io.features_sha256(LINE) and graphs.knn(LINE, 2, use_gpu=False).view_sha256 is None
    g.save(tmp_path / "g.npz")
    back = graphs.KnnGraph.load(tmp_path / "g.npz")
    assert back.view_sha256 == g.view_sha256 and back.truncate(1).view_sha256 == g.view_sha256


def test_a_graph_file_without_the_hash_loads_as_unknown(tmp_path):
    """Graph files written before graphs recorded their view: loadable, hash None (runs refuse them)."""
    io.write_npz(tmp_path / "old.npz", indices=np.zeros((4, 2), np.int64), distances=np.zeros((4, 2), np.float32))
    assert graphs.KnnGraph.load(tmp_path / "old.npz").view_sha256 is None


def test_features_hash_known_answer_and_what_it_tells_apart():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    expected = hashlib.sha256(b"<f4 (2, 3)\n" + x.tobytes()).hexdigest()
    assert io.features_sha256(x) == expected
    assert io.features_sha256(np.asfortranarray(x)) == expected  # the values, not the memory layout
    assert io.features_sha256(x.reshape(3, 2)) != expected  # same bytes, other shape
    assert io.features_sha256(x.view(np.int32)) != expected  # same bytes, other dtype
    y = x.copy()
    y[1, 2] = np.nextafter(y[1, 2], np.float32(10))
    assert io.features_sha256(y) != expected  # one ulp in one value


@pytest.mark.parametrize("layout", [np.ascontiguousarray, np.asfortranarray])
def test_streamed_hash_of_a_stored_view_equals_the_hash_of_its_loaded_features(tmp_path, layout):
    x = layout(np.random.default_rng(0).normal(size=(300, 7)).astype(np.float32))
    io.write_npz(tmp_path / "v.npz", X=x, y=np.zeros(300, np.int64))
    assert io.npz_member_sha256(tmp_path / "v.npz", "X") == io.features_sha256(x) == io.features_sha256(
        io.read_npz(tmp_path / "v.npz")["X"])

"""LNSCC: known answers for the graph, the QA matrices, the pair sets, each loss, the target
distribution and the eta schedule; determinism; SCAN's train/test protocol; two blobs end to end."""
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from pydantic import ValidationError

from clusterbench import graphs
from clusterbench.embeddings import View
from clusterbench.methods import RunContext, load_method
from clusterbench.methods import lnscc


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny networks: thread start-up and spinning cost more than they save (and far more on a
    loaded machine), so these tests run single-threaded and restore the setting afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# Four points on a line, x = 0, 1, 3, 4, with M = 2 neighbours each (hand-built kNN lists).
LINE_INDICES = np.array([[1, 2], [0, 2], [3, 1], [2, 1]])
LINE_DISTANCES = np.array([[1.0, 3.0], [1.0, 2.0], [1.0, 2.0], [1.0, 3.0]])
P = 1 / (1 + math.exp(-2))  # softmax weight of the nearer neighbour when the gap is 2
Q = 1 / (1 + math.exp(-1))  # ... when the gap is 1
# A by hand (eq. 2): mutual edges a + b - ab, one-sided edges keep their weight.
A01 = P + Q - P * Q  # = 1 - (1 - P)(1 - Q)
A02 = 1 - P
A12 = 2 * (1 - Q) - (1 - Q) ** 2
A13 = 1 - P
A23 = A01
EDGES = [(0, 1, A01), (0, 2, A02), (1, 2, A12), (1, 3, A13), (2, 3, A23)]


def line_graph():
    return graphs.KnnGraph(LINE_INDICES, LINE_DISTANCES.astype(np.float32))


def test_locally_normalised_graph_matches_hand_computation():
    a = lnscc.pairs.locally_normalised_graph(LINE_INDICES, LINE_DISTANCES).toarray()
    expected = np.zeros((4, 4))
    for i, j, w in EDGES:
        expected[i, j] = expected[j, i] = w
    np.testing.assert_allclose(a, expected, atol=1e-12)
    i, j, w = lnscc.pairs.undirected_edges(sp.csr_matrix(a))
    assert list(zip(i.tolist(), j.tolist())) == [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]
    np.testing.assert_allclose(w, [e[2] for e in EDGES], atol=1e-12)


def test_quantity_augmentation_known_answer():
    w = np.array([e[2] for e in EDGES])
    qa = lnscc.pairs.quantity_augmentation(w, alpha=2.0)
    # A_max = A01 = 0.96797, (1 - A)_max = 1 - A02 = P, A_mean = (2 A01 + 2 A02 + A12) / 5 = 0.52797
    assert qa.a_max == pytest.approx(A01)
    assert qa.one_minus_a_max == pytest.approx(P)
    assert qa.a_mean == pytest.approx((2 * A01 + 2 * A02 + A12) / 5)
    # Q^{im+} = floor(2 A_max / (1 - A)): 1.93594/0.03206 = 60.4, 1.93594/0.8808 = 2.2, 1.93594/0.5345 = 3.6
    assert qa.im_pos.tolist() == [60, 2, 3, 2, 60]
    # Q^{im-} = floor(P / A): P/A01 = 0.91, P/(1-P) = e^2 = 7.39, P/A12 = 1.89
    assert qa.im_neg.tolist() == [0, 7, 1, 7, 0]
    # Q^{ba} = floor(A / A_mean): 1.83, 0.23, 0.88
    assert qa.ba.tolist() == [1, 0, 0, 0, 1]


def test_qa_floor_of_exact_integer_ratio():
    # mean = 0.2 in exact arithmetic; in floats 0.2 / mean(...) = 0.9999999999999998 without the slack.
    qa = lnscc.pairs.quantity_augmentation(np.array([0.1, 0.2, 0.3]), alpha=1.0)
    assert qa.ba.tolist() == [0, 1, 1]


def test_qa_rejects_weights_outside_unit_interval():
    with pytest.raises(ValueError, match="edge weights"):
        lnscc.pairs.quantity_augmentation(np.array([0.0, 0.5]), alpha=2.0)
    with pytest.raises(ValueError, match="no edges"):
        lnscc.pairs.quantity_augmentation(np.array([]), alpha=2.0)


def test_pair_sets_sizes_and_disconnected_pairs():
    config = lnscc.Config(n_neighbors=2)
    sets = lnscc.pairs.build_pair_sets(line_graph(), config)
    sizes = sets.sizes()
    assert sizes == {"edges": 5, "im+": 127, "im-": 15, "ba": 2, "dis": 5 * 127}
    # every (i, j) in the im+ set is an edge, repeated Q^{im+} times
    im_pos = sets.fixed[sets.fixed[:, 2] == lnscc.config.IM_POS]
    assert np.sum((im_pos[:, 0] == 0) & (im_pos[:, 1] == 1)) == 60
    dis = lnscc.pairs.sample_disconnected(sets.a, sizes["dis"], np.random.default_rng(0))
    assert dis.shape == (635, 2)
    # the only disconnected pair of the line graph is {0, 3}
    assert {tuple(sorted(p)) for p in dis.tolist()} == {(0, 3)}


def test_disconnected_sampling_never_returns_edges_or_self_pairs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 3))
    g = graphs.knn(x, 4)
    a = lnscc.pairs.locally_normalised_graph(g.indices, g.distances)
    dis = lnscc.pairs.sample_disconnected(a, 5000, rng)
    assert len(dis) == 5000
    assert (dis[:, 0] != dis[:, 1]).all()
    assert (np.asarray(a[dis[:, 0], dis[:, 1]]).ravel() == 0).all()


def test_ablation_switches_drop_pair_kinds_but_keep_dis_size():
    sets = lnscc.pairs.build_pair_sets(line_graph(), lnscc.Config(n_neighbors=2, use_im=False))
    assert set(np.unique(sets.fixed[:, 2]).tolist()) == {lnscc.config.BA}
    assert sets.n_dis == 5 * 127, "|E^dis| = beta |E^im+| is defined by the graph, not by the switch"
    sets = lnscc.pairs.build_pair_sets(line_graph(), lnscc.Config(n_neighbors=2, use_dis=False, beta=5))
    assert sets.n_dis == 0
    with pytest.raises(ValidationError, match="no contrastive loss"):
        lnscc.Config(use_im=False, use_ba=False, use_dis=False)


def test_losses_on_hand_computed_similarities():
    zi = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    zj = torch.tensor([[3.0, 4.0], [1.0, 1.0]])
    d = lnscc.losses.pair_distance(zi, zj)
    assert d[0].item() == pytest.approx(5.0)
    assert d[1].item() == pytest.approx(0.0, abs=1e-5)
    # O = e^-5: -log O = 5, -log(1 - O) = -log(1 - e^-5)
    assert lnscc.losses.loss_ba(d[:1]).item() == pytest.approx(5.0)
    assert lnscc.losses.loss_dis(d[:1]).item() == pytest.approx(-math.log(1 - math.exp(-5)), rel=1e-5)
    # eq. 9 with one im+ pair at O = e^-5 and one im- pair at O = 1/2
    d_half = torch.tensor([math.log(2.0)])
    assert lnscc.losses.loss_im(d[:1], d_half).item() == pytest.approx(5.0 + math.log(2.0), rel=1e-6)
    # O = 1 (same point): log(1 - O) is clamped at log(log_eps)
    assert lnscc.losses.loss_dis(d[1:], log_eps=1e-4).item() == pytest.approx(-math.log(1e-4), rel=1e-6)
    # gradients stay finite at distance 0 for both kinds of term
    z = torch.zeros(2, 3, requires_grad=True)
    dz = lnscc.losses.pair_distance(z[:1], z[1:])
    (lnscc.losses.loss_ba(dz) + lnscc.losses.loss_dis(dz)).backward()
    assert torch.isfinite(z.grad).all()


def test_target_distribution_and_clustering_loss_known_answer():
    u = torch.tensor([[0.5, 0.5], [0.9, 0.1]])
    v = lnscc.losses.target_distribution(u)
    # column sums f = (1.4, 0.6); row 0: (0.25/1.4, 0.25/0.6) normalised = (0.3, 0.7)
    np.testing.assert_allclose(v[0].numpy(), [0.3, 0.7], atol=1e-6)
    np.testing.assert_allclose(v[1].numpy(), [0.81 / 1.4, 0.01 / 0.6] / np.sum([0.81 / 1.4, 0.01 / 0.6]), atol=1e-6)
    vv = v.numpy()
    kl = np.mean([sum(vv[i, k] * math.log(vv[i, k] / u[i, k].item()) for k in range(2)) for i in range(2)])
    balance = 0.7 * math.log(0.7) + 0.3 * math.log(0.3)  # U_bar = (0.7, 0.3)
    assert lnscc.losses.clustering_loss(u, gamma=1.0).item() == pytest.approx(kl + balance, rel=1e-5)
    assert lnscc.losses.clustering_loss(u, gamma=0.0).item() == pytest.approx(kl, rel=1e-5)


def test_clustering_loss_gradient_does_not_flow_through_target():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]], requires_grad=True)
    u = torch.softmax(logits, 1)
    lnscc.losses.clustering_loss(u, gamma=0.0).backward()
    v = lnscc.losses.target_distribution(u.detach())
    # d KL(V||U)/d logits with V fixed and U = softmax: (U - V) / n per row
    np.testing.assert_allclose(logits.grad.numpy(), ((u.detach() - v) / 2).numpy(), atol=1e-6)


def test_eta_schedule():
    assert lnscc.losses.eta_schedule(0, 0.05, 5) == 0
    assert lnscc.losses.eta_schedule(10, 0.05, 5) == pytest.approx(0.5)
    assert lnscc.losses.eta_schedule(100, 0.05, 5) == pytest.approx(5.0)
    assert lnscc.losses.eta_schedule(10_000, 0.05, 5) == 5.0


def blobs(n_per=60, dim=8, gap=12.0, seed=0, split=None):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(0, 1, (n_per, dim)), rng.normal(gap, 1, (n_per, dim))]).astype(np.float32)
    y = np.repeat([0, 1], n_per)
    split = np.zeros(len(y), np.uint8) if split is None else split
    return View(x, y, split, np.arange(len(y)))


# Small model, short runs. The step readings are pinned to the first ones (Euclidean d, union
# batches, float32, foreach SGD) so the hand-computed step counts and the legacy comparisons hold;
# test_default_readings_separate_two_blobs runs the defaults.
FAST = dict(encoder_dims=(32, 32), embedding_dim=8, head_hidden=8, epochs=2, steps_per_epoch=40, snapshot_rows=50,
            plateau_tol=None, stop_changed=None, distance="euclidean", batching="union", encoder_dtype="float32", sgd_kernel="foreach")
DEFAULT_READINGS = {k: lnscc.Config.model_fields[k].default for k in ("distance", "batching", "encoder_dtype",
                                                                        "sgd_kernel")}


def test_default_readings_separate_two_blobs():
    """squared d, per-set batches, auto products (float32 on this CPU), fused SGD: per-set batches
    take 4x fewer steps per epoch, so five epochs give the 80 steps the union runs get in two."""
    assert DEFAULT_READINGS == {"distance": "squared", "batching": "per_set", "encoder_dtype": "auto",
                                "sgd_kernel": "fused"}
    view = blobs()
    for seed in (0, 1):
        result = run(view, seed=seed, epochs=5, **DEFAULT_READINGS)
        assert result.extra["steps"] == 80
        assert max(np.mean(result.labels == view.y), np.mean(result.labels != view.y)) == 1.0


def test_training_stops_once_the_clusters_have_settled():
    """stop_changed: after min_epochs, an epoch in which < stop_changed of the tracked rows changed
    cluster ends training (label-free); the history says how many changed."""
    view = blobs()
    result = run(view, epochs=6, min_epochs=3, stop_changed=0.05)
    changed = [row["changed"] for row in result.history]
    assert all(c is not None for c in changed)  # the step-0 snapshot gives epoch 1 a reference
    first = next(e for e, c in enumerate(changed, 1) if e >= 3 and c < 0.05)
    assert result.extra["epochs"] == first < 6 and result.extra["stopped"] == "settled"
    assert run(view, epochs=4, min_epochs=3, stop_changed=None).extra["epochs"] == 4


def run(view, seed=0, k=10, workdir=None, rows=None, **overrides):
    graph = graphs.knn(view.X, k)
    ctx = RunContext(view=view, graph=graph, seed=seed, n_clusters=2, progress=False, workdir=workdir)
    return lnscc.fit_predict(ctx, lnscc.Config(**{**FAST, **overrides}))


def test_two_blobs_end_to_end(tmp_path):
    view = blobs()
    # union batches: 60 steps per epoch whatever the pair-set sizes (the snapshot steps below)
    result = run(view, workdir=tmp_path / "seed-0", epochs=3, steps_per_epoch=60, batching="union")
    truth = view.y
    agree = max(np.mean(result.labels == truth), np.mean(result.labels == 1 - truth))
    assert agree == 1.0, f"two blobs 12 sigma apart must be separated, got accuracy {agree}"
    assert result.embedding.shape == (120, 8)
    assert result.extra["epochs"] == 3 and result.extra["steps"] == 180 and result.extra["stopped"] == "max_epochs"
    assert len(result.history) == 3 and result.history[-1]["eta"] == 5.0
    progress = np.load(tmp_path / "seed-0" / "progress.npz")
    # steps 0, 0.1, 0.25, 0.5 of epoch 1, then the ends of epochs 1, 2 and the last (3)
    assert progress["steps"].tolist() == [0, 6, 15, 30, 60, 120, 180]
    assert progress["z"].shape == (7, 50, 8) and progress["labels"].shape == (7, 50)


def test_plateau_rule_stops_training_without_labels():
    assert lnscc.training._plateaued(None, 1.0, 0.01) is False
    assert lnscc.training._plateaued(1.0, 0.995, 0.01) is True
    assert lnscc.training._plateaued(1.0, 0.98, 0.01) is False
    assert lnscc.training._plateaued(1.0, 0.5, None) is False
    result = run(blobs(), epochs=6, steps_per_epoch=10, plateau_tol=10.0, min_epochs=3)
    assert result.extra["epochs"] == 3 and result.extra["stopped"] == "plateau"


def test_same_seed_same_result_other_seed_differs():
    view = blobs(seed=3)
    a, b, c = run(view, seed=7), run(view, seed=7), run(view, seed=8)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.embedding, b.embedding)
    assert not np.array_equal(a.embedding, c.embedding)


def test_scan_protocol_trains_on_train_rows_and_scores_test_rows():
    split = np.tile([0, 0, 1], 40).astype(np.uint8)  # 80 train rows, 40 test rows
    view = blobs(split=split)
    result = run(view, k=15, fit_split="train", eval_split="test")
    np.testing.assert_array_equal(result.index, np.flatnonzero(split == 1))
    assert len(result.labels) == 40 and result.extra["fit_rows"] == 80
    truth = view.y[result.index]
    assert max(np.mean(result.labels == truth), np.mean(result.labels == 1 - truth)) == 1.0
    with pytest.raises(ValueError, match="selects no rows"):
        run(blobs(), fit_split="train", eval_split="test")


def test_neighbours_within_rows_filter_equals_exact_knn():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(90, 4)).astype(np.float32)
    rows = np.flatnonzero(rng.random(90) < 0.7)
    cached = graphs.knn(x, 30)
    filtered = lnscc.training.neighbours_within(cached, rows, 5, x)
    exact = graphs.knn(x[rows], 5)
    np.testing.assert_array_equal(filtered.indices, exact.indices)
    np.testing.assert_allclose(filtered.distances, exact.distances, rtol=1e-5)
    # a cached list too short to hold 5 train neighbours falls back to an exact search
    short = graphs.knn(x, 5)
    np.testing.assert_array_equal(lnscc.training.neighbours_within(short, rows, 5, x).indices, exact.indices)


def test_registered_and_config_rejects_bad_values():
    method = load_method("lnscc")
    assert method.TASK == "clustering"
    with pytest.raises(ValidationError):
        method.Config(eta_unit="epochs")
    with pytest.raises(ValidationError):
        method.Config(n_neighbours=10)  # misspelt key
    config = method.Config()
    assert (config.n_neighbors, config.embedding_dim, config.head_hidden, config.batch_size) == (10, 64, 32, 200)
    assert (config.alpha, config.beta, config.gamma, config.delta, config.xi) == (2.0, 5.0, 1.0, 0.05, 5.0)
    assert (config.lr, config.momentum, config.weight_decay) == (0.01, 0.9, 5e-4)
    assert config.encoder_dims == (500, 500, 2000)


def test_figures_render_from_a_run_folder(tmp_path):
    from clusterbench import io
    from clusterbench.methods.lnscc.figures import closest_clusters, figure_embedding, figure_progress

    result = run(blobs(), workdir=tmp_path / "seed-0")
    io.write_npz(tmp_path / "embedding.npz", embedding=result.embedding, labels=result.labels, seed=0)
    for png in (figure_embedding(tmp_path, tmp_path / "f1d.png"), figure_progress(tmp_path, tmp_path / "f5.png")):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # centroids at 0, 1 and 10 along one axis: clusters 0 and 1 are the closest pair
    z = np.repeat([[0.0], [1.0], [10.0]], 6, axis=0)
    assert closest_clusters(z, np.repeat([0, 1, 2], 6)) == (0, 1)
    assert closest_clusters(z, np.zeros(18, int)) is None


def test_per_set_batching_draws_batch_size_pairs_of_every_set():
    sets = lnscc.pairs.build_pair_sets(line_graph(), lnscc.Config(n_neighbors=2))
    rng = np.random.default_rng(0)
    dis = lnscc.pairs.sample_disconnected(sets.a, sets.n_dis, rng)
    tables = lnscc.pairs.per_set_tables(sets, dis, rng)
    assert [len(t) for t in tables] == [127, 15, 2, 635]
    batch = lnscc.pairs.per_set_batch(tables, step=3, batch_size=4)
    assert np.bincount(batch[:, 2], minlength=4).tolist() == [4, 4, 4, 4]
    # the 2-pair E^ba is cycled: step 3 takes its rows 12..15 mod 2
    np.testing.assert_array_equal(batch[8:12], tables[2][[0, 1, 0, 1]])
    result = run(blobs(), batching="per_set", epochs=5)
    assert max(np.mean(result.labels == blobs().y), np.mean(result.labels != blobs().y)) == 1.0


def test_target_distribution_survives_an_empty_cluster():
    # cluster 2 has U = 0 for every sample of the batch (a saturated float32 softmax): no 0/0
    u = torch.tensor([[0.5, 0.5, 0.0], [0.9, 0.1, 0.0]])
    v = lnscc.losses.target_distribution(u)
    assert torch.isfinite(v).all()
    np.testing.assert_allclose(v[0].numpy(), [0.3, 0.7, 0.0], atol=1e-6)
    assert math.isfinite(lnscc.losses.clustering_loss(u, gamma=1.0).item())


def test_qa_counts_are_capped_and_never_overflow():
    # A -> 1 makes Q^{im+} = alpha A_max / (1 - A) unbounded, A -> 0 does the same to Q^{im-}
    w = np.array([1.0, 1 - 1e-15, 0.5, 1e-300])
    qa = lnscc.pairs.quantity_augmentation(w, alpha=2.0, max_copies=1000)
    assert qa.im_pos.tolist() == [1000, 1000, 4, 2]  # 2 * 1 / (1 - A)
    assert qa.im_neg.tolist() == [1, 1, 2, 1000]  # (1 - A)_max / A, (1 - A)_max = 1
    assert (qa.ba <= 1000).all()
    uncapped = lnscc.pairs.quantity_augmentation(w, alpha=2.0)
    assert (uncapped.im_pos >= 0).all() and (uncapped.im_neg >= 0).all(), "no int64 overflow to negative counts"
    # the known-answer edges (largest count 60) are untouched by the default cap
    known = lnscc.pairs.quantity_augmentation(np.array([e[2] for e in EDGES]), 2.0, max_copies=lnscc.Config().max_copies)
    assert known.im_pos.tolist() == [60, 2, 3, 2, 60] and known.im_neg.tolist() == [0, 7, 1, 7, 0]


def near_duplicate_graph(scale=1000.0):
    """Blobs with distances x1000: softmax(-D) is one-hot, A_max = 1 and most 1 - A underflow."""
    view = blobs(n_per=100, dim=4)
    g = graphs.knn(view.X, 10)
    return graphs.KnnGraph(g.indices, g.distances * scale)


def test_huge_distance_scale_is_bounded_by_max_copies():
    import tracemalloc

    config = lnscc.Config()
    tracemalloc.start()
    sets = lnscc.pairs.build_pair_sets(near_duplicate_graph(), config)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert sets.qa.a_max == pytest.approx(1.0)
    sizes = sets.sizes()
    assert max(sizes["im+"], sizes["im-"], sizes["ba"]) <= config.max_copies * sizes["edges"]
    assert len(sets.fixed) <= 3 * config.max_copies * sizes["edges"]
    assert peak < 200 * 2**20, f"pair sets of a 200-row view took {peak / 2**20:.0f} MiB"


def test_near_duplicate_rows_do_not_allocate_without_bound():
    from clusterbench.checks import DataError

    # 100 spread-out points (pairwise distances ~40) and a twin of each at 1e-6: every row's
    # softmax(-D) puts ~1 - 1e-15 on its twin, so eq. 6 asks for ~1e15 copies of each twin edge
    rng = np.random.default_rng(0)
    base = rng.normal(0, 10, (100, 8))
    x = np.concatenate([base, base + 1e-6 * rng.normal(size=base.shape)]).astype(np.float32)
    graph = graphs.knn(x, 10)
    sets = lnscc.pairs.build_pair_sets(graph, lnscc.Config())
    assert sets.qa.a_max == pytest.approx(1.0) and sets.sizes()["im+"] <= 1000 * sets.n_edges
    with pytest.raises(DataError, match="200 rows"):
        lnscc.pairs.build_pair_sets(graph, lnscc.Config(max_copies=None))


def test_pair_budget_refuses_before_allocating():
    from clusterbench.checks import DataError

    # without the cap the counts of a near-duplicate view are astronomical: refused in one line
    with pytest.raises(DataError, match=r"200 rows.*max_pairs") as err:
        lnscc.pairs.build_pair_sets(near_duplicate_graph(), lnscc.Config(max_copies=None))
    assert "\n" not in str(err.value) and "rescale" in str(err.value)
    # the budget counts E^dis too (127 + 15 + 2 pairs of the line graph + 635 disconnected = 779)
    assert lnscc.pairs.build_pair_sets(line_graph(), lnscc.Config(n_neighbors=2, max_pairs=779)).n_dis == 635
    with pytest.raises(DataError, match="779 augmented pairs"):
        lnscc.pairs.build_pair_sets(line_graph(), lnscc.Config(n_neighbors=2, max_pairs=778))


@pytest.mark.parametrize("batching", ["union", "per_set"])
def test_fast_step_matches_legacy_step(batching):
    """The default (fast) step computes the legacy step's losses and gradients on the same batch."""
    rng = np.random.default_rng(0)
    view = blobs()
    config = lnscc.Config(**{**FAST, "batching": batching})
    sets = lnscc.pairs.build_pair_sets(graphs.knn(view.X, 10), config)
    dis = lnscc.pairs.sample_disconnected(sets.a, sets.n_dis, rng)
    pairs = lnscc.pairs.epoch_pairs(sets, dis, rng)
    batch = pairs[:200] if batching == "union" else lnscc.pairs.per_set_batch(lnscc.pairs.per_set_tables(sets, dis, rng), 2, 50)
    assert len(np.unique(batch[:, 2])) == 4, "the batch must hold every pair kind"
    torch.manual_seed(0)
    encoder, head = lnscc.model.build_model(view.X.shape[1], config, 2)
    x = torch.as_tensor(view.X)
    params = list(encoder.parameters()) + list(head.parameters())
    old, logs = lnscc.training.batch_loss(encoder, head, x, batch, config, 2.5, "cpu")
    old_grads = torch.autograd.grad(old, params)
    new, logged = lnscc.training.batch_loss_fast(encoder, head, x, torch.as_tensor(batch), config, 2.5)
    new_grads = torch.autograd.grad(new, params)
    assert new.item() == pytest.approx(old.item(), rel=1e-5)
    expected = [old.item(), logs["im"], logs["ba"], logs["dis"], logs["clu"], logs["im_pos"], logs["im_neg"]]
    np.testing.assert_allclose(logged.numpy(), expected, rtol=1e-5)
    for g_old, g_new in zip(old_grads, new_grads):
        torch.testing.assert_close(g_new, g_old, rtol=1e-4, atol=1e-6)


def test_fast_and_legacy_training_agree():
    view = blobs(seed=3)
    a, b = run(view, seed=5), run(view, seed=5, step_impl="legacy")
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(a.embedding, b.embedding, rtol=1e-3, atol=1e-3)
    for ra, rb in zip(a.history, b.history):
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-4)
        assert ra["loss_clu"] == pytest.approx(rb["loss_clu"], rel=1e-4, abs=1e-6)


def test_open_readings_distance_and_graph_unit():
    zi, zj = torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]])
    assert lnscc.losses.pair_distance(zi, zj).item() == pytest.approx(5.0)
    assert lnscc.losses.pair_distance(zi, zj, squared=True).item() == pytest.approx(25.0)
    d = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    assert lnscc.losses.scaled_distances(d, 1.0) is d, "the default leaves D untouched"
    np.testing.assert_allclose(lnscc.losses.scaled_distances(d, 2.0), d / 2)
    np.testing.assert_allclose(lnscc.losses.scaled_distances(d, "median"), d / 2.5)
    with pytest.raises(ValidationError, match="graph_distance_unit"):
        lnscc.Config(graph_distance_unit=0.0)
    with pytest.raises(ValidationError, match="step_impl: fast"):
        lnscc.Config(encoder_dtype="bfloat16", step_impl="legacy")
    # 'median' makes A independent of the features' units (x1024 is exact in floats)
    base = graphs.knn(blobs(n_per=100, dim=4).X, 10)
    big = graphs.KnnGraph(base.indices, base.distances * 1024)
    config = lnscc.Config(graph_distance_unit="median")
    np.testing.assert_array_equal(lnscc.pairs.build_pair_sets(big, config).fixed, lnscc.pairs.build_pair_sets(base, config).fixed)
    result = run(blobs(), distance="squared", graph_distance_unit="median")
    assert max(np.mean(result.labels == blobs().y), np.mean(result.labels != blobs().y)) == 1.0


def test_bfloat16_encoder_trains():
    result = run(blobs(), encoder_dtype="bfloat16")
    assert result.embedding.dtype == np.float32
    assert result.extra["encoder_dtype"] == "bfloat16"
    assert max(np.mean(result.labels == blobs().y), np.mean(result.labels != blobs().y)) == 1.0


def test_auto_encoder_dtype_is_float32_on_the_cpu_and_bfloat16_on_a_gpu():
    """CPU bfloat16 rounding depends on the instruction set (AMX / AVX512-BF16 / emulated), so the
    same seed would cluster differently on another CPU: auto keeps the CPU in float32."""
    auto = lnscc.Config()
    assert lnscc.training.effective_encoder_dtype(auto, "cpu") == "float32"
    assert lnscc.training.effective_encoder_dtype(auto, "cuda") == "bfloat16"
    assert lnscc.training.effective_encoder_dtype(lnscc.Config(step_impl="legacy"), "cuda") == "float32"
    assert lnscc.training.effective_encoder_dtype(lnscc.Config(encoder_dtype="bfloat16"), "cpu") == "bfloat16"
    a = run(blobs(), encoder_dtype="auto")
    b = run(blobs(), encoder_dtype="float32")
    assert a.extra["encoder_dtype"] == "float32"
    np.testing.assert_array_equal(a.embedding, b.embedding)  # auto on the CPU is exactly float32


def _every_edge_has_an_im_pos_copy(graph, unit, alpha=2.0):
    _, _, w = lnscc.pairs.undirected_edges(lnscc.pairs.locally_normalised_graph(graph.indices, graph.distances / unit))
    return alpha * w.max() >= 1.0 - w.min()


def test_auto_distance_unit_gives_every_edge_an_attracting_copy():
    wide = graphs.knn(blobs(n_per=100, dim=4).X * 4, 10)  # neighbour distances ~4: softmax(-D) already sharp
    assert _every_edge_has_an_im_pos_copy(wide, 1.0)
    assert lnscc.pairs.auto_distance_unit(wide.indices, wide.distances, 2.0) == 1.0, "such a view is left as it is"
    sets = lnscc.pairs.build_pair_sets(wide, lnscc.Config())  # default 'auto': the same pair table as unit 1
    np.testing.assert_array_equal(sets.fixed, lnscc.pairs.build_pair_sets(wide, lnscc.Config(graph_distance_unit=1.0)).fixed)
    assert sets.distance_unit == 1.0

    narrow = graphs.KnnGraph(wide.indices, wide.distances / 64)  # the same graph in units 64x smaller
    assert not _every_edge_has_an_im_pos_copy(narrow, 1.0)
    unit = lnscc.pairs.auto_distance_unit(narrow.indices, narrow.distances, 2.0)
    k = -4 * np.log2(unit)
    assert k == round(k) and 0 < k <= 40, "a unit of the grid 2^(-k/4)"
    assert _every_edge_has_an_im_pos_copy(narrow, unit)
    assert not _every_edge_has_an_im_pos_copy(narrow, unit * 2 ** 0.25), "the largest such unit"
    sets = lnscc.pairs.build_pair_sets(narrow, lnscc.Config())
    assert sets.distance_unit == unit and sets.n_im_pos >= sets.n_edges
    assert lnscc.pairs.build_pair_sets(narrow, lnscc.Config(graph_distance_unit=1.0)).n_im_pos < sets.n_edges


@pytest.mark.parametrize("distance", ["squared", "euclidean"])
@pytest.mark.parametrize("batching", ["per_set", "union"])
def test_batch_loss_equals_the_papers_formula_on_a_hand_made_pair_set(distance, batching):
    """Eq. 19 on six hand-placed points and one pair of each kind (plus a second im- pair), with the
    encoder the identity and a fixed head: L_im + L_ba + L_dis (eqs. 9, 13, 17) divided by the batch
    size (reduction: mean; per_set divides by batch_size, union by the batch's length) + eta L_clu
    (eq. 18), written out with math on the points, not with the module's helpers."""
    pts = [(0.0, 0.0), (0.5, 0.0), (0.0, 2.0), (1.0, 2.5), (0.2, 0.1), (1.0, 1.0)]
    pairs = [(0, 1, lnscc.config.IM_POS), (0, 4, lnscc.config.IM_NEG), (1, 5, lnscc.config.IM_NEG), (2, 3, lnscc.config.DIS), (1, 4, lnscc.config.BA)]
    x = torch.tensor(pts)

    def d(i, j):
        sq = (pts[i][0] - pts[j][0]) ** 2 + (pts[i][1] - pts[j][1]) ** 2
        return sq if distance == "squared" else math.sqrt(sq)

    attract = sum(d(i, j) for i, j, k in pairs if k in (lnscc.config.IM_POS, lnscc.config.BA))           # -log O = d
    repel = sum(-math.log(1 - math.exp(-d(i, j))) for i, j, k in pairs if k in (lnscc.config.IM_NEG, lnscc.config.DIS))
    config = lnscc.Config(distance=distance, batching=batching, batch_size=4, encoder_dtype="float32")
    scale = 1 / 4 if batching == "per_set" else 1 / len(pairs)
    torch.manual_seed(0)
    head = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Softmax(dim=1))
    nodes = sorted({p for i, j, _ in pairs for p in (i, j)})
    u = head(x[nodes]).detach().numpy().astype(np.float64)
    f = u.sum(0)
    v = (u ** 2 / f) / (u ** 2 / f).sum(1, keepdims=True)
    kl = float(np.mean(np.sum(v * np.log(v / u), axis=1)))
    u_bar = u.mean(0)
    clu = kl + 1.0 * float(np.sum(u_bar * np.log(u_bar)))
    eta = 2.5
    expected = (attract + repel) * scale + eta * clu
    batch = torch.tensor(pairs)
    total, logged = lnscc.training.batch_loss_fast(torch.nn.Identity(), head, x, batch, config, eta)
    assert total.item() == pytest.approx(expected, rel=1e-5)
    old, logs = lnscc.training.batch_loss(torch.nn.Identity(), head, x, np.asarray(pairs), config, eta, "cpu")
    assert old.item() == pytest.approx(expected, rel=1e-5)
    im_pos = d(0, 1) * scale
    im_neg = sum(-math.log(1 - math.exp(-d(i, j))) for i, j in ((0, 4), (1, 5))) * scale
    assert logs["im_pos"] == pytest.approx(im_pos, rel=1e-5) and logs["im_neg"] == pytest.approx(im_neg, rel=1e-5)
    np.testing.assert_allclose(logged[[5, 6]].numpy(), [im_pos, im_neg], rtol=1e-5)
    assert logged[3].item() == pytest.approx(-math.log(1 - math.exp(-d(2, 3))) * scale, rel=1e-5)
    assert logged[2].item() == pytest.approx(d(1, 4) * scale, rel=1e-5)


@pytest.mark.parametrize("head", [{}, {"head": "dec", "clu_start_epoch": 1}], ids=["mlp", "dec"])
def test_a_run_killed_after_an_epoch_resumes_bit_identically(tmp_path, head):
    """Each finished epoch leaves a checkpoint (model, optimiser, RNG, E^dis, history, snapshots);
    a run stopped during epoch 2 and started again continues from epoch 1 and ends with exactly the
    labels, embedding and history of a run that was never stopped. Other settings start afresh."""
    view = blobs(seed=4)
    config = lnscc.Config(**{**FAST, "epochs": 3, **head})
    ctx = lambda folder, **kw: RunContext(view=view, graph=graphs.knn(view.X, 10), seed=2, n_clusters=2,
                                          progress=False, checkpoint_dir=folder, **kw)
    straight = lnscc.fit_predict(ctx(tmp_path / "a"), config)

    def stop(epoch, *_):
        if epoch == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        lnscc.fit_predict(ctx(tmp_path / "b"), config, on_epoch=stop)
    assert torch.load(tmp_path / "b" / "lnscc" / "latest.pt", weights_only=True)["epoch"] == 1
    seen = []
    resumed = lnscc.fit_predict(ctx(tmp_path / "b"), config, on_epoch=lambda e, *_: seen.append(e))
    assert seen == [2, 3]
    np.testing.assert_array_equal(resumed.labels, straight.labels)
    np.testing.assert_array_equal(resumed.embedding, straight.embedding)
    no_time = lambda history: [{k: v for k, v in row.items() if k != "wall_s"} for row in history]
    assert no_time(resumed.history) == no_time(straight.history)
    other = lnscc.fit_predict(ctx(tmp_path / "b"), lnscc.Config(**{**FAST, "epochs": 3, "lr": 0.02, **head}),
                              on_epoch=lambda e, *_: seen.append(e))
    assert seen[2:] == [1, 2, 3] and no_time(other.history) != no_time(straight.history)


def test_umap_similarity_energy_and_clu_start():
    """similarity: umap turns every term into UMAP's curve (-log O = log(1 + a s^b), s the squared
    distance; -log(1 - O) from the same O); clu_start_epoch keeps eta at 0 for that many epochs and
    starts eq. 19's ramp after them."""
    zi, zj = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 2.0]])
    energy = lnscc.losses.pair_energy(zi, zj, lnscc.Config(similarity="umap"))
    o = 1 / (1 + 1.896 * 5.0 ** 0.8006)
    assert energy.item() == pytest.approx(-math.log(o), rel=1e-5)
    assert lnscc.losses.neg_log_one_minus_o(energy).item() == pytest.approx(-math.log(1 - o), rel=1e-5)
    assert lnscc.losses.pair_energy(zi, zj, lnscc.Config()).item() == pytest.approx(5.0)
    view = blobs(seed=1)
    result = run(view, seed=0, epochs=3, clu_start_epoch=2)
    assert [row["eta"] for row in result.history] == [0.0, 0.0, pytest.approx(2.0)]  # 40 steps x 0.05


def test_dec_head_student_t_known_answer_and_kmeans_start(monkeypatch):
    """head: dec. U_ik = (1 + |Z_i - mu_k|^2)^-1 normalised over k (by hand for one row); the centres
    stay zero (U uniform, no gradient at eta = 0) until L_clu starts, are then k-means on Z of every
    training row, and training carries on from them; a resumed run keeps them (they are in the
    head's state)."""
    head = lnscc.model.StudentTHead(2, 2)
    with torch.no_grad():
        head.centres.copy_(torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
    u = head(torch.tensor([[0.0, 1.0]]))
    a, b = 1 / (1 + 1.0), 1 / (1 + 9.0 + 9.0)
    np.testing.assert_allclose(u.detach().numpy(), [[a / (a + b), b / (a + b)]], rtol=1e-6)

    starts = []
    original = lnscc.model.set_centres
    monkeypatch.setattr(lnscc.training, "set_centres", lambda h, z, k, seed: (starts.append((len(z), h.centres.abs().sum().item())),
                                                                      original(h, z, k, seed)))
    view = blobs(seed=2)
    seen = []
    ctx = RunContext(view=view, graph=graphs.knn(view.X, 10), seed=0, n_clusters=2, progress=False)
    result = lnscc.fit_predict(ctx, lnscc.Config(**{**FAST, "epochs": 3, "head": "dec", "clu_start_epoch": 1}),
                               on_epoch=lambda e, rows, z, u: seen.append(float(u.max(1).mean())))
    assert starts == [(len(view.y), 0.0)]          # once, on all rows, from zero centres
    assert seen[0] == pytest.approx(0.5)           # epoch 1: the head is still uniform
    assert max(np.mean(result.labels == view.y), np.mean(result.labels != view.y)) == 1.0
    starts.clear()
    lnscc.fit_predict(ctx, lnscc.Config(**{**FAST, "epochs": 1, "head": "dec"}))
    assert starts == [(len(view.y), 0.0)]          # clu_start_epoch 0: before the first step
    with pytest.raises(ValidationError, match="head"):
        lnscc.Config(head="softmax")

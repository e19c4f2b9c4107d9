"""GHDCC: the thresholded cosine graph and its normalisation (known answers), mixed vs
concatenated graphs, the interpolated view, each loss against a direct computation, the
two-of-five augmentations and Gaussian blur, resume, and a tiny end-to-end run."""
import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from clusterbench.embeddings import View
from clusterbench.methods import RunContext, checkpoints, contrastive, load_method
from clusterbench.methods import ghdcc as G

torch.set_num_threads(1)

# a = (1, 0), b = (1, .9), c = (0, 1), d = (1, .05): cos(a, b) = .743, cos(a, c) = 0, cos(a, d) = .999,
# cos(b, c) = .669, cos(b, d) = .776, cos(c, d) = .050
POINTS = torch.tensor([[1.0, 0.0], [1.0, 0.9], [0.0, 1.0], [1.0, 0.05]])


def _normalised(edges, n=4, weights=None):
    a = torch.eye(n)
    for i, j in edges:
        w = 1.0 if weights is None else weights[i, j]
        a[i, j] = a[j, i] = w
    d = a.sum(1)
    return a / torch.sqrt(d.view(-1, 1) * d.view(1, -1))


def test_threshold_keeps_only_pairs_above_it():
    adj = G.model.thresholded_adjacency(POINTS, threshold=0.8)  # only a-d
    expected = torch.tensor([[.5, 0, 0, .5], [0, 1, 0, 0], [0, 0, 1, 0], [.5, 0, 0, .5]])
    torch.testing.assert_close(adj, expected)
    adj = G.model.thresholded_adjacency(POINTS, threshold=0.5)  # a-b, a-d, b-c, b-d
    # degrees with the self-loop: a 3, b 4, c 2, d 3
    torch.testing.assert_close(adj, _normalised([(0, 1), (0, 3), (1, 2), (1, 3)]))
    assert adj[0, 1] == pytest.approx(1 / math.sqrt(12))
    assert adj[1, 2] == pytest.approx(1 / math.sqrt(8))


def test_k_nearest_then_symmetrised():
    # top-1: a -> d, b -> d, c -> b, d -> a; symmetrised: a-d, b-d, b-c
    adj = G.model.thresholded_adjacency(POINTS, threshold=0.5, k=1)
    torch.testing.assert_close(adj, _normalised([(0, 3), (1, 3), (1, 2)]))
    # the threshold still applies: c's nearest (b, .669) is dropped at .7
    adj = G.model.thresholded_adjacency(POINTS, threshold=0.7, k=1)
    torch.testing.assert_close(adj, _normalised([(0, 3), (1, 3)]))


def test_cosine_weights_and_no_gradient_through_the_graph():
    h = POINTS.clone().requires_grad_(True)
    adj = G.model.thresholded_adjacency(h, threshold=0.8, weights="cosine")
    cos = float(torch.nn.functional.cosine_similarity(POINTS[0], POINTS[3], dim=0))
    w = torch.zeros(4, 4)
    w[0, 3] = w[3, 0] = cos
    torch.testing.assert_close(adj, _normalised([(0, 3)], weights=w))
    assert not adj.requires_grad
    # symmetric, rows of D^-1/2 (A + I) D^-1/2: largest eigenvalue 1
    torch.testing.assert_close(adj, adj.T)
    assert float(torch.linalg.eigvalsh(adj).max()) == pytest.approx(1.0, abs=1e-5)


def test_mixed_graph_links_the_groups_concatenated_graph_is_block_diagonal():
    groups = [POINTS, POINTS * 2, POINTS + torch.tensor([0.0, 0.01])]
    mixed = G.model.batch_graph(groups, "mixed", 0.8)
    concat = G.model.batch_graph(groups, "concatenated", 0.8)
    assert mixed.shape == concat.shape == (12, 12)
    torch.testing.assert_close(mixed, G.model.thresholded_adjacency(torch.cat(groups), 0.8))
    for i in range(3):
        for j in range(3):
            block = concat[4 * i:4 * i + 4, 4 * j:4 * j + 4]
            if i == j:
                torch.testing.assert_close(block, G.model.thresholded_adjacency(groups[i], 0.8))
            else:
                assert not block.any()
    # the same image's views (identical directions) are neighbours across groups only in the mixed graph
    assert mixed[0, 4] > 0 and mixed[0, 8] > 0
    with pytest.raises(ValueError, match="graph"):
        G.model.batch_graph(groups, "other", 0.8)


def test_gcn_is_kipf_and_welling():
    torch.manual_seed(0)
    gcn = G.model.GCN(2, 3, 5)
    adj = G.model.thresholded_adjacency(POINTS, 0.5)
    w1, b1, w2, b2 = gcn.fc1.weight, gcn.fc1.bias, gcn.fc2.weight, gcn.fc2.bias
    direct = adj @ torch.relu(adj @ POINTS @ w1.T + b1) @ w2.T + b2
    torch.testing.assert_close(gcn(POINTS, adj), direct)


def test_interpolated_view_and_its_use_in_the_loss(monkeypatch):
    xa, xb = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    torch.testing.assert_close(G.losses.interpolate(xa, xb, 0.7), 0.7 * xa + 0.3 * xb)
    config = G.Config(backbone="cnn", image_size=None)
    model = G.model.GHDCCNetwork(config, 3)
    seen = []
    original = model.features
    monkeypatch.setattr(model, "features", lambda x: seen.append(x) or original(x))
    G.training.ghdcc_loss(config)(model, xa, xb)
    assert len(seen) == 3  # one backbone pass per view, as CC
    torch.testing.assert_close(seen[2], 0.7 * xa + 0.3 * xb)
    seen.clear()
    G.training.ghdcc_loss(config.model_copy(update={"interpolation": False}))(model, xa, xb)
    assert len(seen) == 2


def test_losses_match_direct_computations():
    torch.manual_seed(0)
    za, zb = torch.randn(6, 5), torch.randn(6, 5)
    ya, yb, yc = (torch.softmax(torch.randn(6, 3), 1) for _ in range(3))
    direct_mse = np.mean([float(((za[i] / za[i].norm() - zb[i] / zb[i].norm()) ** 2).sum()) for i in range(6)])
    assert float(G.losses.mse_regularisation(za, zb)) == pytest.approx(direct_mse, rel=1e-5)
    lam = 0.7
    p = lam * ya + (1 - lam) * yb
    direct_ce = -np.mean([float((p[i] * torch.log(yc[i])).sum()) for i in range(6)])
    ce = G.losses.interpolation_cross_entropy(ya, yb, yc, lam)
    assert float(ce) == pytest.approx(direct_ce, rel=1e-5)
    # KL(P || Y_c) = CE - H(P): the same minimiser (eqs. 7-8)
    kl = float((p * (torch.log(p) - torch.log(yc))).sum(1).mean())
    entropy = float(-(p * torch.log(p)).sum(1).mean())
    assert kl == pytest.approx(float(ce) - entropy, rel=1e-5)
    config = G.Config(mse_weight=0.5, ce_weight=0.5)
    parts = G.losses.ghdcc_objective(config, za, zb, ya, yb, yc)
    instance = contrastive.nt_xent(za, zb, 0.5)
    cluster = contrastive.cluster_contrastive_loss(ya, yb, 1.0, 1.0)
    assert float(parts.instance) == pytest.approx(float(instance))
    assert float(parts.total) == pytest.approx(float(instance + 0.5 * direct_mse + cluster.total + 0.5 * direct_ce),
                                               rel=1e-5)
    # the target is held fixed: only Y_c receives the cross-entropy's gradient
    ya_ = ya.clone().requires_grad_(True)
    yc_ = yc.clone().requires_grad_(True)
    G.losses.interpolation_cross_entropy(ya_, yb, yc_, lam).backward()
    assert ya_.grad is None and yc_.grad is not None
    # without the third view the cross-entropy term is absent
    assert float(G.losses.ghdcc_objective(config, za, zb, ya, yb).ce) == 0.0


def test_two_of_five_operations_per_image():
    chosen = contrastive.choose_operations(1000, 2, torch.Generator().manual_seed(0))
    assert (chosen.sum(1) == 2).all()
    freq = chosen.float().mean(0)
    assert torch.allclose(freq, torch.full((5,), 0.4), atol=0.05)
    spec = G.Config(image_size=16).augment_spec(16)
    assert spec.choose == 2
    images = torch.rand(8, 3, 16, 16)
    a = contrastive.augment(images, spec, torch.Generator().manual_seed(1))
    b = contrastive.augment(images, spec, torch.Generator().manual_seed(1))
    assert a.shape == (8, 3, 16, 16) and torch.equal(a, b) and 0 <= float(a.min()) and float(a.max()) <= 1


def test_gaussian_blur_matches_torchvision():
    tf = pytest.importorskip("torchvision.transforms.functional")
    x = torch.rand(2, 3, 12, 12, dtype=torch.float64)
    sigma = torch.tensor([0.8, 0.0], dtype=torch.float64)
    out = contrastive.gaussian_blur(x, sigma, 5)
    torch.testing.assert_close(out[0], tf.gaussian_blur(x[0], [5, 5], [0.8, 0.8]))
    torch.testing.assert_close(out[1], x[1])  # sigma 0: unchanged


def test_cc_augmentations_are_unchanged_without_blur():
    spec = contrastive.AugmentSpec(size=8)
    assert spec.blur_p == 0 and spec.choose is None
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    contrastive.augment(torch.rand(4, 3, 8, 8), spec, g1)
    # CC draws crops (2 x 10 tries + 2 corners per image), flip, jitter switch, 3 factors, hue, grayscale:
    # no blur draws, so CC's augmentation stream (and its checkpoints' trajectories) are unchanged
    torch.rand(4, 10, generator=g2, dtype=torch.float64)
    torch.rand(4, 10, generator=g2, dtype=torch.float64)
    for _ in range(9):
        torch.rand(4, generator=g2, dtype=torch.float64)
    assert torch.equal(g1.get_state(), g2.get_state())


# --- end to end ------------------------------------------------------------------------------------

def _view(n=64, size=16, seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.random((n, size, size, 3), dtype=np.float32)
    return View(pixels.reshape(n, -1), np.arange(n) % 4, np.zeros(n, np.uint8), np.arange(n), (size, size, 3))


def _ctx(tmp_path, name, seed=0):
    return RunContext(view=_view(), graph=None, seed=seed, n_clusters=4, progress=False,
                      workdir=tmp_path / name / "out", checkpoint_dir=tmp_path / name / "ckpt")


TINY = dict(backbone="cnn", image_size=None, batch_size=16, epochs=4, checkpoint_every=1, keep_checkpoints=[2])


def test_end_to_end_through_the_method_interface(tmp_path):
    method = load_method("ghdcc")
    result = method.fit_predict(_ctx(tmp_path, "run"), method.Config(**TINY))
    assert result.labels.shape == (64,) and set(result.labels) <= set(range(4))
    assert result.embedding.shape == (64, 128)  # GCN1's output, for the t-SNE / UMAP figures
    np.testing.assert_allclose(np.linalg.norm(result.embedding, axis=1), 1, rtol=1e-5)
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    assert {"instance_loss", "mse", "cluster_loss", "interpolation_ce", "graph_degree"} <= set(result.history[0])
    assert (tmp_path / "run" / "out" / "checkpoints" / "ghdcc-epoch2.pt").is_file()


@pytest.mark.parametrize("switch", [{"graph": "concatenated"}, {"projector": "mlp"}, {"interpolation": False},
                                    {"predict": "argmax"}, {"predict": "kmeans-cluster"}])
def test_ablation_switches_run(tmp_path, switch):
    result = G.fit_predict(_ctx(tmp_path, "run"), G.Config(**{**TINY, "epochs": 1, **switch}))
    assert result.labels.shape == (64,)


def test_resume_after_an_interruption_gives_exactly_the_uninterrupted_run(tmp_path, monkeypatch):
    config = G.Config(**TINY)
    straight = G.fit_predict(_ctx(tmp_path, "straight"), config)

    class Interrupt(Exception):
        pass

    def stop_after_two(epoch):
        if epoch == 2:
            raise Interrupt

    original_init = contrastive.TwoViewTrainer.__post_init__

    def with_callback(self):
        original_init(self)
        self.on_epoch_end = stop_after_two

    monkeypatch.setattr(contrastive.TwoViewTrainer, "__post_init__", with_callback)
    with pytest.raises(Interrupt):
        G.fit_predict(_ctx(tmp_path, "resumed"), config)
    assert checkpoints.load(tmp_path / "resumed" / "ckpt" / "ghdcc" / "latest.pt")["epoch"] == 2
    monkeypatch.setattr(contrastive.TwoViewTrainer, "__post_init__", original_init)
    torch.manual_seed(123)
    np.random.seed(123)
    resumed = G.fit_predict(_ctx(tmp_path, "resumed"), config)
    assert resumed.extra["resumed_from_epoch"] == 2
    a = checkpoints.load(tmp_path / "straight" / "ckpt" / "ghdcc" / "latest.pt")["model"]
    b = checkpoints.load(tmp_path / "resumed" / "ckpt" / "ghdcc" / "latest.pt")["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key
    np.testing.assert_array_equal(straight.labels, resumed.labels)
    # a prediction-only setting does not discard the trained weights
    again = G.fit_predict(_ctx(tmp_path, "resumed"), config.model_copy(update={"predict": "argmax"}))
    assert again.extra["resumed_from_epoch"] == 4


def test_prediction_graphs_do_not_follow_the_data_set_order(tmp_path, monkeypatch):
    config = G.Config(**{**TINY, "epochs": 1, "batch_size": 16})
    model = G.model.GHDCCNetwork(config, 4)
    model.eval()
    images = torch.rand(32, 3, 16, 16)
    batches = []
    original = G.model.GHDCCNetwork.forward
    monkeypatch.setattr(G.model.GHDCCNetwork, "forward", lambda self, x: batches.append(x) or original(self, x))
    z, y = G.training.predict_outputs(model, images, config, seed=0, device="cpu")
    assert z.shape == (32, 128) and y.shape == (32, 4) and len(batches) == 2
    assert not torch.equal(batches[0], images[:16])


def test_autocast_path_runs_and_the_graph_stays_float32(tmp_path):
    result = G.fit_predict(_ctx(tmp_path, "amp"), G.Config(**{**TINY, "epochs": 1, "mixed_precision": "on"}))
    assert result.labels.shape == (64,) and np.isfinite(result.history[0]["loss"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        adj = G.model.thresholded_adjacency(POINTS, 0.5)
    assert adj.dtype == torch.float32
    torch.testing.assert_close(adj, G.model.thresholded_adjacency(POINTS, 0.5))


def test_config_errors_name_the_parameter():
    with pytest.raises(ValidationError, match="graph"):
        G.Config(graph="star")
    with pytest.raises(ValidationError, match="interpolation_lambda"):
        G.Config(interpolation_lambda=1.5)

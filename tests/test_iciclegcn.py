"""IcicleGCN: the heat-kernel graphs, the layer-wise fusion of the trident network, P and Q on
hand-made cases, stage-1 reuse, the ablation switches, end to end through the method interface."""
import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from clusterbench.embeddings import View
from clusterbench.methods import RunContext, checkpoints, dec, load_method
from clusterbench.methods import iciclegcn as I

torch.set_num_threads(1)


# --- graphs --------------------------------------------------------------------------------------

def test_heat_kernel_graph_on_points_of_a_line():
    x = np.array([[0.0], [1.0], [3.0], [6.0]], np.float32)
    # 1-NN: 0->1 (d 1), 1->0 (d 1), 2->1 (d 2), 3->2 (d 3); symmetric union; S = exp(-d^2 / t), t = 1.
    a = I.mgcn.heat_kernel_graph(x, 1, t=1.0).toarray()
    expected = np.zeros((4, 4))
    for i, j, d in [(0, 1, 1.0), (1, 2, 2.0), (2, 3, 3.0)]:
        expected[i, j] = expected[j, i] = math.exp(-d * d)
    assert np.allclose(a, expected, atol=1e-7)
    # t scales the kernel; binary weights keep the edges only
    assert np.isclose(I.mgcn.heat_kernel_graph(x, 1, t=2.0).toarray()[1, 2], math.exp(-4 / 2))
    assert np.array_equal(I.mgcn.heat_kernel_graph(x, 1, weights="binary").toarray(), (expected > 0).astype(float))


def test_normalized_adjacency_is_the_symmetric_gcn_normalisation():
    a = np.array([[0, 0.5, 0], [0.5, 0, 1.0], [0, 1.0, 0]])
    got = I.mgcn.normalized_adjacency(a).toarray()
    a_tilde = a + np.eye(3)
    d = a_tilde.sum(1)
    for i in range(3):
        for j in range(3):
            assert got[i, j] == pytest.approx(a_tilde[i, j] / math.sqrt(d[i] * d[j]))   # eq. (13)


# --- fusion and the trident network -------------------------------------------------------------

def test_fusion_weights_of_eqs_15_16():
    ga, gb, h = torch.tensor([1.0]), torch.tensor([10.0]), torch.tensor([100.0])
    assert float(I.mgcn.fuse(ga, gb, h, 0.4, 0.2)) == pytest.approx(0.4 + 2.0 + 40.0)
    assert float(I.mgcn.fuse(gb, ga, h, 0.4, 0.2)) == pytest.approx(4.0 + 0.2 + 40.0)
    assert float(I.mgcn.fuse(ga, None, h, 0.4, 0.2)) == pytest.approx(0.4 + 60.0)   # single stream


def test_trident_forward_matches_the_equations_written_out():
    torch.manual_seed(0)
    n, d, k, hidden = 5, 6, 3, [4, 4, 7]
    ae = I.model.AutoEncoder(d, hidden, k)
    net = I.mgcn.MGCN(ae, d, hidden, k, streams=2, sigma=0.4, gamma=0.2)
    z = torch.rand(n, d)
    adj = [torch.rand(n, n), torch.rand(n, n)]
    h_out, rec, (sa, sb) = net(z, adj)

    # by hand: encoder layers H1..H4, then G^(1) = relu(A Z W0), G~ = fused, last layer linear + softmax
    hs, x = [], z
    for i, layer in enumerate(ae.encoder):
        x = layer(x)
        x = torch.relu(x) if i < 3 else x
        hs.append(x)
    ga = torch.relu(adj[0] @ z @ net.streams[0][0].weight)
    gb = torch.relu(adj[1] @ z @ net.streams[1][0].weight)
    for layer in range(1, 5):
        fa = 0.4 * ga + 0.2 * gb + 0.4 * hs[layer - 1]
        fb = 0.4 * gb + 0.2 * ga + 0.4 * hs[layer - 1]
        ga = adj[0] @ fa @ net.streams[0][layer].weight
        gb = adj[1] @ fb @ net.streams[1][layer].weight
        if layer < 4:
            ga, gb = torch.relu(ga), torch.relu(gb)
    assert torch.allclose(h_out, hs[-1])
    assert torch.allclose(sa, torch.softmax(ga, 1), atol=1e-6) and torch.allclose(sb, torch.softmax(gb, 1), atol=1e-6)
    assert torch.allclose(sa.sum(1), torch.ones(n))
    assert rec.shape == (n, d)
    assert [tuple(layer.weight.shape) for layer in net.streams[0]] == [(6, 4), (4, 4), (4, 7), (7, 3), (3, 3)]


def test_sparse_and_dense_adjacency_agree():
    a = I.mgcn.normalized_adjacency(I.mgcn.heat_kernel_graph(np.random.default_rng(0).random((12, 3), dtype=np.float32), 3))
    layer = I.mgcn.GCNLayer(4, 2)
    x = torch.rand(12, 4)
    dense = layer(x, torch.from_numpy(a.toarray().astype(np.float32)))
    sparse = layer(x, I.mgcn.sparse_tensor(a, "cpu"))
    assert torch.allclose(dense, sparse, atol=1e-6)


# --- P, Q, KL ----------------------------------------------------------------------------------

def test_student_t_and_target_on_a_hand_made_case():
    h = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    mu = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    q = I.mgcn.student_t(h, mu, dof=1.0)           # (1 + d^2)^-1: [[1, 1/5], [1/5, 1]], rows normalised
    assert torch.allclose(q, torch.tensor([[1.0, 0.2], [0.2, 1.0]]) / 1.2)
    p = dec.target_distribution(q)              # f_j = 1 for both clusters: p ~ q^2
    assert torch.allclose(p, torch.tensor([[1.0, 0.04], [0.04, 1.0]]) / 1.04)
    # another degree of freedom: exponent -(v + 1) / 2
    q3 = I.mgcn.student_t(h, mu, dof=3.0)
    ref = (1 + 4 / 3) ** -2
    assert torch.allclose(q3[0], torch.tensor([1.0, ref]) / (1 + ref))
    # f_j divides: a cluster used more is sharpened less
    q_unbalanced = torch.tensor([[0.6, 0.4], [0.6, 0.4], [0.2, 0.8]])
    f = q_unbalanced.sum(0)
    w = q_unbalanced ** 2 / f
    assert torch.allclose(dec.target_distribution(q_unbalanced), w / w.sum(1, keepdim=True))


def test_kl_divergence_is_mean_over_rows():
    p = torch.tensor([[0.5, 0.5], [0.9, 0.1]])
    q = torch.tensor([[0.25, 0.75], [0.9, 0.1]])
    expected = (0.5 * math.log(2) + 0.5 * math.log(0.5 / 0.75)) / 2
    assert float(I.mgcn.kl_divergence(p, q)) == pytest.approx(expected, rel=1e-6)


# --- configuration ------------------------------------------------------------------------------

def test_config_defaults_are_the_papers():
    c = I.Config()
    assert (c.backbone, c.batch_size, c.lr, c.image_size) == ("resnet34", 128, 1e-4, 224)
    assert (c.knn_sizes, c.fusion_sigma, c.fusion_gamma, c.heat_t) == ([1, 10], 0.4, 0.2, 1.0)
    assert (c.instance_temperature, c.cluster_temperature, c.ae_hidden) == (0.5, 1.0, [500, 500, 2000])
    assert c.cluster_loss_views == "a_b" and c.kmeans_n_init == 20


@pytest.mark.parametrize("values, name", [
    ({"knn_sizes": [10, 10]}, "knn_sizes"),
    ({"knn_sizes": [1, 3, 10]}, "knn_sizes"),
    ({"fusion_sigma": 0.9, "fusion_gamma": 0.2}, "fusion_sigma"),
    ({"cluster_head": "mlp"}, "stage2"),
    ({"predict": "gcn_b", "knn_sizes": [1]}, "predict"),
    ({"use_instance_loss": False, "use_cluster_loss": False, "use_reconstruction_loss": False}, "use_instance_loss"),
])
def test_bad_configs_name_the_parameter(values, name):
    with pytest.raises(ValidationError, match=name):
        I.Config(**values)


# --- end to end ----------------------------------------------------------------------------------

def _view(n=64, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return View(rng.random((n, size * size * 3), dtype=np.float32), np.arange(n) % 4, np.zeros(n, np.uint8),
                np.arange(n), (size, size, 3))


TINY = dict(backbone="cnn", image_size=None, batch_size=32, epochs=2, ae_hidden=[16, 16, 32], gcn_iterations=5,
            knn_sizes=[1, 3], eval_batch_size=32)


def _ctx(tmp_path, name, seed=0):
    return RunContext(view=_view(), graph=None, seed=seed, n_clusters=4, progress=False,
                      workdir=tmp_path / name / f"seed-{seed}", checkpoint_dir=tmp_path / "ckpt" / name)


def test_end_to_end_and_stage1_reuse(tmp_path, monkeypatch):
    impl = load_method("iciclegcn")
    assert impl.TASK == "clustering"
    full = impl.fit_predict(_ctx(tmp_path, "full"), impl.Config(**TINY))
    assert full.labels.shape == (64,) and 0 <= full.labels.min() and full.labels.max() < 4
    assert full.extra["predict"] == "gcn_mean" and full.embedding.shape == (64, 4)
    assert [r["epoch"] for r in full.history if "epoch" in r] == [1, 2]
    assert any(r.get("stage") == 2 for r in full.history)
    kept = tmp_path / "full" / "seed-0" / "checkpoints" / "stage1-epoch2.pt"
    assert checkpoints.load(kept)["epoch"] == 2

    # Stage 2 from the kept stage-1 checkpoint (file or run folder) reproduces the full run exactly.
    again = impl.fit_predict(_ctx(tmp_path, "reuse"), impl.Config(**TINY, stage1_from=str(kept)))
    assert np.array_equal(again.labels, full.labels) and "stage1_from" in again.extra
    folder = impl.fit_predict(_ctx(tmp_path, "reuse2"), impl.Config(**TINY, stage1_from=str(tmp_path / "full")))
    assert np.array_equal(folder.labels, full.labels)

    # Table 5 'without GCNs' and Table 6 single GCN from the same stage 1; stage-2 settings may differ.
    no_gcn = impl.fit_predict(_ctx(tmp_path, "nogcn"), impl.Config(**{**TINY, "knn_sizes": []}, stage1_from=str(kept)))
    assert no_gcn.extra["predict"] == "q" and no_gcn.extra["graph_edges"] == []
    single = impl.fit_predict(_ctx(tmp_path, "single"), impl.Config(**{**TINY, "knn_sizes": [3]}, stage1_from=str(kept)))
    assert single.extra["predict"] == "gcn_mean" and len(single.extra["graph_edges"]) == 1

    # The stage-2 history carries label-free health: clusters used by Q and by each GCN's argmax.
    rows = [r for r in full.history if r.get("stage") == 2]
    assert all(1 <= r["q_clusters_used"] <= 4 and 1 <= r["g0_clusters_used"] <= 4 and "g1_clusters_used" in r
               for r in rows)

    # gcn_stream_lr equal to gcn_lr is the paper's single Adam; another value moves the GCN streams
    # (Adam's first step: |dw| = lr per weight) while the auto-encoder keeps gcn_lr.
    same = impl.fit_predict(_ctx(tmp_path, "same"), impl.Config(**TINY, stage1_from=str(kept), gcn_stream_lr=1e-4))
    assert np.array_equal(same.labels, full.labels)
    ctx = _ctx(tmp_path, "lr")
    config = impl.Config(**{**TINY, "gcn_iterations": 1}, stage1_from=str(kept), gcn_stream_lr=1e-2)
    model, _, _ = I.training.train_stage1(ctx, config, I.training.view_images(ctx))
    before = {k: v.clone() for k, v in model.autoencoder.state_dict().items()}
    torch.manual_seed(0)
    captured = {}
    real_mgcn = I.mgcn.MGCN

    def spy(*args, **kwargs):
        captured["net"] = real_mgcn(*args, **kwargs)
        captured["streams"] = [p.detach().clone() for p in captured["net"].streams.parameters()]
        return captured["net"]
    monkeypatch.setattr(I.training, "MGCN", spy)
    I.training.train_stage2(ctx, config, model, I.training.view_images(ctx))
    stream_step = max(float((a.detach() - b).abs().max()) for a, b in zip(captured["net"].streams.parameters(),
                                                               captured["streams"]))
    ae_step = max(float((model.autoencoder.state_dict()[k] - v).abs().max()) for k, v in before.items())
    assert stream_step == pytest.approx(1e-2, rel=0.01) and ae_step == pytest.approx(1e-4, rel=0.01)

    # A stage-1 setting that differs is refused, naming stage1_from and the setting.
    with pytest.raises(ValueError, match="stage1_from.*instance_temperature"):
        impl.fit_predict(_ctx(tmp_path, "bad"), impl.Config(**TINY, stage1_from=str(kept), instance_temperature=0.3))
    with pytest.raises(FileNotFoundError, match="stage1_from"):
        impl.fit_predict(_ctx(tmp_path, "missing"), impl.Config(**TINY, stage1_from=str(tmp_path / "nowhere.pt")))


def test_without_gcns_and_ae_is_cc_with_the_mlp_head(tmp_path):
    config = I.Config(**{**TINY, "cluster_head": "mlp", "stage2": False, "use_reconstruction_loss": False})
    result = I.fit_predict(_ctx(tmp_path, "cc-like"), config)
    assert result.extra["predict"] == "stage1_cluster_head" and result.labels.shape == (64,)
    assert "reconstruction_loss" not in result.history[0]


def test_loss_switches_and_the_released_cluster_views(tmp_path):
    torch.manual_seed(0)
    config = I.Config(**TINY)
    model = I.model.Stage1Network(config, 4)
    xa, xb = torch.rand(8, 3, 16, 16), torch.rand(8, 3, 16, 16)
    _, parts = I.model.stage1_loss(config)(model, xa, xb)
    assert {"instance_loss", "cluster_loss", "entropy", "reconstruction_loss"} == set(parts)
    _, released = I.model.stage1_loss(I.Config(**TINY, cluster_loss_views="a_a"))(model, xa, xb)
    assert released["cluster_loss"] != parts["cluster_loss"]
    _, only_rec = I.model.stage1_loss(I.Config(**TINY, use_instance_loss=False, use_cluster_loss=False))(model, xa, xb)
    assert set(only_rec) == {"reconstruction_loss"}


def test_backbone_from_a_cc_checkpoint(tmp_path):
    from clusterbench.methods import cc as CC

    cc_ctx = RunContext(view=_view(), graph=None, seed=0, n_clusters=4, progress=False, workdir=tmp_path / "cc",
                        checkpoint_dir=tmp_path / "ckpt-cc")
    CC.fit_predict(cc_ctx, CC.Config(backbone="cnn", image_size=None, batch_size=32, epochs=1, keep_checkpoints=[1]))
    cc_file = tmp_path / "cc" / "checkpoints" / "cc-epoch1.pt"
    model = I.model.Stage1Network(I.Config(**TINY), 4)
    I.training._init_backbone_from(model, str(cc_file))
    cc_weights = checkpoints.load(cc_file)["model"]
    own = model.state_dict()
    assert all(torch.equal(own[k], cc_weights[k]) for k in cc_weights if k.startswith("backbone."))


def test_vanishing_heat_weights_are_dropped_not_kept_as_subnormals():
    # Neighbour distance 10 with t = 1: exp(-100) is below float32's smallest normal number.
    x = np.array([[0.0], [10.0], [20.0]], np.float32)
    a = I.mgcn.heat_kernel_graph(x, 1, t=1.0)
    assert a.nnz == 0
    assert I.mgcn.heat_kernel_graph(x, 1, t=100.0).nnz == 4   # a wider kernel keeps the edges


def test_every_iciclegcn_table_cell_maps_to_a_configured_run():
    from clusterbench import config, tables

    params = config.load("params.yaml")
    cells = tables.resolve_cells("iciclegcn", params, {}, "full")
    ours = [c for c in cells if c.row.startswith(("IcicleGCN", "CC")) or c.table in ("4", "5", "6")]
    assert len(ours) >= 24 + 12 + 9 + 21
    missing = sorted({c.run for c in ours if c.missing_run or not c.configured})
    assert missing == []
    assert all("GPU" in c.reason or "CPU" in c.reason or "download" in c.reason for c in ours)

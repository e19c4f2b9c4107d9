"""ConstellationNet (unsupervised): graph weights, the neighbour sampler, DMoN's losses, the GNN
variants, the label-free stopping rule, determinism and the residual edge index."""
import math
import random

import numpy as np
import pytest
import torch

from clusterbench import metrics
from clusterbench.embeddings import View
from clusterbench.graphs import KnnGraph, knn
from clusterbench.methods import METHODS, RunContext, load_method
from clusterbench.methods.constellationnet import unsupervised as U
from clusterbench.methods.constellationnet.common import PlateauStop
from clusterbench.methods.constellationnet.models import (CONVS, DMoNHead, GNNEncoder, adjacency_edges,
                                                          dense_adjacency, dmon_losses, recalibrate_batchnorm)
from clusterbench.methods.constellationnet.sampling import InNeighbours, sample_subgraph, seed_batches


# --- graph construction (3.1.1) -------------------------------------------------------------

def test_edges_point_from_neighbour_to_node_with_inverse_distance_weights():
    graph = KnnGraph(np.array([[1, 2], [0, 2], [1, 0]]), np.array([[1.0, 2.0], [0.5, 4.0], [0.25, 1.0]], np.float32))
    nbrs = InNeighbours.from_knn(graph)
    np.testing.assert_allclose(nbrs.weights, [[1.0, 0.5], [2.0, 0.25], [4.0, 1.0]], rtol=1e-6)
    edge_index, weight = nbrs.edge_index()
    # Node 0 receives from its neighbours 1 and 2; weights follow the same order.
    assert edge_index[:, :2].tolist() == [[1, 2], [0, 0]]
    assert edge_index[:, 2:4].tolist() == [[0, 2], [1, 1]]
    np.testing.assert_allclose(weight, [1.0, 0.5, 2.0, 0.25, 4.0, 1.0], rtol=1e-6)


# --- neighbour sampling ---------------------------------------------------------------------

def random_graph(n=200, k=12, seed=0) -> InNeighbours:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    return InNeighbours.from_knn(knn(x, k))


@pytest.mark.parametrize("fanouts", [[4, 3], [-1, 2], [12, 12], [5]])
def test_sampled_subgraph_invariants(fanouts):
    graph = random_graph()
    rng = np.random.default_rng(1)
    seeds = rng.choice(graph.n, 16, replace=False)
    sub = sample_subgraph(graph, seeds, fanouts, rng)
    assert sub.batch_size == 16 and np.array_equal(sub.nodes[:16], seeds)
    assert len(np.unique(sub.nodes)) == sub.num_nodes  # every node once
    src, dst = sub.nodes[sub.edge_index[0]], sub.nodes[sub.edge_index[1]]
    pairs = set()
    for s, d, w in zip(src, dst, sub.edge_weight):
        row = list(graph.sources[d])
        assert s in row, "a sampled edge that is not in the graph"
        assert w == pytest.approx(graph.weights[d][row.index(s)])
        pairs.add((s, d))
    assert len(pairs) == len(src), "a neighbour sampled twice for one node (must be without replacement)"
    # Hop by hop: nodes discovered before the last hop draw exactly min(fanout, K) in-edges,
    # the last hop's nodes none; the nodes of hop h are the new sources of hop h's edges.
    in_degree = np.bincount(sub.edge_index[1], minlength=sub.num_nodes)
    frontier, start = list(range(16)), 16
    for hop, fanout in enumerate(fanouts):
        want = graph.k if fanout < 0 else min(fanout, graph.k)
        assert (in_degree[frontier] == want).all()
        targets = np.isin(sub.edge_index[1], frontier)
        new = [v for v in dict.fromkeys(sub.edge_index[0][targets].tolist()) if v >= start]
        assert new == list(range(start, start + len(new))), "new nodes not in order of first appearance"
        frontier, start = new, start + len(new)
    assert (in_degree[frontier] == 0).all()


def test_sampling_is_uniform_without_replacement():
    graph = random_graph(n=60, k=10)
    rng = np.random.default_rng(0)
    counts = np.zeros(graph.k)
    trials = 3000
    for _ in range(trials):
        sub = sample_subgraph(graph, np.array([7]), [3], rng)
        chosen = sub.nodes[sub.edge_index[0]]
        counts += np.isin(graph.sources[7], chosen)
    # Each of the 10 slots is drawn with probability 3/10.
    np.testing.assert_allclose(counts / trials, 0.3, atol=0.04)


def test_sampling_is_reproducible_and_batches_cover_every_seed_once():
    graph = random_graph()
    a = sample_subgraph(graph, np.arange(10), [5, 5], np.random.default_rng(3))
    b = sample_subgraph(graph, np.arange(10), [5, 5], np.random.default_rng(3))
    assert np.array_equal(a.nodes, b.nodes) and np.array_equal(a.edge_index, b.edge_index)
    batches = list(seed_batches(np.arange(100), 64, np.random.default_rng(0)))
    assert [len(b) for b in batches] == [64, 36]
    assert sorted(np.concatenate(batches).tolist()) == list(range(100))
    with pytest.raises(ValueError, match="distinct"):
        sample_subgraph(graph, np.array([1, 1]), [2], np.random.default_rng(0))


# --- DMoN losses (3.1.2) --------------------------------------------------------------------

def two_edges():
    """Nodes 0-1 and 2-3 joined by unit edges (both directions)."""
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
    return edge_index, torch.ones(4)


def fixed_assignment_head(s: torch.Tensor) -> DMoNHead:
    """A DMoN head whose assignment is ``s`` (up to exp(-60)), to check losses by hand."""
    head = DMoNHead(2, s.size(1))

    class Fixed(torch.nn.Module):
        def forward(self, h):
            return 60.0 * s.to(h.dtype).expand(h.size(0), -1, -1).reshape(h.shape[:-1] + (s.size(1),))

    head.pool.mlp = Fixed()
    return head


@pytest.mark.parametrize("s, spectral, ortho, collapse", [
    # The perfect split: modularity 1/2, orthogonal equal-size clusters.
    ([[1, 0], [1, 0], [0, 1], [0, 1]], -0.5, 0.0, 0.0),
    # Everything in one cluster: modularity 0, collapse sqrt(2) - 1,
    # orthogonality || diag(1, 0) - I / sqrt(2) ||_F = sqrt(2 - sqrt(2)).
    ([[1, 0], [1, 0], [1, 0], [1, 0]], 0.0, math.sqrt(2 - math.sqrt(2)), math.sqrt(2) - 1),
])
def test_dmon_losses_by_hand(s, spectral, ortho, collapse):
    s = torch.tensor(s, dtype=torch.float32)
    edge_index, weight = two_edges()
    sparse = dmon_losses(s, edge_index, weight, 4)
    head = fixed_assignment_head(s)
    _, dense = head.dense(torch.zeros(4, 2), dense_adjacency(edge_index, weight, 4))  # torch_geometric's DMoNPooling
    for losses in (sparse, dense):
        assert float(losses.spectral) == pytest.approx(spectral, abs=1e-6)
        assert float(losses.orthogonality) == pytest.approx(ortho, abs=1e-6)
        assert float(losses.collapse) == pytest.approx(collapse, abs=1e-6)


@pytest.mark.parametrize("symmetric", [True, False])
def test_sparse_dmon_equals_dmonpooling_on_random_subgraphs(symmetric):
    torch.manual_seed(0)
    graph = random_graph(n=80, k=6)
    sub = sample_subgraph(graph, np.arange(10), [4, 3], np.random.default_rng(0))
    edge_index, weight = torch.from_numpy(sub.edge_index), torch.from_numpy(sub.edge_weight)
    head = DMoNHead(8, 5)
    h = torch.randn(sub.num_nodes, 8, requires_grad=True)
    s_dense, dense = head.dense(h, dense_adjacency(edge_index, weight, sub.num_nodes, symmetric))
    s_sparse, sparse = head.sparse(h, edge_index, weight, sub.num_nodes, symmetric)
    torch.testing.assert_close(s_dense, s_sparse)
    for name in ("spectral", "orthogonality", "collapse"):
        torch.testing.assert_close(getattr(dense, name), getattr(sparse, name), rtol=1e-4, atol=1e-6)
    # Gradients agree too (they are what trains the model).
    g_dense = torch.autograd.grad(dense.spectral + dense.collapse, h)[0]
    g_sparse = torch.autograd.grad(sparse.spectral + sparse.collapse, h)[0]
    torch.testing.assert_close(g_dense, g_sparse, rtol=1e-4, atol=1e-6)


def test_symmetric_adjacency_joins_pairs_in_either_direction():
    edge_index = torch.tensor([[0, 2], [1, 1]])
    weight = torch.tensor([2.0, 3.0])
    adj = dense_adjacency(edge_index, weight, 3)
    assert adj.tolist() == [[0, 2, 0], [2, 0, 3], [0, 3, 0]]
    pairs, w, _ = adjacency_edges(edge_index, weight, 3)
    assert sorted(zip(pairs[0].tolist(), pairs[1].tolist(), w.tolist())) == [
        (0, 1, 2.0), (1, 0, 2.0), (1, 2, 3.0), (2, 1, 3.0)]
    # directed: the kNN relation, A[node, neighbour] (messages flow neighbour -> node: 0 -> 1, 2 -> 1)
    assert dense_adjacency(edge_index, weight, 3, symmetric=False).tolist() == [[0, 0, 0], [2, 0, 3], [0, 0, 0]]
    pairs, w, _ = adjacency_edges(edge_index, weight, 3, symmetric=False)
    assert sorted(zip(pairs[0].tolist(), pairs[1].tolist(), w.tolist())) == [(1, 0, 2.0), (1, 2, 3.0)]


def test_the_default_loss_is_dmonpooling_on_the_unweighted_edge_index_plus_collapse_x01():
    """4.1.2: "the edge index is converted into a dense adjacency matrix" (0/1, directed as the kNN
    relation); 4.1.5: "DMoN losses and collapse regularization with 0.1 multiplication factor". The
    default batch loss is DMoNPooling's three losses on to_dense_adj of the kNN edge index plus its
    collapse term again x0.1; the other reading (collapse x0.1 only) and the pre-issue-20 adjacency
    (weighted, undirected) are switches away."""
    from torch_geometric.utils import to_dense_adj

    from clusterbench.methods.constellationnet.unsupervised import Config, batch_loss, build_model

    torch.manual_seed(0)
    n, k = 12, 3
    x = torch.randn(n, 8)
    knn = torch.tensor([[i, (i + d) % n] for i in range(n) for d in (1, 2, 5)]).T   # (node, neighbour)
    messages = knn.flip(0)                                                          # neighbour -> node
    weight = torch.rand(messages.size(1)) + 0.5
    config = Config(num_layers=1, hidden=4, dropout=0.0)
    assert (config.symmetric_adjacency, config.dmon_edge_weights, config.collapse_weight,
            config.cluster_size_weight) == (False, False, 0.1, 1.0)
    model = build_model(config, 8, k).eval()
    loss, parts = batch_loss(model, x, messages, weight, config)
    h, _ = model.encoder(x, messages, weight)
    _, _, _, spectral, ortho, collapse = model.head.pool(h, to_dense_adj(knn, max_num_nodes=n))
    torch.testing.assert_close(loss, spectral + ortho + 1.1 * collapse, rtol=1e-5, atol=1e-6)
    only_x01, _ = batch_loss(model, x, messages, weight, config.model_copy(update={"cluster_size_weight": 0.0}))
    torch.testing.assert_close(only_x01, spectral + ortho + 0.1 * collapse, rtol=1e-5, atol=1e-6)
    code = Config(num_layers=1, hidden=4, dropout=0.0, symmetric_adjacency=True, dmon_edge_weights=True)
    loss_code, _ = batch_loss(model, x, messages, weight, code)
    adj = to_dense_adj(knn, edge_attr=weight, max_num_nodes=n)[0]
    _, _, _, spectral_w, ortho_w, collapse_w = model.head.pool(h, torch.maximum(adj, adj.T))
    torch.testing.assert_close(loss_code, spectral_w + ortho_w + 1.1 * collapse_w, rtol=1e-5, atol=1e-6)
    assert not torch.isclose(spectral_w, spectral, rtol=0.2)   # the two adjacencies are different objectives


# --- the GNN variants (4.1.2) ---------------------------------------------------------------

@pytest.mark.parametrize("conv", CONVS)
def test_every_conv_type_shapes_and_losses(conv):
    torch.manual_seed(0)
    graph = random_graph(n=50, k=8)
    sub = sample_subgraph(graph, np.arange(12), [5, 5], np.random.default_rng(0))
    x = torch.randn(sub.num_nodes, 32)
    config = U.Config(conv=conv, num_layers=3)
    model = U.build_model(config, 32, 4)
    assert model.encoder.out_dim == 16  # half the input size
    edge_index, weight = torch.from_numpy(sub.edge_index), torch.from_numpy(sub.edge_weight)
    model.train()
    h, attention = model.encoder(x, edge_index, weight)
    assert h.shape == (sub.num_nodes, 16)
    assert (float(attention.detach()) > 0) == (conv == "sgat")
    loss, parts = U.batch_loss(model, x, edge_index, weight, config)
    loss.backward()
    assert all(p.grad is not None for p in model.head.parameters())
    model.eval()
    s = torch.softmax(model.head.logits(model.encoder(x, edge_index, weight)[0]), -1)
    assert s.shape == (sub.num_nodes, 4)
    torch.testing.assert_close(s.sum(1), torch.ones(sub.num_nodes))


def test_gin_uses_the_two_layer_mlp_and_gcn_uses_edge_weights():
    gin = GNNEncoder("gin", 6, 4, 1)
    mlp = gin.convs[0].nn
    assert [type(m).__name__ for m in mlp] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    torch.manual_seed(0)
    gcn = GNNEncoder("gcn", 6, 4, 1, dropout=0.0).eval()
    x = torch.randn(3, 6)
    edge_index = torch.tensor([[1, 2], [0, 0]])
    a, _ = gcn(x, edge_index, torch.tensor([1.0, 1.0]))
    b, _ = gcn(x, edge_index, torch.tensor([1.0, 5.0]))
    assert not torch.allclose(a[0], b[0]), "edge weights must reach the GCN"
    unweighted = GNNEncoder("gcn", 6, 4, 1, dropout=0.0, edge_weights=False).eval()
    unweighted.load_state_dict(gcn.state_dict())
    torch.testing.assert_close(unweighted(x, edge_index, torch.tensor([1.0, 1.0]))[0],
                               unweighted(x, edge_index, torch.tensor([1.0, 5.0]))[0])


@pytest.mark.parametrize("conv", ["gcn", "gin"])
def test_sparse_aggregation_equals_per_edge_messages(conv):
    graph = random_graph(n=120, k=8)
    sub = sample_subgraph(graph, np.arange(16), [5, 5], np.random.default_rng(0))
    edge_index, weight = torch.from_numpy(sub.edge_index), torch.from_numpy(sub.edge_weight)
    torch.manual_seed(0)
    fast = GNNEncoder(conv, 5, 6, 3, dropout=0.0)
    plain = GNNEncoder(conv, 5, 6, 3, dropout=0.0, sparse_aggregation=False)
    plain.load_state_dict(fast.state_dict())
    assert fast.sparse_aggregation and not plain.sparse_aggregation
    x = torch.randn(sub.num_nodes, 5, requires_grad=True)
    outputs = [enc(x, edge_index, weight)[0] for enc in (fast, plain)]
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-4, atol=1e-5)
    grads = [torch.autograd.grad(o.sum(), x)[0] for o in outputs]
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("conv", ["gat", "sgat"])
def test_sparse_attention_switch_builds_the_same_model_on_sparse_kernels(conv):
    """attention_impl: sparse swaps PyG's GATConv / SuperGATConv for gnn_layers' layers: same
    initial weights for a seed, and (eval mode, edge weights reaching GAT) the same embedding
    and gradients up to rounding. The default stays PyG's."""
    from clusterbench.methods.gnn_layers import GATLayer, SuperGATLayer

    assert U.Config().attention_impl == "pyg"
    graph = random_graph(n=120, k=8)
    sub = sample_subgraph(graph, np.arange(16), [5, 5], np.random.default_rng(0))
    edge_index, weight = torch.from_numpy(sub.edge_index), torch.from_numpy(sub.edge_weight)
    models = {}
    for impl in ("pyg", "sparse"):
        torch.manual_seed(0)
        models[impl] = U.build_model(U.Config(conv=conv, num_layers=3, dropout=0.0, attention_impl=impl), 32, 4)
    ours = GATLayer if conv == "gat" else SuperGATLayer
    assert all(type(c) is ours for c in models["sparse"].encoder.convs)
    assert not any(isinstance(c, ours) for c in models["pyg"].encoder.convs)
    want = models["pyg"].state_dict()
    assert all(torch.equal(t, want[k]) for k, t in models["sparse"].state_dict().items())
    x = torch.randn(sub.num_nodes, 32, requires_grad=True)
    outputs = [models[impl].eval().encoder(x, edge_index, weight)[0] for impl in ("pyg", "sparse")]
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-4, atol=1e-5)
    grads = [torch.autograd.grad(o.square().sum(), x)[0] for o in outputs]
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-4)
    with pytest.raises(Exception, match="attention_impl"):
        U.Config(attention_impl="dgl")
    with pytest.raises(ValueError, match="attention_impl='dgl'; allowed: pyg, sparse"):
        GNNEncoder(conv, 8, 8, 1, attention_impl="dgl")


def test_batchnorm_recalibration_uses_the_inference_graph_statistics():
    import copy

    graph = random_graph(n=2000, k=8)
    edge_index, weight = (torch.from_numpy(a) for a in graph.edge_index())
    x = torch.randn(graph.n, 5) * 3 + 1
    torch.manual_seed(0)
    enc = GNNEncoder("gin", 5, 6, 2, dropout=0.5)  # GIN: BatchNorm inside its MLP too
    norms = [m for m in enc.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(norms) == 4
    for m in norms:  # statistics of some other distribution
        m.running_mean.fill_(3.0)
        m.running_var.fill_(7.0)
    reference = copy.deepcopy(enc).eval()
    for m in reference.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.train()  # normalise with this graph's own statistics, no dropout
    expected, _ = reference(x, edge_index, weight)
    recalibrate_batchnorm(enc, [(x, edge_index, weight)])
    assert not enc.training and all(m.momentum == 0.1 for m in norms)
    got, _ = enc(x, edge_index, weight)
    # Equal up to the unbiased (n / (n-1)) variance the running estimate keeps (0.05 % per layer).
    assert float(((got - expected).abs().max() / expected.abs().max()).detach()) < 3e-3
    stale, _ = copy.deepcopy(reference).eval()(x, edge_index, weight)
    assert not torch.allclose(stale, expected, atol=1e-2)


def test_config_errors_name_the_parameter():
    with pytest.raises(Exception, match="conv"):
        U.Config(conv="sage")
    with pytest.raises(Exception, match="num_neighbors"):
        U.Config(num_neighbors=[30, 0])
    with pytest.raises(ValueError, match="divisible"):
        U.build_model(U.Config(conv="sgat"), 20, 3)  # hidden 10 is not a multiple of 8 heads


def test_partition_modularity_by_hand():
    # Two disjoint unit edges 0-1 and 2-3 (each node the other's only neighbour).
    graph = InNeighbours(np.array([[1], [0], [3], [2]]), np.ones((4, 1), np.float32))
    assert U.partition_modularity(graph, np.array([0, 0, 1, 1]), 2) == pytest.approx(0.5)
    assert U.partition_modularity(graph, np.array([0, 0, 0, 0]), 2) == pytest.approx(0.0)
    assert U.partition_modularity(graph, np.array([0, 1, 0, 1]), 2) == pytest.approx(-0.5)


def test_plateau_stop_rule():
    stop = PlateauStop(patience=2, min_delta=0.01)
    assert stop.update(1.0, 0) == (True, False)
    assert stop.update(0.995, 1) == (False, False)  # less than min_delta: no improvement
    assert stop.update(0.5, 2) == (True, False)
    assert stop.update(0.5, 3) == (False, False)
    assert stop.update(0.6, 4) == (False, True)
    assert stop.best_epoch == 2


# --- end to end -----------------------------------------------------------------------------

def blobs(n_per=40, dims=6, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(3, dims))
    x = np.concatenate([c + rng.normal(size=(n_per, dims)) for c in centres]).astype(np.float32)
    y = np.repeat(np.arange(3), n_per)
    return x, y


def context(x, y, graph, seed=0):
    view = View(x, y, np.zeros(len(y), np.uint8), np.arange(len(y)))
    return RunContext(view=view, graph=graph, seed=seed, n_clusters=int(y.max()) + 1, progress=False)


def without_timing(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_registered_and_deterministic_for_a_seed():
    assert load_method("constellationnet") is U and METHODS["constellationnet"].endswith("unsupervised")
    x, y = blobs()
    graph = knn(x, 10)
    config = U.Config(epochs=3, num_layers=2, batch_size=16, num_neighbors=[5, 5])
    a = U.fit_predict(context(x, y, graph, seed=0), config)
    b = U.fit_predict(context(x, y, graph, seed=0), config)
    c = U.fit_predict(context(x, y, graph, seed=1), config)
    assert np.array_equal(a.labels, b.labels) and without_timing(a.history) == without_timing(b.history)
    assert [r["loss"] for r in a.history] != [r["loss"] for r in c.history]
    assert a.extra["epochs"] == 3 and a.embedding.shape == (len(y), 3)
    assert a.history[-1]["loss"] < a.history[0]["loss"]


def test_learns_well_separated_clusters():
    x, y = blobs(seed=1)
    config = U.Config(epochs=20, num_layers=2, batch_size=32, num_neighbors=[10, 10], lr=1e-2)
    aris = [metrics.ari(y, U.fit_predict(context(x, y, knn(x, 10), seed=s), config).labels) for s in range(3)]
    # DMoN can merge two clusters from an unlucky start; most seeds must find all three.
    assert sorted(aris)[1] > 0.95


def test_residual_edge_index_comes_from_the_run_graph(monkeypatch):
    """The edges are the run's graph (built on the original features), not a graph of the
    node features: every subgraph is sampled from ctx.graph and inference runs on it."""
    x_graph, y = blobs(seed=1)
    graph = knn(x_graph, 10)
    features = np.random.default_rng(0).normal(size=(len(y), 8)).astype(np.float32)
    seen = []
    real_sample = U.sample_subgraph

    def spy(nbrs, *args, **kwargs):
        seen.append(nbrs.sources.copy())
        return real_sample(nbrs, *args, **kwargs)

    monkeypatch.setattr(U, "sample_subgraph", spy)
    config = U.Config(epochs=1, num_layers=2, batch_size=64, num_neighbors=[3, 3], inference="all_neighbours")
    U.fit_predict(context(features, y, graph), config)
    # Two training batches; one inference batch (of 256 seeds), sampled for the BatchNorm pass and
    # for the prediction.
    assert len(seen) == 2 + 2
    assert all(np.array_equal(sources, graph.indices) for sources in seen)
    with pytest.raises(ValueError, match="same dataset"):
        U.fit_predict(context(features[:-1], y[:-1], graph), config)


@pytest.mark.parametrize("inference", ["full_graph", "all_neighbours"])
def test_transform_mode_clusters_the_gnn_embedding_with_kmeans(inference):
    x, y = blobs()
    config = U.Config(epochs=3, num_layers=2, batch_size=32, num_neighbors=[5, 5], predict="kmeans",
                      inference=inference)
    result = U.fit_predict(context(x, y, knn(x, 10)), config)
    assert result.embedding.shape == (len(y), 3)  # the GNN's hidden size, half of 6
    assert len(np.unique(result.labels)) == 3
    assert metrics.ari(y, result.labels) > 0.8


def test_dino_like_features_with_a_hundred_clusters():
    """The DINO rows of Tables 4 and 5 (CIFAR-100: 100 classes, Flowers: 102) use the same code
    with 1024-d (or UMAP-512) node features over a raw-pixel graph: shapes and every cluster id
    must work with k >= 100."""
    rng = np.random.default_rng(0)
    pixels = rng.random((240, 48)).astype(np.float32)
    features = rng.normal(size=(240, 64)).astype(np.float32)
    y = np.arange(240) % 102
    ctx = RunContext(view=View(features, y, np.zeros(240, np.uint8), np.arange(240)), graph=knn(pixels, 10),
                     seed=0, n_clusters=102, progress=False)
    result = U.fit_predict(ctx, U.Config(epochs=1, num_layers=2, batch_size=64, num_neighbors=[5, 5]))
    assert result.embedding.shape == (240, 102) and result.labels.max() < 102
    np.testing.assert_allclose(result.embedding.sum(1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("conv", ["gat", "sgat"])
def test_smoke_size_run_with_sparse_attention_trains_and_gives_labels(conv):
    """The smoke runs' setting (600 digits, K = 50, 2 layers, 3 epochs) with attention_impl: sparse."""
    from sklearn.datasets import load_digits

    from clusterbench.datasets import stratified_subsample

    digits = load_digits()
    rows = stratified_subsample(digits.target, 600, 0)
    x, y = digits.data[rows].astype(np.float32), digits.target[rows]
    config = U.Config(conv=conv, num_layers=2, epochs=3, attention_impl="sparse")
    result = U.fit_predict(context(x, y, knn(x, 50)), config)
    assert result.labels.shape == (600,) and 0 <= result.labels.min() and result.labels.max() < 10
    losses = [row["loss"] for row in result.history]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    assert all((row["attention"] > 0) == (conv == "sgat") for row in result.history)
    assert result.extra["clusters_used"] > 1


# --- full-batch training (issue 20) ------------------------------------------------------------

@pytest.mark.parametrize("conv", ["gcn", "gin", "gat", "sgat"])
def test_full_batch_step_with_cached_graph_equals_the_uncached_step(conv):
    """training: full_batch computes the graph input, GCN's normalisation and DMoN's adjacency once;
    a step with those caches gives the loss and gradients of the plain step on the whole graph (the
    sampled path's batch_loss on a "subgraph" that is every node with every edge), and fix_graph(False)
    leaves no cached normalisation behind for another graph."""
    graph = random_graph(n=60, k=6, seed=3)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32))
    config = U.Config(conv=conv, num_layers=2, hidden=8, dropout=0.0, training="full_batch")
    torch.manual_seed(0)
    plain = U.build_model(config, 8, 3)
    cached = U.build_model(config, 8, 3)
    cached.load_state_dict(plain.state_dict())
    edge_index, edge_weight = U.full_graph_tensors(graph, "cpu")
    whole = U.whole_graph(graph, config, "cpu")
    cached.encoder.fix_graph(True)
    for step in range(2):  # the second step reads the caches
        torch.manual_seed(step), random.seed(step)  # SuperGAT draws negative edges in each forward
        loss_plain, _ = U.batch_loss(plain, x, edge_index, edge_weight, config)
        torch.manual_seed(step), random.seed(step)
        loss_cached, _ = U.batch_loss(cached, x, whole[0], whole[1], config, whole[2])
        plain.zero_grad(), cached.zero_grad()
        loss_plain.backward(), loss_cached.backward()
        assert loss_cached.item() == pytest.approx(loss_plain.item(), rel=1e-5, abs=1e-6)
        for (name, a), b in zip(plain.named_parameters(), cached.parameters()):
            torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6, msg=name)
    # another graph after fix_graph(False): no stale normalisation or adjacency
    cached.encoder.fix_graph(False)
    plain.eval(), cached.eval()
    other = random_graph(n=60, k=4, seed=9)
    ei, w = U.full_graph_tensors(other, "cpu")
    torch.testing.assert_close(cached.encoder(x, ei, w)[0], plain.encoder(x, ei, w)[0])


def test_full_batch_training_takes_one_whole_graph_step_per_epoch():
    x, y = blobs(seed=1)
    config = U.Config(epochs=100, num_layers=2, lr=1e-2, training="full_batch")
    results = [U.fit_predict(context(x, y, knn(x, 10), seed=s), config) for s in range(3)]
    assert all(row["mean_subgraph_nodes"] == len(y) for r in results for row in r.history)
    # as with sampled training, DMoN can merge two clusters from an unlucky start (seed 0 here)
    assert sorted(metrics.ari(y, r.labels) for r in results)[1] > 0.95
    assert U.Config(training="full_batch").training == "full_batch"
    with pytest.raises(Exception, match="training"):
        U.Config(training="full")


@pytest.mark.parametrize("training", ["sampled", "full_batch"])
def test_a_run_killed_after_an_epoch_resumes_bit_identically(tmp_path, training):
    """Sampled epochs are minutes on a CPU (hours per seed): every epoch is checkpointed, and a
    run killed after epoch 2 continues to the same history, labels and embedding."""
    x, y = blobs(seed=2)
    graph = knn(x, 10)
    config = U.Config(epochs=5, num_layers=2, batch_size=16, num_neighbors=[5, 5], training=training)
    whole = U.fit_predict(context(x, y, graph, seed=3), config)

    class Killed(Exception):
        pass

    def kill_at_2(row):
        if row["epoch"] == 2:
            raise Killed

    ctx = context(x, y, graph, seed=3)
    ctx.checkpoint_dir, ctx.log = tmp_path, kill_at_2
    with pytest.raises(Killed):
        U.fit_predict(ctx, config)
    resumed_ctx = context(x, y, graph, seed=3)
    resumed_ctx.checkpoint_dir = tmp_path
    seen = []
    resumed_ctx.log = seen.append
    resumed = U.fit_predict(resumed_ctx, config)
    assert [r["epoch"] for r in seen] == [3, 4, 5]            # epochs 1-2 were not trained again
    assert without_timing(resumed.history) == without_timing(whole.history)
    assert np.array_equal(resumed.labels, whole.labels) and np.array_equal(resumed.embedding, whole.embedding)
    # other settings: the checkpoint is not continued
    other = U.fit_predict(resumed_ctx, config.model_copy(update={"lr": 0.02}))
    assert other.history[0]["epoch"] == 1

"""clusterbench.methods.gnn_layers: the sparse-kernel GAT / SuperGAT layers against PyG's GATConv /
SuperGATConv (outputs, gradients, SuperGAT's attention loss, initial weights) and the vectorised
negative sampler."""
import pytest
import torch

from clusterbench.methods.constellationnet.models import import_pyg
from clusterbench.methods.gnn_layers import (EdgeGraph, GATLayer, SuperGATLayer, edge_softmax,
                                             sample_negative_edges)

import_pyg()
from torch_geometric.nn import GATConv, SuperGATConv  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)
N = 40


def messy_graph(n=N, e=220, seed=0):
    """Random directed edges plus duplicates, self-loops (which the layers replace by their own),
    and one node (n - 1) with no in-edges."""
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n - 1, (2, e), generator=g)
    edge_index[0, :5] = n - 1  # node n-1 sends but receives nothing
    return torch.cat([edge_index, edge_index[:, :15], torch.tensor([[3, 7, 7], [3, 7, 7]])], dim=1)


def inputs(n=N, channels=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, channels, generator=g, requires_grad=True)


def grads(out, tensors, extra=0.0, seed=2):
    """Gradients of a random linear functional of ``out`` (entries of order 1), plus ``extra``."""
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    return torch.autograd.grad((out * weights).sum() + extra, tensors)


def matched_parameters(pyg, ours):
    ours_params = dict(ours.named_parameters())
    names = [name for name, _ in pyg.named_parameters()]
    assert sorted(names) == sorted(ours_params), "the layers must have the same parameters"
    return [p for _, p in pyg.named_parameters()], [ours_params[name] for name in names]


# --- GAT --------------------------------------------------------------------------------------

@pytest.mark.parametrize("heads, concat, edge_dim, add_self_loops", [
    (1, True, 1, True),     # ConstellationNet's configuration (edge weights as a 1-d edge_attr)
    (3, True, None, True),
    (2, False, 2, True),
    (2, True, None, False),
])
def test_gat_matches_pyg_outputs_and_gradients(heads, concat, edge_dim, add_self_loops):
    edge_index = messy_graph()
    torch.manual_seed(0)
    pyg = GATConv(6, 5, heads=heads, concat=concat, add_self_loops=add_self_loops, edge_dim=edge_dim)
    ours = GATLayer(6, 5, heads=heads, concat=concat, add_self_loops=add_self_loops, edge_dim=edge_dim)
    ours.load_state_dict(pyg.state_dict())
    pyg.eval(), ours.eval()
    x = inputs()
    attr = None
    if edge_dim is not None:
        shape = (edge_index.size(1),) if edge_dim == 1 else (edge_index.size(1), edge_dim)
        attr = torch.rand(shape, generator=torch.Generator().manual_seed(3)).requires_grad_()
    a = pyg(x, edge_index, edge_attr=attr)
    b = ours(x, edge_index, edge_attr=attr)
    assert b.shape == (N, 5 * heads if concat else 5)
    torch.testing.assert_close(b, a, **TOL)
    pyg_params, our_params = matched_parameters(pyg, ours)
    wrt = [x] + ([attr] if attr is not None else [])
    for got, want in zip(grads(b, wrt + our_params), grads(a, wrt + pyg_params)):
        torch.testing.assert_close(got, want, **TOL)
    if not add_self_loops:  # a node without in-edges gets the bias only
        torch.testing.assert_close(b[N - 1], ours.bias)


def test_gat_attention_dropout_only_in_training():
    edge_index, x = messy_graph(), inputs()
    layer = GATLayer(6, 4, heads=2, dropout=0.5)
    layer.eval()
    torch.testing.assert_close(layer(x, edge_index), layer(x, edge_index))
    layer.train()
    torch.manual_seed(0)
    a = layer(x, edge_index)
    torch.manual_seed(1)
    assert not torch.allclose(a, layer(x, edge_index)), "attention dropout must act in training"


def test_same_seed_gives_pyg_initial_weights():
    """Drawn in PyG's order: a sparse run starts from the weights of the PyG run of its seed."""
    for make_pyg, make_ours in [
        (lambda: GATConv(6, 5, heads=2, edge_dim=1), lambda: GATLayer(6, 5, heads=2, edge_dim=1)),
        (lambda: SuperGATConv(6, 5, heads=4, attention_type="MX"), lambda: SuperGATLayer(6, 5, heads=4)),
    ]:
        torch.manual_seed(7)
        want = make_pyg().state_dict()
        torch.manual_seed(7)
        got = make_ours().state_dict()
        assert sorted(got) == sorted(want)
        assert all(torch.equal(got[k], want[k]) for k in want)


def test_edge_softmax_by_hand():
    # Node 0 receives two edges with scores 0 and log 3; node 1 one edge; node 2 none.
    graph = EdgeGraph(torch.tensor([[1, 2, 0], [0, 0, 1]]), 3, add_self_loops=False)
    scores = torch.tensor([[0.0, float(torch.log(torch.tensor(3.0))), 5.0]])[:, graph.order]
    alpha = edge_softmax(scores, graph)
    torch.testing.assert_close(alpha[:, torch.argsort(graph.order)], torch.tensor([[0.25, 0.75, 1.0]]))


def test_prepared_graph_gives_the_same_result_and_must_match_the_layer():
    edge_index, x = messy_graph(), inputs()
    layer = GATLayer(6, 4, heads=2, edge_dim=1).eval()
    attr = torch.rand(edge_index.size(1))
    graph = EdgeGraph(edge_index, N)
    torch.testing.assert_close(layer(x, graph, edge_attr=attr), layer(x, edge_index, edge_attr=attr))
    with pytest.raises(ValueError, match="add_self_loops"):
        layer(x, EdgeGraph(edge_index, N, add_self_loops=False))
    with pytest.raises(ValueError, match="nodes"):
        layer(x[:-1], graph)


def test_self_loop_attributes_are_the_mean_of_the_in_edges():
    # Node 0 receives weights 1 and 3 (and has a self-loop of weight 100, which is dropped).
    edge_index = torch.tensor([[1, 2, 0], [0, 0, 0]])
    graph = EdgeGraph(edge_index, 3)
    attr = graph.edge_attr(torch.tensor([1.0, 3.0, 100.0]))
    got = {(int(s), int(t)): float(a) for s, t, a in zip(graph.src, graph.tgt, attr[:, 0])}
    assert got == {(1, 0): 1.0, (2, 0): 3.0, (0, 0): 2.0, (1, 1): 0.0, (2, 2): 0.0}


@pytest.mark.parametrize("bad, match", [
    (torch.tensor([0, 1, 2]), "shape"),
    (torch.tensor([[0.0, 1.0], [1.0, 0.0]]), "dtype"),
    (torch.tensor([[0, N], [1, 0]]), f"0..{N - 1}"),
    (torch.tensor([[-1, 0], [1, 0]]), "node ids"),
])
def test_bad_edge_index_is_refused_in_one_line(bad, match):
    with pytest.raises(ValueError, match=match) as info:
        GATLayer(6, 4)(inputs(), bad)
    assert "edge_index" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("make, match", [
    (lambda: GATLayer(6, 4, heads=0), "heads=0"),
    (lambda: GATLayer(6, 4, dropout=1.0), "dropout=1.0"),
    (lambda: GATLayer(6, 4, fill_value="max"), "fill_value='max'"),
    (lambda: GATLayer(6, 4, edge_dim=0), "edge_dim=0"),
    (lambda: SuperGATLayer(6, 4, attention_type="SD"), "attention_type='SD'"),
    (lambda: SuperGATLayer(6, 4, edge_sample_ratio=0.0), "edge_sample_ratio=0.0"),
    (lambda: SuperGATLayer(6, 4, neg_sample_ratio=0), "neg_sample_ratio=0"),
])
def test_bad_layer_arguments_name_the_parameter(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_edge_attr_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="edge_attr has 3 rows"):
        GATLayer(6, 4, edge_dim=1)(inputs(), messy_graph(), edge_attr=torch.ones(3))


# --- SuperGAT ---------------------------------------------------------------------------------

def supergat_pair(heads=4, seed=0, negative_sampler=None):
    """ConstellationNet's SuperGAT configuration, PyG's layer and ours with its weights."""
    torch.manual_seed(seed)
    pyg = SuperGATConv(6, 5, heads=heads, concat=True, attention_type="MX", edge_sample_ratio=0.8,
                       is_undirected=False)
    ours = SuperGATLayer(6, 5, heads=heads, concat=True, attention_type="MX", edge_sample_ratio=0.8,
                         is_undirected=False, negative_sampler=negative_sampler)
    ours.load_state_dict(pyg.state_dict())
    return pyg, ours


def with_pyg_loops(edge_index, n=N):
    """The edge list both layers attend over: self-loops dropped, one per node appended (PyG order)."""
    kept = edge_index[:, edge_index[0] != edge_index[1]]
    return torch.cat([kept, torch.arange(n).repeat(2, 1)], dim=1)


def test_supergat_matches_pyg_in_eval_mode():
    edge_index, x = messy_graph(), inputs()
    pyg, ours = supergat_pair()
    pyg.eval(), ours.eval()
    a, b = pyg(x, edge_index), ours(x, edge_index)
    torch.testing.assert_close(b, a, **TOL)
    pyg_params, our_params = matched_parameters(pyg, ours)
    for got, want in zip(grads(b, [x] + our_params), grads(a, [x] + pyg_params)):
        torch.testing.assert_close(got, want, **TOL)
    assert float(ours.get_attention_loss()) == 0.0


def test_supergat_attention_loss_matches_pyg_given_the_same_positives_and_negatives():
    edge_index, x = messy_graph(), inputs()
    pyg, ours = supergat_pair()
    looped = with_pyg_loops(edge_index)
    pos_mask = torch.rand(looped.size(1), generator=torch.Generator().manual_seed(4)) >= 0.2
    negatives = sample_negative_edges(looped, N, 60, generator=torch.Generator().manual_seed(5))
    pyg.positive_sampling = lambda ei: ei[:, pos_mask]  # PyG's positives, fixed
    a = pyg(x, edge_index, neg_edge_index=negatives)
    loss_a = pyg.get_attention_loss()
    b = ours(x, edge_index, neg_edge_index=negatives, pos_mask=pos_mask)
    loss_b = ours.get_attention_loss()
    assert ours.att_x.shape == (4, int(pos_mask.sum()) + 60)
    torch.testing.assert_close(b, a, **TOL)
    torch.testing.assert_close(loss_b, loss_a, **TOL)
    pyg_params, our_params = matched_parameters(pyg, ours)
    for got, want in zip(grads(b, [x] + our_params, loss_b), grads(a, [x] + pyg_params, loss_a)):
        torch.testing.assert_close(got, want, **TOL)


def test_supergat_default_positives_draw_what_pyg_draws_and_the_sampler_is_injectable():
    """Without pos_mask the positives come from torch's global RNG exactly as PyG's dropout_edge
    draws them; the injected sampler gets the looped edge list and PyG's count."""
    edge_index, x = messy_graph(), inputs()
    looped = with_pyg_loops(edge_index)
    negatives = sample_negative_edges(looped, N, 50, generator=torch.Generator().manual_seed(6))
    calls = []

    def sampler(ei, n, count):
        calls.append((ei.clone(), n, count))
        return negatives

    pyg, _ = supergat_pair()
    _, ours = supergat_pair(negative_sampler=sampler)
    torch.manual_seed(11)
    pyg(x, edge_index, neg_edge_index=negatives)
    torch.manual_seed(11)
    ours(x, edge_index)
    torch.testing.assert_close(ours.get_attention_loss(), pyg.get_attention_loss(), **TOL)
    (ei, n, count), = calls
    assert torch.equal(ei, looped) and n == N and count == int(0.5 * 0.8 * looped.size(1))


def test_supergat_pos_mask_must_cover_every_edge():
    with pytest.raises(ValueError, match="pos_mask has shape"):
        SuperGATLayer(6, 4)(inputs(), messy_graph(), pos_mask=torch.ones(3, dtype=torch.bool))


# --- negative sampling ------------------------------------------------------------------------

def check_negatives(neg, edge_index, n, count, undirected=True):
    assert neg.shape == (2, count) and neg.dtype == torch.long
    assert int(neg.min()) >= 0 and int(neg.max()) < n
    assert bool((neg[0] != neg[1]).all()), "a self-pair sampled"
    keys = (neg[0] * n + neg[1]).tolist()
    assert len(set(keys)) == count, "a pair sampled twice"
    edges = set((edge_index[0] * n + edge_index[1]).tolist())
    if undirected:
        edges |= set((edge_index[1] * n + edge_index[0]).tolist())
    assert not edges & set(keys), "a sampled negative is an edge"


@pytest.mark.parametrize("n, k, count", [(60, 8, 300), (2100, 10, 4000)])  # enumerated / drawn and rejected
def test_negatives_are_distinct_non_edges_and_as_many_as_asked(n, k, count):
    g = torch.Generator().manual_seed(0)
    edge_index = torch.stack([torch.randint(0, n, (n * k,), generator=g), torch.arange(n).repeat_interleave(k)])
    neg = sample_negative_edges(edge_index, n, count, generator=torch.Generator().manual_seed(1))
    check_negatives(neg, edge_index, n, count)
    again = sample_negative_edges(edge_index, n, count, generator=torch.Generator().manual_seed(1))
    other = sample_negative_edges(edge_index, n, count, generator=torch.Generator().manual_seed(2))
    assert torch.equal(neg, again) and not torch.equal(neg, other)


def test_negatives_directed_mode_allows_reversed_edges_and_count_caps_at_the_free_pairs():
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 0]])  # a directed 3-cycle: 3 free ordered pairs
    neg = sample_negative_edges(edge_index, 3, 10, undirected=False)
    check_negatives(neg, edge_index, 3, 3, undirected=False)
    assert sorted(map(tuple, neg.t().tolist())) == [(0, 2), (1, 0), (2, 1)]
    assert sample_negative_edges(edge_index, 3, 10).shape == (2, 0)  # undirected: every pair is an edge


def test_negatives_are_uniform_over_the_free_pairs():
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])  # n = 5: 20 ordered pairs, 8 of them (edges) taken
    g = torch.Generator().manual_seed(0)
    counts = {}
    for _ in range(1200):
        s, t = sample_negative_edges(edge_index, 5, 1, generator=g)[:, 0].tolist()
        counts[(s, t)] = counts.get((s, t), 0) + 1
    assert len(counts) == 12
    assert all(abs(c / 1200 - 1 / 12) < 0.035 for c in counts.values())


@pytest.mark.parametrize("kwargs, match", [
    (dict(count=-1), "count=-1"),
    (dict(num_nodes=-2), "num_nodes=-2"),
])
def test_negative_sampler_refuses_bad_arguments(kwargs, match):
    args = dict(edge_index=torch.tensor([[0], [1]]), num_nodes=3, count=1) | kwargs
    with pytest.raises(ValueError, match=match):
        sample_negative_edges(**args)

"""Shared GNN building blocks: graph attention layers on sparse kernels, and a vectorised negative
edge sampler.

``GATLayer`` and ``SuperGATLayer`` compute what torch_geometric's ``GATConv`` and
``SuperGATConv`` (attention_type "MX") compute on a square graph, with the same parameters
(names, shapes, initialisation order: ``load_state_dict`` works in both directions and the same
seed gives the same weights). Why a second implementation: PyG builds per-edge message tensors
(edges x heads x channels) in the forward and the backward pass, which is most of a step's time
and, on a whole 10,000-node kNN graph with K = 50, gigabytes. Here an edge only ever carries
scalars, one per head:

- attention logits per edge from per-node scores (GAT) or per-edge dot products x_i . x_j
  (SuperGAT), the latter a sampled dense-dense product (``torch.sparse.sampled_addmm``);
- the softmax over each target's in-edges subtracts the per-target maximum found with
  ``scatter_reduce`` (as PyG's ``softmax``);
- the attention-weighted sum over in-neighbours is one CSR x dense product (``torch.sparse.mm``)
  for all heads at once (a block-diagonal matrix, one block per head). Its backward is the
  transposed product for the features and the sampled product for the edge weights.

Only the rounding differs from PyG (tests/test_gnn_layers.py compares outputs, gradients and
SuperGAT's attention loss). A repeated edge counts as often as it appears, as in PyG.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["EdgeGraph", "GATLayer", "SuperGATLayer", "edge_softmax", "sample_negative_edges"]

# Below this many node pairs (N^2) the negative sampler enumerates every free pair (a boolean
# mask of N^2 bytes) instead of drawing and rejecting.
DENSE_PAIRS = 1 << 22


def _check_edge_index(edge_index: Tensor, num_nodes: int, what: str = "edge_index") -> None:
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        shape = tuple(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index).__name__
        raise ValueError(f"{what} has shape {shape}; allowed: a (2, E) integer tensor of (source, target) rows")
    if edge_index.dtype.is_floating_point or edge_index.dtype == torch.bool:
        raise ValueError(f"{what} has dtype {edge_index.dtype}; allowed: an integer dtype (torch.long)")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"{what} holds node ids {int(edge_index.min())}..{int(edge_index.max())}; "
                         f"allowed: 0..{num_nodes - 1} (num_nodes = {num_nodes})")


def _csr(crow: Tensor, col: Tensor, values: Tensor, size: tuple[int, int]) -> Tensor:
    """A CSR tensor, without torch's once-per-process "CSR support is in beta" warning (expected here)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(crow, col, values, size=size, check_invariants=False)


def _row_pointers(rows_sorted: Tensor, num_rows: int) -> Tensor:
    crow = torch.zeros(num_rows + 1, dtype=torch.long, device=rows_sorted.device)
    crow[1:] = torch.cumsum(torch.bincount(rows_sorted, minlength=num_rows), 0)
    return crow


class _HeadBlocks:
    """Index arrays of the block-diagonal (heads * N) x (heads * N) matrix whose block h holds
    head h's edge values: one sparse product serves every head. Values are laid out head-major,
    ``values[h * E + e]`` for edge e of the (target, source)-sorted list."""

    def __init__(self, graph: EdgeGraph, heads: int):
        n, e, dev = graph.num_nodes, graph.num_edges, graph.src.device
        shift = torch.arange(heads, device=dev).view(-1, 1)
        self.size = (heads * n, heads * n)
        self.crow = torch.cat([(graph.crow[:-1] + shift * e).reshape(-1),
                               torch.tensor([heads * e], device=dev)])
        self.col = (graph.src + shift * n).reshape(-1)
        self.crow_t = torch.cat([(graph.crow_t[:-1] + shift * e).reshape(-1),
                                 torch.tensor([heads * e], device=dev)])
        self.col_t = (graph.tgt[graph.perm_t] + shift * n).reshape(-1)
        self.perm_t = (graph.perm_t + shift * e).reshape(-1)

    def matrix(self, values: Tensor) -> Tensor:
        """A[h*N + target, h*N + source] = value."""
        return _csr(self.crow, self.col, values, self.size)

    def matrix_t(self, values: Tensor) -> Tensor:
        """The transpose of ``matrix(values)``, also as CSR."""
        return _csr(self.crow_t, self.col_t, values[self.perm_t], self.size)

    def sampled_dot(self, a: Tensor, b: Tensor) -> Tensor:
        """values[e] = a[row_e] . b[col_e] for every stored entry, without an E x C tensor."""
        pattern = self.matrix(a.new_zeros(self.col.numel()))
        return torch.sparse.sampled_addmm(pattern, a.contiguous(), b.t(), beta=0.0).values()


class _Aggregate(torch.autograd.Function):
    """out = A(values) @ x for the block-diagonal edge matrix A (see _HeadBlocks)."""

    @staticmethod
    def forward(ctx, values: Tensor, x: Tensor, blocks: _HeadBlocks) -> Tensor:
        ctx.blocks = blocks
        ctx.save_for_backward(values, x)
        return torch.sparse.mm(blocks.matrix(values), x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        values, x = ctx.saved_tensors
        blocks, grad = ctx.blocks, grad.contiguous()
        grad_values = blocks.sampled_dot(grad, x) if ctx.needs_input_grad[0] else None
        grad_x = torch.sparse.mm(blocks.matrix_t(values), grad) if ctx.needs_input_grad[1] else None
        return grad_values, grad_x, None


class _EdgeDot(torch.autograd.Function):
    """values[e] = a[target_e] . b[source_e] (rows of the block layout), a sampled product."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, blocks: _HeadBlocks) -> Tensor:
        ctx.blocks = blocks
        ctx.save_for_backward(a, b)
        return blocks.sampled_dot(a, b)

    @staticmethod
    def backward(ctx, grad: Tensor):
        a, b = ctx.saved_tensors
        blocks, grad = ctx.blocks, grad.contiguous()
        grad_a = torch.sparse.mm(blocks.matrix(grad), b) if ctx.needs_input_grad[0] else None
        grad_b = torch.sparse.mm(blocks.matrix_t(grad), a) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b, None


class EdgeGraph:
    """A square graph prepared for the attention layers, once for all of an encoder's layers.

    With ``add_self_loops`` the input's self-loops are dropped and one loop per node appended,
    as PyG's layers do; "PyG order" below means that list: the input's other edges in their
    order, then the loops of nodes 0..N-1. Internally edges are sorted by (target, source), the
    CSR row order; ``order[i]`` is the PyG-order position of sorted edge i.
    """

    def __init__(self, edge_index: Tensor, num_nodes: int, add_self_loops: bool = True):
        _check_edge_index(edge_index, num_nodes)
        n = int(num_nodes)
        src, tgt = edge_index[0].long(), edge_index[1].long()
        self.keep = None
        if add_self_loops:
            self.keep = src != tgt
            loops = torch.arange(n, device=src.device)
            src, tgt = torch.cat([src[self.keep], loops]), torch.cat([tgt[self.keep], loops])
        self.num_nodes, self.add_self_loops, self.num_input_edges = n, add_self_loops, edge_index.size(1)
        self.pyg_edge_index = torch.stack([src, tgt])  # PyG order
        self.order = torch.argsort(tgt * n + src, stable=True)
        self.src, self.tgt = src[self.order], tgt[self.order]
        self.crow = _row_pointers(self.tgt, n)
        self.perm_t = torch.argsort(self.src * n + self.tgt, stable=True)
        self.crow_t = _row_pointers(self.src[self.perm_t], n)
        self._blocks: dict[int, _HeadBlocks] = {}

    @property
    def num_edges(self) -> int:
        return self.src.numel()

    def blocks(self, heads: int) -> _HeadBlocks:
        if heads not in self._blocks:
            self._blocks[heads] = _HeadBlocks(self, heads)
        return self._blocks[heads]

    def edge_attr(self, edge_attr: Tensor, fill_value: float | str = "mean") -> Tensor:
        """Per-edge features of the input edges, (E_in, D), in the sorted order with the
        self-loops' features filled in as PyG's add_self_loops does: ``"mean"`` = the mean over
        the node's other in-edges (0 for a node without any), or a constant."""
        if edge_attr.dim() == 1:
            edge_attr = edge_attr.view(-1, 1)
        if edge_attr.size(0) != self.num_input_edges:
            raise ValueError(f"edge_attr has {edge_attr.size(0)} rows; allowed: one per edge of edge_index "
                             f"({self.num_input_edges})")
        if self.keep is not None:
            kept = edge_attr[self.keep]
            if fill_value == "mean":
                tgt = self.pyg_edge_index[1, :kept.size(0)]  # PyG order: the kept edges first
                sums = kept.new_zeros(self.num_nodes, kept.size(1)).index_add_(0, tgt, kept)
                counts = torch.bincount(tgt, minlength=self.num_nodes).clamp_(min=1).to(kept.dtype)
                loop_attr = sums / counts.view(-1, 1)
            else:
                loop_attr = kept.new_full((self.num_nodes, kept.size(1)), float(fill_value))
            edge_attr = torch.cat([kept, loop_attr])
        return edge_attr[self.order]


def _as_graph(edge_index: Tensor | EdgeGraph, num_nodes: int, add_self_loops: bool) -> EdgeGraph:
    if isinstance(edge_index, EdgeGraph):
        if edge_index.num_nodes != num_nodes or edge_index.add_self_loops != add_self_loops:
            raise ValueError(f"EdgeGraph of {edge_index.num_nodes} nodes with add_self_loops="
                             f"{edge_index.add_self_loops}; the layer needs {num_nodes} nodes and "
                             f"add_self_loops={add_self_loops}")
        return edge_index
    return EdgeGraph(edge_index, num_nodes, add_self_loops)


def edge_softmax(scores: Tensor, graph: EdgeGraph) -> Tensor:
    """Softmax of (heads, E) edge scores over each target's in-edges, PyG's formula: subtract
    the target's maximum (not differentiated), exponentiate, divide by the sum + 1e-16."""
    heads = scores.size(0)
    index = graph.tgt.expand(heads, -1)
    peak = scores.new_zeros(heads, graph.num_nodes).scatter_reduce(1, index, scores.detach(), "amax",
                                                                    include_self=False)
    e = (scores - peak.index_select(1, graph.tgt)).exp()
    total = scores.new_zeros(heads, graph.num_nodes).index_add(1, graph.tgt, e) + 1e-16
    return e / total.index_select(1, graph.tgt)


def _glorot(t: Tensor) -> None:
    """PyG's glorot: uniform in +-sqrt(6 / (fan_in + fan_out)) over the last two dims (same RNG use)."""
    bound = math.sqrt(6.0 / (t.size(-2) + t.size(-1)))
    with torch.no_grad():
        t.uniform_(-bound, bound)


class _Linear(nn.Module):
    """A bias-free linear map initialised as PyG's ``Linear(..., weight_initializer="glorot")``:
    one glorot draw on construction (the layer's reset_parameters draws again, as PyG's do), so
    a layer draws exactly the random numbers its PyG counterpart draws, in the same order."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        _glorot(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight)


def _check_sizes(layer: str, in_channels: int, out_channels: int, heads: int, dropout: float,
                 negative_slope: float) -> None:
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("heads", heads)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{layer}: {name}={value!r}; allowed: an integer >= 1")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"{layer}: dropout={dropout!r}; allowed: 0 <= dropout < 1")
    if negative_slope < 0:
        raise ValueError(f"{layer}: negative_slope={negative_slope!r}; allowed: >= 0")


class _AttentionBase(nn.Module):
    in_channels: int
    out_channels: int
    heads: int
    concat: bool
    bias: nn.Parameter | None

    def _node_blocks(self, x: Tensor) -> Tensor:
        """(N, heads * C) -> (heads * N, C): head h's rows are block h."""
        n = x.size(0)
        return x.view(n, self.heads, self.out_channels).transpose(0, 1).reshape(self.heads * n, self.out_channels)

    def _finish(self, out: Tensor, n: int) -> Tensor:
        out = out.view(self.heads, n, self.out_channels)
        out = out.transpose(0, 1).reshape(n, self.heads * self.out_channels) if self.concat else out.mean(0)
        return out + self.bias if self.bias is not None else out

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, heads={self.heads}, concat={self.concat}"


class GATLayer(_AttentionBase):
    """torch_geometric's GATConv on sparse kernels (square graphs): same arguments and parameters
    (``lin.weight``, ``att_src``, ``att_dst``, ``lin_edge.weight``, ``att_edge``, ``bias``).

    ``forward(x, edge_index, edge_attr=None)``: ``edge_index`` a (2, E) tensor or an
    ``EdgeGraph`` prepared with the same ``add_self_loops``; ``edge_attr`` (E,) or (E, edge_dim),
    used when ``edge_dim`` is set (self-loops get ``fill_value``, "mean" as PyG's default).
    """

    def __init__(self, in_channels: int, out_channels: int, heads: int = 1, concat: bool = True,
                 negative_slope: float = 0.2, dropout: float = 0.0, add_self_loops: bool = True,
                 edge_dim: int | None = None, fill_value: float | str = "mean", bias: bool = True):
        super().__init__()
        _check_sizes("GATLayer", in_channels, out_channels, heads, dropout, negative_slope)
        if edge_dim is not None and (not isinstance(edge_dim, int) or edge_dim < 1):
            raise ValueError(f"GATLayer: edge_dim={edge_dim!r}; allowed: None or an integer >= 1")
        if isinstance(fill_value, str) and fill_value != "mean":
            raise ValueError(f"GATLayer: fill_value={fill_value!r}; allowed: 'mean' or a number")
        self.in_channels, self.out_channels, self.heads, self.concat = in_channels, out_channels, heads, concat
        self.negative_slope, self.dropout, self.add_self_loops = negative_slope, dropout, add_self_loops
        self.edge_dim, self.fill_value = edge_dim, fill_value
        self.lin = _Linear(in_channels, heads * out_channels)
        self.att_src = nn.Parameter(torch.empty(1, heads, out_channels))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_channels))
        if edge_dim is not None:
            self.lin_edge = _Linear(edge_dim, heads * out_channels)
            self.att_edge = nn.Parameter(torch.empty(1, heads, out_channels))
        else:
            self.lin_edge = None
            self.register_parameter("att_edge", None)
        if bias:
            self.bias = nn.Parameter(torch.empty(heads * out_channels if concat else out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GATConv.reset_parameters, draw for draw: lin, lin_edge, att_src, att_dst, att_edge."""
        _glorot(self.lin.weight)
        if self.lin_edge is not None:
            _glorot(self.lin_edge.weight)
        _glorot(self.att_src)
        _glorot(self.att_dst)
        if self.att_edge is not None:
            _glorot(self.att_edge)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, edge_index: Tensor | EdgeGraph, edge_attr: Tensor | None = None) -> Tensor:
        n, heads, c = x.size(0), self.heads, self.out_channels
        graph = _as_graph(edge_index, n, self.add_self_loops)
        h = self.lin(x)
        hv = h.view(n, heads, c)
        score_src = (hv * self.att_src).sum(-1).t()  # (heads, N): per-node halves of the logit
        score_dst = (hv * self.att_dst).sum(-1).t()
        scores = score_src.index_select(1, graph.src) + score_dst.index_select(1, graph.tgt)  # (heads, E)
        if edge_attr is not None and self.lin_edge is not None:
            attr = graph.edge_attr(edge_attr, self.fill_value)  # (E, edge_dim)
            # att_edge . lin_edge(attr) = attr @ M with M[d, h] = sum_c W[h*C + c, d] att_edge[h, c]
            m = (self.lin_edge.weight.view(heads, c, -1) * self.att_edge.view(heads, c, 1)).sum(1)
            scores = scores + m @ attr.t()
        alpha = edge_softmax(F.leaky_relu(scores, self.negative_slope), graph)
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        out = _Aggregate.apply(alpha.reshape(-1), self._node_blocks(h), graph.blocks(heads))
        return self._finish(out, n)


NegativeSampler = Callable[[Tensor, int, int], Tensor]


class SuperGATLayer(_AttentionBase):
    """torch_geometric's SuperGATConv with attention_type "MX" on sparse kernels (square graphs):
    same arguments and parameters (``lin.weight``, ``att_l``, ``att_r``, ``bias``).

    In training mode a forward pass also records the self-supervised attention logits that
    ``get_attention_loss()`` scores: positives are each edge (self-loops included) kept with
    probability ``edge_sample_ratio``, drawn from torch's global RNG exactly as PyG draws them
    (or ``pos_mask``, a boolean per edge in PyG order, see EdgeGraph); negatives are
    ``int(neg_sample_ratio * edge_sample_ratio * E)`` node pairs that are no edge (in either
    direction unless ``is_undirected``), from ``neg_edge_index`` if given, else from
    ``negative_sampler(edge_index_with_loops, num_nodes, count)`` (default:
    ``sample_negative_edges`` on torch's global RNG).
    """

    def __init__(self, in_channels: int, out_channels: int, heads: int = 1, concat: bool = True,
                 negative_slope: float = 0.2, dropout: float = 0.0, add_self_loops: bool = True, bias: bool = True,
                 attention_type: str = "MX", neg_sample_ratio: float = 0.5, edge_sample_ratio: float = 1.0,
                 is_undirected: bool = False, negative_sampler: NegativeSampler | None = None):
        super().__init__()
        _check_sizes("SuperGATLayer", in_channels, out_channels, heads, dropout, negative_slope)
        if attention_type != "MX":
            raise ValueError(f"SuperGATLayer: attention_type={attention_type!r}; allowed: 'MX' (the one "
                             "ConstellationNet uses; PyG's SuperGATConv also has 'SD')")
        if not neg_sample_ratio > 0:
            raise ValueError(f"SuperGATLayer: neg_sample_ratio={neg_sample_ratio!r}; allowed: > 0")
        if not 0 < edge_sample_ratio <= 1:
            raise ValueError(f"SuperGATLayer: edge_sample_ratio={edge_sample_ratio!r}; allowed: 0 < ratio <= 1")
        self.in_channels, self.out_channels, self.heads, self.concat = in_channels, out_channels, heads, concat
        self.negative_slope, self.dropout, self.add_self_loops = negative_slope, dropout, add_self_loops
        self.attention_type, self.neg_sample_ratio = attention_type, neg_sample_ratio
        self.edge_sample_ratio, self.is_undirected = edge_sample_ratio, is_undirected
        self.negative_sampler = negative_sampler
        self.lin = _Linear(in_channels, heads * out_channels)
        self.att_l = nn.Parameter(torch.empty(1, heads, out_channels))
        self.att_r = nn.Parameter(torch.empty(1, heads, out_channels))
        if bias:
            self.bias = nn.Parameter(torch.empty(heads * out_channels if concat else out_channels))
        else:
            self.register_parameter("bias", None)
        self.att_x: Tensor | None = None  # (heads, positives + negatives) logits, for the loss
        self.att_y: Tensor | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """SuperGATConv.reset_parameters, draw for draw: lin, att_l, att_r."""
        _glorot(self.lin.weight)
        _glorot(self.att_l)
        _glorot(self.att_r)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _negatives(self, graph: EdgeGraph, count: int) -> Tensor:
        edge_index = graph.pyg_edge_index  # what PyG's sampler receives
        if self.negative_sampler is not None:
            return self.negative_sampler(edge_index, graph.num_nodes, count)
        return sample_negative_edges(edge_index, graph.num_nodes, count, undirected=not self.is_undirected)

    def forward(self, x: Tensor, edge_index: Tensor | EdgeGraph, neg_edge_index: Tensor | None = None,
                pos_mask: Tensor | None = None) -> Tensor:
        n, heads = x.size(0), self.heads
        graph = _as_graph(edge_index, n, self.add_self_loops)
        h = self.lin(x)
        hb = self._node_blocks(h)
        blocks = graph.blocks(heads)
        logits = _EdgeDot.apply(hb, hb, blocks).view(heads, -1)  # x_i . x_j per edge and head
        hv = h.view(n, heads, self.out_channels)
        score_l = (hv * self.att_l).sum(-1).t()  # source side (x_j)
        score_r = (hv * self.att_r).sum(-1).t()  # target side (x_i)
        scores = (score_l.index_select(1, graph.src) + score_r.index_select(1, graph.tgt)) * logits.sigmoid()
        alpha = edge_softmax(F.leaky_relu(scores, self.negative_slope), graph)
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        out = _Aggregate.apply(alpha.reshape(-1), hb, blocks)
        self.att_x = self.att_y = None
        if self.training:
            e = graph.num_edges
            if pos_mask is None:
                if self.edge_sample_ratio < 1.0:  # PyG's dropout_edge, same draw
                    pos_mask = torch.rand(e, device=x.device) >= 1.0 - self.edge_sample_ratio
                else:
                    pos_mask = torch.ones(e, dtype=torch.bool, device=x.device)
            elif pos_mask.shape != (e,) or pos_mask.dtype != torch.bool:
                raise ValueError(f"pos_mask has shape {tuple(pos_mask.shape)} and dtype {pos_mask.dtype}; allowed: "
                                 f"a boolean tensor of shape ({e},), one per edge with self-loops, in PyG order")
            positives = logits[:, pos_mask[graph.order]]
            if neg_edge_index is None:
                neg_edge_index = self._negatives(graph, int(self.neg_sample_ratio * self.edge_sample_ratio * e))
            negatives = self._edge_logits(hb, neg_edge_index, n)
            self.att_x = torch.cat([positives, negatives], dim=1)
            self.att_y = self.att_x.new_zeros(self.att_x.size(1))
            self.att_y[:positives.size(1)] = 1.0
        return self._finish(out, n)

    def _edge_logits(self, hb: Tensor, edge_index: Tensor, n: int) -> Tensor:
        """x_i . x_j of arbitrary (source, target) pairs, (heads, len)."""
        _check_edge_index(edge_index, n, "neg_edge_index")
        if edge_index.size(1) == 0:
            return hb.new_zeros(self.heads, 0)
        pairs = EdgeGraph(edge_index, n, add_self_loops=False)
        return _EdgeDot.apply(hb, hb, pairs.blocks(self.heads)).view(self.heads, -1)

    def get_attention_loss(self) -> Tensor:
        """Binary cross-entropy of the head-averaged logits: positives 1, negatives 0 (0 in eval mode)."""
        if not self.training or self.att_x is None:
            return self.lin.weight.new_zeros(())
        return F.binary_cross_entropy_with_logits(self.att_x.mean(0), self.att_y)


def sample_negative_edges(edge_index: Tensor, num_nodes: int, count: int, generator: torch.Generator | None = None,
                          undirected: bool = True) -> Tensor:
    """``count`` distinct node pairs (source, target), source != target, none of them an edge of
    ``edge_index`` (nor the reverse of one when ``undirected``), uniformly at random; a
    (2, count) tensor, fewer only when the graph has fewer such pairs (then all of them).

    Vectorised, seeded by ``generator`` (torch's global RNG when None): up to ``DENSE_PAIRS``
    pairs, or when under 10 % of them are free, the free pairs are enumerated and a random subset
    taken; otherwise pairs are drawn in bulk and those that are edges or repeats rejected (a
    round or two; the loop is over rounds, never over edges). PyG's sampler draws with Python's
    ``random.sample`` (~1.4 s per call on a whole 10k-node graph) and may return fewer.
    """
    if not isinstance(num_nodes, int) or num_nodes < 0:
        raise ValueError(f"num_nodes={num_nodes!r}; allowed: an integer >= 0")
    if not isinstance(count, int) or count < 0:
        raise ValueError(f"count={count!r}; allowed: an integer >= 0")
    _check_edge_index(edge_index, num_nodes)
    device, n = edge_index.device, num_nodes
    src, tgt = edge_index[0].long(), edge_index[1].long()
    keys = src * n + tgt
    if undirected:
        keys = torch.cat([keys, tgt * n + src])
    forbidden = torch.unique(keys[keys // n != keys % n]) if n else keys  # sorted, diagonal left out
    free = n * (n - 1) - forbidden.numel()
    take = min(count, free)
    if take <= 0:
        return torch.empty(2, 0, dtype=torch.long, device=device)
    if n * n <= DENSE_PAIRS or free < 0.1 * n * n:
        allowed = torch.ones(n * n, dtype=torch.bool, device=device)
        allowed[forbidden] = False
        allowed[torch.arange(n, device=device) * (n + 1)] = False
        candidates = allowed.nonzero().view(-1)
    else:
        candidates = torch.empty(0, dtype=torch.long, device=device)
        share = free / (n * n)
        while candidates.numel() < take:
            draw = int((take - candidates.numel()) / share * 1.1) + 64
            pairs = torch.randint(0, n * n, (draw,), generator=generator, device=device)
            pairs = pairs[pairs // n != pairs % n]
            pos = torch.searchsorted(forbidden, pairs).clamp_(max=max(forbidden.numel() - 1, 0))
            if forbidden.numel():
                pairs = pairs[forbidden[pos] != pairs]
            candidates = torch.unique(torch.cat([candidates, pairs]))
    picked = candidates[torch.randperm(candidates.numel(), generator=generator, device=device)[:take]]
    return torch.stack([picked // n, picked % n])

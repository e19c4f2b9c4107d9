"""ConstellationNet's networks: the GNN stack, the DMoN head and its losses, the CNN embedder.

GNN (4.1.2): stacked layers of [conv -> BatchNorm -> ReLU -> dropout 0.3], conv one of GCN,
GAT, GIN (its MLP: two linear layers with BatchNorm and ReLU between) or SuperGAT. The DMoN
operator (torch_geometric's ``DMoNPooling``) turns the last layer's node embeddings into soft
cluster assignments and returns the unsupervised losses (3.1.2).

CNN embedder (4.1.4): three 3x3 convolutions to 32, 64 and 128 channels, each followed by ReLU,
the later two by 2x2 max-pooling; then a linear layer to 256 (grey-scale) or to 512 and 256
(RGB). In the supervised model it runs on every node of a sampled subgraph and is trained end to
end with the GNN.
"""
from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CONVS = ("gcn", "gat", "gin", "sgat")
ATTENTION_IMPLS = ("pyg", "sparse")

# GCN/GIN aggregate through torch.sparse CSR adjacencies (see GNNEncoder); torch warns once per
# process that CSR support is "beta" and that invariant checks are off. Both are expected here.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")


def import_pyg() -> None:
    """Import torch_geometric with the FutureWarning of its import-time ``torch.jit.script`` calls
    hidden (torch deprecates TorchScript; PyG 2.8 still scripts a few classes on import): it
    is not ours to fix and was repeated in every run's log. Scoped to the import, nothing else."""
    if "torch_geometric.utils" in sys.modules:  # imported: no need to touch the warning filters again
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
        import torch_geometric.nn  # noqa: F401
        import torch_geometric.utils  # noqa: F401


def _make_conv(conv: str, d_in: int, d_out: int, edge_weights: bool, gat_heads: int, sgat_heads: int,
               attention_impl: str = "pyg") -> nn.Module:
    """One conv layer. ``attention_impl="sparse"`` builds GAT / SuperGAT from
    clusterbench.methods.gnn_layers instead of PyG: the same layer (arguments, parameters, the
    same initial weights for a seed) on sparse kernels, equal up to rounding."""
    import_pyg()
    from torch_geometric.nn import GATConv, GCNConv, GINConv, SuperGATConv

    from ..gnn_layers import GATLayer, SuperGATLayer

    sparse = attention_impl == "sparse"
    if conv == "gcn":
        return GCNConv(d_in, d_out, add_self_loops=True)
    if conv == "gat":
        return (GATLayer if sparse else GATConv)(d_in, d_out // gat_heads, heads=gat_heads, concat=True,
                                                 add_self_loops=True, edge_dim=1 if edge_weights else None)
    if conv == "gin":
        mlp = nn.Sequential(nn.Linear(d_in, d_out), nn.BatchNorm1d(d_out), nn.ReLU(), nn.Linear(d_out, d_out))
        return GINConv(mlp)
    if conv == "sgat":
        # The authors' code: mixed ("MX") self-supervised attention, 80 % of the edges as
        # positives for the attention loss. Our kNN edges are directed, so is_undirected=False.
        return (SuperGATLayer if sparse else SuperGATConv)(d_in, d_out // sgat_heads, heads=sgat_heads, concat=True,
                                                           attention_type="MX", edge_sample_ratio=0.8,
                                                           is_undirected=False)
    raise ValueError(f"conv={conv!r}; allowed: {', '.join(CONVS)}")


def check_hidden(conv: str, hidden: int, gat_heads: int, sgat_heads: int) -> None:
    heads = {"gat": gat_heads, "sgat": sgat_heads}.get(conv, 1)
    if hidden % heads:
        raise ValueError(f"hidden={hidden} must be divisible by the {conv} heads ({heads}): the heads' "
                         "outputs are concatenated to the hidden size")


class GNNEncoder(nn.Module):
    """``num_layers`` x [conv -> BatchNorm -> ReLU -> dropout]; returns node embeddings and, for
    SuperGAT in training mode, the summed self-supervised attention loss (else 0).

    Edge weights (inverse distances) reach the convolutions that accept them: GCN as
    ``edge_weight``, GAT as a 1-d ``edge_attr``; GIN and SuperGAT have no edge-weight input.
    GCN and GIN aggregate through a sparse (CSR) adjacency instead of per-edge messages: the same
    sums (torch_geometric supports both inputs; tests check they agree), without materialising
    an E x d message tensor, about twice as fast on CPU. GAT and SuperGAT do the same with
    ``attention_impl="sparse"`` (clusterbench.methods.gnn_layers; the graph is prepared once per
    forward pass for all layers); the default ``"pyg"`` keeps PyG's layers.
    """

    def __init__(self, conv: str, in_dim: int, hidden: int, num_layers: int, dropout: float = 0.3,
                 edge_weights: bool = True, gat_heads: int = 1, sgat_heads: int = 8, sparse_aggregation: bool = True,
                 attention_impl: str = "pyg"):
        super().__init__()
        if conv not in CONVS:
            raise ValueError(f"conv={conv!r}; allowed: {', '.join(CONVS)}")
        if attention_impl not in ATTENTION_IMPLS:
            raise ValueError(f"attention_impl={attention_impl!r}; allowed: {', '.join(ATTENTION_IMPLS)}")
        check_hidden(conv, hidden, gat_heads, sgat_heads)
        self.conv_type, self.dropout, self.edge_weights = conv, dropout, edge_weights
        self.sparse_aggregation = sparse_aggregation and conv in ("gcn", "gin")
        self.sparse_attention = attention_impl == "sparse" and conv in ("gat", "sgat")
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i in range(num_layers):
            self.convs.append(_make_conv(conv, in_dim if i == 0 else hidden, hidden, edge_weights,
                                         gat_heads, sgat_heads, attention_impl))
            self.norms.append(nn.BatchNorm1d(hidden))
        self.out_dim = hidden
        self._fix, self._fixed_graph = False, None

    def fix_graph(self, fixed: bool) -> None:
        """Full-batch training: every forward sees the same graph, so the graph input (CSR adjacency
        or prepared edge list) and GCN's symmetric normalisation are computed once and reused.
        ``fix_graph(False)`` drops both before the model sees another graph (inference)."""
        self._fixed_graph = None
        for conv in self.convs:
            if hasattr(conv, "cached"):  # GCNConv: cache its normalised adjacency
                conv.cached = fixed
                conv._cached_edge_index, conv._cached_adj_t = None, None
        self._fix = fixed

    def _graph_input(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None):
        if self._fix:
            if self._fixed_graph is None:
                self._fixed_graph = self._prepare_graph(x, edge_index, edge_weight)
            return self._fixed_graph
        return self._prepare_graph(x, edge_index, edge_weight)

    def _prepare_graph(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None):
        """What the convs receive as the graph: edge_index, the transposed sparse adjacency
        adj_t[target, source] = weight (1 where weights are not used), or for sparse attention
        layers the edge list prepared once (self-loops, CSR order) for all of them."""
        if self.sparse_attention:
            from ..gnn_layers import EdgeGraph

            return EdgeGraph(edge_index, x.size(0), add_self_loops=True)
        if not self.sparse_aggregation:
            return edge_index
        use_weight = self.conv_type == "gcn" and self.edge_weights and edge_weight is not None
        values = edge_weight if use_weight else torch.ones(edge_index.size(1), device=x.device, dtype=x.dtype)
        return csr_adjacency_t(edge_index, values.to(x.dtype), x.size(0))

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
        attention_loss = x.new_zeros(())
        graph = self._graph_input(x, edge_index, edge_weight)
        for conv, norm in zip(self.convs, self.norms):
            if self.sparse_aggregation:
                x = conv(x, graph)
            elif self.conv_type == "gcn":
                x = conv(x, edge_index, edge_weight if self.edge_weights else None)
            elif self.conv_type == "gat":
                attr = edge_weight.view(-1, 1) if (self.edge_weights and edge_weight is not None) else None
                x = conv(x, graph, edge_attr=attr)
            else:
                x = conv(x, graph)
            if self.conv_type == "sgat" and self.training:
                attention_loss = attention_loss + conv.get_attention_loss()
            x = _dropout(F.relu(norm(x)), self.dropout, self.training)
        return x, attention_loss


def csr_adjacency_t(edge_index: Tensor, values: Tensor, num_nodes: int) -> Tensor:
    """adj_t[target, source] = value as a CSR tensor, rows and columns sorted (what
    torch_geometric's to_torch_csr_tensor builds, minus its invariant-check warning)."""
    source, target = edge_index
    order = torch.argsort(target * num_nodes + source)
    counts = torch.bincount(target, minlength=num_nodes)
    crow = torch.zeros(num_nodes + 1, dtype=torch.long, device=edge_index.device)
    crow[1:] = torch.cumsum(counts, 0)
    return torch.sparse_csr_tensor(crow, source[order], values[order], size=(num_nodes, num_nodes),
                                   check_invariants=False)


def _dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Inverted dropout. On CPU a uniform-threshold mask is ~2x faster than torch's bernoulli
    kernel (~15 % of a training step here); same distribution, so same model."""
    if not training or p == 0.0:
        return x
    if x.is_cuda:
        return F.dropout(x, p=p, training=True)
    return x * (torch.rand_like(x) >= p).to(x.dtype) * (1.0 / (1.0 - p))


@torch.no_grad()
def recalibrate_batchnorm(encoder: GNNEncoder, batches) -> None:
    """Re-estimate every BatchNorm's statistics on the graph(s) the encoder will be evaluated on.

    Why: training sees 2-hop samples in which ~3/4 of the nodes are last-hop nodes with no
    in-edges (their GCN output is a transform of their own features only), so the running
    statistics describe a mixture that never occurs at inference, where every node aggregates
    all its K neighbours over every layer. Evaluated with those statistics the trained network
    collapses to a few clusters. This pass (no labels, no gradients, dropout off) replaces them
    by the statistics of the inference graph: ``batches`` yields (x, edge_index, edge_weight);
    one whole-graph batch gives exactly its mean and variance, several are averaged.
    """
    norms = [m for m in encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    encoder.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
        m.train()
    try:
        for x, edge_index, edge_weight in batches:
            encoder(x, edge_index, edge_weight)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        encoder.eval()


@dataclass
class DMoNLosses:
    spectral: Tensor  # -Tr(S^T B S) / 2m, B the modularity matrix
    orthogonality: Tensor  # || S^T S / ||S^T S||_F - I / sqrt(k) ||_F
    collapse: Tensor  # DMoN's collapse regulariser: sqrt(k)/n * ||sum_i C_i||_F - 1

    def as_floats(self) -> dict[str, float]:
        return {name: float(getattr(self, name).detach()) for name in ("spectral", "orthogonality", "collapse")}


class DMoNHead(nn.Module):
    """torch_geometric's DMoNPooling with the authors' assignment MLP (hidden -> hidden -> k)."""

    def __init__(self, hidden: int, n_clusters: int):
        super().__init__()
        import_pyg()
        from torch_geometric.nn import DMoNPooling

        self.pool = DMoNPooling([hidden, hidden], n_clusters)

    def logits(self, h: Tensor) -> Tensor:
        """Unnormalised assignment scores (softmax of these is DMoN's S)."""
        return self.pool.mlp(h)

    def dense(self, h: Tensor, adj: Tensor) -> tuple[Tensor, DMoNLosses]:
        """DMoNPooling itself, on a dense (n, n) adjacency: O(n^2) memory and time."""
        s, _, _, spectral, ortho, collapse = self.pool(h, adj)
        return s[0], DMoNLosses(spectral, ortho, collapse)

    def sparse(self, h: Tensor, edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int,
               symmetric: bool = True, adjacency: tuple | None = None) -> tuple[Tensor, DMoNLosses]:
        """The same assignment and losses as ``dense`` on ``dense_adjacency(...)``, computed from
        the edge list in O(E k): a 2-hop sample of a 10k-node kNN graph has ~8k nodes, whose
        dense adjacency would dominate the step's time (tests check both agree). ``adjacency``:
        ``adjacency_edges(...)`` of this graph, computed once by the caller (full-batch training)."""
        s = torch.softmax(self.logits(h), dim=-1)
        if adjacency is None:
            adjacency = adjacency_edges(edge_index, edge_weight, num_nodes, symmetric)
        return s, dmon_losses(s, *adjacency)


def adjacency_edges(edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int,
                    symmetric: bool = True) -> tuple[Tensor, Tensor, int]:
    """The nonzero entries of ``dense_adjacency``: coalesced (row, col) pairs and weights."""
    import_pyg()
    from torch_geometric.utils import coalesce

    w = edge_weight if edge_weight is not None else torch.ones(edge_index.size(1), device=edge_index.device)
    edge_index = edge_index.flip(0)  # messages flow neighbour -> node; A[node, neighbour] is the kNN relation
    if symmetric:
        edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
        w = torch.cat([w, w])
    edge_index, w = coalesce(edge_index, w, num_nodes=num_nodes, reduce="max")
    return edge_index, w, num_nodes


def dmon_losses(s: Tensor, edge_index: Tensor, weight: Tensor, num_nodes: int) -> DMoNLosses:
    """DMoN's three losses for soft assignments ``s`` (n, k) and the adjacency given by its
    nonzero entries A[row, col] = weight, following torch_geometric's DMoNPooling exactly
    (degrees are row sums, m = sum(A) / 2)."""
    row, col = edge_index
    k = s.size(1)
    degrees = torch.zeros(num_nodes, device=s.device, dtype=s.dtype).index_add_(0, row, weight.to(s.dtype))
    m = degrees.sum() / 2
    within = (weight.to(s.dtype) * (s[row] * s[col]).sum(1)).sum()  # Tr(S^T A S)
    sd = s.T @ degrees  # S^T d
    spectral = -(within - (sd * sd).sum() / 2 / m) / 2 / m
    ss = s.T @ s
    eye = torch.eye(k, device=s.device, dtype=s.dtype)
    orthogonality = torch.linalg.norm(ss / torch.linalg.norm(ss) - eye / torch.linalg.norm(eye))
    collapse = torch.linalg.norm(s.sum(0)) / num_nodes * torch.linalg.norm(eye) - 1
    return DMoNLosses(spectral, orthogonality, collapse)


def dense_adjacency(edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int, symmetric: bool = True) -> Tensor:
    """The (n, n) weighted adjacency of a (sampled) graph, for DMoN.

    ``edge_index`` is the message-passing one (row 0 = neighbour, row 1 = node); the matrix is the
    kNN relation, A[node, neighbour] = weight (1 without weights), as the paper's "edge index ...
    converted into a dense adjacency matrix" (4.1.2) reads. ``symmetric``: a pair is connected
    when an edge joins it in either direction (DMoN's modularity is defined for undirected graphs;
    inverse distance is symmetric, so both directions carry the same weight).
    """
    adj = torch.zeros(num_nodes, num_nodes, device=edge_index.device)
    w = edge_weight if edge_weight is not None else torch.ones(edge_index.size(1), device=edge_index.device)
    adj[edge_index[1], edge_index[0]] = w.to(adj.dtype)
    if symmetric:
        adj = torch.maximum(adj, adj.T)
    return adj


class ConstellationGNN(nn.Module):
    """Unsupervised ConstellationNet: GNN encoder, then the DMoN head."""

    def __init__(self, conv: str, in_dim: int, hidden: int, num_layers: int, n_clusters: int,
                 dropout: float = 0.3, edge_weights: bool = True, gat_heads: int = 1, sgat_heads: int = 8,
                 attention_impl: str = "pyg"):
        super().__init__()
        self.encoder = GNNEncoder(conv, in_dim, hidden, num_layers, dropout, edge_weights, gat_heads, sgat_heads,
                                  attention_impl=attention_impl)
        self.head = DMoNHead(hidden, n_clusters)


# --- CNN embedder (supervised) ---------------------------------------------------------------

class CNNEmbedder(nn.Module):
    """The paper's CNN (4.1.4), for (C, H, W) images; grey-scale -> 256, RGB -> 512 -> 256."""

    def __init__(self, in_channels: int, height: int, width: int, out_dim: int = 256, rgb_hidden: int = 512):
        super().__init__()
        if height < 4 or width < 4:
            raise ValueError(f"images of {height}x{width} are too small for two 2x2 poolings")
        self.conv1 = nn.Conv2d(in_channels, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        flat = 128 * (height // 4) * (width // 4)
        if in_channels == 1:
            self.project = nn.Linear(flat, out_dim)
        else:
            self.project = nn.Sequential(nn.Linear(flat, rgb_hidden), nn.ReLU(), nn.Linear(rgb_hidden, out_dim))
        self.out_dim = out_dim

    def forward(self, images: Tensor) -> Tensor:
        x = F.relu(self.conv1(images))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)
        return self.project(x.flatten(1))


def embed_in_chunks(module: nn.Module, images: Tensor, chunk: int, checkpoint: bool) -> Tensor:
    """``module(images)`` in chunks. With ``checkpoint`` (training), each chunk's activations are
    recomputed in the backward pass instead of kept: a 2-hop subgraph can hold tens of thousands
    of images, whose activations would otherwise need many GiB. The result is identical."""
    if len(images) <= chunk:
        return module(images)
    parts = []
    for start in range(0, len(images), chunk):
        piece = images[start:start + chunk]
        if checkpoint:
            from torch.utils.checkpoint import checkpoint as ckpt

            parts.append(ckpt(module, piece, use_reentrant=False))
        else:
            parts.append(module(piece))
    return torch.cat(parts)


class SupervisedConstellationNet(nn.Module):
    """Supervised ConstellationNet (Fig. 3): an embedder (the CNN, or identity on precomputed
    features), the GCN stack, and the DMoN assignment MLP as classifier (log-probabilities)."""

    def __init__(self, embedder: nn.Module | None, in_dim: int, hidden: int, num_layers: int, n_classes: int,
                 dropout: float = 0.3, edge_weights: bool = True):
        super().__init__()
        self.embedder = embedder
        gnn_in = embedder.out_dim if embedder is not None else in_dim
        self.encoder = GNNEncoder("gcn", gnn_in, hidden, num_layers, dropout, edge_weights)
        self.head = DMoNHead(hidden, n_classes)

    def embed(self, inputs: Tensor, chunk: int = 2048) -> Tensor:
        if self.embedder is None:
            return inputs
        return embed_in_chunks(self.embedder, inputs, chunk, checkpoint=self.training and torch.is_grad_enabled())

    def classify(self, features: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> Tensor:
        h, _ = self.encoder(features, edge_index, edge_weight)
        return F.log_softmax(self.head.logits(h), dim=-1)

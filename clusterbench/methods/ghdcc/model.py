"""GHDCC's network: CC's backbone with two GCN projectors over a thresholded similarity graph
of the batch.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..cc import build_backbone, mlp_head
from .config import Config


def thresholded_adjacency(features: torch.Tensor, threshold: float, k: int | None = None,
                          weights: str = "binary") -> torch.Tensor:
    """Kipf & Welling's D^-1/2 (A + I) D^-1/2 over one group of nodes (n, d) -> (n, n).

    A_ij != 0 iff i != j, cos(h_i, h_j) > threshold and (with k) j is among i's k most similar
    nodes or i among j's (symmetrised). Computed without gradient: the graph is an input to the
    GCN, not a parameter path.
    """
    # float32 even under autocast: a bfloat16 similarity (3 significant digits) would move the threshold
    with torch.no_grad(), torch.autocast(features.device.type, enabled=False):
        z = F.normalize(features.detach().float(), dim=1)
        sim = z @ z.T
        n = sim.shape[0]
        eye = torch.eye(n, dtype=torch.bool, device=sim.device)
        keep = (sim > threshold) & ~eye
        if k is not None and k < n - 1:
            ranked = sim.masked_fill(eye, float("-inf"))
            top = ranked.topk(k, dim=1).indices
            near = torch.zeros_like(keep).scatter_(1, top, True)
            keep &= near
        keep = keep | keep.T
        adj = keep.float() * (sim if weights == "cosine" else 1.0)
        adj = adj + torch.eye(n, device=sim.device)
        d = adj.sum(1).rsqrt()
        return d.view(-1, 1) * adj * d.view(1, -1)


def batch_graph(groups: list[torch.Tensor], kind: str, threshold: float, k: int | None = None,
                weights: str = "binary") -> torch.Tensor:
    """The normalised adjacency over the stacked groups (e.g. [H_a, H_b, H_c]): ``mixed`` = one graph
    over all their rows; ``concatenated`` = one graph per group, joined block-diagonally."""
    if kind == "mixed":
        return thresholded_adjacency(torch.cat(groups), threshold, k, weights)
    if kind == "concatenated":
        return torch.block_diag(*(thresholded_adjacency(g, threshold, k, weights) for g in groups))
    raise ValueError(f"graph: unknown {kind!r}; choose mixed or concatenated")


class GCN(nn.Module):
    """Two GCN layers, A ReLU(A H W1 + b1) W2 + b2 (Kipf & Welling), shaped like CC's Linear-ReLU-Linear."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d_in, d_hidden), nn.Linear(d_hidden, d_out)

    def forward(self, h: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(adj @ h.float()).float())
        return self.fc2(adj @ h).float()


class GHDCCNetwork(nn.Module):
    def __init__(self, config: Config, n_clusters: int):
        super().__init__()
        self.config = config
        self.backbone, rep_dim = build_backbone(config.backbone)
        dim = config.backbone_dim or rep_dim
        self.reduce = nn.Identity() if config.backbone_dim is None else nn.Linear(rep_dim, dim)
        self.rep_dim = dim
        hidden = config.gcn_hidden or dim
        if config.projector == "gcn":
            self.instance_projector = GCN(dim, hidden, config.feature_dim)
            self.cluster_projector = GCN(dim, hidden, n_clusters)
        else:
            self.instance_projector = mlp_head(dim, config.feature_dim)
            self.cluster_projector = mlp_head(dim, n_clusters)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.reduce(self.backbone(x))

    def project(self, groups: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor | None]:
        """GCN1 and GCN2 over the groups of backbone features -> (Z per group, Y per group, adjacency)."""
        h = torch.cat(groups)
        sizes = [len(g) for g in groups]
        if self.config.projector == "gcn":
            c = self.config
            adj = batch_graph(groups, c.graph, c.similarity_threshold, c.graph_k, c.edge_weights)
            z, logits = self.instance_projector(h, adj), self.cluster_projector(h, adj)
        else:
            adj = None
            z, logits = self.instance_projector(h), self.cluster_projector(h)
        y = torch.softmax(logits.float(), dim=1)
        return list(z.float().split(sizes)), list(y.split(sizes)), adj

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One group (prediction): (GCN1 output, GCN2 probabilities) with the graph over this batch."""
        (z,), (y,), _ = self.project([self.features(x)])
        return z, y

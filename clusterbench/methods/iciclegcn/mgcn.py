"""Stage 2's M-GCN (3.3.2): heat-kernel kNN graphs, the GCN streams fused with the auto-encoder,
DEC's Student-t Q and target P, and the KL terms of eqs. 20-25.
"""
from __future__ import annotations

import math
import sys

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn
import torch.nn.functional as F

from ... import graphs
from .. import dec
from .config import GCN_LAYERS
from .model import AutoEncoder


def heat_kernel_graph(features: np.ndarray, k: int, t: float = 1.0, weights: str = "heat") -> sp.csr_matrix:
    """Symmetric kNN adjacency A with A_ij = exp(-||z_i - z_j||^2 / t) (eq. 8) on the k nearest
    neighbours of each row (faiss, self excluded); an edge found from either side is kept."""
    g = graphs.knn(np.asarray(features, np.float32), k, label="the backbone features", setting="knn_sizes")
    # graphs.heat_kernel is exp(-d^2 / (2 sigma^2)): t = 2 sigma^2
    w = graphs.heat_kernel(g.distances, sigma=math.sqrt(t / 2)) if weights == "heat" else np.ones(g.distances.shape)
    # Weights below float32's smallest normal number are zero for the GCN, and as subnormals they
    # would slow every sparse product by orders of magnitude: drop those edges.
    w = np.where(w < np.finfo(np.float32).tiny, 0.0, w)
    a = graphs.to_sparse(g.indices, w)
    a = a.maximum(a.T).tocsr()
    a.eliminate_zeros()
    return a


def normalized_adjacency(a: sp.spmatrix) -> sp.csr_matrix:
    """D~^(-1/2) (A + I) D~^(-1/2) with D~_ii = sum_j (A + I)_ij (eqs. 12-13)."""
    a_tilde = sp.csr_matrix(a) + sp.identity(a.shape[0], format="csr")
    d = np.asarray(a_tilde.sum(1)).ravel()
    inv_sqrt = sp.diags(1.0 / np.sqrt(d))
    return (inv_sqrt @ a_tilde @ inv_sqrt).tocsr()


def sparse_tensor(a: sp.spmatrix, device) -> torch.Tensor:
    coo = sp.coo_matrix(a)
    index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(index, torch.from_numpy(coo.data.astype(np.float32)), coo.shape,
                                   check_invariants=True).coalesce().to(device)


class GCNLayer(nn.Module):
    """G' = Phi(A_hat G W) (eq. 14) with a sparse (or dense) normalised adjacency; no bias, as SDCN."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_in, d_out))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor, activate: bool = True) -> torch.Tensor:
        support = x @ self.weight
        out = torch.sparse.mm(adjacency, support) if adjacency.is_sparse else adjacency @ support
        return F.relu(out) if activate else out


def fuse(own: torch.Tensor, other: torch.Tensor | None, encoder: torch.Tensor, sigma: float,
         gamma: float) -> torch.Tensor:
    """Eqs. (15)-(16): sigma G_own + gamma G_other + (1 - sigma - gamma) H. With one stream (Table 6's
    single GCN) the other stream's share goes to H: sigma G + (1 - sigma) H."""
    if other is None:
        return sigma * own + (1 - sigma) * encoder
    return sigma * own + gamma * other + (1 - sigma - gamma) * encoder


class MGCN(nn.Module):
    """The trident network: the pretrained auto-encoder and 0-2 GCN streams of 5 layers
    (d-500-500-2000-K-K, mirroring SDCN), fused layer-wise, plus the cluster centres of Q."""

    def __init__(self, autoencoder: AutoEncoder, d_in: int, hidden: list[int], n_clusters: int, streams: int,
                 sigma: float, gamma: float):
        super().__init__()
        self.autoencoder = autoencoder
        dims = [d_in, *hidden, n_clusters, n_clusters]
        if len(dims) - 1 != GCN_LAYERS and streams:
            print(f"iciclegcn: ae_hidden {hidden} gives {len(dims) - 1} GCN layers (the paper's 5 need 3 hidden "
                  "widths)", file=sys.stderr)
        self.streams = nn.ModuleList(nn.ModuleList(GCNLayer(a, b) for a, b in zip(dims[:-1], dims[1:]))
                                     for _ in range(streams))
        self.centres = nn.Parameter(torch.zeros(n_clusters, n_clusters))
        self.sigma, self.gamma = sigma, gamma

    def forward(self, z: torch.Tensor, adjacencies: list[torch.Tensor]):
        """(encoder output H^(L), reconstruction, [softmax G_u^s per stream])."""
        layers, _ = self.autoencoder.encode(z)
        reconstruction = self.autoencoder.decode(layers[-1])
        if not self.streams:
            return layers[-1], reconstruction, []
        g = [stream[0](z, adj) for stream, adj in zip(self.streams, adjacencies)]   # eq. (18)
        depth = len(self.streams[0])
        for layer in range(1, depth):
            h = layers[layer - 1]
            if len(g) == 2:
                fused = [fuse(g[0], g[1], h, self.sigma, self.gamma), fuse(g[1], g[0], h, self.sigma, self.gamma)]
            else:
                fused = [fuse(g[0], None, h, self.sigma, self.gamma)]
            g = [stream[layer](f, adj, activate=layer < depth - 1)
                 for stream, f, adj in zip(self.streams, fused, adjacencies)]
        return layers[-1], reconstruction, [torch.softmax(x, dim=1) for x in g]   # eq. (19)


def student_t(h: torch.Tensor, centres: torch.Tensor, dof: float = 1.0) -> torch.Tensor:
    """Q of eq. (20): DEC's Student-t on ||h_i - mu_j||^2 (computed by broadcasting)."""
    return dec.student_t(((h.unsqueeze(1) - centres.unsqueeze(0)) ** 2).sum(2), dof)


def clusters_used(probs: torch.Tensor) -> int:
    """How many clusters the argmax of a distribution assigns at least one row to (label-free)."""
    return int(torch.unique(probs.detach().argmax(1)).numel())


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(P||Q) = sum_ij p_ij log(p_ij / q_ij), divided by N (SDCN's batchmean; eqs. 23-25 omit the 1/N)."""
    return F.kl_div(torch.log(q.clamp_min(1e-12)), p, reduction="batchmean")

"""Stage 1's network: CC's backbone and heads with the auto-encoder cluster head (3.3.1), and
its loss (CC's two losses plus eq. 6's reconstruction).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import contrastive
from ..cc import build_backbone, mlp_head
from .config import Config


class AutoEncoder(nn.Module):
    """JC-SLIM's auto-encoder d-500-500-2000-K (ReLU hidden layers, eq. 9) and its mirror decoder (eq. 10)."""

    def __init__(self, d_in: int, hidden: list[int], n_clusters: int, code: str = "logits"):
        super().__init__()
        dims = [d_in, *hidden, n_clusters]
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        back = dims[::-1]
        self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(back[:-1], back[1:]))
        self.code = code

    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """([H^(1), ..., H^(L)], softmax of the K-d layer); H^(L) per ``code``."""
        layers = []
        h = x
        for i, layer in enumerate(self.encoder):
            h = layer(h)
            if i < len(self.encoder) - 1:
                h = F.relu(h)
            layers.append(h)
        probs = torch.softmax(h.float(), dim=1)
        if self.code == "softmax":
            layers[-1] = probs
        return layers, probs

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        h = code
        for i, layer in enumerate(self.decoder):
            h = layer(h)
            if i < len(self.decoder) - 1:
                h = F.relu(h)
        return h


class Stage1Network(nn.Module):
    """Backbone + ISM's instance projector + JC-SLIM's auto-encoder (or CC's cluster projector)."""

    def __init__(self, config: Config, n_clusters: int):
        super().__init__()
        self.backbone, rep_dim = build_backbone(config.backbone)
        self.rep_dim = rep_dim
        self.instance_projector = mlp_head(rep_dim, config.feature_dim)
        if config.cluster_head == "autoencoder":
            self.autoencoder = AutoEncoder(rep_dim, config.ae_hidden, n_clusters, config.ae_code)
        else:
            self.cluster_projector = mlp_head(rep_dim, n_clusters)

    def forward(self, x: torch.Tensor):
        """(backbone features, instance features, cluster probabilities, reconstruction or None)."""
        h = self.backbone(x)
        z = self.instance_projector(h)
        if hasattr(self, "autoencoder"):
            layers, probs = self.autoencoder.encode(h)
            return h, z, probs, self.autoencoder.decode(layers[-1])
        return h, z, torch.softmax(self.cluster_projector(h).float(), dim=1), None


def reconstruction_loss(features: torch.Tensor, reconstruction: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """(1/N) sum_i ||z_i - z_hat_i||^2 (eqs. 6 and 11: squared Frobenius norm over the rows' count);
    ``mean`` also divides by the d features (the released code's F.mse_loss)."""
    per_row = ((features.float() - reconstruction.float()) ** 2).sum(1)
    return per_row.mean() / (features.shape[1] if reduction == "mean" else 1)


def stage1_loss(config: Config):
    def loss(model: Stage1Network, xa: torch.Tensor, xb: torch.Tensor):
        ha, za, pa, ra = model(xa)
        hb, zb, pb, rb = model(xb)
        total = torch.zeros((), device=xa.device)
        parts = {}
        if config.use_instance_loss:
            cis = contrastive.nt_xent(za.float(), zb.float(), config.instance_temperature, config.self_in_denominator)
            total = total + cis
            parts["instance_loss"] = float(cis.detach())
        if config.use_cluster_loss:
            other = pa if config.cluster_loss_views == "a_a" else pb
            ccs = contrastive.cluster_contrastive_loss(pa, other, config.cluster_temperature, config.entropy_weight,
                                                       config.self_in_denominator)
            total = total + ccs.total
            parts["cluster_loss"] = float(ccs.contrastive.detach())
            parts["entropy"] = float((ccs.entropy_a + ccs.entropy_b).detach()) / 2
        if config.use_reconstruction_loss:
            # eq. (6): (1/2N) sum over both views = the mean over the 2N rows
            rec = reconstruction_loss(torch.cat([ha, hb]), torch.cat([ra, rb]), config.reconstruction_reduction)
            total = total + rec
            parts["reconstruction_loss"] = float(rec.detach())
        return total, parts
    return loss

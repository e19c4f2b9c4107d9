"""GHDCC's objective: CC's instance and cluster losses on the GCN projections, the MSE
regulariser and the interpolation consistency term.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import contrastive
from .config import Config
from .model import GHDCCNetwork


def interpolate(xa: torch.Tensor, xb: torch.Tensor, lam: float) -> torch.Tensor:
    """The linear-interpolation view: lambda x_a + (1 - lambda) x_b (MixUp of the two views of one image)."""
    return lam * xa + (1 - lam) * xb


def mse_regularisation(za: torch.Tensor, zb: torch.Tensor) -> torch.Tensor:
    """mean_i ||z_a,i - z_b,i||^2 of the two views' L2-normalised instance features (= 2 - 2 mean cos;
    BYOL's form: a mean over the dimensions too would make it ~1/128 of the other terms)."""
    diff = F.normalize(za.float(), dim=1) - F.normalize(zb.float(), dim=1)
    return (diff ** 2).sum(1).mean()


def interpolation_cross_entropy(ya: torch.Tensor, yb: torch.Tensor, yc: torch.Tensor, lam: float) -> torch.Tensor:
    """-mean_i sum_k P_ik log Y_c,ik with P = lambda Y_a + (1 - lambda) Y_b held fixed: the KL(P || Y_c)
    of the interpolated view minus P's entropy, a constant (eqs. 7-8)."""
    target = (lam * ya + (1 - lam) * yb).detach()
    return -(target * torch.log(yc.float().clamp_min(1e-12))).sum(1).mean()


@dataclass
class Parts:
    total: torch.Tensor
    instance: torch.Tensor
    mse: torch.Tensor
    cluster: contrastive.ClusterLoss
    ce: torch.Tensor


def ghdcc_objective(config: Config, za, zb, ya, yb, yc=None) -> Parts:
    zero = za.new_zeros(())
    instance = contrastive.nt_xent(za, zb, config.instance_temperature, config.self_in_denominator)
    mse = mse_regularisation(za, zb) if config.mse_weight else zero
    cluster = contrastive.cluster_contrastive_loss(ya, yb, config.cluster_temperature, config.entropy_weight,
                                                   config.self_in_denominator)
    ce = (interpolation_cross_entropy(ya, yb, yc, config.interpolation_lambda)
          if yc is not None and config.ce_weight else zero)
    total = instance + config.mse_weight * mse + cluster.total + config.ce_weight * ce
    return Parts(total, instance, mse, cluster, ce)


def ghdcc_loss(config: Config):
    def loss(model: GHDCCNetwork, xa: torch.Tensor, xb: torch.Tensor):
        views = [xa, xb]
        if config.interpolation:
            views.append(interpolate(xa, xb, config.interpolation_lambda))
        # one backbone pass per view, as CC (batch-norm statistics per view, not over the mixed batch)
        zs, ys, adj = model.project([model.features(x) for x in views])
        parts = ghdcc_objective(config, zs[0], zs[1], ys[0], ys[1], ys[2] if len(ys) > 2 else None)
        row = {"instance_loss": float(parts.instance.detach()), "mse": float(parts.mse.detach()),
               "cluster_loss": float(parts.cluster.contrastive.detach()),
               "entropy": float((parts.cluster.entropy_a + parts.cluster.entropy_b).detach()) / 2,
               "interpolation_ce": float(parts.ce.detach())}
        if adj is not None:
            row["graph_degree"] = float(((adj > 0).sum(1) - 1).float().mean())
        return parts.total, row
    return loss

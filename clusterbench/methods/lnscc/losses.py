"""LNSCC's losses: O = exp(-d) (eq. 4), L_im (9), L_ba (13), L_dis (17) and the clustering loss
(18) with its schedule (19); torch, unit-tested on hand-computed O.
"""
from __future__ import annotations

import numpy as np

from ..dec import target_distribution   # V of eq. (18)
from .config import Config


def pair_distance(zi, zj, squared: bool = False):
    """Euclidean d(Z_i, Z_j), differentiable at 0 (where the plain norm's gradient is NaN), or
    its square (``distance: squared``)."""
    import torch

    sq = ((zi - zj) ** 2).sum(dim=1)
    return sq if squared else torch.sqrt(sq + 1e-12)


def scaled_distances(distances: np.ndarray, unit: float | str) -> np.ndarray:
    """D / unit before eq. (1); ``"median"`` divides by the median M-NN distance. Unit 1 returns
    ``distances`` untouched (same dtype, so the QA floors are exactly today's)."""
    if not isinstance(unit, str) and unit == 1.0:
        return distances
    d = np.asarray(distances, dtype=np.float64)
    if unit == "median":
        med = float(np.median(d))
        if not med > 0:
            from ...checks import DataError

            raise DataError("lnscc: graph_distance_unit 'median' needs a positive median neighbour distance, "
                            f"got {med} (the view holds duplicate rows); use a number instead")
        return d / med
    return d / float(unit)


UMAP_A, UMAP_B = 1.896, 0.8006  # UMAP's find_ab_params(spread=1, min_dist=0)


def pair_energy(zi, zj, config: "Config"):
    """-log O_ij for the configured similarity, so that every loss term is written once in terms of
    it: the paper's O = exp(-d) gives d itself; UMAP's O = 1 / (1 + a s^b) (s = squared distance)
    gives log(1 + a s^b), and -log(1 - O) = -log(1 - exp(-energy)) holds for both."""
    import torch

    if config.similarity == "exponential":
        return pair_distance(zi, zj, config.distance == "squared")
    sq = ((zi - zj) ** 2).sum(dim=1).clamp_min(1e-6)  # s^b with b < 1 has an infinite slope at 0
    return torch.log1p(UMAP_A * sq ** UMAP_B)


def neg_log_o(d):
    """-log O_ij with O = exp(-d) (eq. 4): exactly d, no clamping needed."""
    return d


def neg_log_one_minus_o(d, log_eps: float = 1e-4):
    """-log(1 - O_ij), with 1 - O clamped at ``log_eps`` so pairs at distance ~0 stay finite."""
    import torch

    return -torch.log(torch.clamp(-torch.expm1(-d), min=log_eps))


def loss_im(d_pos, d_neg, log_eps: float = 1e-4):
    """Eq. (9): -sum_{E^{im+}} log O - sum_{E^{im-}} log(1 - O)."""
    return neg_log_o(d_pos).sum() + neg_log_one_minus_o(d_neg, log_eps).sum()


def loss_ba(d):
    """Eq. (13): -sum_{E^{ba}} log O."""
    return neg_log_o(d).sum()


def loss_dis(d, log_eps: float = 1e-4):
    """Eq. (17): -sum_{E^{dis}} log(1 - O)."""
    return neg_log_one_minus_o(d, log_eps).sum()


def clustering_loss(u, gamma: float, eps: float = 1e-12):
    """Eq. (18): KL(V || U) (summed over clusters, averaged over samples; V is a fixed target)
    + gamma sum_k Ubar_k log Ubar_k (minimised by balanced clusters)."""
    import torch

    v = target_distribution(u).detach()
    kl = (v * (torch.log(v + eps) - torch.log(u + eps))).sum(dim=1).mean()
    u_bar = u.mean(dim=0)
    return kl + gamma * (u_bar * torch.log(u_bar + eps)).sum()


def eta_schedule(n_i: int, delta: float, xi: float) -> float:
    """Eq. (19): eta = min(delta n_i, xi)."""
    return min(delta * n_i, xi)

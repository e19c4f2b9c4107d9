"""DEC's soft assignment and target distribution (Xie, Girshick & Farhadi, ICML 2016), written
once for everything that clusters with them: LNSCC's cluster head (eq. 18), IcicleGCN's Q and P
(eqs. 20-22) and the DEC / IDEC baselines.

The distance is the caller's: squared Euclidean distances from ``squared_distances`` (cdist) or any
other way the caller computes them, so each caller keeps its own floating-point path.
"""
from __future__ import annotations


def squared_distances(z, centres):
    """||z_i - mu_j||^2 for every row and centre (torch.cdist, squared)."""
    import torch

    return torch.cdist(z, centres) ** 2


def student_t(sq_distances, dof: float = 1.0):
    """q_ij proportional to (1 + ||z_i - mu_j||^2 / v)^(-(v + 1) / 2), rows normalised (DEC eq. 1
    with v degrees of freedom; v = 1 gives 1 / (1 + d^2))."""
    q = (1.0 + sq_distances / dof) ** (-(dof + 1.0) / 2.0)
    return q / q.sum(dim=1, keepdim=True)


def target_distribution(q):
    """p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j'), f_j = sum_i q_ij (DEC eq. 3).

    A cluster whose q underflows to exactly 0 on every row (a saturated softmax) would give 0/0:
    its frequency is floored at 1e-30, so its p column is 0 like its q column."""
    import torch

    weight = q ** 2 / torch.clamp_min(q.sum(dim=0, keepdim=True), 1e-30)
    return weight / weight.sum(dim=1, keepdim=True)

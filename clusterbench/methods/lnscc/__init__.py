"""LNSCC: Locally Normalized Soft Contrastive Clustering (Ma & Kim, IJCAI 2022), as the paper states it.

Pipeline (equation numbers are the paper's):

1. Locally normalised kNN graph: D = distances to the M nearest neighbours, W = row-wise
   softmax(-D) (1), directed W_hat, symmetric A = W_hat + W_hat^T - W_hat o W_hat^T (2), sparse.
2. Quantity augmentation (QA): every undirected edge (i, j) of A is repeated
   Q^{im+} = floor(alpha A_max / (1 - A_ij)) times in E^{im+}, Q^{im-} = floor((1 - A)_max / A_ij)
   times in E^{im-} (6-8) and Q^{ba} = floor(A_ij / A_mean) times in E^{ba} (11-12); E^{dis} holds
   beta |E^{im+}| random disconnected pairs (A_ij = 0) (14-16). Max and mean run over the edges;
   every Q is capped at ``max_copies`` and the total is checked against ``max_pairs`` before
   anything is allocated (eq. 6 is unbounded as A -> 1 or A -> 0).
3. An MLP encoder maps X to Z; O_ij = exp(-||Z_i - Z_j||) (4). Losses over a batch of pairs drawn
   from the union of the four pair sets: L_im (9), L_ba (13), L_dis (17).
4. A clustering head (FC + softmax) gives U; L_clu = KL(V || U) + gamma sum_k Ubar_k log Ubar_k
   with V the squared-and-normalised target (18); L = L_im + L_ba + L_dis + eta L_clu,
   eta = min(delta n_i, xi) (19). Final labels: argmax of U.

Choices the paper leaves open are options of ``Config`` and are explained in docs/methods/lnscc.md.

Modules: config (settings and readings), pairs (graph, quantity augmentation, pair sets), losses, model
(encoder, Student-t head), training (the loop, ``fit_predict``), figures (Figures 1d and 5; imported by
stages/lnscc_figures.py only).
"""
from . import config, losses, model, pairs, training
from .config import TASK, Config
from .training import fit_predict, memory_costs

__all__ = ["TASK", "Config", "fit_predict", "memory_costs", "config", "losses", "model", "pairs", "training"]

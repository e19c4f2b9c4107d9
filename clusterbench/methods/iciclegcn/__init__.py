"""IcicleGCN (Xu, Huang, Wang & Lai 2023): contrastive learning + multi-scale GCNs, as the paper states it.

Stage 1 (Sec. 3.1-3.3, Algorithm 1 steps 1-6): a ResNet-34 backbone on two augmentations of
each image; ISM = an instance projector (two FC layers, 128-d) with NT-Xent (eqs. 1-3,
tau_I = 0.5); JC-SLIM = an auto-encoder input-500-500-2000-K whose encoder ends in a softmax
that serves as the cluster head: the cluster-level contrastive loss on its columns plus the
entropy terms (eqs. 4-5, tau_C = 1.0) and the reconstruction of the backbone features of both
views (eq. 6). L1 = sum of the three (eq. 7); batch 128, Adam 1e-4 (Sec. 3.5).

Stage 2, M-GCN (Sec. 3.4, steps 7-10): backbone features Z of every image (augmented once),
two heat-kernel kNN graphs (eq. 8, t = 1) with k_a = 1 and k_b = 10; two 5-layer GCNs
(eqs. 12-14, 17-19) whose layer inputs are fused with each other and with the encoder's layer
(eqs. 15-16, sigma = 0.4, gamma = 0.2); Student-t Q on the encoder output (eq. 20, v = 1,
centres from k-means with 20 inits), target P (eqs. 21-22); L2 = reconstruction (eq. 11) +
alpha KL(P||Q) + beta KL(P||G_a) + eta KL(P||G_b) (eqs. 23-26), full batch, the backbone frozen.
Clusters: argmax of the GCNs' distribution (mean of the two streams by default).

Every choice the text leaves open, the released code's differences (sigma 0.5, k_b 15, starting
from CC's 1000-epoch checkpoint, both cluster views taken from view a) and the ablation
switches of Tables 4-6 are ``Config`` options (paper values by default); docs/methods/iciclegcn.md.
No epoch and no seed is ever chosen by labels.

Modules: config (settings and readings), model (stage 1's network and loss), mgcn (stage 2's M-GCN),
training (both stages, ``fit_predict``).
"""
from . import config, mgcn, model, training
from .config import TASK, Config
from .training import fit_predict, memory_costs

__all__ = ["TASK", "Config", "fit_predict", "memory_costs", "config", "mgcn", "model", "training"]

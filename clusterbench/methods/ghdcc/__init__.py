"""GHDCC: graph-projector contrastive clustering (Chen et al., J. Intell. Fuzzy Syst. 2023,
doi 10.3233/JIFS-230208), built on CC's shared parts (clusterbench.methods.cc / contrastive).

What the surviving text gives: a ResNet-34 on 64 x 64 inputs reduces each image to 128-d features
H; two two-layer GCNs replace CC's MLP projectors: GCN1 -> 128-d instance space (NT-Xent, tau 0.5,
plus an MSE regularisation between the views), GCN2 -> K-d cluster space (CC's cluster
contrastive loss, tau 1.0, plus a KL / cross-entropy regularisation); lambda1 = lambda2 = 0.5;
Adam 2e-4, batch 128, 500 epochs; two of five augmentations (crop, colour jitter, grayscale,
flip, Gaussian blur) per image; a third, linearly interpolated view (lambda = 0.7); the GCNs'
normalised adjacency is built inside each batch from the cosine similarity of the backbone
features, keeping only neighbours above a threshold, as one "mixed" graph over {H_a, H_b, H_c}
or as three per-group graphs joined block-diagonally ("concatenated"); clusters = k-means on the
GCN outputs. The equations are lost: every reading taken here is a Config field and is listed in
docs/methods/ghdcc.md (where the text is silent, CC's choice).

Loss (our reading of eqs. 2, 3, 5, 8):
  L = NT-Xent(Z_a, Z_b) + lambda1 MSE(z_a, z_b) + L_cluster(Y_a, Y_b) + lambda2 CE(P, Y_c),
with Z = GCN1(A, H), Y = softmax(GCN2(A, H)), z the L2-normalised Z, and P = lambda Y_a +
(1 - lambda) Y_b (detached: then minimising KL(P || Y_c) is minimising the cross-entropy, as the
text's eqs. 7-8 say) the interpolated target of the interpolated view x_c = lambda x_a + (1 - lambda) x_b.

Modules: config (settings and readings), model (backbone + GCN projectors), losses, training (prediction,
``fit_predict``), figures (Figures 4, 6 and 7; imported by stages/ghdcc_figures.py only).
"""
from . import config, losses, model, training
from .config import TASK, Config
from .training import fit_predict, memory_costs

__all__ = ["TASK", "Config", "fit_predict", "memory_costs", "config", "losses", "model", "training"]

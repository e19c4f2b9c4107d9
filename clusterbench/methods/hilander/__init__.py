"""Hi-LANDER: hierarchical GNN clustering with learnt linkage and density (Xing et al., ICCV 2021).

Open-set clustering: a GNN is trained on a labelled training split (split 0 of the view) and
clusters the rows of the test split (split 1), whose identities are disjoint from the training
ones and whose number is unknown. The test labels are read only to score (per-level metrics are
computed after the level loop has finished, from labels the loop never sees).

Pipeline (the authors' DGL example, dmlc/dgl examples/pytorch/hilander; docs/methods/hilander.md):

1. Level graph: kNN by inner product on L2-normalised features (faiss, exact); an edge j -> i
   for each of i's k - 1 nearest other points with cosine similarity s_ij >= 0. Node input =
   [features, cluster features] (``use_cluster_feat``).
2. Model: one graph conv layer (GraphConv: Linear([h_i, sum_j a_ij h_j]) with a_ij the row-
   normalised similarities; or GAT), ReLU; per edge, logits = MLP(src_mlp(h_j) + dst_mlp(h_i))
   -> linkage probability p_ij; density d_i = mean_j s_ij (p_ij - (1 - p_ij)).
3. Training targets: linkage = same label; density = sum_j s_ij (+1 same label, -1 otherwise) /
   (k - 1). Loss = MSE(density) + CE(linkage) on edges whose source density (ground truth)
   exceeds the target's, classes balanced by dropping random edges of the larger class.
   Training graphs: for every (k, levels) pair, ``levels`` levels built from ground-truth peaks.
4. Inference levels: keep edge j -> i when d_j > d_i and p_ij > tau; every node keeps its kept
   edge of highest p (a forest); trees become super-nodes (peak features, mean member features);
   stop when no edge is added, at ``levels`` or by the early-stop rule.

``joint: false`` is the two-model baseline of Table 1: a linkage network (CE) and a separate
density network (GNN + node regression head, MSE), both run at inference.

Modules: config (settings), hierarchy (level graphs), model (the GNN), training (``fit_predict``),
inference (level decoding).
"""
from . import config, hierarchy, inference, model, training
from .config import TASK, Config
from .training import fit_predict, memory_costs

__all__ = ["TASK", "Config", "fit_predict", "memory_costs", "config", "hierarchy", "inference", "model", "training"]

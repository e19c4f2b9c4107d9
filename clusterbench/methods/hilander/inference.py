"""Hi-LANDER's inference: decode each level from edge probabilities and densities, stop when
the hierarchy stops merging.
"""
from __future__ import annotations

import math
import time

import numpy as np

from .config import Config
from .hierarchy import Hierarchy, choose_parents, l2norm, level_graph
from .model import Model


def stop_iterating(level: int, levels: int, early_stop: bool, added: int, added_last: float, k: int) -> bool:
    """The reference's rules: last level; no new edge; early stop once a level adds more than
    1/(k-1) of the previous level's edges (the merges stop shrinking by a factor k - 1)."""
    if level == levels - 1 or added == 0:
        return True
    return bool(early_stop and added_last / added < k - 1)


def decode_level(nbrs: np.ndarray, valid: np.ndarray, prob: np.ndarray, density: np.ndarray, tau: float) -> np.ndarray:
    """Parents of one level: edge j -> i kept when d_j > d_i and p_ij > tau; each node keeps its
    kept edge of highest linkage probability (-1: none, the node is a peak)."""
    keep = valid & (density[nbrs] > density[:, None]) & (prob > tau)
    return choose_parents(nbrs, keep, prob)


def infer(model: Model, x: np.ndarray, cfg: Config) -> tuple[list[np.ndarray], list[dict], float]:
    """Cluster ``x`` (no labels): per level, the labels of every point and what the level did."""
    torch = model.torch
    t0 = time.perf_counter()
    model.train(False)
    feats = l2norm(x)
    hier = Hierarchy(feats)
    cluster = feats
    per_level, info = [], []
    added_last = math.inf
    for level in range(cfg.levels):
        if len(feats) <= cfg.knn_k:
            break
        tl = time.perf_counter()
        g = level_graph(feats, cluster, cfg.knn_k)
        tensors = model.tensors(g)
        prob = np.empty(g.sims.shape, dtype=np.float32)
        dens = np.empty(g.n, dtype=np.float32)
        with torch.no_grad():
            for nodes in torch.arange(g.n, device=model.device).split(cfg.infer_batch_size):
                logits, d = model.predict(tensors, nodes)
                idx = nodes.cpu().numpy()
                prob[idx] = torch.softmax(logits, -1)[..., 1].cpu().numpy()
                dens[idx] = d.cpu().numpy()
        added, peaks = hier.merge(decode_level(g.nbrs, g.valid, prob, dens, cfg.tau))
        per_level.append(hier.labels.copy())
        info.append({"level": level, "nodes": int(g.n), "edges_added": int(added),
                     "clusters": int(hier.labels.max()) + 1, "wall_s": round(time.perf_counter() - tl, 4)})
        if stop_iterating(level, cfg.levels, cfg.early_stop, added, added_last, cfg.knn_k):
            break
        added_last = added
        feats, cluster = hier.next_level(feats, peaks)
    if not per_level:
        per_level.append(np.arange(len(x)))
    return per_level, info, time.perf_counter() - t0

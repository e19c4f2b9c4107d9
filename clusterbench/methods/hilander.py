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
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field, model_validator

from . import MethodConfig, Result, RunContext
from .. import graphs, metrics, resources

TASK = "open-set clustering"


class Config(MethodConfig):
    # --- training graphs (train_deepglint.sh: --knn_k 10,5,3 --levels 2,3,4) ---
    train_knn_k: tuple[int, ...] = Field((10, 5, 3), min_length=1, description="k of each training graph "
                                         "family, the point itself included (k - 1 neighbours), as the reference")
    train_levels: tuple[int, ...] = Field((2, 3, 4), min_length=1, description="levels built per k")
    # --- model ---
    conv: Literal["graphconv", "gat"] = "graphconv"
    gat_heads: int = Field(1, ge=1)
    num_conv: int = Field(1, ge=1, le=4)
    hidden: int = Field(512, ge=2)
    dropout: float = Field(0.0, ge=0, lt=1)
    use_cluster_feat: bool = True
    joint: bool = Field(True, description="true: one model predicts linkage and density (Hi-LANDER); false: "
                        "separate linkage and density networks (the two-model baseline of Table 1)")
    # --- training ---
    epochs: int = Field(250, ge=1)
    batch_size: int = Field(4096, ge=1, description="target nodes per step")
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(1e-5, ge=0)
    eta_min: float = Field(1e-5, ge=0, description="cosine schedule's final learning rate")
    balance: bool = True
    # --- inference (test_subg.py) ---
    knn_k: int = Field(10, ge=2, description="k at inference, the point itself included")
    levels: int = Field(10, ge=1)
    tau: float = Field(0.8, ge=0, lt=1, description="linkage threshold (0.8 faces, 0.1 iNat)")
    early_stop: bool = True
    sweep_tau: tuple[float, ...] = Field(
        (), description="also run the level loop at these thresholds after training and record each one's "
        "last-level F_P / F_B / NMI and cluster count in the run (sensitivity; the prediction stays at tau)")
    infer_batch_size: int = Field(4096, ge=1)
    torch_threads: int | None = Field(1, ge=1)

    @model_validator(mode="after")
    def _pairs(self):
        if len(self.train_knn_k) != len(self.train_levels):
            raise ValueError(f"train_knn_k {list(self.train_knn_k)} and train_levels {list(self.train_levels)} "
                             "must have the same length (one level count per k)")
        if any(not 0 <= t < 1 for t in self.sweep_tau):
            raise ValueError(f"sweep_tau: every threshold must be in [0, 1), got {list(self.sweep_tau)}")
        if min(self.train_knn_k) < 2:
            raise ValueError("train_knn_k: every k must be >= 2 (the point itself plus a neighbour)")
        return self


# --- graphs --------------------------------------------------------------------------------------

def l2norm(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


@dataclass
class LevelGraph:
    """k - 1 incoming edges per node: nbrs[i, j] -> i with cosine similarity sims[i, j]."""

    features: np.ndarray          # (n, d) L2-normalised (the peaks' own features)
    cluster_features: np.ndarray  # (n, d) mean member feature of each super-node
    nbrs: np.ndarray              # (n, k - 1) int64
    sims: np.ndarray              # (n, k - 1) float32
    density: np.ndarray | None = None  # ground-truth density (training)
    linkage: np.ndarray | None = None  # (n, k - 1) bool, same label (training)

    @property
    def n(self) -> int:
        return len(self.features)

    @property
    def valid(self) -> np.ndarray:
        return self.sims >= 0  # the reference drops edges of negative similarity (th_sim = 0)


def knn_cosine(features: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k - 1 nearest other points by inner product of unit vectors (= Euclidean order), with faiss."""
    g = graphs.knn(features, k - 1, label="Hi-LANDER level features", setting="knn_k")
    sims = 1.0 - g.distances.astype(np.float32) ** 2 / 2.0  # |a - b|^2 = 2 - 2 a.b for unit vectors
    return g.indices.astype(np.int64), np.clip(sims, -1.0, 1.0)


def level_graph(features: np.ndarray, cluster_features: np.ndarray, k: int,
                labels: np.ndarray | None = None) -> LevelGraph:
    nbrs, sims = knn_cosine(features, k)
    g = LevelGraph(features, cluster_features, nbrs, sims)
    if labels is not None:
        same = labels[nbrs] == labels[:, None]
        g.linkage = same
        g.density = (np.where(same, sims, -sims).sum(1) / (k - 1)).astype(np.float32)
    return g


def choose_parents(nbrs: np.ndarray, keep: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Each node's kept incoming edge of highest ``score`` (its parent), -1 where none is kept."""
    masked = np.where(keep, score, -np.inf)
    best = masked.argmax(1)
    rows = np.arange(len(nbrs))
    return np.where(keep.any(1), nbrs[rows, best], -1)


def components(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Connected components of an edge list over n nodes, numbered 0.. in order of first node."""
    from scipy.sparse.csgraph import connected_components

    adj = sp.coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    _, labels = connected_components(adj, directed=True, connection="weak")
    _, first = np.unique(labels, return_index=True)
    order = np.empty(len(first), dtype=np.int64)
    order[np.argsort(first)] = np.arange(len(first))
    return order[labels]


class Hierarchy:
    """Super-nodes over the original points: merges accumulate as edges between original ids."""

    def __init__(self, features: np.ndarray):
        self.global_features = features
        self.n = len(features)
        self.ids = np.arange(self.n)  # original id of each current node
        self.src: list[np.ndarray] = []
        self.dst: list[np.ndarray] = []
        self.labels = np.arange(self.n)

    def merge(self, parent: np.ndarray) -> tuple[int, np.ndarray]:
        """Add parent -> child edges of the current level; return (edges added, peak mask)."""
        child = np.flatnonzero(parent >= 0)
        self.src.append(self.ids[parent[child]])
        self.dst.append(self.ids[child])
        self.labels = components(self.n, np.concatenate(self.src), np.concatenate(self.dst))
        return len(child), parent < 0

    def next_level(self, features: np.ndarray, peaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(peak features, mean member features) of the super-nodes; the peaks become the nodes."""
        self.ids = self.ids[peaks]
        n_clusters = int(self.labels.max()) + 1
        sums = np.zeros((n_clusters, self.global_features.shape[1]), dtype=np.float64)
        np.add.at(sums, self.labels, self.global_features)
        means = sums / np.bincount(self.labels, minlength=n_clusters)[:, None]
        return features[peaks], means[self.labels[self.ids]].astype(np.float32)


def ground_truth_levels(features: np.ndarray, labels: np.ndarray, k: int, levels: int) -> list[LevelGraph]:
    """The training graphs of one k: level 0 on the points, then super-nodes decoded from the
    ground-truth density (keep j -> i when d_j > d_i and s_ij > 0; parent = most similar), as the
    reference's LanderDataset (decode with use_gt, tau 0, threshold 'sim')."""
    hier = Hierarchy(features)
    feats, cluster, lab = features, features, labels
    out = []
    for level in range(levels):
        if len(feats) <= k:
            break
        g = level_graph(feats, cluster, k, lab)
        out.append(g)
        if level == levels - 1:
            break
        keep = g.valid & (g.density[g.nbrs] > g.density[:, None]) & (g.sims > 0)
        added, peaks = hier.merge(choose_parents(g.nbrs, keep, g.sims))
        if added == 0:
            break
        lab = lab[peaks]
        feats, cluster = hier.next_level(feats, peaks)
    return out


# --- model ---------------------------------------------------------------------------------------

def _torch_modules():
    import torch
    from torch import nn

    class GraphConvLayer(nn.Module):
        """h_i' = ReLU(W [h_i, sum_j a_ij h_j]), a_ij = s_ij / sum_j s_ij (the reference's GraphConvLayer)."""

        def __init__(self, d_in, d_out, dropout):
            super().__init__()
            self.mlp = nn.Linear(2 * d_in, d_out)
            self.dropout = dropout

        def forward(self, h_dst, h_nbr, w, mask):
            a = w * mask
            a = a / a.sum(1, keepdim=True).clamp_min(1e-12)
            agg = (a.unsqueeze(-1) * h_nbr).sum(1)
            out = torch.relu(self.mlp(torch.cat([h_dst, agg], 1)))
            return nn.functional.dropout(out, self.dropout, self.training)

    class GATLayer(nn.Module):
        """Graph attention over the incoming edges (no self edge), heads averaged, + bias, ReLU."""

        def __init__(self, d_in, d_out, dropout, heads):
            super().__init__()
            self.heads, self.d_out = heads, d_out
            self.fc = nn.Linear(d_in, heads * d_out, bias=False)
            self.att_src = nn.Parameter(torch.empty(heads, d_out))
            self.att_dst = nn.Parameter(torch.empty(heads, d_out))
            self.bias = nn.Parameter(torch.zeros(d_out))
            nn.init.xavier_normal_(self.fc.weight, gain=nn.init.calculate_gain("relu"))
            nn.init.xavier_normal_(self.att_src, gain=nn.init.calculate_gain("relu"))
            nn.init.xavier_normal_(self.att_dst, gain=nn.init.calculate_gain("relu"))
            self.dropout = dropout

        def forward(self, h_dst, h_nbr, w, mask):
            n, m, _ = h_nbr.shape
            z_dst = self.fc(h_dst).view(n, self.heads, self.d_out)
            z_nbr = self.fc(h_nbr).view(n, m, self.heads, self.d_out)
            e = (z_nbr * self.att_src).sum(-1) + (z_dst * self.att_dst).sum(-1).unsqueeze(1)  # (n, m, H)
            e = nn.functional.leaky_relu(e, 0.2).masked_fill(~mask.unsqueeze(-1), float("-inf"))
            alpha = torch.softmax(e, 1).nan_to_num(0.0)  # a node without edges aggregates nothing
            out = (alpha.unsqueeze(-1) * z_nbr).sum(1).mean(1) + self.bias
            return nn.functional.dropout(torch.relu(out), self.dropout, self.training)

    class Encoder(nn.Module):
        """num_conv conv layers; dims as the reference's LANDER (nhid, nhid, nhid/2, nhid/2)."""

        def __init__(self, d_in, hidden, num_conv, conv, heads, dropout):
            super().__init__()
            dims = [d_in, hidden, hidden, hidden // 2, hidden // 2][: num_conv + 1]
            make = (lambda a, b: GATLayer(a, b, dropout, heads)) if conv == "gat" else \
                (lambda a, b: GraphConvLayer(a, b, dropout))
            self.layers = nn.ModuleList(make(a, b) for a, b in zip(dims[:-1], dims[1:]))
            self.d_out = dims[-1]

        def forward(self, x, nbrs, w, mask, nodes):
            """Conv features of ``nodes`` (LongTensor); reads x of their num_conv-hop neighbourhood."""
            return self._embed(x, nbrs, w, mask, nodes, len(self.layers))

        def _embed(self, x, nbrs, w, mask, nodes, depth):
            if depth == 0:
                return x[nodes]
            need, inverse = torch.unique(torch.cat([nodes, nbrs[nodes].reshape(-1)]), return_inverse=True)
            h = self._embed(x, nbrs, w, mask, need, depth - 1)
            n = len(nodes)
            h_dst = h[inverse[:n]]
            h_nbr = h[inverse[n:]].view(n, nbrs.shape[1], -1)
            return self.layers[depth - 1](h_dst, h_nbr, w[nodes], mask[nodes])

    class LinkageNet(nn.Module):
        """Encoder + edge classifier; density from the linkage probabilities (joint model)."""

        def __init__(self, d_in, cfg):
            super().__init__()
            half = cfg.hidden // 2
            self.encoder = Encoder(d_in, cfg.hidden, cfg.num_conv, cfg.conv, cfg.gat_heads, cfg.dropout)
            self.src_mlp = nn.Linear(self.encoder.d_out, half)
            self.dst_mlp = nn.Linear(self.encoder.d_out, half)
            self.classifier = nn.Sequential(nn.PReLU(half), nn.Linear(half, half), nn.PReLU(half), nn.Linear(half, 2))

        def forward(self, x, nbrs, w, mask, nodes):
            """(edge logits (B, k-1, 2), predicted density (B,)) of the edges into ``nodes``."""
            need, inverse = torch.unique(torch.cat([nodes, nbrs[nodes].reshape(-1)]), return_inverse=True)
            h = self.encoder(x, nbrs, w, mask, need)
            b = len(nodes)
            h_dst = self.dst_mlp(h[inverse[:b]])
            h_src = self.src_mlp(h[inverse[b:]]).view(b, nbrs.shape[1], -1)
            pair = (h_src + h_dst.unsqueeze(1)).reshape(b * nbrs.shape[1], -1)  # PReLU: channels last
            logits = self.classifier(pair).view(b, nbrs.shape[1], 2)
            prob = torch.softmax(logits, -1)
            m = mask[nodes].float()
            msg = w[nodes] * (prob[..., 1] - prob[..., 0]) * m
            density = msg.sum(1) / m.sum(1).clamp_min(1.0)  # mean over the node's edges
            return logits, density

    class DensityNet(nn.Module):
        """The two-model baseline's density network: encoder + node regression head."""

        def __init__(self, d_in, cfg):
            super().__init__()
            half = cfg.hidden // 2
            self.encoder = Encoder(d_in, cfg.hidden, cfg.num_conv, cfg.conv, cfg.gat_heads, cfg.dropout)
            self.head = nn.Sequential(nn.Linear(self.encoder.d_out, half), nn.PReLU(half), nn.Linear(half, 1))

        def forward(self, x, nbrs, w, mask, nodes):
            return self.head(self.encoder(x, nbrs, w, mask, nodes)).squeeze(1)

    return LinkageNet, DensityNet


class Model:
    """Hi-LANDER's joint model, or the two-model baseline (``joint: false``)."""

    def __init__(self, d_in: int, cfg: Config, device: str):
        import torch

        LinkageNet, DensityNet = _torch_modules()
        self.cfg, self.device = cfg, device
        self.d_in = 2 * d_in if cfg.use_cluster_feat else d_in
        self.linkage = LinkageNet(self.d_in, cfg).to(device)
        self.density = None if cfg.joint else DensityNet(self.d_in, cfg).to(device)
        self.torch = torch

    def parameters(self):
        yield from self.linkage.parameters()
        if self.density is not None:
            yield from self.density.parameters()

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def train(self, mode: bool = True) -> None:
        self.linkage.train(mode)
        if self.density is not None:
            self.density.train(mode)

    def tensors(self, g: LevelGraph):
        t = self.torch
        x = np.concatenate([g.features, g.cluster_features], 1) if self.cfg.use_cluster_feat else g.features
        return (t.as_tensor(x, dtype=t.float32, device=self.device), t.as_tensor(g.nbrs, device=self.device),
                t.as_tensor(g.sims, device=self.device), t.as_tensor(g.valid, device=self.device))

    def predict(self, tensors, nodes):
        """(edge logits, node density) for the edges into ``nodes``."""
        logits, density = self.linkage(*tensors, nodes)
        if self.density is not None:
            density = self.density(*tensors, nodes)
        return logits, density


# --- training ------------------------------------------------------------------------------------

def _loss(model: Model, tensors, targets, nodes, rng: np.random.Generator):
    t = model.torch
    density_t, linkage_t = targets
    _, nbrs, _, mask = tensors
    logits, density = model.predict(tensors, nodes)
    loss_den = t.nn.functional.mse_loss(density, density_t[nodes])
    # linkage loss on edges j -> i whose source is denser than the target (ground truth)
    conn = mask[nodes] & (density_t[nbrs[nodes]] > density_t[nodes].unsqueeze(1))
    same = linkage_t[nodes]
    if model.cfg.balance:
        conn = _balance(conn, same, rng)
    if bool(conn.any()):
        loss_conn = t.nn.functional.cross_entropy(logits[conn], same[conn].long())
    else:
        loss_conn = logits.sum() * 0.0
    return loss_den + loss_conn, loss_den.item(), loss_conn.item()


def _balance(conn, same, rng: np.random.Generator):
    """Drop random edges of the larger class (same / different label) until both are equal."""
    pos = (conn & same).flatten().nonzero().squeeze(1)
    neg = (conn & ~same).flatten().nonzero().squeeze(1)
    big, small = (pos, neg) if len(pos) > len(neg) else (neg, pos)
    if len(big) == len(small):
        return conn
    drop = big[rng.choice(len(big), len(big) - len(small), replace=False)]
    conn = conn.clone()
    conn.view(-1)[drop] = False
    return conn


def train(x_train: np.ndarray, y_train: np.ndarray, cfg: Config, device: str, seed: int,
          log=lambda row: None, progress: bool = False) -> tuple[Model, dict]:
    import torch

    t0 = time.perf_counter()
    feats = l2norm(x_train)
    graphs_ = [g for k, lv in zip(cfg.train_knn_k, cfg.train_levels) for g in ground_truth_levels(feats, y_train, k, lv)]
    if not graphs_:
        raise ValueError(f"Hi-LANDER: the training split has {len(feats)} rows, too few for any kNN graph "
                         f"with k = {max(cfg.train_knn_k)}")
    build_s = time.perf_counter() - t0
    model = Model(feats.shape[1], cfg, device)
    model.train()
    tensors = [model.tensors(g) for g in graphs_]
    targets = [(torch.as_tensor(g.density, device=device), torch.as_tensor(g.linkage, device=device)) for g in graphs_]
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    per_loader = math.ceil(graphs_[0].n / cfg.batch_size)  # the reference: batches of the first graph
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * per_loader * len(graphs_),
                                                       eta_min=cfg.eta_min)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    queues: list[list] = [[] for _ in graphs_]

    def next_batch(i):
        if not queues[i]:
            order = torch.randperm(graphs_[i].n, generator=gen)
            queues[i] = list(order.split(cfg.batch_size))
        return queues[i].pop(0).to(device)

    for epoch in range(cfg.epochs):
        te = time.perf_counter()
        sums = np.zeros(3)
        steps = 0
        for _ in range(per_loader):
            for i in range(len(graphs_)):
                opt.zero_grad()
                loss, ld, lc = _loss(model, tensors[i], targets[i], next_batch(i), rng)
                loss.backward()
                opt.step()
                sched.step()
                sums += (loss.item(), ld, lc)
                steps += 1
        mean = sums / steps
        log({"epoch": epoch + 1, "loss": float(mean[0]), "loss_den": float(mean[1]), "loss_conn": float(mean[2]),
             "lr": float(opt.param_groups[0]["lr"]), "wall_s": time.perf_counter() - te})
    info = {"train_graphs": [int(g.n) for g in graphs_], "graph_build_s": round(build_s, 3),
            "train_s": round(time.perf_counter() - t0, 3), "steps_per_epoch": per_loader * len(graphs_)}
    return model, info


# --- inference -----------------------------------------------------------------------------------

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


# --- the method interface ------------------------------------------------------------------------

def memory_costs(cfg: Config, n_train: int, n_test: int, dim: int) -> list[resources.Cost]:
    """The large allocations of a run, estimated before any graph or model is built: the level
    graphs (every training level is kept on the device; ``train_knn_k``, ``knn_k``), the weights
    with gradients and SGD momentum (``hidden``), and one step's activations: the ``num_conv``-hop
    neighbourhood of min(batch_size, N) targets gathered per neighbour at the layer's width (twice:
    the gather and the weighted copy), each layer's input and output with gradients, and the edge
    classifier on every (target, neighbour) pair; at inference the same without gradients."""
    d_in = 2 * dim if cfg.use_cluster_feat else dim
    h, half = cfg.hidden, cfg.hidden // 2
    dims = [d_in, h, h, half, half][: cfg.num_conv + 1]
    conv = sum((a * cfg.gat_heads * b) if cfg.conv == "gat" else 2 * a * b for a, b in zip(dims[:-1], dims[1:]))
    params = conv + 2 * dims[-1] * half + half * half + 2 * half
    if not cfg.joint:
        params += conv + dims[-1] * half + half
    widest = max(dims) * max(cfg.gat_heads if cfg.conv == "gat" else 1, 1)

    def step(targets: int, k: int, n: int, grad: bool) -> float:
        nodes = min(n, targets * k ** cfg.num_conv)
        gather = nodes * (k - 1) * widest * 4 * 2
        layers = nodes * (2 * widest + h) * 4 * (3 if grad else 1)
        pairs = targets * (k - 1) * half * 4 * (8 if grad else 2)
        return (gather + layers + pairs) * (1 if cfg.joint else 2)

    k_train = max(cfg.train_knn_k)
    train = step(min(cfg.batch_size, n_train), k_train, n_train, True)
    infer = step(min(cfg.infer_batch_size, n_test), cfg.knn_k, n_test, False)
    # every level counted at N nodes (an upper bound: levels above 0 hold the super-nodes)
    levels = sum(lv * (d_in * 4 + (k - 1) * 13 + 8) for k, lv in zip(cfg.train_knn_k, cfg.train_levels))
    costs = [resources.Cost("the training level graphs", n_train * levels, (("train_knn_k", list(cfg.train_knn_k)),)),
             resources.Cost("the test level graph", n_test * (d_in * 4 + (cfg.knn_k - 1) * 21), (("knn_k", cfg.knn_k),)),
             resources.Cost("the weights with gradients and SGD momentum", params * 4 * 3, (("hidden", h),))]
    if train >= infer:
        costs.append(resources.Cost(f"one training step's activations ({min(cfg.batch_size, n_train):,} targets)",
                                    train, (("batch_size", cfg.batch_size), ("hidden", h))))
    else:
        costs.append(resources.Cost(f"one inference batch's activations ({min(cfg.infer_batch_size, n_test):,} "
                                    "targets)", infer, (("infer_batch_size", cfg.infer_batch_size), ("hidden", h))))
    return costs


def open_set_rows(split: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, evaluated rows): split 0 is the labelled training set, split 1 the unseen test set."""
    train_rows, test_rows = np.flatnonzero(split == 0), np.flatnonzero(split == 1)
    if len(train_rows) == 0 or len(test_rows) == 0:
        raise ValueError(f"Hi-LANDER needs an open-set view: labelled training rows (split 0) and test rows "
                         f"(split 1); this view holds splits {sorted(set(int(s) for s in split))}. Use an open-set "
                         "data set (docs/methods/hilander.md)")
    return train_rows, test_rows


def fit_predict(ctx: RunContext, config: Config) -> Result:
    import torch

    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    torch.manual_seed(ctx.seed)
    view = ctx.view
    train_rows, test_rows = open_set_rows(view.split)
    y_train = view.y[train_rows]
    if (y_train < 0).any():
        raise ValueError("Hi-LANDER: the training split has unlabelled rows (label < 0)")
    resources.check_costs("hilander", memory_costs(config, len(train_rows), len(test_rows), view.X.shape[1]),
                          ctx.device)
    model, info = train(view.X[train_rows], y_train, config, ctx.device, ctx.seed, ctx.log, ctx.progress)
    per_level, levels, infer_s = infer(model, view.X[test_rows], config)  # test labels: not passed
    y_test = view.y[test_rows]  # scoring only, after inference
    for row, labels in zip(levels, per_level):
        row.update({name: round(metrics.CLUSTERING_METRICS[name](y_test, labels), 6) for name in ("fp", "fb", "nmi")})
    sweep = []
    for tau in config.sweep_tau:  # the same model, other thresholds: scored only, nothing chosen here
        labels_t, levels_t, infer_t = infer(model, view.X[test_rows], config.model_copy(update={"tau": tau}))
        sweep.append({"tau": tau, "clusters": int(levels_t[-1]["clusters"]) if levels_t else int(len(test_rows)),
                      "n_levels": len(levels_t), "inference_s": round(infer_t, 3),
                      **{name: round(metrics.CLUSTERING_METRICS[name](y_test, labels_t[-1]), 6)
                         for name in ("fp", "fb", "nmi")}})
    extra = {**info, "inference_s": round(infer_s, 3), "levels": levels, "n_levels": len(levels),
             **({"tau_sweep": sweep} if sweep else {}),
             "n_train": int(len(train_rows)), "n_test": int(len(test_rows)),
             "n_train_identities": int(len(np.unique(y_train))), "params": model.n_params(),
             "epochs": config.epochs}
    return Result(labels=per_level[-1], index=test_rows, extra=extra)

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
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from pydantic import Field

from .. import resources
from . import contrastive
from . import Result, RunContext
from .cc import (BACKBONE_DIM, ContrastiveConfig, build_backbone, code_fingerprint, count_parameters, make_trainer,
                 memory_costs as contrastive_costs, mlp_head, set_threads, training_fingerprint, view_images)

TASK = "clustering"


class Config(ContrastiveConfig):
    # --- the shared fields' defaults changed to the paper's implementation details ---
    image_size: int | None = Field(64, ge=8, description="GHDCC resizes every image to 64 x 64")
    epochs: int = Field(500, ge=1, description="GHDCC: 500")
    batch_size: int = Field(128, ge=2, description="GHDCC: 128")
    lr: float = Field(2e-4, gt=0, description="Adam learning rate (GHDCC: 2e-4)")
    keep_checkpoints: list[int] = Field([], description="epochs kept as outputs besides the last")
    # --- augmentations ---
    augment_policy: Literal["two_of_five", "cc"] = Field(
        "two_of_five", description="two_of_five: exactly two of crop, jitter, grayscale, flip, blur per image "
        "(the text); cc: CC's independent probabilities (plus blur_p)")
    blur_p: float = Field(0.5, ge=0, le=1, description="Gaussian blur probability under augment_policy: cc")
    # --- network ---
    backbone_dim: int | None = Field(128, ge=1, description="a linear layer reduces the backbone output to this "
                                     "width (the text: ResNet-34 -> 128-d); null = the backbone's own width")
    projector: Literal["gcn", "mlp"] = Field("gcn", description="gcn: two-layer GCNs; mlp: CC's Linear-ReLU-Linear "
                                             "heads (the MLP-vs-GCN ablation)")
    gcn_hidden: int | None = Field(None, ge=1, description="GCN hidden width; null = its input width (as CC's MLP)")
    # --- graph ---
    graph: Literal["mixed", "concatenated"] = Field(
        "mixed", description="mixed: one graph over {H_a, H_b, H_c}; concatenated: three per-group graphs, "
        "block-diagonally joined")
    similarity_threshold: float = Field(0.8, ge=-1, le=1, description="keep an edge only if the cosine similarity "
                                        "of the backbone features exceeds this (value not stated)")
    graph_k: int | None = Field(10, ge=1, description="and only among each node's k most similar nodes (null: all "
                                "above the threshold; not stated)")
    edge_weights: Literal["binary", "cosine"] = Field("binary", description="kept edges weigh 1 or their similarity")
    # --- linear interpolation ---
    interpolation: bool = Field(True, description="the third view x_c = lambda x_a + (1 - lambda) x_b")
    interpolation_lambda: float = Field(0.7, ge=0, le=1, description="lambda of the interpolation (GHDCC: 0.7)")
    # --- loss ---
    mse_weight: float = Field(0.5, ge=0, description="lambda1: squared distance between the views' normalised GCN1 "
                              "outputs (mean over rows)")
    ce_weight: float = Field(0.5, ge=0, description="lambda2: cross-entropy of Y_c against the interpolated "
                             "target (needs interpolation)")
    # --- prediction ---
    predict: Literal["kmeans-instance", "kmeans-cluster", "argmax"] = Field(
        "kmeans-instance", description="k-means on GCN1's (normalised) outputs, on GCN2's probabilities, or "
        "argmax of GCN2 (CC's rule)")
    kmeans_n_init: int = Field(10, ge=1)
    graph_batch_size: int | None = Field(None, ge=2, description="rows per graph at prediction (null: batch_size); "
                                         "rows are grouped in a seeded random order, never the data set's")

    def augment_spec(self, native_size: int) -> contrastive.AugmentSpec:
        spec = super().augment_spec(native_size)
        from dataclasses import replace
        if self.augment_policy == "two_of_five":
            return replace(spec, choose=2, blur_p=0.0)
        return replace(spec, blur_p=self.blur_p)


# --- graph ---------------------------------------------------------------------------------------

def thresholded_adjacency(features: torch.Tensor, threshold: float, k: int | None = None,
                          weights: str = "binary") -> torch.Tensor:
    """Kipf & Welling's D^-1/2 (A + I) D^-1/2 over one group of nodes (n, d) -> (n, n).

    A_ij != 0 iff i != j, cos(h_i, h_j) > threshold and (with k) j is among i's k most similar
    nodes or i among j's (symmetrised). Computed without gradient: the graph is an input to the
    GCN, not a parameter path.
    """
    # float32 even under autocast: a bfloat16 similarity (3 significant digits) would move the threshold
    with torch.no_grad(), torch.autocast(features.device.type, enabled=False):
        z = F.normalize(features.detach().float(), dim=1)
        sim = z @ z.T
        n = sim.shape[0]
        eye = torch.eye(n, dtype=torch.bool, device=sim.device)
        keep = (sim > threshold) & ~eye
        if k is not None and k < n - 1:
            ranked = sim.masked_fill(eye, float("-inf"))
            top = ranked.topk(k, dim=1).indices
            near = torch.zeros_like(keep).scatter_(1, top, True)
            keep &= near
        keep = keep | keep.T
        adj = keep.float() * (sim if weights == "cosine" else 1.0)
        adj = adj + torch.eye(n, device=sim.device)
        d = adj.sum(1).rsqrt()
        return d.view(-1, 1) * adj * d.view(1, -1)


def batch_graph(groups: list[torch.Tensor], kind: str, threshold: float, k: int | None = None,
                weights: str = "binary") -> torch.Tensor:
    """The normalised adjacency over the stacked groups (e.g. [H_a, H_b, H_c]): ``mixed`` = one graph
    over all their rows; ``concatenated`` = one graph per group, joined block-diagonally."""
    if kind == "mixed":
        return thresholded_adjacency(torch.cat(groups), threshold, k, weights)
    if kind == "concatenated":
        return torch.block_diag(*(thresholded_adjacency(g, threshold, k, weights) for g in groups))
    raise ValueError(f"graph: unknown {kind!r}; choose mixed or concatenated")


class GCN(nn.Module):
    """Two GCN layers, A ReLU(A H W1 + b1) W2 + b2 (Kipf & Welling), shaped like CC's Linear-ReLU-Linear."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d_in, d_hidden), nn.Linear(d_hidden, d_out)

    def forward(self, h: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(adj @ h.float()).float())
        return self.fc2(adj @ h).float()


class GHDCCNetwork(nn.Module):
    def __init__(self, config: Config, n_clusters: int):
        super().__init__()
        self.config = config
        self.backbone, rep_dim = build_backbone(config.backbone)
        dim = config.backbone_dim or rep_dim
        self.reduce = nn.Identity() if config.backbone_dim is None else nn.Linear(rep_dim, dim)
        self.rep_dim = dim
        hidden = config.gcn_hidden or dim
        if config.projector == "gcn":
            self.instance_projector = GCN(dim, hidden, config.feature_dim)
            self.cluster_projector = GCN(dim, hidden, n_clusters)
        else:
            self.instance_projector = mlp_head(dim, config.feature_dim)
            self.cluster_projector = mlp_head(dim, n_clusters)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.reduce(self.backbone(x))

    def project(self, groups: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor | None]:
        """GCN1 and GCN2 over the groups of backbone features -> (Z per group, Y per group, adjacency)."""
        h = torch.cat(groups)
        sizes = [len(g) for g in groups]
        if self.config.projector == "gcn":
            c = self.config
            adj = batch_graph(groups, c.graph, c.similarity_threshold, c.graph_k, c.edge_weights)
            z, logits = self.instance_projector(h, adj), self.cluster_projector(h, adj)
        else:
            adj = None
            z, logits = self.instance_projector(h), self.cluster_projector(h)
        y = torch.softmax(logits.float(), dim=1)
        return list(z.float().split(sizes)), list(y.split(sizes)), adj

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One group (prediction): (GCN1 output, GCN2 probabilities) with the graph over this batch."""
        (z,), (y,), _ = self.project([self.features(x)])
        return z, y


# --- loss ----------------------------------------------------------------------------------------

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


# --- prediction ----------------------------------------------------------------------------------

@torch.no_grad()
def predict_outputs(model: GHDCCNetwork, images: torch.Tensor, config: Config, seed: int,
                    device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """GCN1 and GCN2 outputs of every image (resized, no augmentation), each graph built over a batch of
    ``graph_batch_size`` rows drawn in a seeded random order (a data set stored by class would
    otherwise hand the graph its labels), returned in the images' order."""
    n = len(images)
    size = min(config.graph_batch_size or config.batch_size, n)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    z_out = torch.empty(n, config.feature_dim)
    y_out = None
    for start in range(0, n, size):
        rows = order[start:start + size]
        x = contrastive.resize_images(images[rows].to(device), config.image_size)
        z, y = model(x)
        if y_out is None:
            y_out = torch.empty(n, y.shape[1])
        z_out[rows], y_out[rows] = z.float().cpu(), y.float().cpu()
    return z_out, y_out


def cluster_labels(z: torch.Tensor, y: torch.Tensor, config: Config, n_clusters: int, seed: int) -> np.ndarray:
    if config.predict == "argmax":
        return y.argmax(1).numpy().astype(np.int64)
    from sklearn.cluster import KMeans

    data = F.normalize(z, dim=1) if config.predict == "kmeans-instance" else y
    km = KMeans(n_clusters=n_clusters, n_init=config.kmeans_n_init, random_state=seed)
    return km.fit_predict(data.numpy().astype(np.float64)).astype(np.int64)


def memory_costs(config: Config, images_shape: tuple[int, ...], device, n_clusters: int) -> list[resources.Cost]:
    """CC's costs (cc.memory_costs, three views with the interpolation) plus GHDCC's own: the
    heads' widths (``backbone_dim``, ``gcn_hidden``), the GCNs' activations, and the thresholded
    cosine graph over each training batch ((views x batch)^2 similarities, with masks and the
    normalised adjacency, ~8 float-sized copies; per view under ``graph: concatenated``) and over
    each prediction batch (``graph_batch_size``)."""
    n = images_shape[0]
    rep = BACKBONE_DIM[config.backbone]
    dim = config.backbone_dim or rep
    hidden = config.gcn_hidden or dim
    views = 3 if config.interpolation else 2
    rows = views * min(config.batch_size, n)
    if config.projector == "gcn":
        heads = dim * hidden * 2 + hidden * (config.feature_dim + n_clusters)
    else:
        heads = 2 * dim * dim + dim * (config.feature_dim + n_clusters)
    sizes = (("feature_dim", config.feature_dim), ("backbone_dim", dim)) + (
        (("gcn_hidden", hidden),) if config.projector == "gcn" else ())
    costs = contrastive_costs(config, images_shape, device, heads + (rep * dim if config.backbone_dim else 0), views,
                              sizes)
    costs.append(resources.Cost("the projectors' activations", rows * (dim + 2 * hidden) * 4 * 6,
                                (("gcn_hidden", hidden), ("backbone_dim", dim))))
    if config.projector == "gcn":
        graph = rows * rows if config.graph == "mixed" else views * (rows // views) ** 2
        costs.append(resources.Cost(f"the cosine graph over each training batch ({rows:,} rows)", graph * 4 * 8,
                                    (("batch_size", config.batch_size),)))
        g = min(config.graph_batch_size or config.batch_size, n)
        costs.append(resources.Cost(f"the cosine graph over each prediction batch ({g:,} rows)", g * g * 4 * 8,
                                    (("graph_batch_size", config.graph_batch_size or config.batch_size),)))
    return costs


# Settings that only change prediction, not the weights: a checkpoint trained under other values resumes.
PREDICTION_DEFAULTS = {"predict": "kmeans-instance", "kmeans_n_init": 10, "graph_batch_size": None}


def fit_predict(ctx: RunContext, config: Config) -> Result:
    set_threads(config)
    torch.manual_seed(ctx.seed)
    images = view_images(ctx)
    resources.check_costs("ghdcc", memory_costs(config, tuple(images.shape), ctx.device, ctx.n_clusters), ctx.device)
    model = GHDCCNetwork(config, ctx.n_clusters).to(ctx.device)
    trainer = make_trainer(config, ctx, model, ghdcc_loss(config), images.shape[-1], "ghdcc",
                           training_fingerprint(config.model_copy(update=PREDICTION_DEFAULTS), ctx, images,
                                                code=code_fingerprint(sys.modules[__name__])))
    history = trainer.fit(images)
    model.eval()
    start = time.perf_counter()
    z, y = predict_outputs(model, images, config, ctx.seed, ctx.device)
    labels = cluster_labels(z, y, config, ctx.n_clusters, ctx.seed)
    seconds = [row["seconds"] for row in history if "seconds" in row]
    extra = {"epochs": config.epochs, "resumed_from_epoch": trainer.resumed_from,
             "seconds_per_epoch": round(float(np.mean(seconds)), 3) if seconds else None,
             "inference_s": round(time.perf_counter() - start, 3), "params": count_parameters(model),
             "clusters_used": int(len(np.unique(labels))), "embedding": "GCN1 output (L2-normalised)"}
    # The embedding saved for figures (t-SNE/UMAP, the paper's Fig. 4) is GCN1's output.
    return Result(labels=labels, embedding=F.normalize(z, dim=1).numpy(), history=history, extra=extra)

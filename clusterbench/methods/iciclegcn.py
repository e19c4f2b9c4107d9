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
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn
import torch.nn.functional as F
from pydantic import Field, model_validator

from .. import graphs, resources
from . import Result, RunContext, checkpoints, contrastive
from .cc import (BACKBONE_DIM, ContrastiveConfig, build_backbone, code_fingerprint, count_parameters, make_trainer,
                 forward_all, memory_costs as contrastive_costs, mlp_head, set_threads, training_fingerprint,
                 view_images)

TASK = "clustering"
GCN_LAYERS = 5


class Config(ContrastiveConfig):
    # --- stage 1 (ISM + JC-SLIM); the shared fields' defaults changed to the paper's 3.5 ---
    lr: float = Field(1e-4, gt=0, description="Adam learning rate of stage 1 (3.5: 1e-4)")
    batch_size: int = Field(128, ge=2, description="images per step (3.5: 128)")
    epochs: int = Field(1000, ge=1, description="stage-1 epochs (not stated; CC's 1000, the checkpoint the "
                        "released code starts from)")
    keep_checkpoints: list[int] = Field([], description="stage-1 epochs kept as outputs besides the last")
    ae_hidden: list[int] = Field([500, 500, 2000], min_length=1, description="encoder widths before the K-d "
                                 "softmax layer (3.5: input-500-500-2000-K)")
    ae_code: Literal["logits", "softmax"] = Field(
        "softmax", description="H^(L), the encoder output the decoder, Q and the last fusion use: after the K-d "
        "layer's softmax (3.3.1: 'via the encoder (with softmax operation)'; the released code) or before it "
        "(logits, SDCN's linear bottleneck: with L_re the head stays uniform, docs/methods/iciclegcn.md)")
    cluster_head: Literal["autoencoder", "mlp"] = Field(
        "autoencoder", description="mlp = CC's cluster projector instead of the auto-encoder (Table 5, 'without "
        "GCNs and AE'; needs stage2: false)")
    use_instance_loss: bool = Field(True, description="L_CIS (Table 4 switch)")
    use_cluster_loss: bool = Field(True, description="L_CCS (Table 4 switch)")
    use_reconstruction_loss: bool = Field(True, description="L_re (kept in every Table 4 row)")
    reconstruction_reduction: Literal["sum", "mean"] = Field(
        "sum", description="L_re and eq. (11) per row: sum: the squared error summed over the d features (eqs. 6 "
        "and 11, ||z - z_hat||^2 / N); mean: averaged over them as well (the released code's F.mse_loss, 1/d of it)")
    cluster_loss_views: Literal["a_b", "a_a"] = Field(
        "a_b", description="a_b: eq. (4)'s two views; a_a: the released code's bug (both cluster views from view a)")
    stage1_from: str | None = Field(
        None, description="skip stage 1: a stage-1 checkpoint file, or a run folder (data/<profile>/runs/<run>) "
        "whose seed-<s>/checkpoints/stage1-epoch<epochs>.pt is used; its settings must equal this run's")
    backbone_from: str | None = Field(
        None, description="initialise the backbone and instance projector from a CC checkpoint file, or a cc run "
        "folder whose seed-<s>/checkpoints/cc-epoch1000.pt is used (the released code starts from CC(1000))")
    # --- stage 2 (M-GCN) ---
    stage2: bool = Field(True, description="false: clusters = argmax of the stage-1 cluster head (Table 5 rows)")
    stage2_features: Literal["augmented", "resized"] = Field(
        "augmented", description="Z^b from one random augmentation of each image (3.4.1) or from the resized image "
        "(CC's test transform)")
    knn_sizes: list[int] = Field([1, 10], max_length=2, description="k of each GCN stream's graph (3.5: 1 and 10; "
                                 "released code: 1 and 15); one entry = single GCN (Table 6), none = no GCNs (Table 5)")
    heat_t: float = Field(1.0, gt=0, description="t of the heat kernel S = exp(-||z_i - z_j||^2 / t) (eq. 8)")
    edge_weights: Literal["heat", "binary"] = Field(
        "heat", description="kNN edges weighted by S (eq. 8) or 1 (SDCN's graphs)")
    fusion_sigma: float = Field(0.4, ge=0, le=1, description="sigma of eqs. 15-16 (released code: 0.5)")
    fusion_gamma: float = Field(0.2, ge=0, le=1, description="gamma of eqs. 15-16")
    alpha: float = Field(0.1, ge=0, description="weight of KL(P||Q) (tuned in {0.01, 0.05, 0.1}; fixed here)")
    beta: float = Field(0.1, ge=0, description="weight of KL(P||G_a)")
    eta: float = Field(0.1, ge=0, description="weight of KL(P||G_b)")
    student_t_dof: float = Field(1.0, gt=0, description="degrees of freedom of Q (eq. 20)")
    gcn_iterations: int = Field(200, ge=0, description="N_it, full-batch stage-2 updates (not stated; SDCN's 200)")
    gcn_lr: float = Field(1e-4, gt=0, description="Adam learning rate of stage 2")
    gcn_stream_lr: float | None = Field(
        None, gt=0, description="learning rate of the GCN streams alone (the auto-encoder and centres keep gcn_lr); "
        "empty = gcn_lr, the paper's one Adam at 1e-4. A fresh 5-layer GCN at 1e-4 stays near uniform for hundreds "
        "of iterations (docs/methods/iciclegcn.md, 'Stage 2 on the CPU row')")
    target_update_every: int = Field(1, ge=1, description="iterations between recomputations of P (Algorithm 1: 1)")
    kmeans_n_init: int = Field(20, ge=1, description="k-means restarts for the centres of Q")
    predict: Literal["auto", "gcn_mean", "gcn_a", "gcn_b", "q"] = Field(
        "auto", description="clusters from: mean of the GCNs' softmaxes (auto when there are GCNs), one stream, or Q")

    @model_validator(mode="after")
    def _consistent(self):
        if any(k < 1 for k in self.knn_sizes):
            raise ValueError(f"knn_sizes must be >= 1, got {self.knn_sizes}")
        if len(self.knn_sizes) == 2 and self.knn_sizes[0] == self.knn_sizes[1]:
            raise ValueError(f"knn_sizes: the two scales must differ (k_a != k_b), got {self.knn_sizes}")
        if self.fusion_sigma + self.fusion_gamma > 1:
            raise ValueError(f"fusion_sigma + fusion_gamma must be <= 1, got {self.fusion_sigma + self.fusion_gamma}")
        if self.cluster_head == "mlp" and self.stage2:
            raise ValueError("cluster_head: mlp has no auto-encoder for M-GCN; set stage2: false")
        if self.cluster_head == "mlp" and self.use_reconstruction_loss:
            raise ValueError("cluster_head: mlp reconstructs nothing; set use_reconstruction_loss: false")
        streams = len(self.knn_sizes)
        if self.predict in ("gcn_mean", "gcn_a") and streams < 1 or self.predict == "gcn_b" and streams < 2:
            raise ValueError(f"predict: {self.predict} needs that many GCN streams; knn_sizes = {self.knn_sizes}")
        if not (self.use_instance_loss or self.use_cluster_loss or self.use_reconstruction_loss):
            raise ValueError("use_instance_loss, use_cluster_loss and use_reconstruction_loss are all false: "
                             "stage 1 has nothing to train")
        return self


# Settings stage 1's weights depend on (its fingerprint; stage-2 settings may change freely).
STAGE1_FIELDS = set(ContrastiveConfig.model_fields) | {
    "ae_hidden", "ae_code", "cluster_head", "use_instance_loss", "use_cluster_loss", "use_reconstruction_loss",
    "reconstruction_reduction", "cluster_loss_views", "backbone_from"}


# --- networks ----------------------------------------------------------------------------------

class AutoEncoder(nn.Module):
    """JC-SLIM's auto-encoder d-500-500-2000-K (ReLU hidden layers, eq. 9) and its mirror decoder (eq. 10)."""

    def __init__(self, d_in: int, hidden: list[int], n_clusters: int, code: str = "logits"):
        super().__init__()
        dims = [d_in, *hidden, n_clusters]
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        back = dims[::-1]
        self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(back[:-1], back[1:]))
        self.code = code

    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """([H^(1), ..., H^(L)], softmax of the K-d layer); H^(L) per ``code``."""
        layers = []
        h = x
        for i, layer in enumerate(self.encoder):
            h = layer(h)
            if i < len(self.encoder) - 1:
                h = F.relu(h)
            layers.append(h)
        probs = torch.softmax(h.float(), dim=1)
        if self.code == "softmax":
            layers[-1] = probs
        return layers, probs

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        h = code
        for i, layer in enumerate(self.decoder):
            h = layer(h)
            if i < len(self.decoder) - 1:
                h = F.relu(h)
        return h


class Stage1Network(nn.Module):
    """Backbone + ISM's instance projector + JC-SLIM's auto-encoder (or CC's cluster projector)."""

    def __init__(self, config: Config, n_clusters: int):
        super().__init__()
        self.backbone, rep_dim = build_backbone(config.backbone)
        self.rep_dim = rep_dim
        self.instance_projector = mlp_head(rep_dim, config.feature_dim)
        if config.cluster_head == "autoencoder":
            self.autoencoder = AutoEncoder(rep_dim, config.ae_hidden, n_clusters, config.ae_code)
        else:
            self.cluster_projector = mlp_head(rep_dim, n_clusters)

    def forward(self, x: torch.Tensor):
        """(backbone features, instance features, cluster probabilities, reconstruction or None)."""
        h = self.backbone(x)
        z = self.instance_projector(h)
        if hasattr(self, "autoencoder"):
            layers, probs = self.autoencoder.encode(h)
            return h, z, probs, self.autoencoder.decode(layers[-1])
        return h, z, torch.softmax(self.cluster_projector(h).float(), dim=1), None


def reconstruction_loss(features: torch.Tensor, reconstruction: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """(1/N) sum_i ||z_i - z_hat_i||^2 (eqs. 6 and 11: squared Frobenius norm over the rows' count);
    ``mean`` also divides by the d features (the released code's F.mse_loss)."""
    per_row = ((features.float() - reconstruction.float()) ** 2).sum(1)
    return per_row.mean() / (features.shape[1] if reduction == "mean" else 1)


def stage1_loss(config: Config):
    def loss(model: Stage1Network, xa: torch.Tensor, xb: torch.Tensor):
        ha, za, pa, ra = model(xa)
        hb, zb, pb, rb = model(xb)
        total = torch.zeros((), device=xa.device)
        parts = {}
        if config.use_instance_loss:
            cis = contrastive.nt_xent(za.float(), zb.float(), config.instance_temperature, config.self_in_denominator)
            total = total + cis
            parts["instance_loss"] = float(cis.detach())
        if config.use_cluster_loss:
            other = pa if config.cluster_loss_views == "a_a" else pb
            ccs = contrastive.cluster_contrastive_loss(pa, other, config.cluster_temperature, config.entropy_weight,
                                                       config.self_in_denominator)
            total = total + ccs.total
            parts["cluster_loss"] = float(ccs.contrastive.detach())
            parts["entropy"] = float((ccs.entropy_a + ccs.entropy_b).detach()) / 2
        if config.use_reconstruction_loss:
            # eq. (6): (1/2N) sum over both views = the mean over the 2N rows
            rec = reconstruction_loss(torch.cat([ha, hb]), torch.cat([ra, rb]), config.reconstruction_reduction)
            total = total + rec
            parts["reconstruction_loss"] = float(rec.detach())
        return total, parts
    return loss


# --- M-GCN ---------------------------------------------------------------------------------------

def heat_kernel_graph(features: np.ndarray, k: int, t: float = 1.0, weights: str = "heat") -> sp.csr_matrix:
    """Symmetric kNN adjacency A with A_ij = exp(-||z_i - z_j||^2 / t) (eq. 8) on the k nearest
    neighbours of each row (faiss, self excluded); an edge found from either side is kept."""
    g = graphs.knn(np.asarray(features, np.float32), k, label="the backbone features", setting="knn_sizes")
    # graphs.heat_kernel is exp(-d^2 / (2 sigma^2)): t = 2 sigma^2
    w = graphs.heat_kernel(g.distances, sigma=math.sqrt(t / 2)) if weights == "heat" else np.ones(g.distances.shape)
    # Weights below float32's smallest normal number are zero for the GCN, and as subnormals they
    # would slow every sparse product by orders of magnitude: drop those edges.
    w = np.where(w < np.finfo(np.float32).tiny, 0.0, w)
    a = graphs.to_sparse(g.indices, w)
    a = a.maximum(a.T).tocsr()
    a.eliminate_zeros()
    return a


def normalized_adjacency(a: sp.spmatrix) -> sp.csr_matrix:
    """D~^(-1/2) (A + I) D~^(-1/2) with D~_ii = sum_j (A + I)_ij (eqs. 12-13)."""
    a_tilde = sp.csr_matrix(a) + sp.identity(a.shape[0], format="csr")
    d = np.asarray(a_tilde.sum(1)).ravel()
    inv_sqrt = sp.diags(1.0 / np.sqrt(d))
    return (inv_sqrt @ a_tilde @ inv_sqrt).tocsr()


def sparse_tensor(a: sp.spmatrix, device) -> torch.Tensor:
    coo = sp.coo_matrix(a)
    index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(index, torch.from_numpy(coo.data.astype(np.float32)), coo.shape,
                                   check_invariants=True).coalesce().to(device)


class GCNLayer(nn.Module):
    """G' = Phi(A_hat G W) (eq. 14) with a sparse (or dense) normalised adjacency; no bias, as SDCN."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_in, d_out))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor, activate: bool = True) -> torch.Tensor:
        support = x @ self.weight
        out = torch.sparse.mm(adjacency, support) if adjacency.is_sparse else adjacency @ support
        return F.relu(out) if activate else out


def fuse(own: torch.Tensor, other: torch.Tensor | None, encoder: torch.Tensor, sigma: float,
         gamma: float) -> torch.Tensor:
    """Eqs. (15)-(16): sigma G_own + gamma G_other + (1 - sigma - gamma) H. With one stream (Table 6's
    single GCN) the other stream's share goes to H: sigma G + (1 - sigma) H."""
    if other is None:
        return sigma * own + (1 - sigma) * encoder
    return sigma * own + gamma * other + (1 - sigma - gamma) * encoder


class MGCN(nn.Module):
    """The trident network: the pretrained auto-encoder and 0-2 GCN streams of 5 layers
    (d-500-500-2000-K-K, mirroring SDCN), fused layer-wise, plus the cluster centres of Q."""

    def __init__(self, autoencoder: AutoEncoder, d_in: int, hidden: list[int], n_clusters: int, streams: int,
                 sigma: float, gamma: float):
        super().__init__()
        self.autoencoder = autoencoder
        dims = [d_in, *hidden, n_clusters, n_clusters]
        if len(dims) - 1 != GCN_LAYERS and streams:
            print(f"iciclegcn: ae_hidden {hidden} gives {len(dims) - 1} GCN layers (the paper's 5 need 3 hidden "
                  "widths)", file=sys.stderr)
        self.streams = nn.ModuleList(nn.ModuleList(GCNLayer(a, b) for a, b in zip(dims[:-1], dims[1:]))
                                     for _ in range(streams))
        self.centres = nn.Parameter(torch.zeros(n_clusters, n_clusters))
        self.sigma, self.gamma = sigma, gamma

    def forward(self, z: torch.Tensor, adjacencies: list[torch.Tensor]):
        """(encoder output H^(L), reconstruction, [softmax G_u^s per stream])."""
        layers, _ = self.autoencoder.encode(z)
        reconstruction = self.autoencoder.decode(layers[-1])
        if not self.streams:
            return layers[-1], reconstruction, []
        g = [stream[0](z, adj) for stream, adj in zip(self.streams, adjacencies)]   # eq. (18)
        depth = len(self.streams[0])
        for layer in range(1, depth):
            h = layers[layer - 1]
            if len(g) == 2:
                fused = [fuse(g[0], g[1], h, self.sigma, self.gamma), fuse(g[1], g[0], h, self.sigma, self.gamma)]
            else:
                fused = [fuse(g[0], None, h, self.sigma, self.gamma)]
            g = [stream[layer](f, adj, activate=layer < depth - 1)
                 for stream, f, adj in zip(self.streams, fused, adjacencies)]
        return layers[-1], reconstruction, [torch.softmax(x, dim=1) for x in g]   # eq. (19)


def student_t(h: torch.Tensor, centres: torch.Tensor, dof: float = 1.0) -> torch.Tensor:
    """Q of eq. (20): q_ij proportional to (1 + ||h_i - mu_j||^2 / v)^(-(v + 1) / 2)."""
    d2 = ((h.unsqueeze(1) - centres.unsqueeze(0)) ** 2).sum(2)
    q = (1.0 + d2 / dof) ** (-(dof + 1.0) / 2.0)
    return q / q.sum(1, keepdim=True)


def target_distribution(q: torch.Tensor) -> torch.Tensor:
    """P of eqs. (21)-(22): p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j'), f_j = sum_i q_ij."""
    weight = q ** 2 / q.sum(0)
    return weight / weight.sum(1, keepdim=True)


def clusters_used(probs: torch.Tensor) -> int:
    """How many clusters the argmax of a distribution assigns at least one row to (label-free)."""
    return int(torch.unique(probs.detach().argmax(1)).numel())


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(P||Q) = sum_ij p_ij log(p_ij / q_ij), divided by N (SDCN's batchmean; eqs. 23-25 omit the 1/N)."""
    return F.kl_div(torch.log(q.clamp_min(1e-12)), p, reduction="batchmean")


# --- stage 1 -------------------------------------------------------------------------------------

def _stage1_file(config: Config, seed: int) -> Path:
    path = Path(config.stage1_from)
    if path.is_dir():
        path = path / f"seed-{seed}" / "checkpoints" / f"stage1-epoch{config.epochs}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"stage1_from: no stage-1 checkpoint at {path} (run the stage-1 run with the same "
                                f"epochs ({config.epochs}) and seed first)")
    return path


def _load_stage1(model: Stage1Network, config: Config, fingerprint: dict, seed: int) -> dict:
    path = _stage1_file(config, seed)
    state = checkpoints.load(path, fix="re-run the stage-1 run that wrote it (or drop stage1_from)")
    theirs = state.get("fingerprint", {})
    differ = sorted(k for k in set(theirs.get("settings", {})) | set(fingerprint["settings"])
                    if theirs.get("settings", {}).get(k) != fingerprint["settings"].get(k))
    differ += [k for k in ("seed", "n_clusters", "data") if theirs.get(k) != fingerprint.get(k)]
    if differ:
        raise ValueError(f"stage1_from: {path} was trained with other {', '.join(differ)}; its stage-1 settings "
                         "must equal this run's")
    model.load_state_dict(state["model"])
    return state


def _init_backbone_from(model: Stage1Network, path: str, seed: int = 0) -> None:
    file = Path(path)
    if file.is_dir():  # a cc run folder: this seed's CC(1000) (the released code's starting point)
        file = file / f"seed-{seed}" / "checkpoints" / "cc-epoch1000.pt"
    if not file.is_file():
        raise FileNotFoundError(f"backbone_from: no CC checkpoint at {file}")
    weights = checkpoints.load(file, fix="re-run the cc run that wrote it (or drop backbone_from)")["model"]
    own = model.state_dict()
    take = {k: v for k, v in weights.items() if k.startswith(("backbone.", "instance_projector.")) and k in own}
    if not any(k.startswith("backbone.") for k in take):
        raise ValueError(f"backbone_from: {file} holds no backbone weights of this backbone")
    own.update(take)
    model.load_state_dict(own)


def train_stage1(ctx: RunContext, config: Config, images: torch.Tensor) -> tuple[Stage1Network, list[dict], dict]:
    """Stage 1 trained here (resumable), or loaded from ``stage1_from``."""
    torch.manual_seed(ctx.seed)
    model = Stage1Network(config, ctx.n_clusters).to(ctx.device)
    fingerprint = training_fingerprint(config, ctx, images, code=code_fingerprint(sys.modules[__name__]))
    fingerprint["settings"] = {k: v for k, v in fingerprint["settings"].items() if k in STAGE1_FIELDS}
    if config.stage1_from:
        state = _load_stage1(model, config, fingerprint, ctx.seed)
        return model, list(state.get("history", [])), {"stage1_from": str(_stage1_file(config, ctx.seed))}
    if config.backbone_from:
        _init_backbone_from(model, config.backbone_from, ctx.seed)
    trainer = make_trainer(config, ctx, model, stage1_loss(config), images.shape[-1], "stage1", fingerprint,
                           keep_epochs=tuple(sorted(set(config.keep_checkpoints) | {config.epochs})))
    history = trainer.fit(images)
    return model, history, {"resumed_from_epoch": trainer.resumed_from}


# --- stage 2 -------------------------------------------------------------------------------------

@torch.no_grad()
def backbone_features(model: Stage1Network, images: torch.Tensor, config: Config, seed: int, device) -> torch.Tensor:
    """Z^b: the backbone's features of every image, augmented once (3.4.1) or only resized."""
    model.eval()
    if config.stage2_features == "resized":
        return forward_all(model.backbone, images, config.image_size, config.eval_batch_size, device)[0]
    generator = torch.Generator().manual_seed(seed + 1)  # a stream apart from stage 1's augmentations
    spec = config.augment_spec(images.shape[-1])
    out = []
    for start in range(0, len(images), config.eval_batch_size):
        batch = images[start:start + config.eval_batch_size]
        x = contrastive.augment(batch.to(device) if config.augment_on == "device" else batch, spec, generator)
        out.append(model.backbone(x.to(device)).float().cpu())
    return torch.cat(out)


def train_stage2(ctx: RunContext, config: Config, model: Stage1Network, images: torch.Tensor):
    from sklearn.cluster import KMeans

    device = ctx.device
    z_np = backbone_features(model, images, config, ctx.seed, device).numpy()
    adjacencies = [sparse_tensor(normalized_adjacency(heat_kernel_graph(z_np, k, config.heat_t, config.edge_weights)),
                                 device) for k in config.knn_sizes]
    z = torch.from_numpy(z_np).to(device)
    torch.manual_seed(ctx.seed)
    net = MGCN(model.autoencoder, model.rep_dim, config.ae_hidden, ctx.n_clusters, len(config.knn_sizes),
               config.fusion_sigma, config.fusion_gamma).to(device)
    with torch.no_grad():
        code = net.autoencoder.encode(z)[0][-1].float().cpu().numpy()
    km = KMeans(ctx.n_clusters, n_init=config.kmeans_n_init, random_state=ctx.seed).fit(code)
    with torch.no_grad():
        net.centres.copy_(torch.from_numpy(km.cluster_centers_.astype(np.float32)))
    streams = list(net.streams.parameters())
    rest = [p for p in net.parameters() if all(p is not q for q in streams)]
    optimizer = torch.optim.Adam([{"params": rest}, {"params": streams, "lr": config.gcn_stream_lr or config.gcn_lr}],
                                 lr=config.gcn_lr)
    weights = [config.beta, config.eta]
    history, p = [], None
    for it in range(config.gcn_iterations):
        net.train()
        h, reconstruction, gcn_probs = net(z, adjacencies)
        q = student_t(h.float(), net.centres, config.student_t_dof)
        if p is None or it % config.target_update_every == 0:
            p = target_distribution(q).detach()
        rec = reconstruction_loss(z, reconstruction, config.reconstruction_reduction)
        kl_q = kl_divergence(p, q)
        kl_g = [kl_divergence(p, g) for g in gcn_probs]
        loss = rec + config.alpha * kl_q + sum(w * kl for w, kl in zip(weights, kl_g))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if it % 10 == 0 or it == config.gcn_iterations - 1:
            value = lambda t: round(float(t.detach()), 6)  # noqa: E731
            # "m_gcn_loss", not "loss": the figures' loss curve is per stage-1 epoch
            # Label-free health of the GCNs: a fresh GCN's softmax is near uniform and its argmax
            # uses a few clusters by chance; until KL(P||G) has fallen, "clusters used" says so.
            used = {f"g{i}_clusters_used": clusters_used(g) for i, g in enumerate(gcn_probs)}
            row = {"stage": 2, "iteration": it + 1, "m_gcn_loss": value(loss), "reconstruction": value(rec),
                   "kl_q": value(kl_q), **{f"kl_g{i}": value(v) for i, v in enumerate(kl_g)},
                   "q_clusters_used": clusters_used(q), **used}
            history.append(row)
            ctx.log(row)
    net.eval()
    with torch.no_grad():
        h, _, gcn_probs = net(z, adjacencies)
        q = student_t(h.float(), net.centres, config.student_t_dof)
    choice = config.predict if config.predict != "auto" else ("gcn_mean" if gcn_probs else "q")
    probs = {"q": q, "gcn_a": gcn_probs[0] if gcn_probs else None,
             "gcn_b": gcn_probs[1] if len(gcn_probs) > 1 else None,
             "gcn_mean": torch.stack(gcn_probs).mean(0) if gcn_probs else None}[choice]
    extra = {"predict": choice, "graph_edges": [int(a._nnz()) for a in adjacencies],
             "kmeans_inertia": float(km.inertia_)}
    return probs.cpu().numpy(), h.float().cpu().numpy(), history, extra


def memory_costs(config: Config, images_shape: tuple[int, ...], device, n_clusters: int) -> list[resources.Cost]:
    """CC's costs (cc.memory_costs) plus IcicleGCN's own, sized by ``ae_hidden``: the autoencoder
    (encoder and mirrored decoder) and the GCN streams with gradients and Adam state, their
    activations in a stage-1 step, and stage 2's full-batch pass over all N rows (every layer of
    the autoencoder's encoder and decoder, of each stream and its fusion, and their gradients)."""
    n = images_shape[0]
    rep = BACKBONE_DIM[config.backbone]
    dims = [rep, *config.ae_hidden, n_clusters]
    layer_weights = sum(a * b for a, b in zip(dims[:-1], dims[1:]))
    streams = len(config.knn_sizes)
    if config.cluster_head == "autoencoder":
        heads = rep * rep + rep * config.feature_dim
    else:
        heads = 2 * rep * rep + rep * (config.feature_dim + n_clusters)
    costs = contrastive_costs(config, images_shape, device, heads)
    ae = (("ae_hidden", list(config.ae_hidden)),)
    width = sum(dims)
    if config.cluster_head == "autoencoder" or config.stage2:
        costs.append(resources.Cost("the autoencoder with gradients and Adam state", 2 * layer_weights * 4 * 4, ae))
    if config.cluster_head == "autoencoder":  # two views, encoder and decoder, with gradients
        costs.append(resources.Cost("the autoencoder's activations in a stage-1 step",
                                    2 * min(config.batch_size, n) * width * 2 * 4 * 3, ae))
    if config.stage2:
        costs.append(resources.Cost("the GCN streams with gradients and Adam state",
                                    streams * (layer_weights + n_clusters * n_clusters) * 4 * 4, ae))
        costs.append(resources.Cost(f"stage 2's full-batch pass over {n:,} rows",
                                    n * width * 4 * (2 + 2 * streams) * 2 + n * max(config.knn_sizes or [0]) * 24 * 2,
                                    ae))
    return costs


def fit_predict(ctx: RunContext, config: Config) -> Result:
    set_threads(config)
    images = view_images(ctx)
    resources.check_costs("iciclegcn", memory_costs(config, tuple(images.shape), ctx.device, ctx.n_clusters),
                          ctx.device)
    start = time.perf_counter()
    model, history, extra = train_stage1(ctx, config, images)
    extra["stage1_s"] = round(time.perf_counter() - start, 3)
    if not config.stage2:
        model.eval()
        probs, = forward_all(lambda x: model(x)[2], images, config.image_size, config.eval_batch_size, ctx.device)
        labels = probs.argmax(1).numpy().astype(np.int64)
        embedding = probs.numpy()
        extra["predict"] = "stage1_cluster_head"
    else:
        start = time.perf_counter()
        probs, embedding, history2, extra2 = train_stage2(ctx, config, model, images)
        history = [*history, *history2]
        extra.update(extra2, stage2_s=round(time.perf_counter() - start, 3))
        labels = probs.argmax(1).astype(np.int64)
    extra.update(params=count_parameters(model), clusters_used=int(len(np.unique(labels))))
    return Result(labels=labels, embedding=np.asarray(embedding, np.float32), history=history, extra=extra)

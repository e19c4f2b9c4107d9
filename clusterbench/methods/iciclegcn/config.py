"""IcicleGCN's settings (``methods.iciclegcn``, on top of CC's): each reading the paper leaves
open is a switch with its sentence, explained in docs/methods/iciclegcn.md.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..cc import ContrastiveConfig


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

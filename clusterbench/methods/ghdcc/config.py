"""GHDCC's settings (``methods.ghdcc``, on top of CC's): each reading the surviving text leaves
open is a switch, explained in docs/methods/ghdcc.md.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from .. import contrastive
from ..cc import ContrastiveConfig


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

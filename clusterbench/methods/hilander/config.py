"""Hi-LANDER's settings (``methods.hilander``): the DGL example's defaults, each difference a
switch, explained in docs/methods/hilander.md.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .. import MethodConfig


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

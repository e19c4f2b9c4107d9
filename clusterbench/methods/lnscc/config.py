"""LNSCC's settings (``methods.lnscc``): each reading the paper leaves open is a switch,
explained in docs/methods/lnscc.md.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .. import MethodConfig


TASK = "clustering"

# Pair kinds in the augmented dataset (column "kind" of the pair table).
IM_POS, IM_NEG, BA, DIS = 0, 1, 2, 3
KIND_NAMES = ("im+", "im-", "ba", "dis")


class Config(MethodConfig):
    epochs: int = Field(10, ge=1, description="most passes over the augmented pair dataset "
                        "E^{im+} + E^{im-} + E^{ba} + E^{dis} (the paper gives no number)")
    plateau_tol: float | None = Field(0.01, ge=0, description="stop once the epoch-mean contrastive loss "
                                      "changes by less than this fraction (None: always run all epochs)")
    stop_changed: float | None = Field(0.01, ge=0, le=1, description="stop after an epoch in which fewer than this "
                                       "share of the snapshot rows changed cluster (argmax U), as DEC's tolerance; "
                                       "label-free (None: only the plateau rule and the epoch cap stop training)")
    min_epochs: int = Field(2, ge=1, description="epochs run before the plateau or the settled rule may stop training")
    n_neighbors: int = Field(10, ge=1, description="M, neighbours per sample (70 for REUTERS-10K)")
    encoder_dims: tuple[int, ...] = Field((500, 500, 2000), min_length=1)
    embedding_dim: int = Field(64, ge=1, description="dimension of Z")
    head_hidden: int = Field(32, ge=0, description="hidden units of the clustering head (0: one linear layer)")
    head: Literal["mlp", "dec"] = Field(
        "mlp", description="the clustering head: mlp = Z -> head_hidden (ReLU) -> K -> softmax (section 3.3, the paper); "
        "dec = Student-t assignment U_ik ~ (1 + |Z_i - mu_k|^2)^-1 to K centres set by k-means on Z of every training "
        "row when L_clu starts (after clu_start_epoch epochs), then trained by eq. 18 (the released code's head, "
        "as DEC; a deviation, docs/methods/lnscc.md)")
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    batch_size: int = Field(200, ge=1, description="sample pairs per SGD step")
    alpha: float = Field(2.0, gt=0, description="over-sampling balance of Q^{im+} (eq. 6)")
    beta: float = Field(5.0, ge=0, allow_inf_nan=False, description="|E^{dis}| = beta |E^{im+}| (eq. 16)")
    gamma: float = Field(1.0, ge=0, description="weight of the cluster-balance term (eq. 18)")
    delta: float = Field(0.05, ge=0, description="eta = min(delta n_i, xi) (eq. 19)")
    xi: float = Field(5.0, ge=0)
    use_im: bool = Field(True, description="L_im on (Table 4 ablation switch)")
    use_im_neg: bool = Field(True, description="E^{im-} on (off: L_im attracts only; a diagnostic, in no paper table)")
    use_ba: bool = Field(True, description="L_ba on (Table 4 ablation switch)")
    use_dis: bool = Field(True, description="L_dis on (Table 4 ablation switch)")
    use_clu: bool = Field(True, description="L_clu on; off leaves argmax U of an untrained head")
    eta_unit: Literal["iteration", "epoch"] = Field(
        "iteration", description="what n_i counts in eta = min(delta n_i, xi); the paper: 'i-th iteration'")
    batching: Literal["union", "per_set"] = Field(
        "per_set", description="union: batches cut from the shuffled union of the pair sets (each set's share of "
        "a batch is its share of the data); per_set: batch_size pairs from every set per step")
    reduction: Literal["mean", "sum"] = Field(
        "mean", description="contrastive sums of eqs. 9/13/17 divided by the batch size (mean) or not")
    log_eps: float = Field(1e-4, gt=0, lt=1, description="log(1 - O) is computed as log(max(1 - O, log_eps))")
    max_copies: int | None = Field(1000, ge=1, description="cap on the copies of one edge in each of E^{im+}, "
                                   "E^{im-}, E^{ba}: Q = min(Q, max_copies); Q^{im+} grows without bound as A -> 1 "
                                   "and Q^{im-} as A -> 0 (None: no cap)")
    max_pairs: int = Field(20_000_000, ge=1, description="refuse (DataError) a view whose pair sets "
                           "|E^{im+}| + |E^{im-}| + |E^{ba}| + |E^{dis}| (one epoch) exceed this, before allocating them")
    distance: Literal["euclidean", "squared"] = Field(
        "squared", description="d in O = exp(-d(Z_i, Z_j)) (eq. 4): the Euclidean distance or its square")
    similarity: Literal["exponential", "umap"] = Field(
        "exponential", description="O of eq. 4: exponential = exp(-d) (the paper); umap = 1 / (1 + a |Z_i - Z_j|^(2b)), "
        "a = 1.896, b = 0.8006 (UMAP's curve for min_dist 0, the released code's kernel; `distance` then does not "
        "apply). A deviation from the paper, for the diagnosis in docs/methods/lnscc.md")
    clu_start_epoch: int = Field(0, ge=0, description="epochs trained with eta = 0 before L_clu starts; eta's n_i "
                                 "then counts from there (0: the paper, L_clu from the first step; the released code "
                                 "starts its head after 15,000 iterations). A deviation, for the diagnosis")
    graph_distance_unit: float | Literal["median", "auto"] = Field(
        "auto", description="D is divided by this before W = softmax(-D) (eq. 1). 'auto': 1 when every kNN edge "
        "already gets at least one E^{im+} copy (alpha A_max >= 1 - A_min), else the largest unit 2^(-k/4) at "
        "which it does; 'median': the median M-NN distance (A independent of the features' units); a number: "
        "that unit (1.0: D as the view gives it)")
    resample_dis: Literal["epoch", "once"] = Field(
        "epoch", description="draw a fresh E^{dis} every epoch, or once before training")
    steps_per_epoch: int | None = Field(None, ge=1, description="cap on SGD steps per epoch (smoke runs)")
    step_impl: Literal["fast", "legacy"] = Field(
        "fast", description="fast: the epoch's pair table lives on the device, per-kind sums by index_add, no "
        "host sync per step; legacy: the original per-step NumPy batch code (same losses; kept for benchmarks)")
    encoder_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="precision of the encoder's matrix products (torch autocast; weights, Z, losses "
        "and the optimiser stay float32). auto: bfloat16 on a GPU, float32 on the CPU — CPU bfloat16 is ~2x "
        "faster only with AMX / AVX512-BF16 units, ~10x slower without them, and its rounding depends on the "
        "CPU's instruction set, so the same seed gives other clusters on another machine (docs/methods/lnscc.md)")
    sgd_kernel: Literal["fused", "foreach"] = Field(
        "fused", description="torch's SGD implementation for the fast step: one fused kernel per parameter group "
        "(fused) or the multi-tensor one (foreach); the same update with a different rounding order (legacy: for-loop)")
    fit_split: Literal["all", "train"] = Field(
        "all", description="rows the model is trained on; 'train' = SCAN's protocol (Table 3)")
    eval_split: Literal["all", "test"] = Field(
        "all", description="rows that are labelled and scored; 'test' = SCAN's validation split")
    torch_threads: int | None = Field(None, ge=1, description="CPU threads for torch (None: torch's default); "
                                      "1 is fastest on a machine shared with other jobs")
    progress_snapshots: bool = Field(True, description="keep Z and argmax U of some rows at steps 0, 0.1, 0.25 "
                                     "and 0.5 epoch and after epochs 1, 2, 4, 8, ... and the last (Figure 5)")
    snapshot_rows: int = Field(2000, ge=10, description="rows kept in each snapshot")

    @model_validator(mode="after")
    def _positive_unit(self):
        if not isinstance(self.graph_distance_unit, str) and not self.graph_distance_unit > 0:
            raise ValueError(f"graph_distance_unit must be > 0, 'auto' or 'median', got {self.graph_distance_unit}")
        if self.encoder_dtype == "bfloat16" and self.step_impl == "legacy":
            raise ValueError("encoder_dtype bfloat16 needs step_impl: fast")
        return self

    @model_validator(mode="after")
    def _something_to_learn(self):
        if not (self.use_im or self.use_ba or self.use_dis):
            raise ValueError("use_im, use_ba and use_dis are all false: no contrastive loss is left to train Z")
        return self

"""LNSCC: Locally Normalized Soft Contrastive Clustering (Ma & Kim, IJCAI 2022), as the paper states it.

Pipeline (equation numbers are the paper's):

1. Locally normalised kNN graph: D = distances to the M nearest neighbours, W = row-wise
   softmax(-D) (1), directed W_hat, symmetric A = W_hat + W_hat^T - W_hat o W_hat^T (2), sparse.
2. Quantity augmentation (QA): every undirected edge (i, j) of A is repeated
   Q^{im+} = floor(alpha A_max / (1 - A_ij)) times in E^{im+}, Q^{im-} = floor((1 - A)_max / A_ij)
   times in E^{im-} (6-8) and Q^{ba} = floor(A_ij / A_mean) times in E^{ba} (11-12); E^{dis} holds
   beta |E^{im+}| random disconnected pairs (A_ij = 0) (14-16). Max and mean run over the edges;
   every Q is capped at ``max_copies`` and the total is checked against ``max_pairs`` before
   anything is allocated (eq. 6 is unbounded as A -> 1 or A -> 0).
3. An MLP encoder maps X to Z; O_ij = exp(-||Z_i - Z_j||) (4). Losses over a batch of pairs drawn
   from the union of the four pair sets: L_im (9), L_ba (13), L_dis (17).
4. A clustering head (FC + softmax) gives U; L_clu = KL(V || U) + gamma sum_k Ubar_k log Ubar_k
   with V the squared-and-normalised target (18); L = L_im + L_ba + L_dis + eta L_clu,
   eta = min(delta n_i, xi) (19). Final labels: argmax of U.

Choices the paper leaves open are options of ``Config`` and are explained in docs/methods/lnscc.md.
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
from .. import graphs

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


# --- locally normalised graph and quantity augmentation (pure NumPy, unit-tested) ---------------

def locally_normalised_graph(indices: np.ndarray, distances: np.ndarray) -> sp.csr_matrix:
    """A of eq. (2) from the M-NN lists: W = softmax(-D) per row (eq. 1), fuzzy union of W_hat."""
    weights = graphs.local_softmax(distances)
    return graphs.fuzzy_union(graphs.to_sparse(indices, weights))


def undirected_edges(a: sp.spmatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each edge of the symmetric A once, as (i, j, A_ij) with i < j (O_ij is symmetric)."""
    upper = sp.triu(sp.csr_matrix(a), k=1).tocoo()
    keep = upper.data > 0
    order = np.lexsort((upper.col[keep], upper.row[keep]))
    return (upper.row[keep][order].astype(np.int64), upper.col[keep][order].astype(np.int64),
            upper.data[keep][order].astype(np.float64))


def _floor(x: np.ndarray) -> np.ndarray:
    # A ratio that is an integer in exact arithmetic (e.g. A_ij / A_mean = 2) may come out as
    # 1.9999999999999998; the relative slack keeps the floor where the paper's algebra puts it.
    return np.floor(np.minimum(x * (1.0 + 1e-9), float(2 ** 62))).astype(np.int64)


@dataclass
class QuantityAugmentation:
    im_pos: np.ndarray  # Q^{im+} per edge (eq. 6)
    im_neg: np.ndarray  # Q^{im-} per edge (eq. 6)
    ba: np.ndarray  # Q^{ba} per edge (eq. 11)
    a_max: float
    one_minus_a_max: float
    a_mean: float


def quantity_augmentation(edge_weights: np.ndarray, alpha: float, s_floor: float = 1e-12,
                          max_copies: int | None = None) -> QuantityAugmentation:
    """QA counts per edge. A_max, (1 - A)_max and A_mean are taken over the graph's edges.

    ``s_floor`` keeps the divisions finite for an edge weight of exactly 1 (s^- = 0) and is far
    below any weight a softmax over M > 1 neighbours produces otherwise. ``max_copies`` caps
    every count (Q^{im+} -> inf as A -> 1, Q^{im-} -> inf as A -> 0); the ratios are computed in
    float64 and clipped before the cast, so no count overflows.
    """
    a = np.asarray(edge_weights, dtype=np.float64)
    if a.size == 0:
        raise ValueError("the locally normalised graph has no edges")
    if a.min() <= 0 or a.max() > 1 + 1e-12:
        raise ValueError(f"edge weights must lie in (0, 1], got [{a.min()}, {a.max()}]")
    s_pos, s_neg = a, 1.0 - a  # eq. (5)
    a_max, one_minus_a_max, a_mean = float(a.max()), float(s_neg.max()), float(a.mean())
    cap = float(max_copies) if max_copies is not None else float(2 ** 62)
    im_pos = _floor(np.minimum(alpha * a_max / np.maximum(s_neg, s_floor), cap))
    im_neg = _floor(np.minimum(one_minus_a_max / np.maximum(s_pos, s_floor), cap))
    ba = _floor(np.minimum(s_pos / a_mean, cap))  # eq. (10): s^+ = A
    return QuantityAugmentation(im_pos, im_neg, ba, a_max, one_minus_a_max, a_mean)


def augmented_pairs(i: np.ndarray, j: np.ndarray, qa: QuantityAugmentation, use_im: bool = True,
                    use_ba: bool = True, use_im_neg: bool = True) -> np.ndarray:
    """E^{im+}, E^{im-}, E^{ba} (eqs. 7, 8, 12) as one (P, 3) table of (i, j, kind)."""
    parts = []
    for kind, counts, on in ((IM_POS, qa.im_pos, use_im), (IM_NEG, qa.im_neg, use_im and use_im_neg),
                             (BA, qa.ba, use_ba)):
        if not on:
            continue
        rep_i, rep_j = np.repeat(i, counts), np.repeat(j, counts)
        parts.append(np.stack([rep_i, rep_j, np.full(len(rep_i), kind, np.int64)], axis=1))
    return np.concatenate(parts) if parts else np.empty((0, 3), np.int64)


def sample_disconnected(a: sp.spmatrix, n_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """n_pairs uniform random pairs (i, j), i != j, with A_ij = 0 (B_ij = 1, eq. 14), as (n, 2)."""
    n = a.shape[0]
    coo = sp.coo_matrix(a)
    linked = np.unique(np.concatenate([coo.row.astype(np.int64) * n + coo.col, coo.col.astype(np.int64) * n + coo.row]))
    n_disconnected = n * (n - 1) - len(linked)
    if n_pairs > 0 and n_disconnected <= 0:
        raise ValueError("every pair of samples is connected: there are no disconnected pairs for L_dis")
    out, have = [], 0
    while have < n_pairs:
        want = int((n_pairs - have) * 1.1) + 16
        cand = rng.integers(0, n, size=(want, 2), dtype=np.int64)
        keys = cand[:, 0] * n + cand[:, 1]
        ok = (cand[:, 0] != cand[:, 1]) & ~np.isin(keys, linked, assume_unique=False)
        cand = cand[ok][: n_pairs - have]
        out.append(cand)
        have += len(cand)
    return np.concatenate(out) if out else np.empty((0, 2), np.int64)


# --- losses (torch, unit-tested on hand-computed O) ---------------------------------------------

def pair_distance(zi, zj, squared: bool = False):
    """Euclidean d(Z_i, Z_j), differentiable at 0 (where the plain norm's gradient is NaN), or
    its square (``distance: squared``)."""
    import torch

    sq = ((zi - zj) ** 2).sum(dim=1)
    return sq if squared else torch.sqrt(sq + 1e-12)


def scaled_distances(distances: np.ndarray, unit: float | str) -> np.ndarray:
    """D / unit before eq. (1); ``"median"`` divides by the median M-NN distance. Unit 1 returns
    ``distances`` untouched (same dtype, so the QA floors are exactly today's)."""
    if not isinstance(unit, str) and unit == 1.0:
        return distances
    d = np.asarray(distances, dtype=np.float64)
    if unit == "median":
        med = float(np.median(d))
        if not med > 0:
            from ..checks import DataError

            raise DataError("lnscc: graph_distance_unit 'median' needs a positive median neighbour distance, "
                            f"got {med} (the view holds duplicate rows); use a number instead")
        return d / med
    return d / float(unit)


UMAP_A, UMAP_B = 1.896, 0.8006  # UMAP's find_ab_params(spread=1, min_dist=0)


def pair_energy(zi, zj, config: "Config"):
    """-log O_ij for the configured similarity, so that every loss term is written once in terms of
    it: the paper's O = exp(-d) gives d itself; UMAP's O = 1 / (1 + a s^b) (s = squared distance)
    gives log(1 + a s^b), and -log(1 - O) = -log(1 - exp(-energy)) holds for both."""
    import torch

    if config.similarity == "exponential":
        return pair_distance(zi, zj, config.distance == "squared")
    sq = ((zi - zj) ** 2).sum(dim=1).clamp_min(1e-6)  # s^b with b < 1 has an infinite slope at 0
    return torch.log1p(UMAP_A * sq ** UMAP_B)


def neg_log_o(d):
    """-log O_ij with O = exp(-d) (eq. 4): exactly d, no clamping needed."""
    return d


def neg_log_one_minus_o(d, log_eps: float = 1e-4):
    """-log(1 - O_ij), with 1 - O clamped at ``log_eps`` so pairs at distance ~0 stay finite."""
    import torch

    return -torch.log(torch.clamp(-torch.expm1(-d), min=log_eps))


def loss_im(d_pos, d_neg, log_eps: float = 1e-4):
    """Eq. (9): -sum_{E^{im+}} log O - sum_{E^{im-}} log(1 - O)."""
    return neg_log_o(d_pos).sum() + neg_log_one_minus_o(d_neg, log_eps).sum()


def loss_ba(d):
    """Eq. (13): -sum_{E^{ba}} log O."""
    return neg_log_o(d).sum()


def loss_dis(d, log_eps: float = 1e-4):
    """Eq. (17): -sum_{E^{dis}} log(1 - O)."""
    return neg_log_one_minus_o(d, log_eps).sum()


def target_distribution(u):
    """V of eq. (18): V_ik = (U_ik^2 / sum_i' U_i'k) / sum_j (U_ij^2 / sum_i' U_i'j).

    A cluster whose U underflows to exactly 0 for every sample of the batch (a saturated softmax)
    would give 0/0; its frequency is floored at 1e-30, so its V column is 0 as its U column."""
    import torch

    weight = u ** 2 / torch.clamp_min(u.sum(dim=0, keepdim=True), 1e-30)
    return weight / weight.sum(dim=1, keepdim=True)


def clustering_loss(u, gamma: float, eps: float = 1e-12):
    """Eq. (18): KL(V || U) (summed over clusters, averaged over samples; V is a fixed target)
    + gamma sum_k Ubar_k log Ubar_k (minimised by balanced clusters)."""
    import torch

    v = target_distribution(u).detach()
    kl = (v * (torch.log(v + eps) - torch.log(u + eps))).sum(dim=1).mean()
    u_bar = u.mean(dim=0)
    return kl + gamma * (u_bar * torch.log(u_bar + eps)).sum()


def eta_schedule(n_i: int, delta: float, xi: float) -> float:
    """Eq. (19): eta = min(delta n_i, xi)."""
    return min(delta * n_i, xi)


# --- model -------------------------------------------------------------------------------------

def build_model(in_dim: int, config: Config, n_clusters: int):
    import torch.nn as nn

    layers, width = [], in_dim
    for hidden in config.encoder_dims:
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, config.embedding_dim))
    encoder = nn.Sequential(*layers)
    if config.head == "dec":
        return encoder, StudentTHead(n_clusters, config.embedding_dim)
    if config.head_hidden:
        head = nn.Sequential(nn.Linear(config.embedding_dim, config.head_hidden), nn.ReLU(),
                             nn.Linear(config.head_hidden, n_clusters), nn.Softmax(dim=1))
    else:
        head = nn.Sequential(nn.Linear(config.embedding_dim, n_clusters), nn.Softmax(dim=1))
    return encoder, head


def StudentTHead(n_clusters: int, dim: int):
    """DEC's soft assignment: U_ik = (1 + |Z_i - mu_k|^2)^-1 / sum_k' (...), centres mu as parameters
    (zeros until `set_centres`; U is then uniform and eq. 18 at eta = 0 gives them no gradient)."""
    import torch

    class StudentT(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.centres = torch.nn.Parameter(torch.zeros(n_clusters, dim))

        def forward(self, z):
            q = 1.0 / (1.0 + torch.cdist(z, self.centres) ** 2)
            return q / q.sum(dim=1, keepdim=True)

    return StudentT()


def set_centres(head, z: np.ndarray, n_clusters: int, seed: int) -> None:
    """DEC's start: the centres are k-means (10 restarts) on Z."""
    import torch
    from sklearn.cluster import KMeans

    centres = KMeans(n_clusters, n_init=10, random_state=seed).fit(z.astype(np.float64)).cluster_centers_
    with torch.no_grad():
        head.centres.copy_(torch.as_tensor(centres, dtype=head.centres.dtype, device=head.centres.device))


# --- rows and graph ------------------------------------------------------------------------------

def select_rows(split: np.ndarray, which: str) -> np.ndarray:
    if which == "all":
        return np.arange(len(split))
    code = {"train": 0, "test": 1}[which]
    rows = np.flatnonzero(split == code)
    if len(rows) == 0:
        raise ValueError(f"split {which!r} selects no rows of this view: it holds splits "
                         f"{sorted(set(int(s) for s in split))} (0 = train, 1 = test); use 'all'")
    return rows


def neighbours_within(graph: graphs.KnnGraph, rows: np.ndarray, m: int, x: np.ndarray) -> graphs.KnnGraph:
    """The M-NN graph among ``rows`` only (local indices), from the cached graph when its lists
    hold M neighbours inside ``rows`` for every row, else recomputed exactly with faiss."""
    n = graph.n
    if len(rows) == n:
        return graph.truncate(m)
    local = np.full(n, -1, np.int64)
    local[rows] = np.arange(len(rows))
    idx = local[graph.indices[rows]]
    inside = idx >= 0
    if (inside.sum(axis=1) >= m).all():
        order = np.argsort(~inside, axis=1, kind="stable")[:, :m]  # first M inside, distance order kept
        return graphs.KnnGraph(np.take_along_axis(idx, order, 1), np.take_along_axis(graph.distances[rows], order, 1))
    return graphs.knn(x[rows], m)


# --- training ------------------------------------------------------------------------------------

@dataclass
class PairSets:
    a: sp.csr_matrix
    fixed: np.ndarray  # (P, 3) E^{im+} + E^{im-} + E^{ba} rows (i, j, kind)
    n_im_pos: int
    n_dis: int
    qa: QuantityAugmentation
    n_edges: int
    distance_unit: float | str = 1.0  # the unit D was divided by (the number 'auto' chose)

    def sizes(self) -> dict:
        kinds = np.bincount(self.fixed[:, 2], minlength=3) if len(self.fixed) else np.zeros(3, int)
        return {"edges": self.n_edges, "im+": int(kinds[IM_POS]), "im-": int(kinds[IM_NEG]),
                "ba": int(kinds[BA]), "dis": self.n_dis}


def auto_distance_unit(indices: np.ndarray, distances: np.ndarray, alpha: float, octaves: int = 10,
                       steps_per_octave: int = 4) -> float:
    """``graph_distance_unit: auto``: the largest unit 2^(-k/4), k = 0, 1, ..., at which every edge
    of A gets at least one copy in E^{im+}, i.e. floor(alpha A_max / (1 - A_ij)) >= 1 for the
    weakest edge: alpha A_max >= 1 - A_min.

    Why: the method treats the kNN edges as the pairs to pull together, and alpha = 2 is
    set for a graph where that holds (A_max >= 0.5 suffices). When neighbour distances are small
    compared with 1 (8x8 digits, L2-normalised features), softmax(-D) is nearly uniform and most
    edges get no attracting copy at all. The rule reads no label, and leaves a view where every
    edge already has a copy (MNIST and Fashion-MNIST pixels) exactly as it is (unit 1). Units
    below 2^-octaves are not tried; the smallest is returned (with the method's degenerate-QA
    warning) if none qualifies."""
    d = np.asarray(distances, dtype=np.float64)
    unit = 1.0
    for k in range(octaves * steps_per_octave + 1):
        unit = 2.0 ** (-k / steps_per_octave)
        _, _, w = undirected_edges(locally_normalised_graph(indices, d / unit))
        if alpha * w.max() >= 1.0 - w.min():
            return unit
    return unit


def build_pair_sets(graph: graphs.KnnGraph, config: Config) -> PairSets:
    unit = config.graph_distance_unit
    if unit == "auto":
        unit = auto_distance_unit(graph.indices, graph.distances, config.alpha)
    a = locally_normalised_graph(graph.indices, scaled_distances(graph.distances, unit))
    i, j, w = undirected_edges(a)
    qa = quantity_augmentation(w, config.alpha, max_copies=config.max_copies)
    n_im_pos = int(qa.im_pos.sum())  # |E^{im+}| defines |E^{dis}| even when L_im is switched off
    n_dis = int(round(config.beta * n_im_pos)) if config.use_dis else 0
    check_pair_budget(qa, n_dis, graph.n, len(w), config)
    fixed = augmented_pairs(i, j, qa, use_im=config.use_im, use_ba=config.use_ba, use_im_neg=config.use_im_neg)
    return PairSets(a, fixed, n_im_pos, n_dis, qa, len(w), unit)


def check_pair_budget(qa: QuantityAugmentation, n_dis: int, n_rows: int, n_edges: int, config: Config) -> None:
    """Refuse, before anything is allocated, a view whose augmented pair sets exceed ``max_pairs``.

    The line names the cause: ``beta`` when the view would fit at the default beta (|E^dis| =
    beta |E^im+| is what grew), else the neighbour distances' scale (the copy counts exploded)."""
    from ..checks import DataError

    n_fixed = (int(qa.im_pos.sum()) + (int(qa.im_neg.sum()) if config.use_im_neg else 0) if config.use_im else 0) + (int(qa.ba.sum()) if config.use_ba else 0)
    total = n_fixed + n_dis
    if total <= config.max_pairs:
        return
    default_beta = float(Config.model_fields["beta"].default)
    n_im_pos = int(qa.im_pos.sum())
    if config.use_dis and config.beta > default_beta and n_fixed + round(default_beta * n_im_pos) <= config.max_pairs:
        most = (config.max_pairs - n_fixed) / n_im_pos if n_im_pos else float("inf")
        raise DataError(
            f"lnscc: beta = {config.beta:g} asks for |E^dis| = beta |E^im+| = {n_dis:,} disconnected pairs per epoch "
            f"({total:,} pairs with the other sets, ~{total * 24 / 2**30:.1f} GiB), more than max_pairs = "
            f"{config.max_pairs:,}: lower beta (at most {most:.4g} on this view, {n_im_pos:,} E^im+ pairs) "
            f"or raise max_pairs")
    raise DataError(
        f"lnscc: the view ({n_rows} rows, {n_edges} edges, A_max = {qa.a_max:.6f}) needs {total:,} augmented pairs "
        f"per epoch (~{total * 24 / 2**30:.1f} GiB), more than max_pairs = {config.max_pairs:,}: its neighbour "
        f"distances are large compared with 1, so softmax(-D) is nearly one-hot and the copy counts "
        f"Q^im+ = floor(alpha A_max / (1 - A)) (A -> 1) and Q^im- = floor((1 - A)_max / A) (A -> 0) "
        f"explode; rescale the view's features (e.g. to [0, 1]; or graph_distance_unit: median) or lower "
        f"max_copies (now {config.max_copies}) or raise max_pairs")


def memory_costs(config: Config, sets: PairSets, n_fit: int, in_dim: int, n_clusters: int) -> list:
    """The large allocations of a run, for ``resources.check_costs`` before any is made: the
    features, the epoch's pair tables (the sets, their shuffled union, per-set copies, the device
    copy), the model with its gradients and SGD momentum (``encoder_dims``), and one step's pairs
    with the encoder activations of their samples (``batch_size`` pairs from every pair set under
    per_set batching, so a huge batch_size is refused here, not by the allocator). Per pair: its
    (i, j, kind) row, offsets and inverse indices (~64 bytes), Z_i and Z_j gathered, their
    difference and square with gradients (~8 x embedding_dim floats)."""
    from ..resources import Cost

    widths = [in_dim, *config.encoder_dims, config.embedding_dim]
    head = ([config.embedding_dim, config.head_hidden, n_clusters] if config.head_hidden
            else [config.embedding_dim, n_clusters])
    params = sum(a * b + b for a, b in zip(widths[:-1], widths[1:])) + sum(a * b + b for a, b in zip(head[:-1], head[1:]))
    n_pairs = len(sets.fixed) + sets.n_dis
    sizes = sets.sizes()
    n_sets = sum(1 for kind in KIND_NAMES if sizes[kind])
    step_pairs = config.batch_size * max(n_sets, 1) if config.batching == "per_set" else min(config.batch_size, n_pairs)
    step_nodes = min(n_fit, 2 * step_pairs)
    per_pair = 64 + 8 * config.embedding_dim * 4 + 48
    per_node = (sum(widths) + sum(head)) * 4 * 3  # inputs, activations and their gradients
    return [
        Cost("the view's features", n_fit * in_dim * 4 * 2),
        Cost(f"the epoch's {n_pairs:,} augmented pairs, shuffled and on the device", n_pairs * 24 * 4,
             (("max_pairs", config.max_pairs),)),
        Cost("the encoder and head with gradients and SGD momentum", params * 4 * 3,
             (("encoder_dims", list(config.encoder_dims)), ("embedding_dim", config.embedding_dim))),
        Cost(f"one step's {step_pairs:,} pairs and the activations of their {step_nodes:,} samples",
             step_pairs * per_pair + step_nodes * per_node + config.batch_size * 8, (("batch_size", config.batch_size),)),
    ]


def epoch_pairs(sets: PairSets, dis: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    parts = [sets.fixed]
    if dis is not None and len(dis):
        parts.append(np.concatenate([dis, np.full((len(dis), 1), DIS, np.int64)], axis=1))
    pairs = np.concatenate(parts)
    return pairs[rng.permutation(len(pairs))]


def per_set_tables(sets: PairSets, dis: np.ndarray | None, rng: np.random.Generator) -> list[np.ndarray]:
    """The non-empty pair sets, each in its own shuffled order (``batching: per_set``)."""
    pairs = epoch_pairs(sets, dis, rng)
    return [t for t in (pairs[pairs[:, 2] == k] for k in (IM_POS, IM_NEG, BA, DIS)) if len(t)]


def per_set_batch(tables: list[np.ndarray], step: int, batch_size: int) -> np.ndarray:
    """``batch_size`` pairs from every set for 0-based step ``step``, cycling through each set."""
    offsets = step * batch_size + np.arange(batch_size)
    return np.concatenate([t[offsets % len(t)] for t in tables])


def batch_loss(encoder, head, x, batch: np.ndarray, config: Config, eta: float, device: str):
    """Loss of one batch of pairs; Z is computed once per distinct sample in the batch."""
    import torch

    nodes, inverse = np.unique(batch[:, :2], return_inverse=True)
    inverse = inverse.reshape(-1, 2)
    z = encoder(x[torch.as_tensor(nodes, device=device)])
    kinds = torch.as_tensor(batch[:, 2], device=device)
    ii = torch.as_tensor(inverse[:, 0], device=device)
    jj = torch.as_tensor(inverse[:, 1], device=device)
    d = pair_energy(z[ii], z[jj], config)
    parts = {
        "im_pos": neg_log_o(d[kinds == IM_POS]).sum(),            # the two halves of eq. 9 (L_im)
        "im_neg": neg_log_one_minus_o(d[kinds == IM_NEG], config.log_eps).sum(),
        "ba": loss_ba(d[kinds == BA]),
        "dis": loss_dis(d[kinds == DIS], config.log_eps),
    }
    parts["im"] = parts["im_pos"] + parts["im_neg"]
    # "mean": the sums of eqs. 9/13/17 over the batch divided by the batch size (per set, for
    # per_set batching, whose batch holds batch_size pairs of every set).
    scale = 1.0 / (len(batch) if config.batching == "union" else config.batch_size) if config.reduction == "mean" else 1.0
    contrastive = (parts["im"] + parts["ba"] + parts["dis"]) * scale
    total = contrastive
    clu = torch.zeros((), device=device)
    if config.use_clu:
        clu = clustering_loss(head(z), config.gamma)
        total = total + eta * clu
    logs = {k: float(v.detach()) * scale for k, v in parts.items()}
    logs["clu"] = float(clu.detach())
    return total, logs


def effective_encoder_dtype(config: Config, device_type: str) -> str:
    """``encoder_dtype`` with ``auto`` resolved: bfloat16 on CUDA (fast step), float32 elsewhere."""
    if config.encoder_dtype != "auto":
        return config.encoder_dtype
    return "bfloat16" if device_type == "cuda" and config.step_impl == "fast" else "float32"


def batch_loss_fast(encoder, head, x, batch, config: Config, eta: float):
    """``batch_loss`` on a (B, 3) int64 tensor already on the device, without a host sync.

    Same losses: every pair's term is d (attracting kinds im+, ba) or -log(1 - O) (repelling
    kinds im-, dis); the four per-kind sums come from one index_add. Returns the total loss and
    a detached tensor (total, im, ba, dis, clu, im+, im-) of the logged values."""
    import torch

    nodes, inverse = torch.unique(batch[:, :2], sorted=True, return_inverse=True)
    if effective_encoder_dtype(config, x.device.type) == "float32":
        z = encoder(x[nodes])
    else:
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            z = encoder(x[nodes])
        z = z.float()
    kinds = batch[:, 2]
    d = pair_energy(z[inverse[:, 0]], z[inverse[:, 1]], config)
    attract = (kinds == IM_POS) | (kinds == BA)
    term = torch.where(attract, neg_log_o(d), neg_log_one_minus_o(d, config.log_eps))
    per_kind = torch.zeros(4, dtype=term.dtype, device=term.device).index_add_(0, kinds, term)
    scale = 1.0 / (len(batch) if config.batching == "union" else config.batch_size) if config.reduction == "mean" else 1.0
    parts = torch.stack([per_kind[IM_POS] + per_kind[IM_NEG], per_kind[BA], per_kind[DIS]]) * scale
    total = parts.sum()
    if config.use_clu:
        clu = clustering_loss(head(z), config.gamma)
        total = total + eta * clu
    else:
        clu = torch.zeros((), dtype=term.dtype, device=term.device)
    split = torch.stack([per_kind[IM_POS], per_kind[IM_NEG]]) * scale
    return total, torch.cat([total.reshape(1), parts, clu.reshape(1), split]).detach()


def make_optimiser(params, config: Config):
    """SGD of section 4.1. ``sgd_kernel`` picks torch's implementation (same update rule): fused
    was ~1.45x faster per epoch than foreach on CPU (benchmarks/bench.py --only lnscc)."""
    import torch

    kernel = {"foreach": True} if config.sgd_kernel == "foreach" else {"fused": True}
    if config.step_impl == "legacy":
        kernel = {"foreach": False}
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, **kernel)


def embed_and_assign(encoder, head, x, device: str, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    import torch

    zs, us = [], []
    with torch.no_grad():
        for start in range(0, len(x), chunk):
            z = encoder(x[start:start + chunk])
            zs.append(z.cpu().numpy())
            us.append(head(z).cpu().numpy())
    return np.concatenate(zs), np.concatenate(us)


def epoch_health(z: np.ndarray, u: np.ndarray, before: np.ndarray | None, n_clusters: int, seed: int) -> dict:
    """Label-free health of the model after an epoch, on the snapshot rows: how many rows changed
    cluster (argmax U) since the last epoch, how many clusters the head uses, how saturated its
    softmax is (mean max U: 1 = one-hot, where eq. 18's KL has no gradient left), the scale of Z,
    and how far the head agrees with k-means on the same Z (NMI; a head that has frozen while the
    embedding moves shows as a falling agreement)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    assign = u.argmax(1)
    k = min(n_clusters, len(np.unique(z, axis=0)))
    kmeans = KMeans(k, n_init=3, random_state=seed).fit_predict(z.astype(np.float64)) if k > 1 else np.zeros(len(z), int)
    return {"changed": None if before is None else float(np.mean(assign != before)),
            "clusters_used": int(len(np.unique(assign))),
            "u_max_mean": float(u.max(1).mean()),
            "z_norm_mean": float(np.linalg.norm(z, axis=1).mean()),
            "head_kmeans_nmi": float(normalized_mutual_info_score(assign, kmeans))}


def fit_predict(ctx: RunContext, config: Config, on_epoch=None) -> Result:
    """``on_epoch(epoch, rows, z, u)``, if given, sees the snapshot rows' Z and U after every
    epoch (the diagnosis scripts score them; the pipeline does not pass it)."""
    import torch
    from tqdm.auto import tqdm

    from . import checkpoints

    if ctx.graph is None:
        raise ValueError("LNSCC needs the view's kNN graph (train runs provide one)")
    rng = np.random.default_rng(ctx.seed)
    torch.manual_seed(ctx.seed)
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    device = ctx.device
    fit_rows = select_rows(ctx.view.split, config.fit_split)
    eval_rows = select_rows(ctx.view.split, config.eval_split)
    x_all = np.asarray(ctx.view.X, dtype=np.float32)
    graph = neighbours_within(ctx.graph, fit_rows, config.n_neighbors, x_all)
    sets = build_pair_sets(graph, config)
    _warn_if_degenerate(sets)
    from ..resources import check_costs

    check_costs("lnscc", memory_costs(config, sets, len(fit_rows), x_all.shape[1], ctx.n_clusters), device)
    x_fit = torch.as_tensor(x_all[fit_rows], device=device)

    encoder, head = build_model(x_all.shape[1], config, ctx.n_clusters)
    encoder.to(device), head.to(device)
    params = list(encoder.parameters()) + list(head.parameters())
    # foreach: the same per-element arithmetic as the for-loop SGD (identical results), fewer passes
    optimiser = make_optimiser(params, config)

    dis = sample_disconnected(sets.a, sets.n_dis, rng) if sets.n_dis else None
    n_pairs = len(sets.fixed) + sets.n_dis
    n_sets = 1 if config.batching == "union" else len(per_set_tables(sets, dis, np.random.default_rng(0)))
    steps_per_epoch = math.ceil(n_pairs / (config.batch_size * n_sets))  # every pair copy once per epoch
    if config.steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, config.steps_per_epoch)
    early = {int(round(f * steps_per_epoch)) for f in (0.0, 0.1, 0.25, 0.5)} if config.progress_snapshots else set()
    snap_rows = np.sort(rng.choice(len(fit_rows), min(config.snapshot_rows, len(fit_rows)), replace=False))
    snaps: list[tuple[int, np.ndarray, np.ndarray]] = []

    def snapshot(step: int) -> None:
        encoder.eval(), head.eval()
        z, u = embed_and_assign(encoder, head, x_fit[torch.as_tensor(snap_rows, device=device)], device)
        snaps.append((step, z, u.argmax(1)))
        encoder.train(), head.train()

    history, step, previous, stopped, assign_before = [], 0, None, "max_epochs", None
    folder = checkpoints.folder_of(ctx, "lnscc")
    fingerprint = _fingerprint(config, ctx, x_fit, graph) if folder is not None else None
    state = checkpoints.load_latest(folder, fingerprint, max_epoch=config.epochs) if folder is not None else None
    first_epoch = 1
    if state is not None:  # continue bit-identically from the last finished epoch
        encoder.load_state_dict(state["encoder"]), head.load_state_dict(state["head"])
        optimiser.load_state_dict(state["optimiser"])
        rng.bit_generator.state = state["rng"]
        dis = state["dis"].numpy() if state["has_dis"] else None
        history, step, previous, stopped = list(state["history"]), int(state["step"]), state["previous"], state["stopped"]
        assign_before = state["assign_before"].numpy()
        snaps = [(int(s), z.numpy(), lab.numpy()) for s, z, lab in state["snaps"]]
        first_epoch = int(state["epoch"]) + 1
        if stopped != "max_epochs":
            first_epoch = config.epochs + 1
    bar = tqdm(total=steps_per_epoch * config.epochs, initial=step, desc=f"lnscc seed {ctx.seed}",
               disable=not ctx.progress, leave=False)
    if 0 in early and state is None:
        snapshot(0)
        assign_before = snaps[0][2]
    if config.head == "dec" and config.clu_start_epoch == 0 and state is None:
        start_dec_head(encoder, head, x_fit, ctx, device)
    for epoch in range(first_epoch, config.epochs + 1):
        started = time.perf_counter()
        if dis is not None and config.resample_dis == "epoch" and epoch > 1:
            dis = sample_disconnected(sets.a, sets.n_dis, rng)
        if config.batching == "union":
            pairs = epoch_pairs(sets, dis, rng)
        else:
            tables = per_set_tables(sets, dis, rng)
        fast = config.step_impl == "fast"
        if fast:  # the epoch's pairs go to the device once; batches are slices of it
            if config.batching == "union":
                pairs_t = torch.as_tensor(pairs, device=device)
            else:
                tables_t = [torch.as_tensor(t, device=device) for t in tables]
                lengths_t = [len(t) for t in tables]
                arange_t = torch.arange(config.batch_size, device=device)
            sums_t = torch.zeros(7, dtype=torch.float64, device=device)
        sums = {"loss": 0.0, "im": 0.0, "ba": 0.0, "dis": 0.0, "clu": 0.0, "im_pos": 0.0, "im_neg": 0.0}
        for b in range(steps_per_epoch):
            step += 1
            n_i = step - config.clu_start_epoch * steps_per_epoch if config.eta_unit == "iteration" else (
                epoch - config.clu_start_epoch)
            eta = eta_schedule(n_i, config.delta, config.xi) if n_i > 0 else 0.0
            if fast:
                if config.batching == "union":
                    batch_t = pairs_t[b * config.batch_size:(b + 1) * config.batch_size]
                else:
                    offsets = arange_t + b * config.batch_size
                    batch_t = torch.cat([t[offsets % n] for t, n in zip(tables_t, lengths_t)])
                loss, logged = batch_loss_fast(encoder, head, x_fit, batch_t, config, eta)
                sums_t += logged
            else:
                if config.batching == "union":
                    batch = pairs[b * config.batch_size:(b + 1) * config.batch_size]
                else:
                    batch = per_set_batch(tables, b, config.batch_size)
                loss, logs = batch_loss(encoder, head, x_fit, batch, config, eta, device)
            # the fast path checks finiteness on the running sum every 64 steps (no sync per step)
            if (not fast or step % 64 == 0 or b == steps_per_epoch - 1) and not torch.isfinite(
                    loss if not fast else sums_t[0]):
                raise FloatingPointError(f"LNSCC loss became non-finite by step {step} (epoch {epoch}); "
                                         f"try a smaller lr or a larger log_eps")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            if not fast:
                sums["loss"] += float(loss.detach())
                for k, v in logs.items():
                    sums[k] += v
            bar.update(1)
            if epoch == 1 and step in early:
                snapshot(step)
        if fast:
            sums = dict(zip(("loss", "im", "ba", "dis", "clu", "im_pos", "im_neg"), sums_t.tolist()))
        row = {"epoch": epoch, "steps": steps_per_epoch, "eta": eta,
               "wall_s": round(time.perf_counter() - started, 3),
               **{f"loss_{k}" if k != "loss" else k: v / steps_per_epoch for k, v in sums.items()}}
        row["loss_contrastive"] = row["loss_im"] + row["loss_ba"] + row["loss_dis"]
        # label-free diagnostic: share of the snapshot rows whose cluster changed during the epoch
        encoder.eval(), head.eval()
        z_rows, u_rows = embed_and_assign(encoder, head, x_fit[torch.as_tensor(snap_rows, device=device)], device)
        encoder.train(), head.train()
        row.update(epoch_health(z_rows, u_rows, assign_before, ctx.n_clusters, ctx.seed))
        assign_before = u_rows.argmax(1)
        if on_epoch is not None:
            on_epoch(epoch, fit_rows[snap_rows], z_rows, u_rows)
        if config.head == "dec" and epoch == config.clu_start_epoch:  # L_clu starts next step
            start_dec_head(encoder, head, x_fit, ctx, device)
        bar.set_postfix(contrastive=f"{row['loss_contrastive']:.4f}", clu=f"{row['loss_clu']:.4f}")
        history.append(row)
        ctx.log(row)
        plateau = _plateaued(previous, row["loss_contrastive"], config.plateau_tol)
        previous = row["loss_contrastive"]
        settled = config.stop_changed is not None and row["changed"] is not None and row["changed"] < config.stop_changed
        if (plateau or settled) and epoch >= config.min_epochs + config.clu_start_epoch:
            stopped = "plateau" if plateau else "settled"
        last = stopped != "max_epochs" or epoch == config.epochs
        if config.progress_snapshots and (last or (epoch & (epoch - 1)) == 0):  # epochs 1, 2, 4, 8, ... and the end
            if not snaps or snaps[-1][0] != step:
                snapshot(step)
        if folder is not None:
            checkpoints.save(folder, {
                "epoch": epoch, "step": step, "encoder": encoder.state_dict(), "head": head.state_dict(),
                "optimiser": optimiser.state_dict(), "rng": rng.bit_generator.state, "has_dis": dis is not None,
                "dis": torch.from_numpy(dis if dis is not None else np.empty((0, 2), np.int64)),
                "history": history, "previous": previous, "stopped": stopped,
                "assign_before": torch.from_numpy(np.asarray(assign_before, np.int64)),
                "snaps": [(s, torch.from_numpy(np.asarray(z, np.float32)), torch.from_numpy(np.asarray(lab, np.int64)))
                          for s, z, lab in snaps],
                "fingerprint": fingerprint, **checkpoints.global_rng_states()})
        if stopped != "max_epochs":
            break
    bar.close()

    encoder.eval(), head.eval()
    x_eval = torch.as_tensor(x_all[eval_rows], device=device)
    z_eval, u_eval = embed_and_assign(encoder, head, x_eval, device)
    labels = u_eval.argmax(axis=1)
    if ctx.workdir is not None and snaps:
        _save_progress(ctx.workdir, snaps, fit_rows[snap_rows], steps_per_epoch)
    index = None if config.eval_split == "all" else eval_rows
    extra = {"epochs": len(history), "stopped": stopped, "steps": step, "steps_per_epoch": steps_per_epoch,
             "pair_sets": sets.sizes(), "qa": {"a_max": sets.qa.a_max, "one_minus_a_max": sets.qa.one_minus_a_max,
                                               "a_mean": sets.qa.a_mean, "distance_unit": sets.distance_unit},
             "clusters_used": int(len(np.unique(labels))), "fit_rows": int(len(fit_rows)),
             "encoder_dtype": effective_encoder_dtype(config, torch.device(device).type)}
    return Result(labels=labels, index=index, embedding=z_eval, history=history, extra=extra)


def start_dec_head(encoder, head, x_fit, ctx: RunContext, device: str) -> None:
    """The DEC head's centres from k-means on Z of every training row (eval mode, as scored)."""
    encoder.eval(), head.eval()
    z, _ = embed_and_assign(encoder, head, x_fit, device)
    encoder.train(), head.train()
    set_centres(head, z, ctx.n_clusters, ctx.seed)


def _fingerprint(config: Config, ctx: RunContext, x_fit, graph: graphs.KnnGraph) -> dict:
    """What the weights depend on besides the epoch cap: the settings that change the trajectory,
    seed, K, the training rows and their graph, this file's code, the device type."""
    import hashlib
    from pathlib import Path

    ignore = {"epochs", "torch_threads"}
    data = hashlib.sha1(np.ascontiguousarray(x_fit.cpu().numpy()).data)
    data.update(np.ascontiguousarray(graph.indices).data)
    return {"settings": {k: v for k, v in config.model_dump().items() if k not in ignore}, "seed": ctx.seed,
            "n_clusters": ctx.n_clusters, "data": data.hexdigest()[:16],
            "code": hashlib.sha1(Path(__file__).read_bytes()).hexdigest()[:16], "device": str(ctx.device).split(":")[0]}


def _plateaued(previous: float | None, current: float, tol: float | None) -> bool:
    """Label-free stopping rule: the epoch-mean contrastive loss changed by less than ``tol``
    (relative) since the previous epoch."""
    if tol is None or previous is None:
        return False
    return abs(previous - current) <= tol * max(abs(previous), 1e-12)


def _warn_if_degenerate(sets: PairSets) -> None:
    """Say so when the paper's QA leaves E^{im+} (and hence E^{dis}) nearly empty: this happens
    when neighbour distances are small compared with 1, so softmax(-D) is almost uniform."""
    import sys

    if sets.n_im_pos < 0.5 * sets.n_edges:
        print(f"lnscc: warning: |E^im+| = {sets.n_im_pos} for {sets.n_edges} edges (A_max = {sets.qa.a_max:.3f}): "
              f"softmax(-D) is nearly uniform at this distance scale, so the paper's Q^im+ = floor(alpha A_max / "
              f"(1 - A)) is 0 for most edges and |E^dis| = beta |E^im+| is small", file=sys.stderr)


def _save_progress(workdir, snaps, rows: np.ndarray, steps_per_epoch: int) -> None:
    from pathlib import Path

    from .. import io

    steps = np.asarray([s for s, _, _ in snaps], np.int64)
    io.write_npz(Path(workdir) / "progress.npz", steps=steps, epochs=steps / float(steps_per_epoch),
                 z=np.stack([z for _, z, _ in snaps]).astype(np.float16),
                 labels=np.stack([l for _, _, l in snaps]).astype(np.int16), rows=rows.astype(np.int64))

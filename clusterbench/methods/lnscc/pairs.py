"""The locally normalised graph (eqs. 1-2), quantity augmentation (6-8, 11-12, 14-16) and the
pair sets a training epoch draws its batches from (pure NumPy, unit-tested).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ... import graphs
from .config import BA, Config, DIS, IM_NEG, IM_POS
from .losses import scaled_distances


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
    from ...checks import DataError

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

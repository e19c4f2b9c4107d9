"""LNSCC's training loop and the method interface's ``fit_predict``: rows and graph, batches,
resumable checkpoints, per-epoch label-free health.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np

from .. import Result, RunContext, checkpoints
from ... import graphs
from .config import BA, Config, DIS, IM_NEG, IM_POS, KIND_NAMES
from .losses import clustering_loss, eta_schedule, loss_ba, loss_dis, neg_log_o, neg_log_one_minus_o, pair_energy
from .model import build_model, set_centres
from .pairs import PairSets, build_pair_sets, epoch_pairs, per_set_batch, per_set_tables, sample_disconnected


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

def memory_costs(config: Config, sets: PairSets, n_fit: int, in_dim: int, n_clusters: int) -> list:
    """The large allocations of a run, for ``resources.check_costs`` before any is made: the
    features, the epoch's pair tables (the sets, their shuffled union, per-set copies, the device
    copy), the model with its gradients and SGD momentum (``encoder_dims``), and one step's pairs
    with the encoder activations of their samples (``batch_size`` pairs from every pair set under
    per_set batching, so a huge batch_size is refused here, not by the allocator). Per pair: its
    (i, j, kind) row, offsets and inverse indices (~64 bytes), Z_i and Z_j gathered, their
    difference and square with gradients (~8 x embedding_dim floats)."""
    from ...resources import Cost

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
    from ...resources import check_costs

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
    seed, K, the training rows and their graph, the method's code, the device type."""
    import hashlib

    ignore = {"epochs", "torch_threads"}
    data = hashlib.sha1(np.ascontiguousarray(x_fit.cpu().numpy()).data)
    data.update(np.ascontiguousarray(graph.indices).data)
    return {"settings": {k: v for k, v in config.model_dump().items() if k not in ignore}, "seed": ctx.seed,
            "n_clusters": ctx.n_clusters, "data": data.hexdigest()[:16],
            "code": checkpoints.code_fingerprint(sys.modules[__package__], graphs),
            "device": str(ctx.device).split(":")[0]}



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

    from ... import io

    steps = np.asarray([s for s, _, _ in snaps], np.int64)
    io.write_npz(Path(workdir) / "progress.npz", steps=steps, epochs=steps / float(steps_per_epoch),
                 z=np.stack([z for _, z, _ in snaps]).astype(np.float16),
                 labels=np.stack([l for _, _, l in snaps]).astype(np.int16), rows=rows.astype(np.int64))

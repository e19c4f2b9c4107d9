"""IcicleGCN's two stages and the method interface's ``fit_predict``: stage 1 trained here
(resumable) or reused (``stage1_from``), then M-GCN on the backbone's features.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from ... import resources
from .. import Result, RunContext, checkpoints, contrastive
from ..cc import (BACKBONE_DIM, code_fingerprint, count_parameters, make_trainer, forward_all, memory_costs as
                  contrastive_costs, set_threads, training_fingerprint, view_images)
from ..dec import target_distribution   # P of eqs. (21)-(22)
from .config import Config, STAGE1_FIELDS
from .mgcn import (MGCN, clusters_used, heat_kernel_graph, kl_divergence, normalized_adjacency, sparse_tensor,
                   student_t)
from .model import Stage1Network, reconstruction_loss, stage1_loss


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
    fingerprint = training_fingerprint(config, ctx, images, code=code_fingerprint(sys.modules[__package__]))
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


def train_stage2(ctx: RunContext, config: Config, model: Stage1Network, images: torch.Tensor, on_log=None):
    """M-GCN on the backbone's features. ``on_log(iteration, {"q": Q, "gcn_mean": mean of the GCNs'
    softmax})``, if given, sees the assignments at every logged iteration (the stage-2 diagnosis
    scores them after the run; the pipeline does not pass it)."""
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
            if on_log is not None:
                on_log(it + 1, {"q": q.detach(), "gcn_mean": torch.stack(gcn_probs).mean(0).detach() if gcn_probs else None})
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

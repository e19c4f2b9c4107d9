"""Unsupervised ConstellationNet (3.2, 4.1.5): a GNN over the kNN graph, clustered by DMoN.

Data: node features from the run's view (raw pixels, UMAP, or DINOv2 -> UMAP); edges from the
run's graph, the kNN graph of the *original* features (the paper's "residual edge index"), with
inverse-distance weights. Training: mini-batches of 64 seed nodes with 30 neighbours sampled
over 2 hops; on each sampled subgraph the GNN embeds the nodes, DMoN assigns them to clusters
on the subgraph's adjacency (by default the edge index as a 0/1 directed matrix, 4.1.2), and the
loss is

    spectral + orthogonality_weight * orthogonality
             + (collapse_weight + cluster_size_weight) * collapse  (+ attention for SuperGAT)

i.e. "DMoN losses and collapse regularization with 0.1 multiplication factor" (4.1.5): DMoNPooling's
own losses at weight 1 plus the collapse formula again x0.1, a total of 1.1 on it, as in the authors'
code (the reading, its alternative and their measured effect: docs/methods/constellationnet.md). Adam (lr 1e-3), ReduceLROnPlateau
(patience 5, factor 0.75) on the epoch's mean training loss, at most ``epochs`` epochs, stopped
earlier when that loss has not improved by ``stop_min_delta`` for ``stop_patience`` epochs: a
label-free rule, the labels are never read here.

Prediction: every node is embedded once with the trained GNN (whole graph by default), then
``predict: dmon`` takes the argmax of its DMoN assignment and ``predict: kmeans`` (the paper's
"transform" use, Table 4) runs k-means on the GNN embedding instead.
"""
from __future__ import annotations

import sys
import time
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from tqdm.auto import tqdm

from .. import Result, RunContext, checkpoints, gnn_layers
from ... import resources
from .common import (EpochTimer, PlateauStop, TrainingConfig, count_parameters, full_graph_tensors,
                     gnn_parameter_count, subgraph_nodes, subgraph_tensors)
from .models import (ConstellationGNN, adjacency_edges, check_hidden, dense_adjacency, dmon_losses,
                     recalibrate_batchnorm)
from .sampling import InNeighbours, sample_subgraph, seed_batches

TASK = "clustering"


class Config(TrainingConfig):
    conv: Literal["gcn", "gat", "gin", "sgat"] = "gcn"
    hidden: int | None = Field(None, ge=1, description="GNN width; null = half the input size (4.1.5)")
    gat_heads: int = Field(1, ge=1)
    sgat_heads: int = Field(8, ge=1)
    attention_impl: Literal["pyg", "sparse"] = Field(
        "pyg", description="GAT / SuperGAT layers: torch_geometric's (per-edge messages) or "
        "clusterbench.methods.gnn_layers' sparse kernels (same model, other rounding); gcn and gin ignore it")
    training: Literal["sampled", "full_batch"] = Field(
        "sampled", description="sampled: mini-batches of batch_size seeds on num_neighbors-sampled subgraphs (4.1.4-4.1.5, "
        "the paper); full_batch: one step per epoch on the whole graph (a deviation: DMoN's modularity is not additive "
        "over subgraphs, so this optimises another objective; docs/methods/constellationnet.md)")
    epochs: int = Field(100, ge=1, description="at most this many epochs")
    stop_patience: int = Field(10, ge=1, description="stop after this many epochs without improvement")
    stop_min_delta: float = Field(1e-3, ge=0.0, description="improvement of the mean training loss that counts")
    spectral_weight: float = Field(1.0, ge=0.0)
    collapse_weight: float = Field(0.1, ge=0.0, description="DMoN collapse regularisation (4.1.5: x0.1)")
    orthogonality_weight: float = Field(1.0, ge=0.0)
    cluster_size_weight: float = Field(
        1.0, ge=0.0, description="DMoNPooling's own collapse ('cluster') loss, one of 'the DMoN losses' (3.1.2, "
        "4.1.5); with collapse_weight's 0.1 the total weight on the collapse formula is 1.1, as in the authors' code. "
        "0 = collapse x0.1 only, the other reading of 4.1.5 (docs/methods/constellationnet.md)")
    attention_weight: float = Field(1.0, ge=0.0, description="SuperGAT's self-supervised attention loss")
    symmetric_adjacency: bool = Field(
        False, description="DMoN's adjacency: false = the edge index as it is (A[i, j] = 1 when j is one of i's "
        "(sampled) neighbours, directed, 4.1.2 and the authors' notebook); true = undirected (a pair joined in either "
        "direction)")
    dmon_edge_weights: bool = Field(
        False, description="DMoN's adjacency weighted by inverse distance; false = 0/1, the edge index 'converted into "
        "a dense adjacency matrix' (4.1.2). The convs' edge weights are `edge_weights`")
    dmon: Literal["sparse", "dense"] = Field(
        "sparse", description="DMoN losses from the edge list (O(E k)), or DMoNPooling on the dense "
        "adjacency (O(n^2)); the values are the same")
    predict: Literal["dmon", "kmeans"] = Field("dmon", description="DMoN argmax, or k-means on the GNN embedding")
    kmeans_n_init: int = Field(10, ge=1)
    inference_batch_size: int = Field(256, ge=1, description="seeds per batch when inference=all_neighbours")
    bn_recalibration: bool = Field(True, description="re-estimate BatchNorm statistics on the inference graph")


def hidden_size(config: Config, in_dim: int) -> int:
    return config.hidden if config.hidden is not None else max(1, in_dim // 2)


def build_model(config: Config, in_dim: int, n_clusters: int) -> ConstellationGNN:
    hidden = hidden_size(config, in_dim)
    check_hidden(config.conv, hidden, config.gat_heads, config.sgat_heads)
    return ConstellationGNN(config.conv, in_dim, hidden, config.num_layers, n_clusters, config.dropout,
                            config.edge_weights, config.gat_heads, config.sgat_heads, config.attention_impl)


def memory_costs(config: Config, n: int, in_dim: int, k: int, n_clusters: int) -> list[resources.Cost]:
    """The large allocations of a run, estimated before the model is built: the weights with their
    gradients and Adam's two moments (``hidden`` x ``num_layers``), the activations of a training
    step on a sampled subgraph or of full-graph inference, whichever is larger (per node and layer:
    conv output, BatchNorm, ReLU, dropout and their gradients), and DMoN's dense adjacency."""
    h, layers = hidden_size(config, in_dim), config.num_layers
    heads = {"gat": config.gat_heads, "sgat": config.sgat_heads}.get(config.conv, 1)
    width = (("hidden", h), ("num_layers", layers))
    sub = subgraph_nodes(n, k, config.batch_size, config.num_neighbors)
    train = sub * (in_dim + layers * h * 6) * 4 + sub * k * (24 + heads * 4 * 6)
    infer = n * (in_dim + h * 4) * 4 + n * k * (24 + heads * 4 * 3)
    costs = [resources.Cost("the view's features", n * in_dim * 4),
             resources.Cost("the GNN's weights with gradients and Adam state",
                            gnn_parameter_count(config.conv, in_dim, h, layers, n_clusters) * 4 * 4, width)]
    if train >= infer:
        costs.append(resources.Cost(f"the activations of a training step ({sub:,}-node subgraphs)", train,
                                    (("hidden", h), ("batch_size", config.batch_size))))
    else:
        costs.append(resources.Cost(f"the activations of inference on all {n:,} nodes", infer, (("hidden", h),)))
    if config.dmon == "dense":
        costs.append(resources.Cost(f"DMoN's dense adjacency of {sub:,}-node subgraphs", sub * sub * 4 * 4,
                                    (("dmon", "dense"), ("batch_size", config.batch_size))))
    return costs


def batch_loss(model: ConstellationGNN, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor,
               config: Config, adjacency: tuple | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss on one sampled subgraph (or the whole graph), and its pieces; ``adjacency``:
    DMoN's adjacency edge list of this graph when the caller computed it once (full batch)."""
    h, attention = model.encoder(x, edge_index, edge_weight)
    dmon_weight = edge_weight if config.dmon_edge_weights else None
    if config.dmon == "dense":
        adj = dense_adjacency(edge_index, dmon_weight, x.size(0), symmetric=config.symmetric_adjacency)
        _, losses = model.head.dense(h, adj)
    else:
        _, losses = model.head.sparse(h, edge_index, dmon_weight, x.size(0), symmetric=config.symmetric_adjacency,
                                      adjacency=adjacency)
    loss = (config.spectral_weight * losses.spectral
            + config.orthogonality_weight * losses.orthogonality
            + (config.collapse_weight + config.cluster_size_weight) * losses.collapse
            + config.attention_weight * attention)
    return loss, {**losses.as_floats(), "attention": float(attention.detach())}


@torch.no_grad()
def embed_nodes(model: ConstellationGNN, x: torch.Tensor, graph: InNeighbours, config: Config,
                device) -> torch.Tensor:
    """GNN embedding of every node, in eval mode: on the whole graph, or per batch of seeds on
    all-neighbour samples as deep as the training samples. BatchNorm statistics are first
    re-estimated on those same inference graphs (``bn_recalibration``, see
    models.recalibrate_batchnorm)."""
    model.eval()
    if config.inference == "full_graph":
        edge_index, edge_weight = full_graph_tensors(graph, device)
        if config.bn_recalibration:
            recalibrate_batchnorm(model.encoder, [(x, edge_index, edge_weight)])
        h, _ = model.encoder(x, edge_index, edge_weight)
        return h
    fanouts = [-1] * len(config.num_neighbors)
    rng = np.random.default_rng(0)  # unused with fanout -1: sampling takes every neighbour

    def batches():
        for seeds in seed_batches(np.arange(graph.n), config.inference_batch_size, None):
            sub = sample_subgraph(graph, seeds, fanouts, rng)
            edge_index, edge_weight = subgraph_tensors(sub, device)
            yield seeds, sub, x[torch.from_numpy(sub.nodes).to(device)], edge_index, edge_weight

    if config.bn_recalibration:
        recalibrate_batchnorm(model.encoder, ((xb, ei, w) for _, _, xb, ei, w in batches()))
    out = torch.empty(graph.n, model.encoder.out_dim, device=device)
    for seeds, sub, xb, edge_index, edge_weight in batches():
        h, _ = model.encoder(xb, edge_index, edge_weight)
        out[torch.from_numpy(seeds).to(device)] = h[:sub.batch_size]
    return out


def training_graphs(graph: InNeighbours, x: torch.Tensor, seeds_all: np.ndarray, config: Config,
                    rng: np.random.Generator, device, whole: tuple | None = None):
    """The graphs of one epoch's steps as (features, edge_index, edge_weight, DMoN adjacency or
    None, nodes): sampled subgraphs of batch_size seeds, or the whole graph once when ``whole``
    (``whole_graph``'s tensors, built once per run) is given."""
    if whole is not None:
        yield (x, *whole, graph.n)
        return
    for seeds in seed_batches(seeds_all, config.batch_size, rng):
        sub = sample_subgraph(graph, seeds, config.num_neighbors, rng)
        edge_index, edge_weight = subgraph_tensors(sub, device)
        yield x[torch.from_numpy(sub.nodes).to(device)], edge_index, edge_weight, None, sub.num_nodes


def whole_graph(graph: InNeighbours, config: Config, device) -> tuple:
    """Full-batch training's graph: edge tensors and DMoN's adjacency, computed once."""
    edge_index, edge_weight = full_graph_tensors(graph, device)
    adjacency = (adjacency_edges(edge_index, edge_weight if config.dmon_edge_weights else None, graph.n,
                                 config.symmetric_adjacency)
                 if config.dmon == "sparse" else None)
    return edge_index, edge_weight, adjacency


def partition_modularity(graph: InNeighbours, labels: np.ndarray, n_clusters: int, symmetric: bool = True,
                         weighted: bool = True) -> float:
    """Modularity of a hard partition on the whole kNN graph: DMoN's objective, a label-free measure
    of a result. The defaults (undirected, inverse-distance weighted) are the yardstick recorded
    with every run (``modularity``), whatever adjacency the run trained on; ``symmetric`` and
    ``weighted`` give DMoN's other adjacencies (``modularity_dmon`` records the run's own)."""
    edge_index, weight = (torch.from_numpy(a) for a in graph.edge_index())
    pairs, w, n = adjacency_edges(edge_index, weight.float() if weighted else None, graph.n, symmetric)
    labels = np.asarray(labels, dtype=np.int64)
    onehot = torch.nn.functional.one_hot(torch.from_numpy(labels), max(n_clusters, int(labels.max()) + 1))
    return -float(dmon_losses(onehot.float(), pairs, w, n).spectral)


def _fingerprint(config: Config, ctx: RunContext, x: np.ndarray, graph: InNeighbours) -> dict:
    """What a checkpoint's weights depend on besides the epoch cap: the settings, seed, K, the
    features and the graph, the code of this folder and of the shared GNN layers, the device type."""
    import hashlib

    data = hashlib.sha1(np.ascontiguousarray(x).data)
    data.update(np.ascontiguousarray(graph.edge_index()[0]).data)
    ignore = {"epochs", "torch_threads"}
    return {"settings": {k: v for k, v in config.model_dump().items() if k not in ignore}, "seed": ctx.seed,
            "n_clusters": ctx.n_clusters, "data": data.hexdigest()[:16],
            "code": checkpoints.code_fingerprint(sys.modules[__package__], gnn_layers),
            "device": str(ctx.device).split(":")[0]}


def fit_predict(ctx: RunContext, config: Config) -> Result:
    if ctx.graph is None:
        raise ValueError("constellationnet needs the run's kNN graph (train.<run>.graph)")
    x_np = np.asarray(ctx.view.X, dtype=np.float32)
    if ctx.graph.n != len(x_np):
        raise ValueError(f"the graph has {ctx.graph.n} nodes but the view {len(x_np)} rows: the run's view and "
                         "graph must be views of the same dataset and profile (same subsample)")
    device = torch.device(ctx.device)
    torch.manual_seed(ctx.seed)
    rng = np.random.default_rng(ctx.seed)
    graph = InNeighbours.from_knn(ctx.graph)
    resources.check_costs("constellationnet", memory_costs(config, graph.n, x_np.shape[1], graph.k, ctx.n_clusters),
                          device)
    x = torch.from_numpy(x_np).to(device)
    model = build_model(config, x_np.shape[1], ctx.n_clusters).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", patience=config.plateau_patience,
                                                           factor=config.plateau_factor)
    stop = PlateauStop(config.stop_patience, config.stop_min_delta)
    timer, history = EpochTimer(), []
    seeds_all = np.arange(graph.n)
    whole = whole_graph(graph, config, device) if config.training == "full_batch" else None
    model.encoder.fix_graph(whole is not None)
    folder = checkpoints.folder_of(ctx, "constellationnet")
    fingerprint = _fingerprint(config, ctx, x_np, graph) if folder is not None else None
    state = checkpoints.load_latest(folder, fingerprint, max_epoch=config.epochs) if folder is not None else None
    epochs_run, stopped = 0, False
    if state is not None:   # continue bit-identically after the last finished epoch
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        stop.best, stop.best_epoch, stop.wait = float(state["stop"][0]), int(state["stop"][1]), int(state["stop"][2])
        rng.bit_generator.state = state["rng"]
        checkpoints.set_global_rng_states(state)
        history, timer.seconds = list(state["history"]), list(state["seconds"])
        epochs_run, stopped = int(state["epoch"]), bool(state["stopped"])
    first = config.epochs if stopped else epochs_run
    bar = tqdm(range(first, config.epochs), desc=f"constellationnet-{config.conv}", disable=not ctx.progress,
               leave=False, initial=first, total=config.epochs)
    for epoch in bar:
        model.train()
        start = time.perf_counter()
        sums: dict[str, float] = {}
        n_batches, nodes_seen = 0, 0
        for xb, edge_index, edge_weight, adjacency, n_nodes in training_graphs(graph, x, seeds_all, config, rng,
                                                                               device, whole):
            loss, parts = batch_loss(model, xb, edge_index, edge_weight, config, adjacency)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for key, value in {"loss": float(loss.detach()), **parts}.items():
                sums[key] = sums.get(key, 0.0) + value
            n_batches += 1
            nodes_seen += n_nodes
        timer.seconds.append(time.perf_counter() - start)
        means = {key: value / n_batches for key, value in sums.items()}
        scheduler.step(means["loss"])
        epochs_run = epoch + 1
        _, should_stop = stop.update(means["loss"], epoch)
        row = {"epoch": epochs_run, **{k: round(v, 6) for k, v in means.items()},
               "lr": optimizer.param_groups[0]["lr"], "seconds": round(timer.seconds[-1], 3),
               "mean_subgraph_nodes": round(nodes_seen / n_batches, 1)}
        history.append(row)
        if folder is not None:   # every epoch: a sampled epoch is minutes on a CPU
            checkpoints.save(folder, {
                "epoch": epochs_run, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "stop": [float(stop.best), int(stop.best_epoch), int(stop.wait)],
                "rng": rng.bit_generator.state, "history": history, "seconds": [float(t) for t in timer.seconds],
                "stopped": bool(should_stop), "fingerprint": fingerprint, **checkpoints.global_rng_states()})
        ctx.log(row)
        bar.set_postfix(loss=f"{means['loss']:.4f}")
        if should_stop:
            break

    model.encoder.fix_graph(False)
    start = time.perf_counter()
    h = embed_nodes(model, x, graph, config, device)
    if config.predict == "dmon":
        with torch.no_grad():
            assignment = torch.softmax(model.head.logits(h), dim=-1)
        labels = assignment.argmax(dim=1).cpu().numpy()
        embedding = assignment.cpu().numpy()
    else:
        from sklearn.cluster import KMeans

        embedding = h.cpu().numpy()
        labels = KMeans(n_clusters=ctx.n_clusters, n_init=config.kmeans_n_init,
                        random_state=ctx.seed).fit_predict(embedding)
    inference_s = time.perf_counter() - start
    extra = {"modularity": round(partition_modularity(graph, labels, ctx.n_clusters), 6),
             "modularity_dmon": round(partition_modularity(graph, labels, ctx.n_clusters, config.symmetric_adjacency,
                                                           config.dmon_edge_weights), 6),
             "epochs": epochs_run, "seconds_per_epoch": round(timer.mean, 3), "inference_s": round(inference_s, 3),
             "params": count_parameters(model), "hidden": hidden_size(config, x_np.shape[1]),
             "stopped_early": epochs_run < config.epochs, "best_loss_epoch": stop.best_epoch + 1,
             "clusters_used": int(len(np.unique(labels)))}
    return Result(labels=np.asarray(labels, dtype=np.int64), embedding=embedding, history=history, extra=extra)

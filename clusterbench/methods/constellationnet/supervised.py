"""Supervised ConstellationNet (3.2, 4.1.4, Table 2): a CNN-GNN classifier with graph-augmented
prediction.

Split: the view's own train/test split when it has one (Fashion-MNIST 60k/10k, CIFAR-10
50k/10k); otherwise (mnist-sample10k, digits) a seeded, class-stratified split with
``test_fraction`` of the rows held out, the same for every training seed (``split_seed``). A
``val_fraction`` of the training rows (stratified by their labels) is held out as validation
data for the plateau scheduler and for choosing the epoch; the paper says only "a variable
number of epochs".

Graph (3.1.1, residual edge index): the K nearest neighbours (K = model.k) over the flattened
input, with inverse-distance weights, built on the *fit* rows only; every validation and test
row is linked to its K nearest fit rows (graph-augmented prediction). Messages only ever leave
fit rows, so no prediction can see another test point, and test labels are never read until
the score stage.

Model: the CNN embedder on every node of a sampled subgraph (trained end to end), a 5-layer GCN
of width 128, and the DMoN assignment MLP as classifier; negative log-likelihood on the seed
nodes; mini-batches of 64 seeds with 30 neighbours over 2 hops; Adam 1e-3; ReduceLROnPlateau
(patience 5, factor 0.75) on the validation loss. Prediction: all neighbours, over the whole
graph (or all-neighbour samples of the training depth).

The ImageNet variant (``embedder: convnext-large``) replaces the CNN by a frozen, pretrained
ConvNeXt whose pooled features are the node features (and, by default, the graph's features).
"""
from __future__ import annotations

import copy
import time
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from tqdm.auto import tqdm

from ... import resources
from .. import Result, RunContext
from .common import (EpochTimer, PlateauStop, TrainingConfig, count_parameters, gnn_parameter_count, subgraph_nodes,
                     subgraph_tensors)
from .models import CNNEmbedder, SupervisedConstellationNet, recalibrate_batchnorm
from .sampling import InNeighbours, inductive_graph, sample_subgraph, seed_batches

TASK = "classification"


class Config(TrainingConfig):
    embedder: Literal["cnn", "convnext-large", "convnext-base"] = "cnn"
    cnn_out: int = Field(256, ge=1, description="CNN embedding size (4.1.4: 256)")
    cnn_rgb_hidden: int = Field(512, ge=1, description="RGB CNN's intermediate projection (4.1.4: 512)")
    hidden: int = Field(128, ge=1, description="GCN width (4.1.4: 128)")
    epochs: int = Field(20, ge=1, description="at most this many epochs")
    stop_patience: int = Field(3, ge=1, description="stop after this many epochs without a lower validation loss")
    stop_min_delta: float = Field(1e-4, ge=0.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="held out when the view has no train/test split")
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="of the training rows, for epoch choice")
    split_seed: int = 0
    graph_features: Literal["input", "embedding"] | None = Field(
        None, description="kNN graph over the flattened input or the embedder's features; "
        "null = input for the CNN, embedding for a ConvNeXt")
    embed_chunk: int = Field(2048, ge=1, description="images per CNN chunk (memory only; results identical)")
    inference_batch_size: int = Field(256, ge=1, description="seeds per batch when inference=all_neighbours")
    bn_recalibration: bool = Field(True, description="re-estimate BatchNorm statistics on the training graph")


def make_split(y: np.ndarray, split: np.ndarray, test_fraction: float, val_fraction: float,
               seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(fit, val, test) row indices, each sorted, and where the test rows came from."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    train, test = rows[split == 0], rows[split == 1]
    val = rows[(split != 0) & (split != 1)]
    if len(train) and len(test):
        source = "the view's split"
    else:
        train, test = train_test_split(rows, test_size=test_fraction, random_state=seed, stratify=y)
        val = np.zeros(0, dtype=np.int64)
        source = f"seeded stratified split (test_fraction={test_fraction}, split_seed={seed})"
    if not len(val) and val_fraction > 0:
        train, val = train_test_split(train, test_size=val_fraction, random_state=seed, stratify=y[train])
    return np.sort(train), np.sort(val), np.sort(test), source


def memory_costs(config: Config, inputs_shape: tuple[int, ...], n_fit: int, k: int,
                 n_classes: int) -> list[resources.Cost]:
    """The large allocations of a run, estimated before the model is built. Weights count five
    times (the weights, gradients, Adam's two moments, the best epoch's copy). The CNN's
    activations (per image: 280 H W floats through its three convolutions and poolings, twice
    with gradients) are held for at most ``embed_chunk`` images at a time (checkpointed chunks);
    the GCN's for every node of a training subgraph (``hidden`` x ``num_layers``)."""
    n = inputs_shape[0]
    cnn = config.embedder == "cnn"
    gnn_in = config.cnn_out if cnn else int(np.prod(inputs_shape[1:]))
    h, layers = config.hidden, config.num_layers
    sub = subgraph_nodes(n_fit, k, config.batch_size, config.num_neighbors)
    costs = [resources.Cost("the node inputs", n * int(np.prod(inputs_shape[1:])) * 4 * 2),
             resources.Cost("the GCN's weights with gradients, Adam state and the best epoch's copy",
                            gnn_parameter_count("gcn", gnn_in, h, layers, n_classes) * 4 * 5,
                            (("hidden", h), ("num_layers", layers))),
             resources.Cost(f"the GCN's activations ({sub:,}-node training subgraphs, {n:,} nodes at inference)",
                            max(sub * layers * h * 6, n * h * 4) * 4 + max(sub, n) * k * 24, (("hidden", h),))]
    if cnn:
        c, height, width = inputs_shape[1:]
        flat = 128 * (height // 4) * (width // 4)
        proj = flat * config.cnn_out if c == 1 else flat * config.cnn_rgb_hidden + config.cnn_rgb_hidden * config.cnn_out
        sizes = (("cnn_out", config.cnn_out),) if c == 1 else (("cnn_rgb_hidden", config.cnn_rgb_hidden),
                                                                ("cnn_out", config.cnn_out))
        costs.append(resources.Cost("the CNN's projection with gradients, Adam state and the best epoch's copy",
                                    (proj + 128 * 64 * 9 + 64 * 32 * 9) * 4 * 5, sizes))
        per_image = 280 * height * width * 4 * 2 + (config.cnn_rgb_hidden + config.cnn_out) * 4 * 2
        chunk = min(config.embed_chunk, max(sub, n))
        costs.append(resources.Cost(f"the CNN's activations of {chunk:,} images at a time", chunk * per_image,
                                    (("embed_chunk", config.embed_chunk),)))
    return costs


def _node_inputs(ctx: RunContext, config: Config, rows: np.ndarray, device) -> tuple[np.ndarray, np.ndarray, int]:
    """(model inputs per node, graph features per node, feature dim if no CNN) for ``rows``."""
    view = ctx.view
    if config.embedder == "cnn":
        images = view.images()[rows]
        return images, view.X[rows], 0
    from .convnext import convnext_features, load_convnext

    features = convnext_features(load_convnext(config.embedder), view.images()[rows], device,
                                 progress=ctx.progress)
    graph_x = features if config.graph_features in (None, "embedding") else view.X[rows]
    return features, graph_x, features.shape[1]


def _fit_graph_tensors(graph: InNeighbours, n_fit: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The training graph alone: every fit node with its K in-edges (all from fit nodes)."""
    src = graph.sources[:n_fit].ravel()
    dst = np.repeat(np.arange(n_fit), graph.k)
    return (torch.from_numpy(np.stack([src, dst])).to(device),
            torch.from_numpy(graph.weights[:n_fit].ravel()).to(device))


@torch.no_grad()
def predict_log_proba(model: SupervisedConstellationNet, inputs: torch.Tensor, graph: InNeighbours, n_fit: int,
                      targets: np.ndarray, config: Config, device) -> torch.Tensor:
    """Log-probabilities of ``targets`` (local node ids), every neighbour used.

    full_graph: the fit nodes plus the targets, each with all its in-edges (all from fit
    nodes): exactly the targets' complete receptive field. all_neighbours: per batch of
    targets, the all-neighbour sample as deep as the training samples. BatchNorm statistics are
    first re-estimated on the training graph (fit nodes only, so no prediction depends on
    another held-out row; see models.recalibrate_batchnorm).
    """
    model.eval()
    fit_edges = _fit_graph_tensors(graph, n_fit, device) if config.bn_recalibration else None
    if config.inference == "full_graph":
        nodes = np.concatenate([np.arange(n_fit), targets[targets >= n_fit]])
        local = np.full(graph.n, -1, dtype=np.int64)
        local[nodes] = np.arange(len(nodes))
        src = local[graph.sources[nodes]].ravel()
        dst = np.repeat(np.arange(len(nodes)), graph.k)
        edge_index = torch.from_numpy(np.stack([src, dst])).to(device)
        edge_weight = torch.from_numpy(graph.weights[nodes].ravel()).to(device)
        feats = model.embed(inputs[torch.from_numpy(nodes).to(device)], config.embed_chunk)
        if fit_edges is not None:
            recalibrate_batchnorm(model.encoder, [(feats[:n_fit], *fit_edges)])
        logp = model.classify(feats, edge_index, edge_weight)
        return logp[torch.from_numpy(local[targets]).to(device)]
    if fit_edges is not None:
        fit_feats = model.embed(inputs[:n_fit], config.embed_chunk)
        recalibrate_batchnorm(model.encoder, [(fit_feats, *fit_edges)])
    fanouts = [-1] * len(config.num_neighbors)
    rng = np.random.default_rng(0)  # unused with fanout -1
    out = []
    for seeds in seed_batches(targets, config.inference_batch_size, None):
        sub = sample_subgraph(graph, seeds, fanouts, rng)
        edge_index, edge_weight = subgraph_tensors(sub, device)
        feats = model.embed(inputs[torch.from_numpy(sub.nodes).to(device)], config.embed_chunk)
        out.append(model.classify(feats, edge_index, edge_weight)[:sub.batch_size])
    return torch.cat(out)


def fit_predict(ctx: RunContext, config: Config) -> Result:
    device = torch.device(ctx.device)
    torch.manual_seed(ctx.seed)
    rng = np.random.default_rng(ctx.seed)
    y = np.asarray(ctx.view.y)
    fit, val, test, split_source = make_split(y, np.asarray(ctx.view.split), config.test_fraction,
                                              config.val_fraction, config.split_seed)
    if not len(test):
        raise ValueError("constellationnet-supervised: no test rows to predict")
    k = ctx.graph.k if ctx.graph is not None else 50
    rows = np.concatenate([fit, val, test])  # local node ids: fit, then val, then test
    n_fit, n_val = len(fit), len(val)
    inputs_np, graph_x, feature_dim = _node_inputs(ctx, config, rows, device)
    resources.check_costs("constellationnet-supervised", memory_costs(config, inputs_np.shape, n_fit, k, ctx.n_clusters),
                          device)
    graph = inductive_graph(np.asarray(graph_x[:n_fit], np.float32), np.asarray(graph_x[n_fit:], np.float32), k)
    n_classes = ctx.n_clusters
    y_fit = torch.from_numpy(y[fit]).to(device)
    y_val = torch.from_numpy(y[val]).to(device)
    if int(y[fit].max()) >= n_classes:
        raise ValueError(f"labels reach {int(y[fit].max())} but the view has {n_classes} classes")

    if config.embedder == "cnn":
        c, h, w = inputs_np.shape[1:]
        embedder = CNNEmbedder(c, h, w, config.cnn_out, config.cnn_rgb_hidden)
    else:
        embedder = None
    model = SupervisedConstellationNet(embedder, feature_dim, config.hidden, config.num_layers, n_classes,
                                       config.dropout, config.edge_weights).to(device)
    inputs = torch.from_numpy(np.ascontiguousarray(inputs_np, dtype=np.float32)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", patience=config.plateau_patience,
                                                           factor=config.plateau_factor)
    stop = PlateauStop(config.stop_patience, config.stop_min_delta)
    best_state = copy.deepcopy(model.state_dict())
    val_targets = np.arange(n_fit, n_fit + n_val)
    timer, history, epochs_run = EpochTimer(), [], 0
    bar = tqdm(range(config.epochs), desc="constellationnet-supervised", disable=not ctx.progress, leave=False)
    for epoch in bar:
        model.train()
        start = time.perf_counter()
        total, n_seen, nodes_seen, n_batches = 0.0, 0, 0, 0
        for seeds in seed_batches(np.arange(n_fit), config.batch_size, rng):
            sub = sample_subgraph(graph, seeds, config.num_neighbors, rng)
            edge_index, edge_weight = subgraph_tensors(sub, device)
            feats = model.embed(inputs[torch.from_numpy(sub.nodes).to(device)], config.embed_chunk)
            logp = model.classify(feats, edge_index, edge_weight)[:sub.batch_size]
            loss = F.nll_loss(logp, y_fit[torch.from_numpy(seeds).to(device)])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(seeds)
            n_seen += len(seeds)
            nodes_seen += sub.num_nodes
            n_batches += 1
        timer.seconds.append(time.perf_counter() - start)
        epochs_run = epoch + 1
        row = {"epoch": epochs_run, "train_loss": round(total / n_seen, 6), "lr": optimizer.param_groups[0]["lr"],
               "seconds": round(timer.seconds[-1], 3), "mean_subgraph_nodes": round(nodes_seen / n_batches, 1)}
        if n_val:
            logp_val = predict_log_proba(model, inputs, graph, n_fit, val_targets, config, device)
            monitored = float(F.nll_loss(logp_val, y_val))
            row.update(val_loss=round(monitored, 6),
                       val_top1=round(float((logp_val.argmax(1) == y_val).float().mean()), 6))
        else:
            monitored = row["train_loss"]
        scheduler.step(monitored)
        improved, should_stop = stop.update(monitored, epoch)
        if improved:
            best_state = copy.deepcopy(model.state_dict())
        history.append(row)
        ctx.log(row)
        bar.set_postfix(loss=f"{monitored:.4f}")
        if should_stop:
            break

    model.load_state_dict(best_state)
    start = time.perf_counter()
    test_targets = np.arange(n_fit + n_val, len(rows))
    labels = predict_log_proba(model, inputs, graph, n_fit, test_targets, config, device).argmax(1).cpu().numpy()
    extra = {"epochs": epochs_run, "best_epoch": stop.best_epoch + 1, "seconds_per_epoch": round(timer.mean, 3),
             "inference_s": round(time.perf_counter() - start, 3), "params": count_parameters(model),
             "n_fit": int(n_fit), "n_val": int(n_val), "n_test": int(len(test)), "split": split_source}
    return Result(labels=labels.astype(np.int64), index=test, history=history, extra=extra)

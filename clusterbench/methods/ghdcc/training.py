"""GHDCC's prediction and the method interface's ``fit_predict`` (training is CC's resumable
trainer with GHDCC's loss).
"""
from __future__ import annotations

import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from ... import resources
from .. import contrastive, Result, RunContext
from ..cc import (BACKBONE_DIM, code_fingerprint, count_parameters, make_trainer, memory_costs as contrastive_costs,
                  set_threads, training_fingerprint, view_images)
from .config import Config
from .losses import ghdcc_loss
from .model import GHDCCNetwork


@torch.no_grad()
def predict_outputs(model: GHDCCNetwork, images: torch.Tensor, config: Config, seed: int,
                    device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """GCN1 and GCN2 outputs of every image (resized, no augmentation), each graph built over a batch of
    ``graph_batch_size`` rows drawn in a seeded random order (a data set stored by class would
    otherwise hand the graph its labels), returned in the images' order."""
    n = len(images)
    size = min(config.graph_batch_size or config.batch_size, n)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    z_out = torch.empty(n, config.feature_dim)
    y_out = None
    for start in range(0, n, size):
        rows = order[start:start + size]
        x = contrastive.resize_images(images[rows].to(device), config.image_size)
        z, y = model(x)
        if y_out is None:
            y_out = torch.empty(n, y.shape[1])
        z_out[rows], y_out[rows] = z.float().cpu(), y.float().cpu()
    return z_out, y_out


def cluster_labels(z: torch.Tensor, y: torch.Tensor, config: Config, n_clusters: int, seed: int) -> np.ndarray:
    if config.predict == "argmax":
        return y.argmax(1).numpy().astype(np.int64)
    from sklearn.cluster import KMeans

    data = F.normalize(z, dim=1) if config.predict == "kmeans-instance" else y
    km = KMeans(n_clusters=n_clusters, n_init=config.kmeans_n_init, random_state=seed)
    return km.fit_predict(data.numpy().astype(np.float64)).astype(np.int64)


def memory_costs(config: Config, images_shape: tuple[int, ...], device, n_clusters: int) -> list[resources.Cost]:
    """CC's costs (cc.memory_costs, three views with the interpolation) plus GHDCC's own: the
    heads' widths (``backbone_dim``, ``gcn_hidden``), the GCNs' activations, and the thresholded
    cosine graph over each training batch ((views x batch)^2 similarities, with masks and the
    normalised adjacency, ~8 float-sized copies; per view under ``graph: concatenated``) and over
    each prediction batch (``graph_batch_size``)."""
    n = images_shape[0]
    rep = BACKBONE_DIM[config.backbone]
    dim = config.backbone_dim or rep
    hidden = config.gcn_hidden or dim
    views = 3 if config.interpolation else 2
    rows = views * min(config.batch_size, n)
    if config.projector == "gcn":
        heads = dim * hidden * 2 + hidden * (config.feature_dim + n_clusters)
    else:
        heads = 2 * dim * dim + dim * (config.feature_dim + n_clusters)
    sizes = (("feature_dim", config.feature_dim), ("backbone_dim", dim)) + (
        (("gcn_hidden", hidden),) if config.projector == "gcn" else ())
    costs = contrastive_costs(config, images_shape, device, heads + (rep * dim if config.backbone_dim else 0), views,
                              sizes)
    costs.append(resources.Cost("the projectors' activations", rows * (dim + 2 * hidden) * 4 * 6,
                                (("gcn_hidden", hidden), ("backbone_dim", dim))))
    if config.projector == "gcn":
        graph = rows * rows if config.graph == "mixed" else views * (rows // views) ** 2
        costs.append(resources.Cost(f"the cosine graph over each training batch ({rows:,} rows)", graph * 4 * 8,
                                    (("batch_size", config.batch_size),)))
        g = min(config.graph_batch_size or config.batch_size, n)
        costs.append(resources.Cost(f"the cosine graph over each prediction batch ({g:,} rows)", g * g * 4 * 8,
                                    (("graph_batch_size", config.graph_batch_size or config.batch_size),)))
    return costs


# Settings that only change prediction, not the weights: a checkpoint trained under other values resumes.
PREDICTION_DEFAULTS = {"predict": "kmeans-instance", "kmeans_n_init": 10, "graph_batch_size": None}


def fit_predict(ctx: RunContext, config: Config) -> Result:
    set_threads(config)
    torch.manual_seed(ctx.seed)
    images = view_images(ctx)
    resources.check_costs("ghdcc", memory_costs(config, tuple(images.shape), ctx.device, ctx.n_clusters), ctx.device)
    model = GHDCCNetwork(config, ctx.n_clusters).to(ctx.device)
    trainer = make_trainer(config, ctx, model, ghdcc_loss(config), images.shape[-1], "ghdcc",
                           training_fingerprint(config.model_copy(update=PREDICTION_DEFAULTS), ctx, images,
                                                code=code_fingerprint(sys.modules[__package__])))
    history = trainer.fit(images)
    model.eval()
    start = time.perf_counter()
    z, y = predict_outputs(model, images, config, ctx.seed, ctx.device)
    labels = cluster_labels(z, y, config, ctx.n_clusters, ctx.seed)
    seconds = [row["seconds"] for row in history if "seconds" in row]
    extra = {"epochs": config.epochs, "resumed_from_epoch": trainer.resumed_from,
             "seconds_per_epoch": round(float(np.mean(seconds)), 3) if seconds else None,
             "inference_s": round(time.perf_counter() - start, 3), "params": count_parameters(model),
             "clusters_used": int(len(np.unique(labels))), "embedding": "GCN1 output (L2-normalised)"}
    # The embedding saved for figures (t-SNE/UMAP, the paper's Fig. 4) is GCN1's output.
    return Result(labels=labels, embedding=F.normalize(z, dim=1).numpy(), history=history, extra=extra)

"""Hi-LANDER's training and the method interface's ``fit_predict`` (open-set: fit on the
labelled split 0, cluster the unseen identities of split 1).
"""
from __future__ import annotations

import math
import time

import numpy as np

from .. import Result, RunContext
from ... import metrics, resources
from .config import Config
from .hierarchy import ground_truth_levels, l2norm
from .inference import infer
from .model import Model


def _loss(model: Model, tensors, targets, nodes, rng: np.random.Generator):
    t = model.torch
    density_t, linkage_t = targets
    _, nbrs, _, mask = tensors
    logits, density = model.predict(tensors, nodes)
    loss_den = t.nn.functional.mse_loss(density, density_t[nodes])
    # linkage loss on edges j -> i whose source is denser than the target (ground truth)
    conn = mask[nodes] & (density_t[nbrs[nodes]] > density_t[nodes].unsqueeze(1))
    same = linkage_t[nodes]
    if model.cfg.balance:
        conn = _balance(conn, same, rng)
    if bool(conn.any()):
        loss_conn = t.nn.functional.cross_entropy(logits[conn], same[conn].long())
    else:
        loss_conn = logits.sum() * 0.0
    return loss_den + loss_conn, loss_den.item(), loss_conn.item()


def _balance(conn, same, rng: np.random.Generator):
    """Drop random edges of the larger class (same / different label) until both are equal."""
    pos = (conn & same).flatten().nonzero().squeeze(1)
    neg = (conn & ~same).flatten().nonzero().squeeze(1)
    big, small = (pos, neg) if len(pos) > len(neg) else (neg, pos)
    if len(big) == len(small):
        return conn
    drop = big[rng.choice(len(big), len(big) - len(small), replace=False)]
    conn = conn.clone()
    conn.view(-1)[drop] = False
    return conn


def train(x_train: np.ndarray, y_train: np.ndarray, cfg: Config, device: str, seed: int,
          log=lambda row: None, progress: bool = False) -> tuple[Model, dict]:
    import torch

    t0 = time.perf_counter()
    feats = l2norm(x_train)
    graphs_ = [g for k, lv in zip(cfg.train_knn_k, cfg.train_levels) for g in ground_truth_levels(feats, y_train, k, lv)]
    if not graphs_:
        raise ValueError(f"Hi-LANDER: the training split has {len(feats)} rows, too few for any kNN graph "
                         f"with k = {max(cfg.train_knn_k)}")
    build_s = time.perf_counter() - t0
    model = Model(feats.shape[1], cfg, device)
    model.train()
    tensors = [model.tensors(g) for g in graphs_]
    targets = [(torch.as_tensor(g.density, device=device), torch.as_tensor(g.linkage, device=device)) for g in graphs_]
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    per_loader = math.ceil(graphs_[0].n / cfg.batch_size)  # the reference: batches of the first graph
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * per_loader * len(graphs_),
                                                       eta_min=cfg.eta_min)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    queues: list[list] = [[] for _ in graphs_]

    def next_batch(i):
        if not queues[i]:
            order = torch.randperm(graphs_[i].n, generator=gen)
            queues[i] = list(order.split(cfg.batch_size))
        return queues[i].pop(0).to(device)

    for epoch in range(cfg.epochs):
        te = time.perf_counter()
        sums = np.zeros(3)
        steps = 0
        for _ in range(per_loader):
            for i in range(len(graphs_)):
                opt.zero_grad()
                loss, ld, lc = _loss(model, tensors[i], targets[i], next_batch(i), rng)
                loss.backward()
                opt.step()
                sched.step()
                sums += (loss.item(), ld, lc)
                steps += 1
        mean = sums / steps
        log({"epoch": epoch + 1, "loss": float(mean[0]), "loss_den": float(mean[1]), "loss_conn": float(mean[2]),
             "lr": float(opt.param_groups[0]["lr"]), "wall_s": time.perf_counter() - te})
    info = {"train_graphs": [int(g.n) for g in graphs_], "graph_build_s": round(build_s, 3),
            "train_s": round(time.perf_counter() - t0, 3), "steps_per_epoch": per_loader * len(graphs_)}
    return model, info


# --- the method interface ------------------------------------------------------------------------

def memory_costs(cfg: Config, n_train: int, n_test: int, dim: int) -> list[resources.Cost]:
    """The large allocations of a run, estimated before any graph or model is built: the level
    graphs (every training level is kept on the device; ``train_knn_k``, ``knn_k``), the weights
    with gradients and SGD momentum (``hidden``), and one step's activations: the ``num_conv``-hop
    neighbourhood of min(batch_size, N) targets gathered per neighbour at the layer's width (twice:
    the gather and the weighted copy), each layer's input and output with gradients, and the edge
    classifier on every (target, neighbour) pair; at inference the same without gradients."""
    d_in = 2 * dim if cfg.use_cluster_feat else dim
    h, half = cfg.hidden, cfg.hidden // 2
    dims = [d_in, h, h, half, half][: cfg.num_conv + 1]
    conv = sum((a * cfg.gat_heads * b) if cfg.conv == "gat" else 2 * a * b for a, b in zip(dims[:-1], dims[1:]))
    params = conv + 2 * dims[-1] * half + half * half + 2 * half
    if not cfg.joint:
        params += conv + dims[-1] * half + half
    widest = max(dims) * max(cfg.gat_heads if cfg.conv == "gat" else 1, 1)

    def step(targets: int, k: int, n: int, grad: bool) -> float:
        nodes = min(n, targets * k ** cfg.num_conv)
        gather = nodes * (k - 1) * widest * 4 * 2
        layers = nodes * (2 * widest + h) * 4 * (3 if grad else 1)
        pairs = targets * (k - 1) * half * 4 * (8 if grad else 2)
        return (gather + layers + pairs) * (1 if cfg.joint else 2)

    k_train = max(cfg.train_knn_k)
    train = step(min(cfg.batch_size, n_train), k_train, n_train, True)
    infer = step(min(cfg.infer_batch_size, n_test), cfg.knn_k, n_test, False)
    # every level counted at N nodes (an upper bound: levels above 0 hold the super-nodes)
    levels = sum(lv * (d_in * 4 + (k - 1) * 13 + 8) for k, lv in zip(cfg.train_knn_k, cfg.train_levels))
    costs = [resources.Cost("the training level graphs", n_train * levels, (("train_knn_k", list(cfg.train_knn_k)),)),
             resources.Cost("the test level graph", n_test * (d_in * 4 + (cfg.knn_k - 1) * 21), (("knn_k", cfg.knn_k),)),
             resources.Cost("the weights with gradients and SGD momentum", params * 4 * 3, (("hidden", h),))]
    if train >= infer:
        costs.append(resources.Cost(f"one training step's activations ({min(cfg.batch_size, n_train):,} targets)",
                                    train, (("batch_size", cfg.batch_size), ("hidden", h))))
    else:
        costs.append(resources.Cost(f"one inference batch's activations ({min(cfg.infer_batch_size, n_test):,} "
                                    "targets)", infer, (("infer_batch_size", cfg.infer_batch_size), ("hidden", h))))
    return costs


def open_set_rows(split: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, evaluated rows): split 0 is the labelled training set, split 1 the unseen test set."""
    train_rows, test_rows = np.flatnonzero(split == 0), np.flatnonzero(split == 1)
    if len(train_rows) == 0 or len(test_rows) == 0:
        raise ValueError(f"Hi-LANDER needs an open-set view: labelled training rows (split 0) and test rows "
                         f"(split 1); this view holds splits {sorted(set(int(s) for s in split))}. Use an open-set "
                         "data set (docs/methods/hilander.md)")
    return train_rows, test_rows


def fit_predict(ctx: RunContext, config: Config) -> Result:
    import torch

    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    torch.manual_seed(ctx.seed)
    view = ctx.view
    train_rows, test_rows = open_set_rows(view.split)
    y_train = view.y[train_rows]
    if (y_train < 0).any():
        raise ValueError("Hi-LANDER: the training split has unlabelled rows (label < 0)")
    resources.check_costs("hilander", memory_costs(config, len(train_rows), len(test_rows), view.X.shape[1]),
                          ctx.device)
    model, info = train(view.X[train_rows], y_train, config, ctx.device, ctx.seed, ctx.log, ctx.progress)
    per_level, levels, infer_s = infer(model, view.X[test_rows], config)  # test labels: not passed
    y_test = view.y[test_rows]  # scoring only, after inference
    for row, labels in zip(levels, per_level):
        row.update({name: round(metrics.CLUSTERING_METRICS[name](y_test, labels), 6) for name in ("fp", "fb", "nmi")})
    sweep = []
    for tau in config.sweep_tau:  # the same model, other thresholds: scored only, nothing chosen here
        labels_t, levels_t, infer_t = infer(model, view.X[test_rows], config.model_copy(update={"tau": tau}))
        sweep.append({"tau": tau, "clusters": int(levels_t[-1]["clusters"]) if levels_t else int(len(test_rows)),
                      "n_levels": len(levels_t), "inference_s": round(infer_t, 3),
                      **{name: round(metrics.CLUSTERING_METRICS[name](y_test, labels_t[-1]), 6)
                         for name in ("fp", "fb", "nmi")}})
    extra = {**info, "inference_s": round(infer_s, 3), "levels": levels, "n_levels": len(levels),
             **({"tau_sweep": sweep} if sweep else {}),
             "n_train": int(len(train_rows)), "n_test": int(len(test_rows)),
             "n_train_identities": int(len(np.unique(y_train))), "params": model.n_params(),
             "epochs": config.epochs}
    return Result(labels=per_level[-1], index=test_rows, extra=extra)

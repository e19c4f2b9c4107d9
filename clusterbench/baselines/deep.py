"""Autoencoder-based deep clustering baselines: AE + k-means, DEC, IDEC, DCN, DKM.

All five share one fully connected autoencoder (d-500-500-2000-10 by default, ReLU inside,
linear embedding and linear reconstruction) and one pretraining routine with the two protocols
of the papers:

- ``layerwise > 0``: DEC's greedy layer-wise pretraining of stacked denoising autoencoders
  (dropout ``corruption`` on each layer's input and hidden units), followed by ``finetune`` of
  end-to-end training without dropout (DEC section 3.2; IDEC reused DEC's pretrained weights,
  DCN pretrains layer-wise too);
- ``layerwise = 0``: end-to-end training for ``finetune`` (DKM's protocol).

Phase lengths are in the unit the paper states them (``schedule_unit``: DEC gives iterations,
DKM and DCN epochs); ``epochs`` caps every phase (the smoke profile sets it to a few).

Then each method's own clustering phase:

- ``ae-kmeans``: k-means on the pretrained embedding (IcicleGCN's "AE" row);
- ``dec`` (Xie et al. 2016): Student-t soft assignments Q, target P = Q^2 / f normalised,
  recomputed on the whole data set every ``update_interval`` iterations, KL(P||Q) on
  minibatches, stop when fewer than ``tol`` of the labels change between updates;
- ``idec`` (Guo et al. 2017): DEC's loss times ``gamma`` plus the reconstruction loss, so the
  decoder keeps the embedding's local structure;
- ``dcn`` (Yang et al. 2017): reconstruction + lambda/2 ||f(x) - M s||^2 with alternating
  network step, hard assignment step and per-centroid running-mean update (counts start at 100
  as in the authors' code);
- ``dkm`` (Moradi Fard et al. 2020): reconstruction + lambda * sum_k softmax_k(-alpha ||f(x)-r_k||^2)
  ||f(x)-r_k||^2, representatives learnt by gradient with the network, alpha held at 1000
  after pretraining (the paper's DKM_p variant).

Labels are never seen: initialisation is k-means on the embedding, stopping uses label change
between iterations (DEC's tolerance), nothing is selected by accuracy. See docs/baselines.md
for each default and its source.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from ..methods import MethodConfig, Result, RunContext, dec
from ..methods.dec import target_distribution
from ..resources import check_memory


class AutoencoderConfig(MethodConfig):
    hidden: list[int] = Field(default_factory=lambda: [500, 500, 2000], description="encoder hidden widths")
    embedding_dim: int | None = Field(10, ge=1, description="bottleneck size; null = number of clusters (DKM)")
    input_scale: float = Field(1.0, gt=0, description="features are multiplied by this (DEC on MNIST: "
                                                       "pixels x 0.02 = [0,1]-pixels x 5.1)")
    batch_size: int = Field(256, ge=1)
    schedule_unit: Literal["epochs", "iterations"] = Field(
        "epochs", description="unit of layerwise, finetune and lr_step (DEC states iterations, DKM/DCN epochs)")
    layerwise: int = Field(0, ge=0, description="greedy denoising pretraining length per layer (0 = none)")
    corruption: float = Field(0.2, ge=0, lt=1, description="dropout of the layer-wise denoising autoencoders")
    finetune: int = Field(200, ge=0, description="end-to-end autoencoder training length (after layer-wise)")
    epochs: int = Field(1_000_000, ge=1, description="cap on the epochs of every training phase; the smoke "
                                                     "profile's max_epochs lowers it")
    pretrain_optimizer: Literal["sgd", "adam"] = "adam"
    pretrain_lr: float = Field(1e-3, gt=0)
    pretrain_momentum: float = Field(0.9, ge=0, lt=1)
    lr_step: int | None = Field(None, ge=1, description="divide the pretraining lr by 10 every lr_step (DEC)")
    momentum_burnin: int = Field(0, ge=0, description="SGD momentum ramps up linearly over this many "
                                                      "iterations (DEC's solver: 1000)")
    init_std: float | None = Field(None, gt=0, description="Gaussian weight init std of the layer-wise "
                                                           "stage (DEC: 0.01); null = PyTorch's default")
    reconstruction: Literal["mse", "half_mse", "sse"] = Field(
        "mse", description="mse: mean squared error over batch and features (Keras); half_mse: half of it "
                           "(the Euclidean loss of DEC's Caffe fork: dot / count / 2); sse: squared error "
                           "summed over features, averaged over the batch (DKM)")
    cache_pretrained: bool = Field(True, description="reuse a pretrained autoencoder across runs with the same "
                                                     "data, seed and pretraining settings (as IDEC reused DEC's)")


class AEKMeansConfig(AutoencoderConfig):
    kmeans_n_init: int = Field(20, ge=1)


class DECConfig(AutoencoderConfig):
    alpha: float = Field(1.0, gt=0, description="Student-t degrees of freedom")
    kmeans_n_init: int = Field(20, ge=1)
    update_interval: int = Field(140, ge=1, description="iterations between target-distribution updates")
    tol: float = Field(0.001, ge=0, description="stop when this fraction of labels changes between updates")
    max_iter: int = Field(20000, ge=1, description="clustering-phase iterations at most")
    cluster_optimizer: Literal["sgd", "adam"] = "sgd"
    cluster_lr: float = Field(0.01, gt=0)
    cluster_momentum: float = Field(0.9, ge=0, lt=1)


class IDECConfig(DECConfig):
    gamma: float = Field(0.1, gt=0, description="weight of the clustering (KL) loss")
    cluster_optimizer: Literal["sgd", "adam"] = "adam"
    cluster_lr: float = Field(0.001, gt=0)


class DCNConfig(AutoencoderConfig):
    lam: float = Field(0.05, gt=0, description="lambda: the k-means term is lambda/2 ||f(x) - M s||^2")
    recon_weight: float = Field(1.0, gt=0, description="weight of the reconstruction term (the authors' code "
                                                       "weights it 0.05 against 1 for the k-means term)")
    cluster_epochs: int = Field(50, ge=0)
    cluster_optimizer: Literal["sgd", "adam"] = "sgd"
    cluster_lr: float = Field(0.05, gt=0)
    cluster_momentum: float = Field(0.9, ge=0, lt=1)
    initial_count: float = Field(100.0, gt=0, description="initial per-centroid counts (authors' code)")
    kmeans_n_init: int = Field(10, ge=1)


class DKMConfig(AutoencoderConfig):
    lam: float = Field(1.0, gt=0, description="lambda: weight of the k-means term")
    alpha: float = Field(1000.0, gt=0, description="inverse temperature of the soft assignment")
    n_alphas: int = Field(20, ge=1, description="number of alpha steps (constant alpha: DKM_p)")
    epochs_per_alpha: int = Field(5, ge=0)
    kmeans_n_init: int = Field(10, ge=1)


def batches_per_epoch(n: int, batch_size: int) -> int:
    return max(1, -(-n // batch_size))


def phase_iterations(length: int, config: AutoencoderConfig, n: int) -> int:
    """A phase's length in iterations, capped at ``config.epochs`` epochs."""
    per_epoch = batches_per_epoch(n, config.batch_size)
    iters = length * per_epoch if config.schedule_unit == "epochs" else length
    return int(min(iters, config.epochs * per_epoch))


# --- the autoencoder -------------------------------------------------------------------------

def _torch():
    import torch

    return torch


def _mlp(dims: list[int], last_linear: bool):
    nn = _torch().nn
    layers = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2 or not last_linear:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Autoencoder:
    """Symmetric MLP autoencoder; ``encoder`` and ``decoder`` are torch Sequentials."""

    def __init__(self, input_dim: int, hidden: list[int], embedding_dim: int):
        self.dims = [input_dim, *hidden, embedding_dim]
        self.encoder = _mlp(self.dims, last_linear=True)
        self.decoder = _mlp(self.dims[::-1], last_linear=True)

    def parameters(self):
        return list(self.encoder.parameters()) + list(self.decoder.parameters())

    def to(self, device):
        self.encoder.to(device)
        self.decoder.to(device)
        return self

    def state_dict(self) -> dict:
        return {"encoder": self.encoder.state_dict(), "decoder": self.decoder.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.encoder.load_state_dict(state["encoder"])
        self.decoder.load_state_dict(state["decoder"])

    def linears(self):
        nn = _torch().nn
        enc = [m for m in self.encoder if isinstance(m, nn.Linear)]
        dec = [m for m in self.decoder if isinstance(m, nn.Linear)]
        return enc, dec[::-1]  # dec[l] reconstructs the input of enc[l]


def reconstruction_loss(x, y, kind: str):
    err = (x - y) ** 2
    if kind == "mse":
        return err.mean()
    if kind == "half_mse":
        return 0.5 * err.mean()
    return err.sum(dim=1).mean()


def _optimizer(params, kind: str, lr: float, momentum: float):
    torch = _torch()
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    return torch.optim.Adam(params, lr=lr)


def _batches(n: int, batch_size: int, generator):
    torch = _torch()
    perm = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield perm[start:start + batch_size]


def _progress(iterable, enabled: bool, desc: str, total: int | None = None):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, mininterval=2.0)


def _set_lr_and_momentum(optimizer, config: AutoencoderConfig, iteration: int, per_epoch: int) -> None:
    """DEC's solver: lr / 10 every lr_step, momentum ramped up over the first momentum_burnin iterations."""
    if config.lr_step:
        step = config.lr_step * (per_epoch if config.schedule_unit == "epochs" else 1)
        for group in optimizer.param_groups:
            group["lr"] = config.pretrain_lr * (0.1 ** (iteration // step))
    if config.momentum_burnin and config.pretrain_optimizer == "sgd":
        ramp = min(1.0, iteration / config.momentum_burnin)
        for group in optimizer.param_groups:
            group["momentum"] = config.pretrain_momentum * ramp


def _gaussian_init(layer, std: float | None) -> None:
    if std is not None:
        _torch().nn.init.normal_(layer.weight, 0.0, std)
        _torch().nn.init.zeros_(layer.bias)


def _iterate(n: int, batch_size: int, iterations: int, generator):
    """``iterations`` minibatches of a fresh random permutation per epoch; yields (iteration, rows)."""
    done = 0
    while done < iterations:
        for idx in _batches(n, batch_size, generator):
            if done >= iterations:
                return
            yield done, idx
            done += 1


def _train_phase(name: str, params, loss_fn, n: int, iterations: int, config: AutoencoderConfig, gen,
                 progress: bool, log) -> None:
    opt = _optimizer(params, config.pretrain_optimizer, config.pretrain_lr, config.pretrain_momentum)
    per_epoch = batches_per_epoch(n, config.batch_size)
    total, seen = 0.0, 0
    for it, idx in _progress(_iterate(n, config.batch_size, iterations, gen), progress, name, total=iterations):
        _set_lr_and_momentum(opt, config, it, per_epoch)
        loss = loss_fn(idx)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
        seen += len(idx)
        if (it + 1) % per_epoch == 0 or it + 1 == iterations:
            log({"phase": name, "epoch": it // per_epoch, "iteration": it + 1, "loss": total / max(seen, 1)})
            total, seen = 0.0, 0


def pretrain(x, config: AutoencoderConfig, n_clusters: int, seed: int, device: str, progress: bool,
             log=lambda row: None) -> tuple[Autoencoder, float]:
    """Pretrain the autoencoder (layer-wise, then end-to-end); returns it and the epochs run."""
    torch = _torch()
    nn = torch.nn
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    ae = Autoencoder(x.shape[1], list(config.hidden), config.embedding_dim or n_clusters).to(device)
    n = len(x)
    per_epoch = batches_per_epoch(n, config.batch_size)
    iterations_run = 0
    enc, dec = ae.linears()
    layer_iters = phase_iterations(config.layerwise, config, n)
    if layer_iters > 0:
        h = x
        for depth, (e, d) in enumerate(zip(enc, dec)):
            last, first = depth == len(enc) - 1, depth == 0
            drop = nn.Dropout(config.corruption)
            _gaussian_init(e, config.init_std)
            _gaussian_init(d, config.init_std)

            def layer_loss(idx, e=e, d=d, h=h, last=last, first=first):
                xb = h[idx.to(h.device)]
                hidden = e(drop(xb))
                if not last:
                    hidden = drop(torch.relu(hidden))  # the embedding layer: linear, no dropout
                out = d(hidden)
                if not first:
                    out = torch.relu(out)
                return reconstruction_loss(xb, out, config.reconstruction)

            _train_phase(f"layer{depth + 1}", list(e.parameters()) + list(d.parameters()), layer_loss, n,
                         layer_iters, config, gen, progress, log)
            iterations_run += layer_iters
            with torch.no_grad():
                h = e(h)
                if not last:
                    h = torch.relu(h)
    finetune_iters = phase_iterations(config.finetune, config, n)

    def ae_loss(idx):
        xb = x[idx.to(x.device)]
        return reconstruction_loss(xb, ae.decoder(ae.encoder(xb)), config.reconstruction)

    if finetune_iters > 0:
        _train_phase("autoencoder", ae.parameters(), ae_loss, n, finetune_iters, config, gen, progress, log)
        iterations_run += finetune_iters
    return ae, iterations_run / per_epoch


PRETRAIN_FIELDS = ("hidden", "embedding_dim", "input_scale", "batch_size", "schedule_unit", "layerwise",
                   "corruption", "finetune", "epochs", "pretrain_optimizer", "pretrain_lr", "pretrain_momentum",
                   "lr_step", "momentum_burnin", "init_std", "reconstruction")
CACHE_DIR = Path("data") / "cache" / "autoencoders"


def _cache_key(x_np: np.ndarray, config: AutoencoderConfig, n_clusters: int, seed: int, device: str) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(x_np).tobytes())
    settings = {f: getattr(config, f) for f in PRETRAIN_FIELDS}
    h.update(json.dumps({"settings": settings, "k": n_clusters, "seed": seed, "device": device},
                        sort_keys=True).encode())
    return h.hexdigest()[:24]


def pretrained_autoencoder(ctx: RunContext, config: AutoencoderConfig):
    """The pretrained autoencoder for this run, from the cache when the same pretraining was
    already done (same data, seed and settings), else trained and cached."""
    torch = _torch()
    x_np = np.ascontiguousarray(ctx.view.X, dtype=np.float32) * np.float32(config.input_scale)
    n, d = x_np.shape
    widths = [d, *config.hidden, config.embedding_dim or ctx.n_clusters]
    n_params = sum(a * b + b for a, b in zip(widths[:-1], widths[1:])) * 2
    check_memory(x_np.nbytes * 4 + n_params * 4 * 6 + n * max(widths) * 4 * 2,
                 f"autoencoder {widths} on {n} points")
    device = ctx.device if ctx.device else "cpu"
    x = torch.from_numpy(x_np).to(device)
    key = _cache_key(x_np, config, ctx.n_clusters, ctx.seed, device)
    path = CACHE_DIR / f"{key}.pt"
    if config.cache_pretrained and path.is_file():
        from ..methods import checkpoints  # weights-only: a cache file never runs code

        stored = checkpoints.load(path, fix=f"delete {path} (a cached pretraining) to pretrain again")
        # The pretraining's logged rows are replayed, so a run's history (and its loss curve) is the
        # same whether its pretraining ran or came from the cache; an entry written before the cache
        # kept them is pretrained again.
        if "history" in stored:
            ae = Autoencoder(d, list(config.hidden), config.embedding_dim or ctx.n_clusters).to(device)
            ae.load_state_dict(stored["state"])
            for row in stored["history"]:
                ctx.log(dict(row))
            return ae, x, float(stored["epochs"]), True
    history: list[dict] = []
    ae, epochs = pretrain(x, config, ctx.n_clusters, ctx.seed, device, ctx.progress,
                          lambda row: (history.append(dict(row)), ctx.log(row)))
    if config.cache_pretrained:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        torch.save({"state": ae.state_dict(), "epochs": epochs, "history": history}, tmp)
        tmp.replace(path)
    return ae, x, epochs, False


def encode(ae: Autoencoder, x, batch_size: int = 4096) -> np.ndarray:
    torch = _torch()
    with torch.no_grad():
        return torch.cat([ae.encoder(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]).cpu().numpy()


def _kmeans(z: np.ndarray, k: int, seed: int, n_init: int):
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(z)


# --- AE + k-means ----------------------------------------------------------------------------

class AEKMeansBaseline:
    TASK = "clustering"
    Config = AEKMeansConfig
    USES_DEVICE = True

    def fit_predict(self, ctx: RunContext, config: AEKMeansConfig) -> Result:
        ae, x, epochs, cached = pretrained_autoencoder(ctx, config)
        z = encode(ae, x)
        labels = _kmeans(z, ctx.n_clusters, ctx.seed, config.kmeans_n_init).labels_
        return Result(labels=labels, embedding=z, extra={"epochs": int(np.ceil(epochs)), "pretrain_epochs": epochs,
                                                         "pretrained_from_cache": cached})


# --- DEC / IDEC ------------------------------------------------------------------------------

def soft_assignment(z, centres, alpha: float):
    """q_ij proportional to (1 + ||z_i - mu_j||^2 / alpha)^(-(alpha+1)/2) (methods.dec)."""
    return dec.student_t(dec.squared_distances(z, centres), alpha)


class DECBaseline:
    TASK = "clustering"
    USES_DEVICE = True

    def __init__(self, config_cls, improved: bool):
        self.Config = config_cls
        self.improved = improved  # IDEC: keep the decoder and add the reconstruction loss

    def fit_predict(self, ctx: RunContext, config: DECConfig) -> Result:
        torch = _torch()
        ae, x, epochs, cached = pretrained_autoencoder(ctx, config)
        n = len(x)
        torch.manual_seed(ctx.seed)
        km = _kmeans(encode(ae, x), ctx.n_clusters, ctx.seed, config.kmeans_n_init)
        centres = torch.nn.Parameter(torch.tensor(km.cluster_centers_, dtype=torch.float32, device=x.device))
        params = list(ae.encoder.parameters()) + [centres]
        if self.improved:
            params += list(ae.decoder.parameters())
        opt = _optimizer(params, config.cluster_optimizer, config.cluster_lr, config.cluster_momentum)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(ctx.seed)).to(x.device)
        previous = torch.as_tensor(km.labels_, dtype=torch.long, device=x.device)
        labels = previous
        p = None
        position = 0
        iterations = 0
        stopped = "max_iter"
        max_iter = min(config.max_iter, config.epochs * batches_per_epoch(n, config.batch_size))
        for it in _progress(range(max_iter), ctx.progress, "IDEC clustering" if self.improved else "DEC clustering"):
            if it % config.update_interval == 0:
                with torch.no_grad():
                    z = torch.cat([ae.encoder(x[i:i + 4096]) for i in range(0, n, 4096)])
                    q = soft_assignment(z, centres, config.alpha)
                    p = target_distribution(q)
                    labels = q.argmax(dim=1)
                    changed = float((labels != previous).float().mean())
                    previous = labels
                ctx.log({"phase": "clustering", "iteration": it, "label_change": changed})
                if it > 0 and changed < config.tol:
                    stopped = "tol"
                    break
            idx = order[position:position + config.batch_size]
            position += config.batch_size
            if position >= n:
                position = 0
            xb = x[idx]
            zb = ae.encoder(xb)
            qb = soft_assignment(zb, centres, config.alpha)
            pb = p[idx]
            kl = (pb * (torch.log(pb + 1e-12) - torch.log(qb + 1e-12))).sum(dim=1).mean()
            if self.improved:
                loss = config.gamma * kl + reconstruction_loss(xb, ae.decoder(zb), config.reconstruction)
            else:
                loss = kl
            opt.zero_grad()
            loss.backward()
            opt.step()
            iterations = it + 1
        with torch.no_grad():
            z = torch.cat([ae.encoder(x[i:i + 4096]) for i in range(0, n, 4096)])
            labels = soft_assignment(z, centres, config.alpha).argmax(dim=1)
        cluster_epochs = iterations * config.batch_size / n
        return Result(labels=labels.cpu().numpy(), embedding=z.cpu().numpy(),
                      extra={"epochs": int(np.ceil(epochs + cluster_epochs)), "pretrain_epochs": epochs,
                             "cluster_iterations": iterations, "stopped": stopped,
                             "pretrained_from_cache": cached})


# --- DCN -------------------------------------------------------------------------------------

class DCNBaseline:
    TASK = "clustering"
    Config = DCNConfig
    USES_DEVICE = True

    def fit_predict(self, ctx: RunContext, config: DCNConfig) -> Result:
        torch = _torch()
        ae, x, epochs, cached = pretrained_autoencoder(ctx, config)
        n = len(x)
        torch.manual_seed(ctx.seed)
        km = _kmeans(encode(ae, x), ctx.n_clusters, ctx.seed, config.kmeans_n_init)
        centres = torch.tensor(km.cluster_centers_, dtype=torch.float32, device=x.device)
        assign = torch.as_tensor(km.labels_, dtype=torch.long, device=x.device)
        counts = torch.full((ctx.n_clusters,), config.initial_count, device=x.device)
        opt = _optimizer(ae.parameters(), config.cluster_optimizer, config.cluster_lr, config.cluster_momentum)
        gen = torch.Generator().manual_seed(ctx.seed)
        cluster_epochs = min(config.cluster_epochs, config.epochs)
        for epoch in _progress(range(cluster_epochs), ctx.progress, "DCN"):
            total = 0.0
            for idx in _batches(n, config.batch_size, gen):
                idx = idx.to(x.device)
                xb = x[idx]
                zb = ae.encoder(xb)
                # 1) network step on reconstruction + lambda/2 ||f(x) - M s||^2 (M, s fixed)
                loss = config.recon_weight * reconstruction_loss(xb, ae.decoder(zb), config.reconstruction) + \
                    0.5 * config.lam * ((zb - centres[assign[idx]]) ** 2).sum(dim=1).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
                # 2) assignments and 3) running-mean centroid updates with the updated network
                with torch.no_grad():
                    zb = ae.encoder(xb)
                    new = torch.cdist(zb, centres).argmin(dim=1)
                    assign[idx] = new
                    for row, k in zip(zb, new.tolist()):
                        counts[k] += 1
                        centres[k] -= (centres[k] - row) / counts[k]
            ctx.log({"phase": "clustering", "epoch": epoch, "loss": total / n})
        with torch.no_grad():
            z = torch.cat([ae.encoder(x[i:i + 4096]) for i in range(0, n, 4096)])
            labels = torch.cdist(z, centres).argmin(dim=1)
        return Result(labels=labels.cpu().numpy(), embedding=z.cpu().numpy(),
                      extra={"epochs": int(np.ceil(epochs + cluster_epochs)), "pretrain_epochs": epochs,
                             "pretrained_from_cache": cached})


# --- DKM -------------------------------------------------------------------------------------

class DKMBaseline:
    TASK = "clustering"
    Config = DKMConfig
    USES_DEVICE = True

    def fit_predict(self, ctx: RunContext, config: DKMConfig) -> Result:
        torch = _torch()
        ae, x, epochs, cached = pretrained_autoencoder(ctx, config)
        n = len(x)
        torch.manual_seed(ctx.seed)
        km = _kmeans(encode(ae, x), ctx.n_clusters, ctx.seed, config.kmeans_n_init)
        reps = torch.nn.Parameter(torch.tensor(km.cluster_centers_, dtype=torch.float32, device=x.device))
        opt = _optimizer(ae.parameters() + [reps], config.pretrain_optimizer, config.pretrain_lr,
                         config.pretrain_momentum)
        gen = torch.Generator().manual_seed(ctx.seed)
        joint_epochs = min(config.n_alphas * config.epochs_per_alpha, config.epochs)
        for epoch in _progress(range(joint_epochs), ctx.progress, "DKM"):
            total = 0.0
            for idx in _batches(n, config.batch_size, gen):
                xb = x[idx.to(x.device)]
                zb = ae.encoder(xb)
                d2 = ((zb[:, None, :] - reps[None, :, :]) ** 2).sum(dim=2)
                soft = torch.softmax(-config.alpha * (d2 - d2.min(dim=1, keepdim=True).values.detach()), dim=1)
                loss = reconstruction_loss(xb, ae.decoder(zb), config.reconstruction) + \
                    config.lam * (soft * d2).sum(dim=1).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            ctx.log({"phase": "clustering", "epoch": epoch, "loss": total / n})
        with torch.no_grad():
            z = torch.cat([ae.encoder(x[i:i + 4096]) for i in range(0, n, 4096)])
            labels = torch.cdist(z, reps).argmin(dim=1)
        return Result(labels=labels.cpu().numpy(), embedding=z.cpu().numpy(),
                      extra={"epochs": int(np.ceil(epochs + joint_epochs)), "pretrain_epochs": epochs,
                             "pretrained_from_cache": cached})


AE_KMEANS = AEKMeansBaseline()
DEC = DECBaseline(DECConfig, improved=False)
IDEC = DECBaseline(IDECConfig, improved=True)
DCN = DCNBaseline()
DKM = DKMBaseline()

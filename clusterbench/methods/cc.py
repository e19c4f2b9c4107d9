"""CC: Contrastive Clustering (Li et al., AAAI 2021), IcicleGCN's main baseline and GHDCC's base.

A ResNet backbone maps two augmentations of each image to h^a, h^b; an instance projector
(Linear-ReLU-Linear to 128-d) feeds NT-Xent with tau_I = 0.5, a cluster projector
(Linear-ReLU-Linear to K, softmax) feeds the cluster-level contrastive loss with tau_C = 1.0
plus the entropy of the mean assignment (clusterbench.methods.contrastive). Adam 3e-4, batch 256,
1000 epochs, images resized to 224 (CC's defaults). Clusters: argmax of the cluster head on the
un-augmented (resized) images.

Training writes a resumable checkpoint every ``checkpoint_every`` epochs (into
data/<profile>/checkpoints/<run>/seed-<s>/cc/, beside the run's outputs) and keeps the epochs of ``keep_checkpoints`` (CC(500), CC(1000),
against which IcicleGCN and GHDCC compare) in the run's folder: ``seed-<s>/checkpoints/cc-epoch<E>.pt``.
docs/methods/cc.md describes every option.
"""
from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn as nn
from pydantic import Field, field_validator

from .. import resources
from . import checkpoints, contrastive
from . import MethodConfig, Result, RunContext

TASK = "clustering"
BACKBONES = ("resnet34", "resnet18", "cnn")


class ContrastiveConfig(MethodConfig):
    """What every two-view contrastive method shares: backbone, augmentations, optimiser,
    checkpoints (CC, IcicleGCN's stage 1, GHDCC)."""

    backbone: Literal["resnet34", "resnet18", "cnn"] = Field(
        "resnet34", description="ResNet-34 (CC, IcicleGCN), ResNet-18, or a 3-layer CNN for CPU runs; random init")
    image_size: int | None = Field(224, ge=8, description="side the images are cropped/resized to (CC and IcicleGCN: "
                                   "224 on every data set); null = the view's own size")
    epochs: int = Field(1000, ge=1, description="passes over the data (CC: 1000)")
    batch_size: int = Field(256, ge=2, description="images per step; the last incomplete batch is dropped")
    lr: float = Field(3e-4, gt=0, description="Adam learning rate")
    weight_decay: float = Field(0.0, ge=0)
    feature_dim: int = Field(128, ge=1, description="instance projector output (CC: 128)")
    instance_temperature: float = Field(0.5, gt=0, description="tau_I of NT-Xent")
    cluster_temperature: float = Field(1.0, gt=0, description="tau_C of the cluster-level loss")
    entropy_weight: float = Field(1.0, ge=0, description="weight of the log K - H(mean assignment) terms")
    self_in_denominator: bool = Field(False, description="keep the k = i term in the contrastive denominators "
                                      "(the literal eqs. 2 and 4 of IcicleGCN; SimCLR and CC leave it out)")
    crop_scale_min: float = Field(0.08, gt=0, le=1, description="RandomResizedCrop's smallest area fraction")
    jitter_strength: float = Field(0.5, ge=0, description="s in ColorJitter(0.8s, 0.8s, 0.8s, 0.2s)")
    jitter_p: float = Field(0.8, ge=0, le=1)
    grayscale_p: float = Field(0.2, ge=0, le=1)
    flip_p: float = Field(0.5, ge=0, le=1)
    augment_on: Literal["device", "loader"] = Field(
        "device", description="augment each batch after moving it to the device (GPU) or before (CPU)")
    mixed_precision: Literal["auto", "on", "off"] = Field(
        "auto", description="bfloat16 autocast of the forward pass; auto = on for CUDA, off on the CPU")
    checkpoint_every: int = Field(10, ge=0, description="epochs between resumable checkpoints (0: only the last)")
    keep_checkpoints: list[int] = Field([500, 1000], description="epochs whose checkpoints are kept as outputs")
    eval_batch_size: int = Field(512, ge=1, description="images per forward pass at prediction (memory only)")
    steps_per_epoch: int | None = Field(None, ge=1, description="cap on steps per epoch (smoke runs)")
    torch_threads: int | None = Field(None, ge=1, description="CPU threads for torch (None: torch's default)")

    @field_validator("keep_checkpoints")
    @classmethod
    def _positive_epochs(cls, value: list[int]) -> list[int]:
        bad = [e for e in value if e < 1]
        if bad:
            raise ValueError(f"keep_checkpoints must list epochs >= 1, got {bad}")
        return sorted(set(value))

    def augment_spec(self, native_size: int) -> contrastive.AugmentSpec:
        return contrastive.AugmentSpec(size=self.image_size or native_size, crop_scale=(self.crop_scale_min, 1.0),
                                       flip_p=self.flip_p, jitter_p=self.jitter_p,
                                       jitter_strength=self.jitter_strength, grayscale_p=self.grayscale_p)


class Config(ContrastiveConfig):
    pass


# --- networks ----------------------------------------------------------------------------------

class SmallCNN(nn.Module):
    """Three conv-BN-ReLU blocks and global average pooling: a backbone a CPU can train."""

    def __init__(self, width: int = 32):
        super().__init__()
        layers, c_in = [], 3
        for c_out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c_in = c_out
        self.features = nn.Sequential(*layers[:-1], nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.rep_dim = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def build_backbone(name: str) -> tuple[nn.Module, int]:
    """(module mapping (N, 3, H, W) to (N, d), d); torchvision ResNets without pretrained weights
    and without their classifier (CC's get_resnet)."""
    if name == "cnn":
        net = SmallCNN()
        return net, net.rep_dim
    import torchvision

    if name not in ("resnet18", "resnet34"):
        raise ValueError(f"backbone: unknown {name!r}; choose one of {', '.join(BACKBONES)}")
    net = getattr(torchvision.models, name)(weights=None)
    dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, dim


def mlp_head(d_in: int, d_out: int) -> nn.Sequential:
    """CC's projectors: Linear(d, d) - ReLU - Linear(d, d_out)."""
    return nn.Sequential(nn.Linear(d_in, d_in), nn.ReLU(), nn.Linear(d_in, d_out))


class CCNetwork(nn.Module):
    def __init__(self, backbone: str, feature_dim: int, n_clusters: int):
        super().__init__()
        self.backbone, rep_dim = build_backbone(backbone)
        self.rep_dim = rep_dim
        self.instance_projector = mlp_head(rep_dim, feature_dim)
        self.cluster_projector = mlp_head(rep_dim, n_clusters)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(instance features (unnormalised), cluster probabilities)."""
        h = self.backbone(x)
        return self.instance_projector(h), torch.softmax(self.cluster_projector(h).float(), dim=1)


def cc_loss(config: ContrastiveConfig):
    def loss(model: CCNetwork, xa: torch.Tensor, xb: torch.Tensor):
        za, ca = model(xa)
        zb, cb = model(xb)
        instance = contrastive.nt_xent(za.float(), zb.float(), config.instance_temperature,
                                       config.self_in_denominator)
        cluster = contrastive.cluster_contrastive_loss(ca, cb, config.cluster_temperature, config.entropy_weight,
                                                       config.self_in_denominator)
        total = instance + cluster.total
        return total, {"instance_loss": float(instance.detach()), "cluster_loss": float(cluster.contrastive.detach()),
                       "entropy": float((cluster.entropy_a + cluster.entropy_b).detach()) / 2}
    return loss


# --- helpers every contrastive method shares -----------------------------------------------------

def view_images(ctx: RunContext) -> torch.Tensor:
    """The view's pixels as a CPU tensor (N, C, H, W) in [0, 1]; a clear error for feature views."""
    try:
        images = ctx.view.images()
    except Exception as exc:  # EmbeddingError: a feature view
        raise ValueError(f"this method trains on images: use a raw-pixel view ({exc})") from None
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))


def data_fingerprint(images: torch.Tensor) -> str:
    return hashlib.sha1(np.ascontiguousarray(images.numpy()).data).hexdigest()[:16]  # no copy when contiguous


def code_fingerprint(*sources) -> str:
    """checkpoints.code_fingerprint of the contrastive trainer (this module, contrastive.py) plus
    ``sources`` (a method's package or module)."""
    return checkpoints.code_fingerprint(contrastive, sys.modules[__name__], *sources)


def training_fingerprint(config: ContrastiveConfig, ctx: RunContext, images: torch.Tensor, **more) -> dict:
    """What a checkpoint's weights depend on besides the epoch count: settings that change the
    trajectory (not epochs, checkpointing, prediction batch or threads), seed, data, K, code."""
    ignore = {"epochs", "checkpoint_every", "keep_checkpoints", "eval_batch_size", "torch_threads"}
    settings = {k: v for k, v in config.model_dump().items() if k not in ignore}
    return {"settings": settings, "seed": ctx.seed, "n_clusters": ctx.n_clusters, "data": data_fingerprint(images),
            "device": str(ctx.device).split(":")[0], **more}


def checkpoint_folder(ctx: RunContext, name: str) -> Path | None:
    """Where this seed's resumable state lives (checkpoints.folder_of)."""
    return checkpoints.folder_of(ctx, name)


def kept_folder(ctx: RunContext) -> Path | None:
    return None if ctx.workdir is None else Path(ctx.workdir) / "checkpoints"


def make_trainer(config: ContrastiveConfig, ctx: RunContext, model: nn.Module, loss_fn, image_size: int,
                 name: str, fingerprint: dict, keep_epochs: tuple[int, ...] | None = None) -> contrastive.TwoViewTrainer:
    """The two-view trainer every contrastive method runs, set from its ContrastiveConfig: its
    resumable state under checkpoint_folder(ctx, name), the kept epochs (default
    ``keep_checkpoints``) as ``<name>-epoch<E>.pt`` in the run folder."""
    return contrastive.TwoViewTrainer(
        model=model, loss_fn=loss_fn, augment_spec=config.augment_spec(image_size),
        epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, weight_decay=config.weight_decay,
        device=ctx.device, seed=ctx.seed, augment_on=config.augment_on, mixed_precision=config.mixed_precision,
        steps_per_epoch=config.steps_per_epoch, checkpoint_dir=checkpoint_folder(ctx, name),
        checkpoint_every=config.checkpoint_every, keep_dir=kept_folder(ctx),
        keep_epochs=tuple(config.keep_checkpoints) if keep_epochs is None else keep_epochs,
        keep_prefix=f"{name}-epoch", fingerprint=fingerprint, progress=ctx.progress, log=ctx.log)


def set_threads(config: ContrastiveConfig) -> None:
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)


@torch.no_grad()
def forward_all(fn, images: torch.Tensor, image_size: int | None, batch_size: int, device: str) -> list[torch.Tensor]:
    """``fn`` over all images in eval batches (CC's test transform: resize only); outputs on the CPU."""
    outs: list[list[torch.Tensor]] = []
    for start in range(0, len(images), batch_size):
        x = contrastive.resize_images(images[start:start + batch_size].to(device), image_size)
        res = fn(x)
        res = res if isinstance(res, tuple) else (res,)
        outs.append([r.float().cpu() for r in res])
    return [torch.cat(parts) for parts in zip(*outs)]


# Per image and input pixel: the bytes a backbone keeps for its backward pass in float32 (measured
# with torch.autograd.graph.saved_tensors_hooks at 32-96 px, parameters excluded; about half under
# bfloat16 autocast), and its largest single activation at inference. Parameters and output widths.
SAVED_BYTES_PER_PIXEL = {"cnn": 610, "resnet18": 480, "resnet34": 710}
EVAL_BYTES_PER_PIXEL = {"cnn": 128, "resnet18": 64, "resnet34": 64}
BACKBONE_PARAMS = {"cnn": 93_472, "resnet18": 11_176_512, "resnet34": 21_284_672}
BACKBONE_DIM = {"cnn": 128, "resnet18": 512, "resnet34": 512}


def memory_costs(config: ContrastiveConfig, images_shape: tuple[int, ...], device, head_params: int,
                 views: int = 2, head_settings: tuple = ()) -> list[resources.Cost]:
    """The large allocations of a two-view contrastive run, estimated before the model is built:
    the view's images (host), the backbone and heads (``head_params`` weights) with gradients and
    Adam state, one step's activations (``views`` augmented copies of min(batch_size, N) images at
    image_size, each kept for the backward pass) or one prediction batch, whichever is larger.
    ``head_settings`` name the settings that size the heads (default: feature_dim). The methods
    add their own (GHDCC's batch graphs, IcicleGCN's autoencoder and stage 2)."""
    n, c, height, width = images_shape
    size = config.image_size or max(height, width)
    px = size * size
    batch, eval_batch = min(config.batch_size, n), min(config.eval_batch_size, n)
    saved = SAVED_BYTES_PER_PIXEL[config.backbone] * (0.5 if contrastive.autocast_enabled(
        config.mixed_precision, device) else 1.0)
    params = BACKBONE_PARAMS[config.backbone] + head_params
    train = batch * views * px * (saved + 3 * 4 * 6)
    predict = eval_batch * px * (3 * 4 * 2 + 3 * EVAL_BYTES_PER_PIXEL[config.backbone])
    costs = [resources.Cost("the view's images", n * c * height * width * 4, on_device=False),
             resources.Cost("the backbone and heads with gradients and Adam state", params * 4 * 4,
                            head_settings or (("feature_dim", config.feature_dim),))]
    if train >= predict:  # one after the other: the larger one counts
        costs.append(resources.Cost(f"one training step: {views} augmented views of {batch:,} images at {size} x {size}",
                                    train, (("batch_size", config.batch_size), ("image_size", size))))
    else:
        costs.append(resources.Cost(f"one prediction batch of {eval_batch:,} images at {size} x {size}", predict,
                                    (("eval_batch_size", config.eval_batch_size), ("image_size", size))))
    return costs


def count_parameters(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))


def fit_predict(ctx: RunContext, config: Config) -> Result:
    set_threads(config)
    torch.manual_seed(ctx.seed)
    images = view_images(ctx)
    rep = BACKBONE_DIM[config.backbone]
    resources.check_costs("cc", memory_costs(config, tuple(images.shape), ctx.device,
                                             2 * rep * rep + rep * (config.feature_dim + ctx.n_clusters)), ctx.device)
    model = CCNetwork(config.backbone, config.feature_dim, ctx.n_clusters).to(ctx.device)
    trainer = make_trainer(config, ctx, model, cc_loss(config), images.shape[-1], "cc",
                           training_fingerprint(config, ctx, images, code=code_fingerprint()))
    history = trainer.fit(images)
    model.eval()
    start = time.perf_counter()
    z, probs = forward_all(model, images, config.image_size, config.eval_batch_size, ctx.device)
    labels = probs.argmax(1).numpy().astype(np.int64)
    seconds = [row["seconds"] for row in history if "seconds" in row]
    extra = {"epochs": config.epochs, "resumed_from_epoch": trainer.resumed_from,
             "seconds_per_epoch": round(float(np.mean(seconds)), 3) if seconds else None,
             "inference_s": round(time.perf_counter() - start, 3), "params": count_parameters(model),
             "clusters_used": int(len(np.unique(labels)))}
    return Result(labels=labels, embedding=torch.nn.functional.normalize(z, dim=1).numpy(), history=history,
                  extra=extra)

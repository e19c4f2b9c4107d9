"""Pretrained image backends of the embed stage: ``dinov2``, ``vgg16`` and ``simclr``.

Each backend turns uint8 images into one feature vector per image, the way the papers that use
it did (docs/embeddings.md has the details and the differences from the papers' code):

* ``dinov2`` -- DINOv2 ViT-S/B/L/g /14 (optionally with 4 registers), Meta's released weights;
  output = the CLS token after the final LayerNorm (``x_norm_clstoken``, what the torch.hub
  model returns), used by ConstellationNet (ViT-L/14 with registers in its code).
* ``vgg16`` -- torchvision's ImageNet VGG16 (IMAGENET1K_V1); default output fc7 after ReLU
  (4096-d), LNSCC's "pre-trained VGG" image features.
* ``simclr`` -- SCAN's released SimCLR pretext models (ResNet-18 variants for CIFAR and STL);
  default output = the L2-normalised projection-head output (128-d), the space in which SCAN
  mines its nearest neighbours; LNSCC Table 3 uses "the same embedding from SimCLR".

Models run in eval mode under ``torch.inference_mode``, batch by batch, on the GPU when one is
visible (``device``), else on the CPU. Weights come through ``weights.locate``: cached,
verified, or one MissingWeightsError saying how to get them.
"""
from __future__ import annotations

import contextlib
import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import preprocess as pp
from . import weights
from .errors import EmbeddingError
from .steps import Dinov2Step, PretrainedStep, SimclrStep, Vgg16Step, parse_step

# --- model tables --------------------------------------------------------------------------------

DINOV2_URL = "https://dl.fbaipublicfiles.com/dinov2"

# Full sha256 of files whose authors publish none (DINOv2, SCAN), once a maintainer has checked a
# download: copy them from clusterbench-weights.lock.json to make them binding for everyone.
# Until then such files are verified by trust on first use (weights.py).
PINNED_SHA256: dict[str, str] = {}


@dataclass(frozen=True)
class Dinov2Spec:
    timm_name: str
    hub_name: str  # torch.hub entry point / folder on dl.fbaipublicfiles.com
    registers: int
    dim: int
    label: str

    @property
    def weights_file(self) -> weights.WeightsFile:
        full = self.hub_name + (f"_reg{self.registers}" if self.registers else "")
        return weights.WeightsFile(
            model=self.label, filename=f"{full}_pretrain.pth",
            urls=(f"{DINOV2_URL}/{self.hub_name}/{full}_pretrain.pth",),
            sha256=PINNED_SHA256.get(f"{full}_pretrain.pth"),
            page=f"{DINOV2_URL}/{self.hub_name}/{full}_pretrain.pth")


DINOV2: dict[str, Dinov2Spec] = {}
for _size, _timm, _dim, _name in (("s", "small", 384, "S"), ("b", "base", 768, "B"),
                                  ("l", "large", 1024, "L"), ("g", "giant", 1536, "g")):
    DINOV2[f"vit{_size}14"] = Dinov2Spec(f"vit_{_timm}_patch14_dinov2", f"dinov2_vit{_size}14", 0, _dim,
                                         f"DINOv2 ViT-{_name}/14")
    DINOV2[f"vit{_size}14_reg"] = Dinov2Spec(f"vit_{_timm}_patch14_reg4_dinov2", f"dinov2_vit{_size}14", 4, _dim,
                                             f"DINOv2 ViT-{_name}/14 with registers")

VGG16_WEIGHTS = weights.WeightsFile(
    model="torchvision VGG16 (ImageNet-1k, IMAGENET1K_V1)", filename="vgg16-397923af.pth",
    urls=("https://download.pytorch.org/models/vgg16-397923af.pth",), sha256_prefix="397923af",
    page="https://download.pytorch.org/models/vgg16-397923af.pth")
VGG16_DIMS = {"fc7": 4096, "fc6": 4096, "pool5": 25088, "gap": 512}

SCAN_README = "https://github.com/wvangansbeke/Unsupervised-Classification#pretext-tasks"


@dataclass(frozen=True)
class ScanSpec:
    variant: str  # "cifar" or "stl" ResNet-18
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    google_drive_id: str
    filename: str
    label: str

    @property
    def weights_file(self) -> weights.WeightsFile:
        return weights.WeightsFile(
            model=self.label, filename=self.filename, urls=(), google_drive_id=self.google_drive_id,
            sha256=PINNED_SHA256.get(self.filename),
            page=f"https://drive.google.com/file/d/{self.google_drive_id}/view (linked from {SCAN_README})")


# Normalisation constants and crop sizes are SCAN's configs/pretext/simclr_*.yml; the Google
# Drive ids are the README's "Pretext tasks" links (CIFAR-100 = the CIFAR-100-20 model).
SIMCLR: dict[str, ScanSpec] = {
    "cifar-10": ScanSpec("cifar", 32, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010),
                         "1Cl5oAcJKoNE5FSTZsBSAKLcyA5jXGgTT", "simclr_cifar-10.pth.tar",
                         "SCAN SimCLR pretext model, CIFAR-10 (ResNet-18)"),
    "cifar-20": ScanSpec("cifar", 32, (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761),
                         "1huW-ChBVvKcx7t8HyDaWTQB5Li1Fht9x", "simclr_cifar-20.pth.tar",
                         "SCAN SimCLR pretext model, CIFAR-100-20 (ResNet-18)"),
    "stl-10": ScanSpec("stl", 96, pp.IMAGENET_MEAN, pp.IMAGENET_STD,
                       "1261NDFfXuKR2Dh4RWHYYhcicdcPag9NZ", "simclr_stl-10.pth.tar",
                       "SCAN SimCLR pretext model, STL-10 (ResNet-18)"),
}


# --- an extractor: a model, how to call it, and how to feed it -----------------------------------

@dataclass
class Extractor:
    model: Any  # torch.nn.Module
    forward: Callable[[Any], Any]  # batch tensor -> (B, dim) tensor
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dim: int
    info: dict = field(default_factory=dict)


def resolve_device(device: str | None) -> str:
    """The device to run on: ``device`` if usable, else the CPU (with a warning)."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(f"device {device!r} requested but CUDA is not available: running on the CPU", stacklevel=2)
        return "cpu"
    return str(device)


@contextlib.contextmanager
def _seeded(seed: int = 0):
    """Random initialisation that is the same every time, without touching the global RNG."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _skeleton(pretrained: bool):
    """Build on the meta device when weights will replace every tensor (no wasted init)."""
    import torch

    if pretrained:
        with torch.device("meta"):
            yield
    else:
        with _seeded(0):
            yield


def _torch_load(path, wf: weights.WeightsFile) -> dict:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the same thing to the user
        raise EmbeddingError(f"{wf.model}: {path} is not a readable PyTorch checkpoint ({exc}); "
                             "delete it and run again to download it") from None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):  # {'model', 'optimizer', 'epoch'}
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise EmbeddingError(f"{wf.model}: {path} holds a {type(obj).__name__}, not a state dict")
    if obj and all(k.startswith("module.") for k in obj):  # saved from nn.DataParallel
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def _load_exact(model, state_dict: dict, wf: weights.WeightsFile) -> None:
    """Load every tensor, or fail naming the mismatch: a wrong checkpoint must not half-load."""
    import torch

    model_keys = set(model.state_dict())
    for key in model_keys - set(state_dict):
        if key.endswith("num_batches_tracked"):  # absent from pre-0.4.1 checkpoints; unused in eval
            state_dict = {**state_dict, key: torch.tensor(0, dtype=torch.long)}
    missing = sorted(model_keys - set(state_dict))
    unexpected = sorted(set(state_dict) - model_keys)
    if missing or unexpected:
        raise EmbeddingError(f"{wf.model}: the checkpoint does not fit the architecture; missing "
                             f"{missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected "
                             f"{unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    try:
        model.load_state_dict(state_dict, strict=True, assign=True)
    except RuntimeError as exc:
        raise EmbeddingError(f"{wf.model}: the checkpoint does not fit the architecture ({exc})") from None
    meta = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if meta:
        raise EmbeddingError(f"{wf.model}: tensors left uninitialised after loading: {meta[:5]}")


def _weights_info(wf: weights.WeightsFile, path=None, digest: str | None = None) -> dict:
    if path is None:
        return {"weights": "random initialisation (pretrained: false)"}
    return {"weights": {"file": wf.filename, "sha256": digest, "source": wf.page or wf.urls[0],
                        "verification": wf.verification}}


# --- DINOv2 -------------------------------------------------------------------------------------

def interpolate_dinov2_pos_embed(patch_pos, grid: int):
    """Resample DINOv2's (1, M*M, D) patch position embeddings to a grid x grid image exactly as
    DINOv2's own ``interpolate_pos_encoding`` does at forward time: bicubic, no antialiasing,
    driven by the scale factor (grid + 0.1) / M (their "interpolate_offset")."""
    import torch.nn.functional as F

    n, dim = patch_pos.shape[1], patch_pos.shape[2]
    m = math.isqrt(n)
    if m * m != n:
        raise EmbeddingError(f"DINOv2 position embeddings hold {n} patches, not a square grid")
    if grid == m:
        return patch_pos
    scale = (grid + 0.1) / m
    x = patch_pos.float().reshape(1, m, m, dim).permute(0, 3, 1, 2)
    x = F.interpolate(x, scale_factor=(scale, scale), mode="bicubic", antialias=False)
    if tuple(x.shape[-2:]) != (grid, grid):
        raise EmbeddingError(f"DINOv2 position embeddings resampled to {tuple(x.shape[-2:])}, expected {grid}x{grid}")
    return x.permute(0, 2, 3, 1).reshape(1, grid * grid, dim).to(patch_pos.dtype)


def convert_dinov2_state_dict(state_dict: dict, grid: int) -> dict:
    """Meta's released DINOv2 checkpoint -> timm's VisionTransformer at a grid x grid patch grid.

    Renames the SwiGLU weights of ViT-g (``mlp.w12/w3`` -> ``mlp.fc1/fc2``), drops the unused
    ``mask_token``, resamples the position embeddings (see interpolate_dinov2_pos_embed) and, for
    register models, folds the class token's position embedding into the class token (timm keeps
    class and register tokens outside the position table; DINOv2 adds the class position before
    inserting the registers, so the sum is the same).
    """
    import torch

    sd = dict(state_dict)
    sd.pop("mask_token", None)
    pos = sd.pop("pos_embed")
    cls_pos, patch_pos = pos[:, :1], interpolate_dinov2_pos_embed(pos[:, 1:], grid)
    out = {}
    if "register_tokens" in sd:
        out["reg_token"] = sd.pop("register_tokens")
        out["cls_token"] = sd.pop("cls_token") + cls_pos
        out["pos_embed"] = patch_pos
    else:
        out["pos_embed"] = torch.cat([cls_pos, patch_pos], dim=1)
    for key, value in sd.items():
        key = re.sub(r"^(blocks\.\d+\.mlp\.)w12\.", r"\1fc1.", key)
        key = re.sub(r"^(blocks\.\d+\.mlp\.)w3\.", r"\1fc2.", key)
        out[key] = value
    return out


def build_dinov2(opts: Dinov2Step, **timm_overrides) -> Extractor:
    import timm

    spec = DINOV2[opts.model]
    wf = spec.weights_file
    with _skeleton(opts.pretrained):
        model = timm.create_model(spec.timm_name, pretrained=False, img_size=opts.image_size, num_classes=0,
                                  **timm_overrides)
    info = {"backend": "dinov2", "model": opts.model, "architecture": f"timm {spec.timm_name}",
            "output": "CLS token after the final LayerNorm (DINOv2's x_norm_clstoken)"}
    if opts.pretrained:
        path, digest = weights.locate(wf)
        _load_exact(model, convert_dinov2_state_dict(_torch_load(path, wf), opts.image_size // 14), wf)
        info.update(_weights_info(wf, path, digest))
    else:
        info.update(_weights_info(wf))
    if model.num_features != spec.dim and not timm_overrides:
        raise EmbeddingError(f"{spec.label}: timm built {model.num_features}-d features, expected {spec.dim}")
    info["preprocessing"] = (f"PIL bilinear resize to {opts.image_size}x{opts.image_size}, grey -> RGB, "
                             "/255, ImageNet mean/std")
    return Extractor(model, model, opts.image_size, pp.IMAGENET_MEAN, pp.IMAGENET_STD, model.num_features, info)


# --- VGG16 --------------------------------------------------------------------------------------

def build_vgg16(opts: Vgg16Step) -> Extractor:
    import torch
    import torchvision

    with _skeleton(opts.pretrained):
        model = torchvision.models.vgg16(weights=None)
    info = {"backend": "vgg16", "layer": opts.layer, "architecture": "torchvision vgg16"}
    if opts.pretrained:
        path, digest = weights.locate(VGG16_WEIGHTS)
        _load_exact(model, _torch_load(path, VGG16_WEIGHTS), VGG16_WEIGHTS)
        info.update(_weights_info(VGG16_WEIGHTS, path, digest))
    else:
        info.update(_weights_info(VGG16_WEIGHTS))
    fc6, relu6, _, fc7, relu7 = list(model.classifier)[:5]  # dropouts are identities in eval mode
    layer = opts.layer

    def forward(x):
        conv = model.features(x)  # conv5_3 -> ReLU -> max-pool ("pool5")
        if layer == "gap":
            return conv.mean(dim=(2, 3))
        flat = torch.flatten(model.avgpool(conv), 1)  # adaptive 7x7 (identity at 224 px)
        if layer == "pool5":
            return flat
        h = relu6(fc6(flat))
        return h if layer == "fc6" else relu7(fc7(h))

    info["output"] = {"fc7": "fc7 after ReLU (4096-d)", "fc6": "fc6 after ReLU (4096-d)",
                      "pool5": "pool5, flattened 7x7x512 (25088-d)",
                      "gap": "pool5 averaged over space (512-d)"}[layer]
    info["preprocessing"] = (f"PIL bilinear resize to {opts.image_size}x{opts.image_size}, grey -> RGB, "
                             "/255, ImageNet mean/std")
    return Extractor(model, forward, opts.image_size, pp.IMAGENET_MEAN, pp.IMAGENET_STD, VGG16_DIMS[layer], info)


# --- SimCLR (SCAN) ------------------------------------------------------------------------------

def build_simclr(opts: SimclrStep) -> Extractor:
    from .scan_resnet import BACKBONE_DIM, HEAD_DIM, ContrastiveModel

    spec = SIMCLR[opts.model]
    wf = spec.weights_file
    with _skeleton(opts.pretrained):
        model = ContrastiveModel(spec.variant)
    info = {"backend": "simclr", "model": opts.model, "architecture": f"SCAN ResNet-18 ({spec.variant} variant)"}
    if opts.pretrained:
        path, digest = weights.locate(wf)
        _load_exact(model, _torch_load(path, wf), wf)
        info.update(_weights_info(wf, path, digest))
    else:
        info.update(_weights_info(wf))
    features = opts.features
    info["output"] = ("projection head output, L2-normalised (128-d; SCAN mines neighbours here)"
                      if features == "head" else "backbone, after global average pooling (512-d)")
    info["preprocessing"] = (f"{spec.image_size}x{spec.image_size} (PIL bilinear resize if needed), "
                             f"grey -> RGB, /255, mean {spec.mean}, std {spec.std}")
    return Extractor(model, lambda x: model(x, features=features), spec.image_size, spec.mean, spec.std,
                     HEAD_DIM if features == "head" else BACKBONE_DIM, info)


BUILDERS: dict[str, Callable[[Any], Extractor]] = {"dinov2": build_dinov2, "vgg16": build_vgg16,
                                                   "simclr": build_simclr}


# --- running ------------------------------------------------------------------------------------

def extract(extractor: Extractor, images: np.ndarray, batch_size: int, device: str) -> np.ndarray:
    """Features of (N, H, W, C) uint8 images, batch by batch, in eval mode; (N, dim) float32."""
    import torch
    from tqdm.auto import tqdm

    model = extractor.model.to(device).eval()
    out = np.empty((len(images), extractor.dim), dtype=np.float32)
    with torch.inference_mode():
        for start in tqdm(range(0, len(images), batch_size), desc=extractor.info.get("backend", "embed"),
                          unit="batch", disable=None):
            batch = pp.preprocess(images[start:start + batch_size], extractor.image_size,
                                  extractor.mean, extractor.std).to(device)
            feats = extractor.forward(batch)
            if feats.ndim != 2 or feats.shape[1] != extractor.dim:
                raise EmbeddingError(f"{extractor.info.get('backend')}: produced features of shape "
                                     f"{tuple(feats.shape)}, expected (batch, {extractor.dim})")
            out[start:start + len(feats)] = feats.float().cpu().numpy()
    return out


def embed_images(arrays, step: dict | PretrainedStep, device: str | None = None,
                 provenance: list | None = None) -> np.ndarray:
    """Features of ``arrays.X`` (uint8 images) with the pretrained backend ``step`` names.

    ``device``: "cuda" when visible (the embed stage passes it), else "cpu"; None picks.
    ``provenance``: if given, a dict describing model, weights (file, sha256, verification),
    output layer and preprocessing is appended to it.
    """
    opts = parse_step(step)
    if not isinstance(opts, PretrainedStep):
        raise EmbeddingError(f"{opts.backend!r} is not a pretrained image backend")
    images = pp.check_images(arrays.X, opts.backend)
    device = resolve_device(device)
    extractor = BUILDERS[opts.backend](opts)
    h, w = images.shape[1:3]
    if (h, w) != (extractor.image_size, extractor.image_size):
        extractor.info["resized_from"] = [int(h), int(w)]
    x = extract(extractor, images, opts.batch_size, device)
    if not np.isfinite(x).all():
        raise EmbeddingError(f"{opts.backend}: non-finite features; the weights file may be corrupt")
    if provenance is not None:
        provenance.append({**extractor.info, "dim": extractor.dim, "device": device, "batch_size": opts.batch_size})
    return x

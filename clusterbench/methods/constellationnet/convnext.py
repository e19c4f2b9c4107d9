"""The ConvNeXt that embeds ImageNet images before supervised ConstellationNet (4.1.4, Table 2).

The paper: "For the imagenet dataset, a ConvNet embeds data into 1024 dimensions before feeding
into the model", and counts it as 198 million parameters. Those two facts disagree: ConvNeXt-L
(torchvision ``convnext_large``, 197.8 M parameters) pools to 1536 features, ConvNeXt-B (88.6 M)
to 1024. We default to ConvNeXt-L, the parameter count the paper reports, and offer ConvNeXt-B
as ``embedder: convnext-base``. The network is frozen (eval mode, no gradients): its pooled
features (before the ImageNet classifier) are computed once per image.

Weights are torchvision's ImageNet-1k checkpoints, verified against the sha256 prefix in their
file names (torchvision's own check). They are looked up in ``$CLUSTERBENCH_WEIGHTS`` and
torch.hub's checkpoint folder, downloaded into the first when missing unless
``$CLUSTERBENCH_OFFLINE`` is set; any failure is one ``MissingWeightsError`` saying what to do.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class MissingWeightsError(RuntimeError):
    """Pretrained weights are not available; the message says where to put them."""


@dataclass(frozen=True)
class ConvNeXtSpec:
    builder: str  # torchvision.models function
    url: str
    sha256_prefix: str
    features: int
    params: int

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[1]


CONVNEXTS = {
    "convnext-large": ConvNeXtSpec("convnext_large", "https://download.pytorch.org/models/convnext_large-ea097f82.pth",
                                   "ea097f82", 1536, 197_767_336),
    "convnext-base": ConvNeXtSpec("convnext_base", "https://download.pytorch.org/models/convnext_base-6075fbad.pth",
                                  "6075fbad", 1024, 88_591_464),
}


def weights_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("CLUSTERBENCH_WEIGHTS"):
        dirs.append(Path(os.environ["CLUSTERBENCH_WEIGHTS"]).expanduser())
    dirs.append(Path(torch.hub.get_dir()) / "checkpoints")
    return dirs


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def locate_weights(spec: ConvNeXtSpec) -> Path:
    """The verified checkpoint file, downloading it if allowed."""
    for folder in weights_dirs():
        path = folder / spec.filename
        if path.is_file():
            digest = _sha256(path)
            if not digest.startswith(spec.sha256_prefix):
                raise MissingWeightsError(f"{path} has sha256 {digest[:16]}..., expected a prefix "
                                          f"{spec.sha256_prefix}: the file is corrupt; delete it and retry")
            return path
    folder = weights_dirs()[0]
    if os.environ.get("CLUSTERBENCH_OFFLINE"):
        raise MissingWeightsError(f"{spec.filename} is not in {', '.join(map(str, weights_dirs()))} and "
                                  f"CLUSTERBENCH_OFFLINE is set: download {spec.url} into one of them")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # torchvision's own mechanism: streams to a temporary file, checks the sha256 prefix.
        torch.hub.download_url_to_file(spec.url, str(folder / spec.filename), hash_prefix=spec.sha256_prefix,
                                       progress=True)
    except Exception as exc:  # network, disk or checksum: one message with the way out
        raise MissingWeightsError(f"could not download {spec.url} ({exc}); download it by hand into "
                                  f"{folder} (or set CLUSTERBENCH_WEIGHTS to the folder holding it)") from exc
    return folder / spec.filename


class ConvNeXtFeatures(nn.Module):
    """A torchvision ConvNeXt without its classifier: images -> pooled, layer-normed features."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.features = network.features
        self.avgpool = network.avgpool
        # torchvision's classifier is [LayerNorm2d, Flatten, Linear]: keep the norm and flatten.
        self.norm = network.classifier[0]
        self.flatten = network.classifier[1]
        self.out_dim = network.classifier[2].in_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.flatten(self.norm(self.avgpool(self.features(images))))


def load_convnext(name: str) -> ConvNeXtFeatures:
    """The pretrained, frozen feature extractor ``name`` (a key of ``CONVNEXTS``)."""
    import torchvision.models as tvm

    if name not in CONVNEXTS:
        raise ValueError(f"embedder={name!r}; allowed: {', '.join(CONVNEXTS)}")
    spec = CONVNEXTS[name]
    network = getattr(tvm, spec.builder)(weights=None)
    state = torch.load(locate_weights(spec), map_location="cpu", weights_only=True)
    network.load_state_dict(state)
    return ConvNeXtFeatures(network).eval()


def preprocess(images: np.ndarray, size: int = 224) -> torch.Tensor:
    """(N, C, H, W) floats in [0, 1] -> ImageNet-normalised RGB at ``size`` x ``size``
    (grey-scale is repeated to 3 channels; bilinear resize of the whole image, as for a centre
    crop of already-square images)."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    if x.size(1) == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (size, size):
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                                            antialias=True)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def convnext_features(model: ConvNeXtFeatures, images: np.ndarray, device, batch_size: int = 64,
                      size: int = 224, progress: bool = False) -> np.ndarray:
    from tqdm.auto import tqdm

    model = model.to(device).eval()
    out = np.empty((len(images), model.out_dim), dtype=np.float32)
    for start in tqdm(range(0, len(images), batch_size), desc="convnext", disable=not progress, leave=False):
        batch = preprocess(images[start:start + batch_size], size).to(device)
        out[start:start + len(batch)] = model(batch).float().cpu().numpy()
    return out

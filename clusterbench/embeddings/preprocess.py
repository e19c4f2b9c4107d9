"""Image preprocessing shared by the pretrained backends.

Every backend sees images the way its authors' evaluation code fed them, i.e. the torchvision
pipeline ``Resize((s, s)) -> ToTensor() -> Normalize(mean, std)`` applied to PIL images:

* resize with PIL's bilinear filter on the uint8 image (what ``transforms.Resize`` does to a PIL
  image; PIL rounds the result back to uint8, so we do too);
* grayscale images are replicated to 3 channels (``Image.convert("RGB")``);
* scale to [0, 1] by /255 and normalise per channel.

Work is done one batch at a time: 50,000 images at 3x224x224 float32 would be 30 GB.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import EmbeddingError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_images(x: np.ndarray, backend: str) -> np.ndarray:
    """Images as (N, H, W, C) uint8 with C in {1, 3}; an EmbeddingError for anything else."""
    if x.dtype != np.uint8 or x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 3)):
        raise EmbeddingError(
            f"backend {backend!r} needs images (N, H, W) or (N, H, W, 1|3) of dtype uint8, but the "
            f"dataset holds {x.dtype} {tuple(x.shape)}. Use raw, pca or umap for vector datasets.")
    if len(x) == 0:
        raise EmbeddingError(f"backend {backend!r}: the dataset has no rows")
    return x if x.ndim == 4 else x[..., None]


def resize_uint8(images: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W, C) uint8 -> (N, size, size, C) uint8 with PIL's bilinear filter (as
    torchvision's Resize on PIL images); a no-op when the size already matches."""
    n, h, w, c = images.shape
    if (h, w) == (size, size):
        return images
    from PIL import Image

    out = np.empty((n, size, size, c), dtype=np.uint8)
    for i in range(n):
        if c == 1:
            out[i, ..., 0] = np.asarray(Image.fromarray(images[i, ..., 0]).resize((size, size), Image.Resampling.BILINEAR))
        else:
            out[i] = np.asarray(Image.fromarray(images[i]).resize((size, size), Image.Resampling.BILINEAR))
    return out


def to_normalized_tensor(images: np.ndarray, mean: Sequence[float], std: Sequence[float]):
    """(N, H, W, C) uint8 -> (N, 3, H, W) float32 torch tensor, grey replicated to RGB,
    scaled to [0, 1] and normalised per channel."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return ((t - m) / s).contiguous()


def preprocess(images: np.ndarray, size: int, mean: Sequence[float] = IMAGENET_MEAN,
               std: Sequence[float] = IMAGENET_STD):
    """The whole pipeline for one batch: resize, grey -> RGB, [0, 1], normalise."""
    if images.ndim == 3:  # (N, H, W) grey
        images = images[..., None]
    return to_normalized_tensor(resize_uint8(images, size), mean, std)

"""Contrastive building blocks shared by the contrastive clustering methods (CC, IcicleGCN, GHDCC).

One place for what these papers share, so a later method imports the same code instead of a
copy that may drift:

- ``nt_xent``: the instance-level contrastive loss (SimCLR's NT-Xent; CC eq. 2-3, IcicleGCN
  eqs. 1-3) over two views of a batch.
- ``cluster_contrastive_loss``: CC's cluster-level loss: NT-Xent over the *columns* of the two
  views' soft assignment matrices (IcicleGCN eqs. 4-5) plus the entropy of the mean assignment
  that keeps every cluster in use.
- ``AugmentSpec`` / ``augment``: CC's image augmentations (random resized crop, horizontal
  flip, colour jitter, random grayscale; optionally SimCLR's Gaussian blur, and GHDCC's "two of
  five operations per image" policy, ``choose``) as batched tensor ops with per-image random
  parameters, so they run where the images are (GPU or CPU) and are reproducible from a
  ``torch.Generator``. Grayscale images go through by repeating their channel.
- ``resize_images``: the evaluation transform (resize only, CC's test transform).
- ``TwoViewTrainer``: the epoch loop that CC and IcicleGCN's stage 1 share (two augmented
  views per image, Adam, optional autocast) with atomic checkpoints that make an interrupted
  run continue exactly where it stopped (``clusterbench.methods.checkpoints``).

All losses return means over the rows they contrast, as the papers' 1/2N and 1/2K factors say.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import checkpoints

# --- losses ------------------------------------------------------------------------------------


def nt_xent(view_a: torch.Tensor, view_b: torch.Tensor, temperature: float,
            self_in_denominator: bool = False) -> torch.Tensor:
    """Mean NT-Xent over the 2N rows of two views (row i of a and of b are a positive pair).

    l_i^a = -log exp(s(a_i, b_i)/t) / sum_{k != i} exp(s(a_i, x_k)/t) over the 2N rows x, with
    s the cosine similarity. ``self_in_denominator`` also keeps k = i (exp(1/t)) in the sum, the
    literal reading of IcicleGCN's eq. (2); SimCLR, CC and the papers' text ("2(N-1) negative
    pairs") leave it out.
    """
    if view_a.shape != view_b.shape or view_a.dim() != 2:
        raise ValueError(f"nt_xent needs two (N, d) tensors of one shape, got {tuple(view_a.shape)} and "
                         f"{tuple(view_b.shape)}")
    n = view_a.shape[0]
    z = F.normalize(torch.cat([view_a, view_b]).float(), dim=1)
    logits = z @ z.T / temperature
    if not self_in_denominator:
        logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, positives)


def assignment_entropy(probabilities: torch.Tensor) -> torch.Tensor:
    """H of the mean soft assignment over the batch: -sum_k p_k log p_k, p_k = mean_i w_ik."""
    p = probabilities.float().sum(0)
    p = p / p.sum()
    return -(p * torch.log(p.clamp_min(1e-12))).sum()


@dataclass
class ClusterLoss:
    total: torch.Tensor
    contrastive: torch.Tensor
    entropy_a: torch.Tensor
    entropy_b: torch.Tensor


def cluster_contrastive_loss(probs_a: torch.Tensor, probs_b: torch.Tensor, temperature: float,
                             entropy_weight: float = 1.0, self_in_denominator: bool = False) -> ClusterLoss:
    """CC's cluster-level loss: NT-Xent over the K columns of the (N, K) assignment matrices,
    minus the entropy of each view's mean assignment (IcicleGCN eq. 5; CC eq. 7).

    The entropy terms are written as log K - H (CC's code): the same gradient as eq. (5)'s -H,
    shifted by a constant so a perfectly balanced batch contributes 0.
    """
    if probs_a.shape != probs_b.shape or probs_a.dim() != 2:
        raise ValueError(f"cluster_contrastive_loss needs two (N, K) tensors of one shape, got "
                         f"{tuple(probs_a.shape)} and {tuple(probs_b.shape)}")
    k = probs_a.shape[1]
    contrastive = nt_xent(probs_a.T, probs_b.T, temperature, self_in_denominator)
    h_a, h_b = assignment_entropy(probs_a), assignment_entropy(probs_b)
    total = contrastive + entropy_weight * ((math.log(k) - h_a) + (math.log(k) - h_b))
    return ClusterLoss(total, contrastive, h_a, h_b)


# --- augmentations -----------------------------------------------------------------------------

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601-2 luma, as torchvision's rgb_to_grayscale


@dataclass(frozen=True)
class AugmentSpec:
    """CC's training transform (its transform.py): RandomResizedCrop(size), RandomHorizontalFlip,
    RandomApply([ColorJitter(0.8s, 0.8s, 0.8s, 0.2s)], p=0.8) with s = 0.5, RandomGrayscale(0.2)."""

    size: int
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    jitter_strength: float = 0.5
    grayscale_p: float = 0.2
    crop_attempts: int = 10  # torchvision's rejection sampling tries 10 boxes, then the whole image
    # Gaussian blur (SimCLR's: kernel ~10% of the side, sigma ~ U(0.1, 2.0)); 0 = never, and then
    # no random number is drawn for it, so CC's augmentation stream is unchanged.
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel_fraction: float = 0.1
    # None: each operation applies with its own probability (CC). n: exactly n of the five
    # operations (crop, jitter, grayscale, flip, blur) drawn per image, each then applied (GHDCC).
    choose: int | None = None


OPERATIONS = ("crop", "jitter", "grayscale", "flip", "blur")


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """(N, 1 or 3, H, W) -> (N, 3, H, W): grayscale images repeat their channel."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images (N, C, H, W) with C = 1 or 3, got {tuple(images.shape)}")
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def _uniform(n: int, low: float, high: float, generator: torch.Generator, *shape: int) -> torch.Tensor:
    return low + (high - low) * torch.rand((n, *shape), generator=generator, dtype=torch.float64)


def crop_boxes(n: int, height: int, width: int, spec: AugmentSpec, generator: torch.Generator) -> torch.Tensor:
    """(n, 4) crop boxes (centre x, centre y, width, height) as fractions of the image, drawn as
    torchvision's RandomResizedCrop.get_params: area fraction ~ U(scale), log aspect ratio ~
    U(log ratio), up to ``crop_attempts`` tries for a box that fits, else the whole image."""
    tries = spec.crop_attempts
    area = _uniform(n, *spec.crop_scale, generator, tries) * (height * width)
    log_ratio = _uniform(n, math.log(spec.crop_ratio[0]), math.log(spec.crop_ratio[1]), generator, tries)
    ratio = torch.exp(log_ratio)
    w_px = torch.sqrt(area * ratio).round()
    h_px = torch.sqrt(area / ratio).round()
    fits = (w_px > 0) & (h_px > 0) & (w_px <= width) & (h_px <= height)
    first = fits.to(torch.int64).argmax(1)
    found = fits.any(1)
    rows = torch.arange(n)
    w_px = torch.where(found, w_px[rows, first], torch.full((n,), float(width), dtype=torch.float64))
    h_px = torch.where(found, h_px[rows, first], torch.full((n,), float(height), dtype=torch.float64))
    # torchvision draws the corner as an integer in [0, W - w]; a uniform fraction is its continuous form
    x0 = torch.rand(n, generator=generator, dtype=torch.float64) * (width - w_px)
    y0 = torch.rand(n, generator=generator, dtype=torch.float64) * (height - h_px)
    return torch.stack([(x0 + w_px / 2) / width, (y0 + h_px / 2) / height, w_px / width, h_px / height], 1)


def _luma(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(GRAY_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    delta = maxc - minc
    v = maxc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, v], 1)


def _hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x.unbind(1)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.to(torch.int64) % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = [torch.zeros_like(v) for _ in range(3)]
    for sector, rgb in enumerate(choices):
        mask = i == sector
        for c in range(3):
            out[c] = torch.where(mask, rgb[c], out[c])
    return torch.stack(out, 1)


def color_jitter(x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor, saturation: torch.Tensor,
                 hue: torch.Tensor) -> torch.Tensor:
    """Per-image brightness, contrast, saturation factors and hue shift (torchvision's formulas),
    applied in that fixed order (torchvision's ColorJitter shuffles the order per image)."""
    view = lambda t: t.to(x.dtype).view(-1, 1, 1, 1)  # noqa: E731
    x = (x * view(brightness)).clamp(0, 1)
    mean = _luma(x).mean(dim=(1, 2, 3), keepdim=True)
    x = (view(contrast) * x + (1 - view(contrast)) * mean).clamp(0, 1)
    x = (view(saturation) * x + (1 - view(saturation)) * _luma(x)).clamp(0, 1)
    hsv = _rgb_to_hsv(x)
    hsv = torch.stack([(hsv[:, 0] + hue.to(x.dtype).view(-1, 1, 1)) % 1.0, hsv[:, 1], hsv[:, 2]], 1)
    return _hsv_to_rgb(hsv).clamp(0, 1)


def gaussian_kernels(sigma: torch.Tensor, size: int) -> torch.Tensor:
    """(n, size) normalised 1-D Gaussian kernels, one per sigma (size odd)."""
    radius = size // 2
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(x.view(1, -1) ** 2) / (2 * sigma.view(-1, 1).to(torch.float64) ** 2))
    return k / k.sum(1, keepdim=True)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Per-image separable Gaussian blur with reflect padding (torchvision's GaussianBlur);
    ``sigma`` (n,) in pixels, sigma <= 0 leaves that image unchanged."""
    n, c, h, w = x.shape
    if kernel_size < 3:
        return x
    kernel_size += 1 - kernel_size % 2
    kernels = gaussian_kernels(sigma.clamp_min(1e-6), kernel_size)
    identity = torch.zeros(kernel_size, dtype=torch.float64)
    identity[kernel_size // 2] = 1.0
    kernels = torch.where((sigma > 0).view(-1, 1), kernels, identity)
    kernels = kernels.to(x.device, x.dtype).repeat_interleave(c, 0)  # (n * c, k)
    pad = kernel_size // 2
    y = x.reshape(1, n * c, h, w)
    y = F.conv2d(F.pad(y, (pad, pad, 0, 0), mode="reflect"), kernels.view(n * c, 1, 1, kernel_size), groups=n * c)
    y = F.conv2d(F.pad(y, (0, 0, pad, pad), mode="reflect"), kernels.view(n * c, 1, kernel_size, 1), groups=n * c)
    return y.view(n, c, h, w)


def choose_operations(n: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 5) bool: exactly k of the five OPERATIONS per row, uniformly at random."""
    ranks = torch.rand(n, len(OPERATIONS), generator=generator, dtype=torch.float64).argsort(1).argsort(1)
    return ranks < k


def augment(images: torch.Tensor, spec: AugmentSpec, generator: torch.Generator) -> torch.Tensor:
    """One random augmentation of each image: (N, C, H, W) in [0, 1] -> (N, 3, size, size) in [0, 1].

    The random parameters are drawn on the CPU from ``generator`` (so a seed gives the same
    augmentations on any device) and the pixels are transformed where ``images`` live. Crop,
    flip and resize are one bilinear ``grid_sample`` of the crop box.
    """
    x = to_rgb(images).float()
    n, _, height, width = x.shape
    boxes = crop_boxes(n, height, width, spec, generator)
    flip = torch.rand(n, generator=generator, dtype=torch.float64) < spec.flip_p
    s = spec.jitter_strength
    jitter_on = torch.rand(n, generator=generator, dtype=torch.float64) < spec.jitter_p
    factors = [_uniform(n, max(0.0, 1 - 0.8 * s), 1 + 0.8 * s, generator) for _ in range(3)]
    hue = _uniform(n, -0.2 * s, 0.2 * s, generator)
    gray = torch.rand(n, generator=generator, dtype=torch.float64) < spec.grayscale_p
    blur = sigma = None
    if spec.blur_p > 0 or spec.choose is not None:
        blur = torch.rand(n, generator=generator, dtype=torch.float64) < spec.blur_p
        sigma = _uniform(n, *spec.blur_sigma, generator)
    if spec.choose is not None:  # exactly `choose` operations per image, each applied for sure
        chosen = choose_operations(n, spec.choose, generator)
        crop_on, jitter_on, gray, flip, blur = chosen.unbind(1)
        boxes = torch.where(crop_on.view(-1, 1), boxes,
                            torch.tensor([0.5, 0.5, 1.0, 1.0], dtype=torch.float64).expand(n, 4))

    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = boxes[:, 2] * torch.where(flip, -1.0, 1.0)
    theta[:, 0, 2] = 2 * boxes[:, 0] - 1
    theta[:, 1, 1] = boxes[:, 3]
    theta[:, 1, 2] = 2 * boxes[:, 1] - 1
    grid = F.affine_grid(theta.to(x.device, x.dtype), [n, 3, spec.size, spec.size], align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False).clamp(0, 1)

    one = torch.ones(n, dtype=torch.float64)
    b, c, sat = (torch.where(jitter_on, f, one).to(x.device) for f in factors)
    h = torch.where(jitter_on, hue, torch.zeros(n, dtype=torch.float64)).to(x.device)
    out = color_jitter(out, b, c, sat, h)
    gray = gray.to(x.device).view(-1, 1, 1, 1)
    out = torch.where(gray, _luma(out).expand(-1, 3, -1, -1), out)
    if blur is not None and bool(blur.any()):
        kernel = max(3, int(round(spec.blur_kernel_fraction * spec.size)))
        out = gaussian_blur(out, torch.where(blur, sigma, torch.zeros_like(sigma)), kernel).clamp(0, 1)
    return out


def resize_images(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """CC's test transform: the whole image resized to size x size (bilinear), as RGB."""
    x = to_rgb(images).float()
    if size is None or (x.shape[2] == size and x.shape[3] == size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=size < max(x.shape[2:])).clamp(0, 1)


# --- the shared training loop ------------------------------------------------------------------

LossFn = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


def autocast_enabled(mode: Literal["auto", "on", "off"], device: str) -> bool:
    """Mixed precision: ``auto`` = on for CUDA (bfloat16 autocast), off on the CPU."""
    return mode == "on" or (mode == "auto" and str(device).startswith("cuda"))


@dataclass
class TwoViewTrainer:
    """Epochs of: shuffle, two augmented views per image, loss, Adam step; checkpoints on the way.

    A checkpoint (``checkpoints.save``) holds the model, the optimiser, the epoch and every
    random state the loop draws from (its own shuffle and augmentation generators, and
    torch/NumPy/Python's global ones), so a run that stops after any checkpoint and is started
    again gives bit-identical weights (tests/test_cc.py). ``fingerprint`` names what the weights
    depend on besides the epoch count; a checkpoint with another fingerprint is ignored.
    """

    model: torch.nn.Module
    loss_fn: LossFn
    augment_spec: AugmentSpec
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    device: str = "cpu"
    seed: int = 0
    augment_on: Literal["device", "loader"] = "device"
    mixed_precision: Literal["auto", "on", "off"] = "auto"
    steps_per_epoch: int | None = None
    checkpoint_dir: object = None      # resumable state (latest.pt); None = no checkpoints
    checkpoint_every: int = 0          # epochs between checkpoints (0 = only at the end)
    keep_dir: object = None            # where kept epochs are copied at the end (the run's outputs)
    keep_epochs: tuple[int, ...] = ()
    keep_prefix: str = "epoch"
    fingerprint: dict = field(default_factory=dict)
    progress: bool = False
    log: Callable[[dict], None] = lambda row: None
    on_epoch_end: Callable[[int], None] | None = None  # called after each epoch's checkpoint (tests)

    def __post_init__(self) -> None:
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        self.shuffle_rng = np.random.default_rng(self.seed)
        self.augment_rng = torch.Generator().manual_seed(self.seed)
        self.history: list[dict] = []
        self.start_epoch = 0
        self.resumed_from: int | None = None

    # -- state -----------------------------------------------------------------------------
    def state(self, epoch: int) -> dict:
        return {"epoch": epoch, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "shuffle_rng": self.shuffle_rng.bit_generator.state, "augment_rng": self.augment_rng.get_state(),
                "history": list(self.history), "fingerprint": self.fingerprint, **checkpoints.global_rng_states()}

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.shuffle_rng.bit_generator.state = state["shuffle_rng"]
        self.augment_rng.set_state(state["augment_rng"])
        self.history = list(state["history"])
        checkpoints.set_global_rng_states(state)
        self.start_epoch = self.resumed_from = int(state["epoch"])

    def try_resume(self) -> None:
        if self.checkpoint_dir is None:
            return
        state = checkpoints.load_latest(self.checkpoint_dir, self.fingerprint, max_epoch=self.epochs)
        if state is not None:
            self.load_state(state)

    # -- training --------------------------------------------------------------------------
    def _views(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.augment_on == "device":
            batch = batch.to(self.device, non_blocking=True)
        a = augment(batch, self.augment_spec, self.augment_rng)
        b = augment(batch, self.augment_spec, self.augment_rng)
        return a.to(self.device, non_blocking=True), b.to(self.device, non_blocking=True)

    def fit(self, images: torch.Tensor) -> list[dict]:
        """Train on ``images`` (N, C, H, W) float in [0, 1] (on the CPU) from the last checkpoint on."""
        n = len(images)
        batch = min(self.batch_size, n)  # CC drops the last incomplete batch; a tiny view keeps one
        steps = n // batch if self.steps_per_epoch is None else min(n // batch, self.steps_per_epoch)
        use_amp = autocast_enabled(self.mixed_precision, self.device)
        device_type = "cuda" if str(self.device).startswith("cuda") else "cpu"
        self.try_resume()
        bar = tqdm(range(self.start_epoch, self.epochs), desc=type(self.model).__name__, disable=not self.progress,
                   leave=False)
        for epoch in bar:
            self.model.train()
            start = time.perf_counter()
            order = self.shuffle_rng.permutation(n)
            sums: dict[str, float] = {}
            for step in range(steps):
                rows = torch.from_numpy(np.sort(order[step * batch:(step + 1) * batch]))
                xa, xb = self._views(images[rows])
                with torch.autocast(device_type, dtype=torch.bfloat16, enabled=use_amp):
                    loss, parts = self.loss_fn(self.model, xa, xb)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                for key, value in {"loss": float(loss.detach()), **parts}.items():
                    sums[key] = sums.get(key, 0.0) + value
            row = {"epoch": epoch + 1, **{k: round(v / max(steps, 1), 6) for k, v in sums.items()},
                   "seconds": round(time.perf_counter() - start, 3)}
            self.history.append(row)
            self.log(row)
            bar.set_postfix(loss=f"{row.get('loss', float('nan')):.4f}")
            done = epoch + 1
            if self.checkpoint_dir is not None and (
                    done == self.epochs or (self.checkpoint_every and done % self.checkpoint_every == 0)
                    or done in self.keep_epochs):
                state = self.state(done)
                checkpoints.save(self.checkpoint_dir, state)
                if done in self.keep_epochs:
                    checkpoints.keep(self.checkpoint_dir, f"{self.keep_prefix}{done}.pt")
            if self.on_epoch_end is not None:
                self.on_epoch_end(done)
        if self.checkpoint_dir is not None and self.keep_dir is not None:
            checkpoints.export_kept(self.checkpoint_dir, self.keep_dir,
                                    [f"{self.keep_prefix}{e}.pt" for e in self.keep_epochs if e <= self.epochs])
        return self.history

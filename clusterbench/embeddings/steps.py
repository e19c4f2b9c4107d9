"""Options of each embedding step (params.yaml ``embeddings.<name>[i]``), validated up front.

One pydantic model per backend, extra keys forbidden, so a typo in params.yaml is one line of
output before any model is loaded. This module imports neither torch nor umap.
"""
from __future__ import annotations

import difflib
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import EmbeddingError

DINOV2_MODELS = ("vits14", "vitb14", "vitl14", "vitg14", "vits14_reg", "vitb14_reg", "vitl14_reg", "vitg14_reg")
VGG16_LAYERS = ("fc7", "fc6", "pool5", "gap")
SIMCLR_MODELS = ("cifar-10", "cifar-20", "stl-10")
IMAGE_BACKENDS = ("dinov2", "vgg16", "simclr")  # read images, so they must come first


class StepOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    backend: str


class RawStep(StepOptions):
    """Flattened features; uint8 images scaled to [0, 1]."""

    backend: Literal["raw"]


class PcaStep(StepOptions):
    backend: Literal["pca"]
    n_components: int = Field(50, ge=1)
    whiten: bool = False


class UmapStep(StepOptions):
    backend: Literal["umap"]
    n_components: int = Field(2, ge=1)
    n_neighbors: int = Field(15, ge=2)
    min_dist: float = Field(0.1, ge=0.0)
    metric: Literal["euclidean", "cosine", "manhattan", "correlation"] = "euclidean"


class PretrainedStep(StepOptions):
    batch_size: int = Field(64, ge=1, le=65536)
    # false = random initialisation of the same architecture: for tests and "untrained network"
    # ablations only, never for paper numbers.
    pretrained: bool = True


class Dinov2Step(PretrainedStep):
    """DINOv2 (Oquab et al. 2023): CLS token after the final LayerNorm."""

    backend: Literal["dinov2"]
    model: Literal[DINOV2_MODELS] = "vitl14"  # type: ignore[valid-type]
    image_size: int = Field(224, ge=14, le=1022)

    @field_validator("image_size")
    @classmethod
    def _patch_multiple(cls, v: int) -> int:
        if v % 14:
            raise ValueError(f"must be a multiple of the patch size 14 (e.g. 224), got {v}")
        return v


class Vgg16Step(PretrainedStep):
    """torchvision's ImageNet VGG16; ``layer`` picks the feature (see docs/embeddings.md)."""

    backend: Literal["vgg16"]
    layer: Literal[VGG16_LAYERS] = "fc7"  # type: ignore[valid-type]
    image_size: int = Field(224, ge=32, le=1024)


class SimclrStep(PretrainedStep):
    """SCAN's released SimCLR pretext models (ResNet-18) for CIFAR-10, CIFAR-100-20, STL-10."""

    backend: Literal["simclr"]
    model: Literal[SIMCLR_MODELS]  # type: ignore[valid-type]
    features: Literal["head", "backbone"] = "head"
    batch_size: int = Field(256, ge=1, le=65536)


STEP_MODELS: dict[str, type[StepOptions]] = {
    "raw": RawStep, "pca": PcaStep, "umap": UmapStep,
    "dinov2": Dinov2Step, "vgg16": Vgg16Step, "simclr": SimclrStep,
}


def _describe(exc: ValidationError, model: type[StepOptions]) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            allowed = sorted(set(model.model_fields) - {"backend"})
            close = difflib.get_close_matches(loc, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            parts.append(f"unknown option {loc!r}{hint}; allowed: {', '.join(allowed) or 'none'}")
        else:
            parts.append(f"{loc}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(parts)


def parse_step(step: dict[str, Any] | StepOptions) -> StepOptions:
    """The validated options of one step; an EmbeddingError naming the bad option otherwise."""
    if isinstance(step, StepOptions):
        return step
    backend = step.get("backend")
    model = STEP_MODELS.get(backend)  # type: ignore[arg-type]
    if model is None:
        close = difflib.get_close_matches(str(backend), STEP_MODELS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise EmbeddingError(f"unknown embedding backend {backend!r}{hint}; allowed: {', '.join(STEP_MODELS)}")
    try:
        return model(**step)
    except ValidationError as exc:
        raise EmbeddingError(f"{backend}: {_describe(exc, model)}") from None


def step_errors(steps: Sequence[dict[str, Any]]) -> list[str]:
    """Every problem of a chain, one line each ([] when valid): bad options and bad order."""
    errors = []
    for i, step in enumerate(steps):
        try:
            parsed = parse_step(step)
        except EmbeddingError as exc:
            errors.append(f"step {i}: {exc}")
            continue
        if i > 0 and parsed.backend in ("raw",) + IMAGE_BACKENDS:
            errors.append(f"step {i}: {parsed.backend!r} reads the dataset itself, so it must be the first step")
    return errors

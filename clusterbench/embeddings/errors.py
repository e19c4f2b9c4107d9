"""Errors of the embed stage; each message says what went wrong and what to do."""
from __future__ import annotations


class EmbeddingError(RuntimeError):
    """An embedding cannot be computed; the message says why and what to do."""


class MissingWeightsError(EmbeddingError):
    """Pretrained weights are neither cached nor downloadable; the message names the model, the
    folders searched and how to fix it."""


class WeightsChecksumError(EmbeddingError):
    """A weights file is not the one published (or the one recorded when first seen)."""

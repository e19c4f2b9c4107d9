"""Paper methods: one module per method, all with the same small interface.

A method module defines
  ``TASK``         "clustering", "open-set clustering" (trained on the view's labelled split 0, clusters
                   the unseen identities of split 1; scored like clustering on those rows) or
                   "classification" (which metrics the score stage computes: metrics.TASK_METRICS),
  ``Config``       a pydantic model of its params.yaml block (``methods.<name>``), and
  ``fit_predict(ctx, config) -> Result`` for one seed.
Adding a method = a module here + an entry in ``METHODS`` + a params block + its table spec.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..embeddings import View
from ..graphs import KnnGraph


class MethodConfig(BaseModel):
    """Base of every method's Config: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class RunContext:
    view: View
    graph: KnnGraph | None
    seed: int
    n_clusters: int
    device: str = "cpu"
    progress: bool = True
    workdir: Any = None  # a folder the method may write extra artefacts (figures) into
    # Resumable training state (methods.checkpoints); None: derived from workdir
    # (io.checkpoint_dir_of: data/<profile>/checkpoints/<run>/seed-<s>, beside the run's outputs).
    checkpoint_dir: Any = None
    log: Callable[[dict], None] = lambda row: None  # per-epoch metrics (dvclive, history)


@dataclass
class Result:
    labels: np.ndarray  # predicted cluster (or class) of each evaluated row
    index: np.ndarray | None = None  # evaluated rows of the view; None = all rows
    embedding: np.ndarray | None = None  # learnt low-dimensional embedding, for figures
    history: list[dict] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. epochs run, params count


class Method(Protocol):
    TASK: str
    Config: type[MethodConfig]

    def fit_predict(self, ctx: RunContext, config: MethodConfig) -> Result: ...


# Registries map a name to "module" or "module:attribute"; entries are imported on first use,
# so a missing optional dependency of one method does not stop the others.
METHODS: dict[str, str] = {
    "lnscc": "clusterbench.methods.lnscc",
    "cc": "clusterbench.methods.cc",
    "iciclegcn": "clusterbench.methods.iciclegcn",
    "ghdcc": "clusterbench.methods.ghdcc",
    # --- constellationnet ---
    "constellationnet": "clusterbench.methods.constellationnet.unsupervised",
    "constellationnet-supervised": "clusterbench.methods.constellationnet.supervised",
    # --- hilander ---
    "hilander": "clusterbench.methods.hilander",
}


def resolve(target: str) -> Method:
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    return getattr(obj, attr) if attr else obj


def load_method(name: str) -> Method:
    return resolve(METHODS[name])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (if loaded) torch; baselines never pay torch's import."""
    import random
    import sys

    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def pick_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"

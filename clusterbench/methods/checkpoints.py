"""Training checkpoints that make a long run resumable and keep chosen epochs as outputs.

A checkpoint is one ``torch.save`` file written atomically (temporary file, then rename), so a
run killed while writing never leaves a truncated ``latest.pt`` behind. It holds whatever the
trainer needs to continue bit-identically (model, optimiser, epoch, the trainer's own random
generators) plus the global torch / NumPy / Python random states, and a ``fingerprint``: the
settings and data the weights depend on. A checkpoint with another fingerprint, or one beyond
the requested number of epochs, is ignored (with a note on stderr), never silently continued.

Layout of a checkpoint folder (``RunContext.checkpoint_dir``, outside the run's output folder
so it survives a failed or interrupted stage): ``latest.pt`` and the kept epochs
(``<prefix><epoch>.pt``), which ``export_kept`` copies into the run's outputs.
"""
from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from .. import io

LATEST = "latest.pt"


def global_rng_states() -> dict:
    states = {"torch_rng": torch.get_rng_state(), "numpy_rng": np.random.get_state(),
              "python_rng": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda_rng"] = torch.cuda.get_rng_state_all()
    return states


def set_global_rng_states(state: dict) -> None:
    torch.set_rng_state(state["torch_rng"])
    np.random.set_state(state["numpy_rng"])
    random.setstate(state["python_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])


def save(folder, state: dict, name: str = LATEST) -> Path:
    """Write ``state`` to ``folder/name`` atomically."""
    path = Path(folder) / name
    with io.atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load(path) -> dict:
    # Our own files: they hold NumPy / Python RNG states, which weights_only loading refuses.
    return torch.load(Path(path), map_location="cpu", weights_only=False)


def load_latest(folder, fingerprint: dict, max_epoch: int, name: str = LATEST) -> dict | None:
    """The checkpoint to continue from, or None (no file, other settings, or past ``max_epoch``)."""
    path = Path(folder) / name
    if not path.is_file():
        return None
    state = load(path)
    if state.get("fingerprint") != fingerprint:
        print(f"checkpoint {path} was written with other settings or data; starting from scratch",
              file=sys.stderr)
        return None
    if int(state["epoch"]) > max_epoch:
        print(f"checkpoint {path} is at epoch {state['epoch']}, beyond the {max_epoch} asked for; starting "
              "from scratch", file=sys.stderr)
        return None
    print(f"resuming from {path} (epoch {state['epoch']})", file=sys.stderr)
    return state


def keep(folder, name: str) -> Path:
    """Copy ``latest.pt`` to ``name`` beside it (a kept epoch, e.g. CC(500))."""
    folder = Path(folder)
    target = folder / name
    with io.atomic_path(target) as tmp:
        shutil.copyfile(folder / LATEST, tmp)
    return target


def export_kept(folder, outputs, names: list[str]) -> list[Path]:
    """Copy the kept checkpoints that exist into the run's output folder."""
    copied = []
    for name in names:
        source = Path(folder) / name
        if source.is_file():
            Path(outputs).mkdir(parents=True, exist_ok=True)
            target = Path(outputs) / name
            with io.atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
            copied.append(target)
    return copied

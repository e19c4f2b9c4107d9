"""Training checkpoints that make a long run resumable and keep chosen epochs as outputs.

A checkpoint is one ``torch.save`` file written atomically (temporary file, then rename), so a
run killed while writing never leaves a truncated ``latest.pt`` behind. It holds whatever the
trainer needs to continue bit-identically (model, optimiser, epoch, the trainer's own random
generators) plus the global torch / NumPy / Python random states, and a ``fingerprint``: the
settings and data the weights depend on. A checkpoint with another fingerprint, or one beyond
the requested number of epochs, is ignored (with a note on stderr), never silently continued.

Checkpoints travel through the DVC remote (``stage1_from``, ``backbone_from`` read another run's
kept epochs), so a file may not be ours: ``load`` unpickles with ``torch.load(weights_only=True)``,
which builds tensors, dicts, lists, tuples, strings and numbers and nothing else, so a crafted
file cannot run code. What ``save`` writes is therefore kept to those types: the NumPy RNG
state (a uint32 array in ``np.random.get_state()``) is stored as a tensor, and ``save`` refuses
a state holding anything weights-only loading would refuse. A file that needs more (one written
before this format, or not a checkpoint at all) is refused with one line, never unpickled.

Layout of a checkpoint folder (``RunContext.checkpoint_dir``, outside the run's output folder
so it survives a failed or interrupted stage): ``latest.pt`` and the kept epochs
(``<prefix><epoch>.pt``), which ``export_kept`` copies into the run's outputs.
"""
from __future__ import annotations

import hashlib
import pickle
import random
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from .. import io

LATEST = "latest.pt"


def code_fingerprint(*sources) -> str:
    """Hash of the code a checkpoint's weights depend on, so that a checkpoint written by other code
    is never continued (a DVC re-run after a fix must not pick up the old run's weights). Each
    source is a module (its file) or a package (every ``*.py`` of its folder except
    ``figures.py``: a method folder's plots do not change its weights); this module is always in."""
    files = {Path(__file__).resolve()}
    for source in sources:
        if hasattr(source, "__path__"):
            files.update(p.resolve() for p in Path(source.__file__).parent.glob("*.py") if p.name != "figures.py")
        else:
            files.add(Path(source.__file__).resolve())
    digest = hashlib.sha1()
    for path in sorted(files):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _numpy_state() -> dict:
    """NumPy's legacy global RNG state with its key as a tensor (weights-only loadable)."""
    name, key, pos, has_gauss, gauss = np.random.get_state()
    return {"bit_generator": str(name), "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "gauss": float(gauss)}


def _set_numpy_state(state: dict) -> None:
    key = state["key"].numpy().astype(np.uint32)
    np.random.set_state((state["bit_generator"], key, state["pos"], state["has_gauss"], state["gauss"]))


def folder_of(ctx, name: str) -> Path | None:
    """Where a run seed's resumable state lives: ``ctx.checkpoint_dir / name``, else the pipeline's
    data/<profile>/checkpoints/<run>/seed-<s>/<name> derived from the workdir
    (io.checkpoint_dir_of), outside the run's outputs; None (no checkpoints) without either."""
    if ctx.checkpoint_dir is not None:
        return Path(ctx.checkpoint_dir) / name
    return None if ctx.workdir is None else io.checkpoint_dir_of(ctx.workdir) / name


def global_rng_states() -> dict:
    states = {"torch_rng": torch.get_rng_state(), "numpy_rng": _numpy_state(),
              "python_rng": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda_rng"] = torch.cuda.get_rng_state_all()
    return states


def set_global_rng_states(state: dict) -> None:
    torch.set_rng_state(state["torch_rng"])
    _set_numpy_state(state["numpy_rng"])
    random.setstate(state["python_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])


def save(folder, state: dict, name: str = LATEST) -> Path:
    """Write ``state`` to ``folder/name`` atomically; refuse (TypeError) a state that ``load``
    could not read back: a trainer that adds e.g. a NumPy scalar fails here, in its tests,
    instead of at the next resume."""
    path = Path(folder) / name
    with io.atomic_path(path) as tmp:
        torch.save(state, tmp)
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(tmp)
        if unsafe:
            raise TypeError(f"checkpoint state for {path} holds {', '.join(sorted(unsafe))}, which weights-only "
                            "loading refuses: store tensors, dicts, lists, tuples, strings and numbers only")
    return path


def load(path, fix: str | None = None) -> dict:
    """A checkpoint read without running any code from the file (``torch.load(weights_only=True)``).

    A file that asks for anything beyond tensors and plain Python values (a checkpoint written
    before the weights-only format, or a crafted file) raises DataError, one line ending with
    ``fix`` (default: delete the file to restart from scratch)."""
    from ..checks import DataError

    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        asks = f"asks for {found.group(1)}" if found else "holds objects other than tensors and plain Python values"
        raise DataError(f"checkpoint {path} {asks}, which weights-only loading refuses (a checkpoint from an older "
                        f"clusterbench, or not a checkpoint; unpickling it could run code): "
                        f"{fix or f'delete {path} to restart from scratch'}") from None


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

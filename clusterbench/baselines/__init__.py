"""Classic baselines the papers compare against, behind the same interface as the methods.

Each entry has ``TASK``, ``Config`` and ``fit_predict(ctx, config)`` (see ``methods``); the
baselines stage runs them exactly like the train stage runs paper methods.
"""
from __future__ import annotations

from ..methods import resolve

BASELINES: dict[str, str] = {
    "kmeans": "clusterbench.baselines.shallow:KMEANS",
}


def load_baseline(name: str):
    return resolve(BASELINES[name])

"""Classic baselines the papers compare against, behind the same interface as the methods.

Each entry has ``TASK``, ``Config`` and ``fit_predict(ctx, config)`` (see ``methods``); the
baselines stage runs them exactly like the train stage runs paper methods. Baselines get no
precomputed graph (``ctx.graph`` is None): those that need neighbours build them themselves,
with their own ``k``. docs/baselines.md lists each one's source, protocol and deviations.
"""
from __future__ import annotations

from ..methods import resolve

BASELINES: dict[str, str] = {
    "kmeans": "clusterbench.baselines.shallow:KMEANS",
    # --- baselines ---
    "dbscan": "clusterbench.baselines.shallow:DBSCAN",
    "optics": "clusterbench.baselines.shallow:OPTICS",
    "birch": "clusterbench.baselines.shallow:BIRCH",
    "ward": "clusterbench.baselines.shallow:WARD",
    "agglomerative": "clusterbench.baselines.shallow:AGGLOMERATIVE",
    "hdbscan": "clusterbench.baselines.shallow:HDBSCAN",
    "nmf": "clusterbench.baselines.shallow:NMF",
    "umap-kmeans": "clusterbench.baselines.shallow:UMAP_KMEANS",
    "denpeak": "clusterbench.baselines.density:DENPEAK",
    "ncut": "clusterbench.baselines.spectral:NCUT",
    "sc-st": "clusterbench.baselines.spectral:SC_ST",
    "sc-ls": "clusterbench.baselines.spectral:SC_LS",
    "ldmgi": "clusterbench.baselines.spectral:LDMGI",
    "ae-kmeans": "clusterbench.baselines.deep:AE_KMEANS",
    "dec": "clusterbench.baselines.deep:DEC",
    "idec": "clusterbench.baselines.deep:IDEC",
    "dcn": "clusterbench.baselines.deep:DCN",
    "dkm": "clusterbench.baselines.deep:DKM",
}


def load_baseline(name: str):
    return resolve(BASELINES[name])

"""Pin BLAS / OpenMP threads before numpy, scikit-learn or torch load: import this first.

The number of threads changes the order of floating-point reductions, and with it k-means
iterations, spectral embeddings and SGD steps: the same stage gave different metrics from
`make smoke` (all cores) and from CI (one thread). Every stage script imports this module first,
so a stage gives the same numbers from any entry point. ``CLUSTERBENCH_THREADS`` (default 1)
sets the count; results are reproducible for a given count, and run.json records it.
"""
from __future__ import annotations

import os

_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
         "NUMEXPR_NUM_THREADS")


def count() -> int:
    raw = os.environ.get("CLUSTERBENCH_THREADS", "1")
    try:
        n = int(raw)
    except ValueError:
        raise SystemExit(f"error: CLUSTERBENCH_THREADS={raw!r}: expected a whole number of threads (e.g. 1)")
    if n < 1:
        raise SystemExit(f"error: CLUSTERBENCH_THREADS={raw!r}: expected at least 1")
    return n


def pin() -> int:
    n = count()
    for var in _VARS:
        os.environ[var] = str(n)
    # Busy-waiting OpenMP threads stall small parallel loops when other processes hold the cores.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return n


THREADS = pin()

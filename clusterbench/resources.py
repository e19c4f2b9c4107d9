"""Wall time and peak memory of a piece of work, recorded in every run's metrics.

Peak memory is the process's resident high-water mark (``ru_maxrss``), plus the CUDA
allocator's peak when a GPU is in use; both are what a user needs to size a machine.
"""
from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _cuda_peak_mb() -> float | None:
    torch = sys.modules.get("torch")  # only a run that loaded torch can have used the GPU
    if torch is None or not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / (1024 * 1024)


@dataclass
class Stopwatch:
    """Context manager measuring wall time and the peak memory seen when it closes."""

    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    peak_gpu_mb: float | None = None
    _start: float = field(default=0.0, repr=False)

    def __enter__(self) -> "Stopwatch":
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall_s = time.perf_counter() - self._start
        self.peak_rss_mb = peak_rss_mb()
        self.peak_gpu_mb = _cuda_peak_mb()

    def as_dict(self) -> dict:
        out = {"wall_s": round(self.wall_s, 3), "peak_rss_mb": round(self.peak_rss_mb, 1)}
        if self.peak_gpu_mb is not None:
            out["peak_gpu_mb"] = round(self.peak_gpu_mb, 1)
        return out


def available_memory_bytes() -> int:
    """Memory this process may still use: MemAvailable, capped by a cgroup limit if any."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    for cg in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = open(cg).read().strip()
        except OSError:
            continue
        if raw.isdigit():
            limit = int(raw)
            if limit < (1 << 60):
                avail = min(avail, limit) if avail else limit
    return avail if avail is not None else 8 << 30


def check_memory(needed_bytes: float, what: str, hint: str = "") -> None:
    """Refuse up front a configuration that would exhaust memory, instead of being OOM-killed."""
    avail = available_memory_bytes()
    if needed_bytes > 0.8 * avail:
        gib = 1 << 30
        msg = (f"{what} would need about {needed_bytes / gib:.1f} GiB of memory, "
               f"but only {avail / gib:.1f} GiB is available (limit: 80%).")
        raise MemoryError(msg + (f" {hint}" if hint else ""))

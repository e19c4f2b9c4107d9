"""Wall time and peak memory of a piece of work, recorded in every run's metrics.

Peak memory is the process's resident high-water mark (``ru_maxrss``), plus the CUDA
allocator's peak when a GPU is in use; both are what a user needs to size a machine.
"""
from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterable


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


# --- refusing a configuration before it allocates ------------------------------------------------

GiB = float(1 << 30)
MEMORY_FRACTION = 0.8  # the share of the available memory a run may plan to use


def format_bytes(n: float) -> str:
    return f"{n / GiB:,.1f} GiB" if n >= 0.1 * GiB else f"{n / (1 << 20):,.1f} MiB"


@dataclass(frozen=True)
class Cost:
    """One allocation a configuration will make: its estimated bytes, what it is, and the
    settings that size it (empty: sized by the data alone). ``on_device``: it lives on the run's
    device (the GPU when the run has one), else in host memory."""

    what: str
    nbytes: float
    settings: tuple[tuple[str, Any], ...] = ()
    on_device: bool = True


def available_device_memory_bytes(device) -> int | None:
    """Free memory of a CUDA device, counting what torch's caching allocator holds but does not use
    (a previous seed's freed tensors); None for the CPU."""
    if not str(device).startswith("cuda"):
        return None
    import torch

    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))


def _describe(settings: tuple[tuple[str, Any], ...]) -> str:
    return ", ".join(f"{name} = {value}" for name, value in settings)


def check_costs(method: str, costs: Iterable[Cost], device=None) -> float:
    """Refuse (MemoryError, one line) a configuration whose estimated allocations exceed
    ``MEMORY_FRACTION`` of the available memory, before any of them is made: a bad width or batch
    size then costs one line naming the setting, not an allocator traceback or the OOM killer.

    The line names the setting(s) of the largest cost that has settings, its estimate, the total
    and the limit. Costs are grouped by where they live: host memory, and the GPU's memory when
    ``device`` is a CUDA device. Returns the total estimate (bytes)."""
    costs = [c for c in costs if c.nbytes > 0]
    gpu = available_device_memory_bytes(device) if device is not None else None
    places = [("", [c for c in costs if gpu is None or not c.on_device], available_memory_bytes())]
    if gpu is not None:
        places.append((f" on {device}", [c for c in costs if c.on_device], gpu))
    total_all = 0.0
    for where, group, avail in places:
        total = float(sum(c.nbytes for c in group))
        total_all += total
        limit = MEMORY_FRACTION * avail
        if total <= limit:
            continue
        named = [c for c in group if c.settings] or group
        worst = max(named, key=lambda c: c.nbytes)
        names = " or ".join(name for name, _ in worst.settings)
        raise MemoryError(
            f"{method}: {_describe(worst.settings) or 'this data'} would need about {format_bytes(total)}{where} "
            f"({worst.what}: {format_bytes(worst.nbytes)}), more than the limit of {format_bytes(limit)} "
            f"({MEMORY_FRACTION:.0%} of the {format_bytes(avail)} available){f': lower {names}' if names else ''}")
    return total_all

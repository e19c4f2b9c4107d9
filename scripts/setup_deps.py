"""Which faiss build `make setup` installs: faiss-gpu where `nvidia-smi -L` lists a GPU, else
requirements.txt as it is (faiss-cpu).

faiss-cpu and faiss-gpu both provide the ``faiss`` module, so only one may be installed; the GPU
wheel makes the knn stage and Hi-LANDER's level graphs run on the GPU (clusterbench.graphs picks
the GPU index when faiss sees one). PyPI's ``faiss-gpu`` has the faiss-cpu pin's version (1.15.1;
it takes the CUDA 12 runtime and cuBLAS from PyPI's nvidia-*-cu12 wheels, beside torch's own CUDA
libraries), so the GPU pin is the CPU pin's version; ``faiss-gpu-cu12`` is at 1.14.1 only.

The Makefile runs this script before the virtualenv holds anything but pip (standard library
only; outside the clusterbench package, whose folder the pipeline's resolve stage hashes):

    python scripts/setup_deps.py requirements.txt .venv/requirements-gpu.txt

prints the requirements file to install: ``requirements.txt`` itself on a machine without an
NVIDIA GPU (nothing else is written: today's install), or the second path, written with the
faiss-cpu pin swapped for faiss-gpu of the same version.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Callable

GPU_PACKAGE = "faiss-gpu"
CPU_PIN = re.compile(r"^(?P<indent>\s*)faiss-cpu\s*==\s*(?P<version>[^\s#;]+)(?P<rest>.*)$")
GPU_LINE = re.compile(r"^GPU \d+: ")  # `nvidia-smi -L`: "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)"


def run_nvidia_smi(run: Callable = subprocess.run, timeout: float = 30.0) -> str | None:
    """stdout of `nvidia-smi -L`; None when nvidia-smi is not installed, fails (no driver, no
    device: it exits non-zero) or hangs."""
    try:
        done = run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def gpus_listed(nvidia_smi_output: str | None) -> list[str]:
    """The GPU lines of `nvidia-smi -L` output (None: nvidia-smi absent or failed: no GPU)."""
    if not nvidia_smi_output:
        return []
    return [line.strip() for line in nvidia_smi_output.splitlines() if GPU_LINE.match(line.strip())]


def faiss_cpu_version(requirements_text: str) -> str:
    """The version of the ``faiss-cpu==<version>`` pin; a one-line error when there is none."""
    for line in requirements_text.splitlines():
        match = CPU_PIN.match(line)
        if match:
            return match["version"]
    raise ValueError("requirements: no faiss-cpu==<version> line to swap for faiss-gpu")


def gpu_requirements(requirements_text: str, nvidia_smi_output: str | None) -> str | None:
    """requirements.txt with its faiss-cpu pin replaced by faiss-gpu of the same version when
    nvidia-smi listed a GPU; None where it did not (install requirements.txt unchanged)."""
    if not gpus_listed(nvidia_smi_output):
        return None
    faiss_cpu_version(requirements_text)  # no pin to swap: refuse rather than install no faiss at all
    lines = []
    for line in requirements_text.splitlines():
        match = CPU_PIN.match(line)
        if match:
            line = (f"{match['indent']}{GPU_PACKAGE}=={match['version']}  "
                    "# scripts/setup_deps.py: nvidia-smi lists a GPU")
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, nvidia_smi: Callable[[], str | None] = run_nvidia_smi) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: setup_deps.py REQUIREMENTS GPU_REQUIREMENTS_OUT", file=sys.stderr)
        return 2
    source, gpu_out = Path(args[0]), Path(args[1])
    text = source.read_text()
    output = nvidia_smi()
    try:
        swapped = gpu_requirements(text, output)
    except ValueError as exc:
        print(f"error: {source}: {exc}", file=sys.stderr)
        return 2
    if swapped is None:
        print(source)
        return 0
    gpu_out.parent.mkdir(parents=True, exist_ok=True)
    gpu_out.write_text(swapped)
    version = faiss_cpu_version(text)
    print(f"setup: nvidia-smi lists {len(gpus_listed(output))} GPU(s): installing {GPU_PACKAGE}=={version} "
          f"instead of faiss-cpu=={version} ({gpu_out})", file=sys.stderr)
    print(gpu_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

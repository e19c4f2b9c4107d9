"""`make setup`'s faiss choice (scripts/setup_deps.py): faiss-gpu of the faiss-cpu pin's version
where `nvidia-smi -L` lists a GPU; requirements.txt untouched where nvidia-smi is missing, fails or
lists none."""
from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("setup_deps", ROOT / "scripts" / "setup_deps.py")
setup_deps = importlib.util.module_from_spec(_spec)  # a script the Makefile runs before the package is installed
_spec.loader.exec_module(setup_deps)
REQUIREMENTS = "torch==2.14.1\nfaiss-cpu==1.15.1        # a comment\nnumpy==2.4.6\n-e .\n"
TWO_GPUS = ("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0f8c1a2b-0000-0000-0000-000000000000)\n"
            "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-0f8c1a2b-0000-0000-0000-000000000001)\n")


def fake_run(result=None, error=None):
    def run(cmd, **kwargs):
        assert cmd == ["nvidia-smi", "-L"]
        if error is not None:
            raise error
        return result
    return run


def test_no_nvidia_smi_keeps_requirements_as_they_are():
    output = setup_deps.run_nvidia_smi(fake_run(error=FileNotFoundError("nvidia-smi")))
    assert output is None
    assert setup_deps.gpu_requirements(REQUIREMENTS, output) is None


@pytest.mark.parametrize("result, error", [
    (subprocess.CompletedProcess([], 9, "", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA "
                                            "driver."), None),
    (subprocess.CompletedProcess([], 6, "No devices were found\n", ""), None),
    (None, subprocess.TimeoutExpired(["nvidia-smi", "-L"], 30)),
    (None, PermissionError("nvidia-smi")),
])
def test_failing_nvidia_smi_keeps_requirements_as_they_are(result, error):
    output = setup_deps.run_nvidia_smi(fake_run(result, error))
    assert output is None
    assert setup_deps.gpu_requirements(REQUIREMENTS, output) is None


def test_nvidia_smi_listing_no_gpu_keeps_requirements_as_they_are():
    assert setup_deps.gpu_requirements(REQUIREMENTS, "") is None
    assert setup_deps.gpu_requirements(REQUIREMENTS, "No devices were found\n") is None


def test_listed_gpus_swap_faiss_cpu_for_faiss_gpu_of_the_same_version():
    output = setup_deps.run_nvidia_smi(fake_run(subprocess.CompletedProcess([], 0, TWO_GPUS, "")))
    assert len(setup_deps.gpus_listed(output)) == 2
    swapped = setup_deps.gpu_requirements(REQUIREMENTS, output)
    lines = swapped.splitlines()
    assert lines[1].startswith("faiss-gpu==1.15.1 ")
    assert not any("faiss-cpu" in line for line in lines)
    assert [lines[0], *lines[2:]] == ["torch==2.14.1", "numpy==2.4.6", "-e ."]  # everything else as it was


def test_listed_gpu_without_a_faiss_cpu_pin_is_refused():
    with pytest.raises(ValueError, match="no faiss-cpu==<version> line"):
        setup_deps.gpu_requirements("torch==2.14.1\n", TWO_GPUS)


def test_main_prints_requirements_txt_on_a_cpu_machine_and_writes_nothing(tmp_path, capsys):
    source, gpu_out = tmp_path / "requirements.txt", tmp_path / "venv" / "requirements-gpu.txt"
    source.write_text(REQUIREMENTS)
    assert setup_deps.main([str(source), str(gpu_out)], nvidia_smi=lambda: None) == 0
    out = capsys.readouterr()
    assert out.out.strip() == str(source) and out.err == ""
    assert not gpu_out.exists()


def test_main_writes_and_prints_the_gpu_requirements_on_a_gpu_machine(tmp_path, capsys):
    source, gpu_out = tmp_path / "requirements.txt", tmp_path / "venv" / "requirements-gpu.txt"
    source.write_text(REQUIREMENTS)
    assert setup_deps.main([str(source), str(gpu_out)], nvidia_smi=lambda: TWO_GPUS) == 0
    out = capsys.readouterr()
    assert out.out.strip() == str(gpu_out)
    assert "faiss-gpu==1.15.1" in out.err and len(out.err.strip().splitlines()) == 1
    assert "faiss-gpu==1.15.1" in gpu_out.read_text() and source.read_text() == REQUIREMENTS


def test_the_repository_pins_a_faiss_cpu_version_the_gpu_swap_can_reuse():
    text = (ROOT / "requirements.txt").read_text()
    version = setup_deps.faiss_cpu_version(text)
    swapped = setup_deps.gpu_requirements(text, TWO_GPUS)
    assert f"faiss-gpu=={version} " in swapped
    assert not any(setup_deps.CPU_PIN.match(line) for line in swapped.splitlines())

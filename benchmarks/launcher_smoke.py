"""The launcher against a serial `dvc repro` on the real smoke pipeline: same dvc.lock, same outputs?

Why (issue 22): `make repro JOBS=N` must leave dvc.lock and the outputs exactly as a serial run.
Run this in a checkout whose smoke stages are stale (e.g. right after a change under
clusterbench/methods, before `make smoke`). It copies the workspace (without data/full and
.venv) to a scratch folder, runs the serial `dvc repro` of the smoke targets in one copy and
`python -m clusterbench.launch --jobs N` in the other, and compares: every dvc.lock entry field by
field, every file under data/smoke/runs byte by byte, and the per-seed metrics. run.json records
wall times, so it is the one file expected to differ. Writes benchmarks/launcher-smoke.json.

    PYTHONPATH=. python benchmarks/launcher_smoke.py --jobs 2
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

TARGETS = ["tables@smoke", "lnscc-figures@smoke", "ghdcc-figures@smoke", "figures@smoke"]
OUT = Path(__file__).with_name("launcher-smoke.json")


def copy_workspace(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns(".venv", "full", "launch-logs"))
    os.symlink(src / ".venv", dst / ".venv")


def timed(cmd: list[str], cwd: Path) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(cwd), "PATH": f"{cwd / '.venv/bin'}:{os.environ['PATH']}",
           "CLUSTERBENCH_JOBS": "1", "OMP_NUM_THREADS": "1", "DVC_NO_ANALYTICS": "1"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode:
        sys.stderr.write(proc.stderr[-3000:])
    return time.perf_counter() - start, proc.returncode


def file_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    here = Path.cwd()
    scratch = Path(tempfile.mkdtemp(prefix="launcher-smoke-"))
    serial, parallel = scratch / "serial", scratch / "parallel"
    copy_workspace(here, serial)
    copy_workspace(here, parallel)
    py = str(here / ".venv/bin/python")
    serial_s, rc_s = timed([py, "-m", "dvc", "repro", *TARGETS], serial)
    parallel_s, rc_p = timed([py, "-m", "clusterbench.launch", "--jobs", str(args.jobs), *TARGETS], parallel)
    lock_s = yaml.safe_load((serial / "dvc.lock").read_text())["stages"]
    lock_p = yaml.safe_load((parallel / "dvc.lock").read_text())["stages"]
    differing = sorted(k for k in set(lock_s) | set(lock_p) if lock_s.get(k) != lock_p.get(k))
    files_s, files_p = file_hashes(serial / "data/smoke/runs"), file_hashes(parallel / "data/smoke/runs")
    files_differ = sorted(k for k in set(files_s) | set(files_p) if files_s.get(k) != files_p.get(k))
    record = {"jobs": args.jobs, "serial_s": round(serial_s, 1), "launcher_s": round(parallel_s, 1),
              "returncodes": [rc_s, rc_p], "lock_entries": len(lock_s), "lock_entries_differing": differing,
              "run_files": len(files_s), "run_files_differing": files_differ,
              "run_files_differing_other_than_run_json": [f for f in files_differ if not f.endswith("run.json")],
              "cpus": os.cpu_count()}
    OUT.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: v for k, v in record.items() if "differing" not in k or not v or len(v) < 5}, indent=1))
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

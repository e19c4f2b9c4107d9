"""Pipeline overhead: what DVC costs when there is nothing to do, and against what.

Not a test (times depend on the machine). Measures, from the repository root with the smoke
outputs present:

- a no-op `dvc repro` of the smoke targets, `dvc status` of them, `dvc stage list`;
- parsing dvc.lock with DVC's YAML loader, with the C loader (ruamel.yaml.clib, in
  requirements.txt) and without it (the obvious alternative: pure Python, DVC's default when
  the C extension is absent), which is most of a no-op's time.

Writes benchmarks/pipeline-<host>.json and prints a table.

    python benchmarks/pipeline.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

SMOKE_TARGETS = ["tables@smoke", "lnscc-figures@smoke", "ghdcc-figures@smoke", "figures@smoke"]


def wall(cmd: list[str], repeat: int) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        out = proc.stdout + proc.stderr
    return statistics.median(times), out


def lock_parse(pure: bool, repeat: int) -> float:
    from ruamel.yaml import YAML

    text = Path("dvc.lock").read_text()
    best = float("inf")
    for _ in range(repeat):
        yaml = YAML(typ="safe", pure=pure)
        t0 = time.perf_counter()
        yaml.load(text)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    dvc = [sys.executable, "-m", "dvc"]
    rows = []
    t, out = wall(dvc + ["repro", *SMOKE_TARGETS], args.repeat)
    rows.append({"task": "no-op dvc repro (smoke targets)", "s": round(t, 2),
                 "stages_run": out.count("Running stage")})
    t, _ = wall(dvc + ["status", *SMOKE_TARGETS, "--with-deps"], args.repeat)
    rows.append({"task": "dvc status --with-deps (smoke targets)", "s": round(t, 2)})
    t, out = wall(dvc + ["stage", "list", "--name-only"], args.repeat)
    rows.append({"task": "dvc stage list", "s": round(t, 2), "stages": len(out.split())})
    lock = Path("dvc.lock")
    rows.append({"task": f"parse dvc.lock ({lock.stat().st_size // 1024} KB), C loader", "s": round(lock_parse(False, args.repeat), 3)})
    rows.append({"task": "parse dvc.lock, pure-Python loader", "s": round(lock_parse(True, args.repeat), 3)})
    for r in rows:
        print(f"{r['task']:<50} {r['s']:>8.3f} s  " + " ".join(f"{k}={v}" for k, v in r.items() if k not in ("task", "s")))
    out_path = Path(__file__).with_name(f"pipeline-{platform.node() or 'host'}.json")
    out_path.write_text(json.dumps({"host": platform.node(), "cpus": __import__("os").cpu_count(),
                                    "measured": time.strftime("%Y-%m-%d"), "rows": rows}, indent=1) + "\n")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()

"""`make repro`: run every stage DVC can (``dvc repro --keep-going``), then say what happened.

On a machine without network or GPU most of the full pipeline cannot run; plain ``dvc repro``
stops at the first data set it cannot download. This runs everything else and ends with a
summary: stages run, up to date, failed (with the stage's own one-line reason, classed as
"download needed", "no GPU" or "error"), and stages skipped because something upstream failed.
The summary is also written to ``data/repro-summary.json``.

    python -m clusterbench.repro [dvc repro targets ...]
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

RUNNING = re.compile(r"^Running stage '([^']+)'")
UP_TO_DATE = re.compile(r"^Stage '([^']+)' didn't change, skipping")
CACHED = re.compile(r"^Stage '([^']+)' is cached")
FAILED = re.compile(r"failed to reproduce '([^']+)'(?::\s*(.*))?")
FAILED_MANY = re.compile(r"failed to reproduce stages: (.*)")
FAILED_TO_RUN = re.compile(r"^(?:WARNING|ERROR): failed to run: (.*)")
SKIPPED = re.compile(r"^WARNING: Stages? (.*) will be skipped due to this failure")
OUR_ERROR = re.compile(r"^error: (.*)")
NAME = re.compile(r"'([^']+)'")


def classify(reason: str) -> str:
    text = reason.lower()
    if any(w in text for w in ("download", "network", "offline", "url", "imagenet_dir", "mirror")):
        return "download needed"
    if any(w in text for w in ("cuda", "gpu")):
        return "no GPU"
    return "error"


def parse_log(lines: list[str]) -> dict:
    """Stages run / up to date / failed (with the stage's own `error:` line) / skipped, from the
    output of `dvc repro [--keep-going]`."""
    ran, up_to_date, failed, skipped, current, last_error = [], [], {}, [], None, {}
    for line in lines:
        line = line.rstrip("\n")
        if m := RUNNING.match(line):
            current = m.group(1)
            ran.append(current)
        elif m := UP_TO_DATE.match(line) or CACHED.match(line):
            up_to_date.append(m.group(1))
        elif m := OUR_ERROR.match(line):
            if current:
                last_error.setdefault(current, m.group(1))
        elif m := FAILED_TO_RUN.match(line):
            if current:
                failed[current] = last_error.get(current) or m.group(1).strip()
        elif m := SKIPPED.match(line):
            skipped += [n for n in NAME.findall(m.group(1)) if n not in skipped]
        elif m := FAILED_MANY.search(line):
            for stage in NAME.findall(m.group(1)):
                failed.setdefault(stage, last_error.get(stage) or "see the log above")
        elif m := FAILED.search(line):
            stage = m.group(1)
            failed[stage] = last_error.get(stage) or (m.group(2) or "see the log above").strip()
    done = [s for s in ran if s not in failed]
    return {"ran": done, "up_to_date": up_to_date, "failed": failed, "skipped": skipped}


def all_stages(targets: list[str]) -> list[str]:
    proc = subprocess.run([sys.executable, "-m", "dvc", "stage", "list", "--name-only"], capture_output=True, text=True)
    return proc.stdout.split() if proc.returncode == 0 else []


def summarise(result: dict, stages: list[str], targets: list[str]) -> str:
    seen = set(result["ran"]) | set(result["up_to_date"]) | set(result["failed"])
    skipped = list(result.get("skipped") or [])
    if not targets:   # a whole-pipeline run: every stage not reached was held back by a failure
        skipped += [s for s in stages if s not in seen and s not in skipped]
    kinds = Counter(classify(r) for r in result["failed"].values())
    lines = ["", "== repro summary ==",
             f"ran: {len(result['ran'])}   up to date: {len(result['up_to_date'])}   failed: {len(result['failed'])}"
             + (f" ({', '.join(f'{n} {k}' for k, n in kinds.most_common())})" if kinds else "")
             + (f"   not run (an upstream stage failed): {len(skipped)}" if skipped else "")]
    by_reason: dict[str, list[str]] = {}
    for stage, reason in result["failed"].items():
        by_reason.setdefault(reason, []).append(stage)
    for reason, names in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        lines.append(f"  [{classify(reason)}] {shown}: {reason[:300]}")
    result["not_run_upstream_failed"] = skipped
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    targets = list(sys.argv[1:] if argv is None else argv)
    cmd = [sys.executable, "-m", "dvc", "repro", "--keep-going", *targets]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        lines.append(line)
    code = proc.wait()
    result = parse_log(lines)
    text = summarise(result, all_stages(targets), targets)
    print(text)
    out = Path("data/repro-summary.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**result, "dvc_exit_code": code}, indent=1) + "\n")
    return 0 if not result["failed"] and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Committed outputs must come from the code and parameters that claim them (a CI check).

The score, tables, leaderboard and figure stages write into git-tracked folders (reports/), and
dvc.lock records the hashes of the code and settings each output was made from. A change to that
code (or to its settings) without re-running the stage leaves committed numbers that nothing
reproduces. This check asks DVC which of those stages' dependencies changed, and fails on the
ones a fresh clone can judge: files tracked by git (code, paper transcriptions, expected values)
the stages' settings files (data/resolved, made from params.yaml and runs.yaml) and the stages'
own outputs. Data dependencies (data/..., not in git, pulled from the DVC remote)
are not judged here.

    python -m clusterbench.freshness          # exit 1 with one line per stale output
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml


JUDGED_GENERATED = ("data/resolved/",)   # written from git-tracked files by resolve, so judged too


def git_tracked() -> set[str]:
    out = subprocess.run(["git", "ls-files"], capture_output=True, text=True, check=True).stdout
    return set(out.splitlines())


def is_tracked(path: str, tracked: set[str]) -> bool:
    """``path`` is a file git tracks, or a folder holding some."""
    path = path.rstrip("/")
    return path in tracked or any(t.startswith(path + "/") for t in tracked)


def _judged(path: str, tracked: set[str]) -> bool:
    return path.startswith(JUDGED_GENERATED) or is_tracked(path, tracked)


def load_lock(lock_path: Path = Path("dvc.lock")) -> dict:
    """The stages dvc.lock records (C YAML loader when there is one: the file can be large)."""
    if not lock_path.is_file():
        return {}
    lock = yaml.load(lock_path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    return lock.get("stages") or {}


def committed_stages(lock_path: Path = Path("dvc.lock"), tracked: set[str] | None = None) -> list[str]:
    """Stages in dvc.lock with at least one output tracked by git."""
    tracked = git_tracked() if tracked is None else tracked
    return sorted(name for name, entry in load_lock(lock_path).items()
                  if any(is_tracked(o["path"], tracked) for o in entry.get("outs", [])))


def stale(status: dict, tracked: set[str]) -> list[str]:
    """One line per judged change in ``dvc status --json`` output."""
    problems = []
    for stage, changes in sorted(status.items()):
        for change in changes:
            if isinstance(change, str):   # "changed command", "always changed"
                if change != "always changed":
                    problems.append(f"{stage}: {change}")
                continue
            for kind, entries in change.items():
                if kind == "changed deps":
                    for path, state in entries.items():
                        if path.startswith("params.yaml") or _judged(path, tracked):
                            problems.append(f"{stage}: {path} {state} since the committed output was made")
                elif kind == "changed outs":
                    for path, state in entries.items():
                        if is_tracked(path, tracked):
                            problems.append(f"{stage}: committed output {path} {state} "
                                            "(edited by hand, or dvc.lock not updated)")
    return problems


def main() -> int:
    from . import resolve
    from .config import ParamsError

    try:   # the stages' settings files, from params.yaml and runs.yaml as committed
        resolve.main()
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tracked = git_tracked()
    stages = committed_stages(tracked=tracked)
    proc = subprocess.run([sys.executable, "-m", "dvc", "status", "--json", *stages], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"freshness: `dvc status` failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return 2
    text = proc.stdout.strip()
    status = json.loads(text[text.index("{"):]) if "{" in text else {}
    problems = stale(status, tracked)
    if problems:
        print(f"freshness: {len(problems)} committed output(s) do not match the code or settings that claim them "
              "(re-run the stage, e.g. `dvc repro -s <stage>`, and commit):", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"freshness: the committed outputs of {len(stages)} stages match their code and settings")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Committed outputs must come from the code and parameters that claim them (a CI check).

The score, tables, leaderboard and figure stages write into git-tracked folders (reports/), and
dvc.lock records the hashes of the code and settings each output was made from. A change to that
code (or to its settings) without re-running the stage leaves committed numbers that nothing
reproduces. This check asks DVC which of those stages' dependencies changed, and fails on the
ones a fresh clone can judge: files tracked by git (code, paper transcriptions, expected values)
the stages' settings files (data/resolved, made from params.yaml and runs.yaml) and the stages'
own outputs. Data dependencies (data/..., not in git, pulled from the DVC remote)
are not judged here. It also fails when git and dvc.lock disagree on the files of a committed
output (a file the stage wrote that nobody committed, a file in git the stage no longer writes):
`dvc status` is clean where that file is on disk, and fails in every fresh clone.

    python -m clusterbench.freshness          # exit 1 with one line per stale output
"""
from __future__ import annotations

import fnmatch
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


def dvcignored(path: str, patterns: list[str]) -> bool:
    """``path`` is left out of DVC's hashes by a .dvcignore pattern (the simple, slash-free kind
    this repository uses, matched against each path component)."""
    return any(fnmatch.fnmatch(part, pat) for part in path.split("/") for pat in patterns)


def dvcignore_patterns(path: Path = Path(".dvcignore")) -> list[str]:
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line.rstrip("/") for line in lines if line and not line.startswith(("#", "!"))]


def untracked_files(paths: list[str]) -> set[str]:
    """Files on disk under ``paths`` that git does not track (ignored ones included)."""
    if not paths:
        return set()
    out = subprocess.run(["git", "ls-files", "--others", "--", *paths], capture_output=True, text=True,
                         check=True).stdout
    return set(out.splitlines())


def output_files_not_in_git(lock: dict, tracked: set[str], untracked: set[str],
                            ignored: list[str] = ()) -> list[str]:
    """One line per output of a committed stage whose files dvc.lock and git disagree on.

    A committed stage's outputs live in git, and dvc.lock records their hash as made. A file the
    stage wrote but nobody committed (present here, so `dvc status` here is clean) is missing in
    every fresh clone, where the output then no longer matches dvc.lock; a file git tracks that
    the stage no longer writes is the reverse. ``untracked``: files on disk under those outputs
    that git does not track (``untracked_files``).
    """
    problems = []
    for stage, entry in sorted(lock.items()):
        outs = entry.get("outs", [])
        if not any(is_tracked(o["path"], tracked) for o in outs):
            continue   # not a committed stage: its outputs live in the DVC cache
        for out in outs:
            path = out["path"].rstrip("/")
            if "nfiles" not in out:   # one file
                if path not in tracked:
                    problems.append(f"{stage}: output {path} is recorded in dvc.lock but not committed to git")
                continue
            in_git = {t for t in tracked if t.startswith(path + "/") and not dvcignored(t, list(ignored))}
            extra = sorted(u for u in untracked if u.startswith(path + "/") and not dvcignored(u, list(ignored)))
            if extra:
                shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
                problems.append(f"{stage}: {shown} in output {path} not committed to git "
                                "(a fresh clone lacks it: `git add` it, or remove it if the stage no longer writes it)")
            if len(in_git) != out["nfiles"] and not extra:
                problems.append(f"{stage}: dvc.lock records {out['nfiles']} files in {path}, git tracks "
                                f"{len(in_git)} (commit the stage's outputs together with dvc.lock, or re-run it)")
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
    lock = load_lock()
    out_dirs = [o["path"] for name in stages for o in lock[name].get("outs", []) if "nfiles" in o]
    problems += output_files_not_in_git({name: lock[name] for name in stages}, tracked,
                                        untracked_files(out_dirs), dvcignore_patterns())
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

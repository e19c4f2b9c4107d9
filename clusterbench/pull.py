"""`make pull`: fetch what the DVC remote holds and say, in two lines, what it could not fetch and why.

A plain `dvc pull` on a fresh clone prints one line per output it has no data for: every stage
that was never run (no hash in dvc.lock) and every output that was never pushed to the remote
(the default remote is a folder beside the clone, empty on a new machine). DVC has no setting to
shorten that, so this runs it quietly and summarises.

    python -m clusterbench.pull [dvc pull arguments ...]
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .freshness import git_tracked, is_tracked, load_lock


def cached_outputs(lock_path: Path = Path("dvc.lock"), tracked: set[str] | None = None) -> tuple[list[str], set[str]]:
    """(outputs dvc.lock records that DVC caches, not the git-tracked reports; the stages it records)"""
    stages = load_lock(lock_path)
    tracked = git_tracked() if tracked is None else tracked
    outs = [o["path"] for entry in stages.values() for o in entry.get("outs", []) if not is_tracked(o["path"], tracked)]
    return outs, set(stages)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    remote = subprocess.run([sys.executable, "-m", "dvc", "remote", "default"], capture_output=True, text=True)
    proc = subprocess.run([sys.executable, "-m", "dvc", "pull", "--allow-missing", "-q", *args],
                          capture_output=True, text=True)
    outs, locked = cached_outputs()
    present = [o for o in outs if Path(o).exists()]
    stages = subprocess.run([sys.executable, "-m", "dvc", "stage", "list", "--name-only"], capture_output=True, text=True)
    names = stages.stdout.split()
    unrecorded = [s for s in names if s not in locked]
    name = remote.stdout.strip() or "(none configured)"
    print(f"pull: {len(present)} of the {len(outs)} outputs recorded in dvc.lock are here; "
          f"{len(outs) - len(present)} are on no remote reachable as '{name}' (never pushed there).")
    print(f"pull: {len(unrecorded)} of {len(names)} stages have no output recorded in dvc.lock (never run on a "
          "machine that committed them): `make repro` computes them; docs/remote.md sets up a shared remote.")
    return 0 if proc.returncode == 0 or len(present) == len(outs) else 1


if __name__ == "__main__":
    sys.exit(main())

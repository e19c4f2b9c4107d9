"""CI gate: fail when a results metric falls below its committed expected value minus a tolerance.

``dvc metrics diff`` reports differences but has no thresholds, so the gate reads the score
stage's JSON directly. Expected values live in ``tests/expected/smoke.json`` (committed);
``python -m clusterbench.gate --update`` rewrites them from the current metrics after a
deliberate change.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

GATED_METRICS = ("acc", "nmi", "ari", "top1")
DEFAULT_TOLERANCE = 0.02
EXPECTED_DIR = Path("tests/expected")


def expected_path(profile: str = "smoke") -> Path:
    """The committed expected values of a profile (only ``smoke`` has them)."""
    return EXPECTED_DIR / f"{profile}.json"


def load_expected(profile: str = "smoke") -> dict | None:
    path = expected_path(profile)
    return json.loads(path.read_text()) if path.is_file() else None


def grade(got: float, expected: float, tol: float) -> str:
    """``below expected`` exactly when the gate fails (got < expected - tol); ``above expected``
    when got > expected + tol (the gate passes; ``--update`` would raise the floor)."""
    if got < expected - tol:
        return "below expected"
    if got > expected + tol:
        return "above expected"
    return "as expected"


def compare(expected: dict, actual: dict) -> list[str]:
    tol = float(expected.get("tolerance", DEFAULT_TOLERANCE))
    failures = []
    runs = actual.get("runs", {})
    for run, values in expected["runs"].items():
        if run not in runs:
            failures.append(f"{run}: missing from the metrics (not run?)")
            continue
        for metric, floor in values.items():
            got = runs[run].get(metric)
            if got is None:
                failures.append(f"{run}.{metric}: missing")
            elif grade(got, floor, tol) == "below expected":
                failures.append(f"{run}.{metric}: {got:.4f} < expected {floor:.4f} - tolerance {tol}")
    return failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--metrics", default="reports/smoke/metrics.json")
    ap.add_argument("--expected", default=str(expected_path("smoke")))
    ap.add_argument("--update", action="store_true", help="write the current metrics as the expected values")
    ap.add_argument("--tolerance", type=float, default=None, help="with --update: the tolerance to store")
    args = ap.parse_args(argv)

    actual = json.loads(Path(args.metrics).read_text())
    if args.update:
        old = json.loads(Path(args.expected).read_text()) if Path(args.expected).exists() else {}
        tol = args.tolerance if args.tolerance is not None else old.get("tolerance", DEFAULT_TOLERANCE)
        runs = {run: {m: v for m, v in values.items() if m in GATED_METRICS}
                for run, values in actual["runs"].items()}
        Path(args.expected).parent.mkdir(parents=True, exist_ok=True)
        Path(args.expected).write_text(json.dumps({"tolerance": tol, "runs": runs}, indent=2, sort_keys=True) + "\n")
        print(f"wrote {len(runs)} runs to {args.expected} (tolerance {tol})")
        return 0

    expected = json.loads(Path(args.expected).read_text())
    failures = compare(expected, actual)
    n = sum(len(v) for v in expected["runs"].values())
    if failures:
        print(f"gate: {len(failures)} of {n} gated values regressed:", file=sys.stderr)
        for line in failures:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"gate: all {n} gated values within tolerance {expected.get('tolerance', DEFAULT_TOLERANCE)} "
          f"of {args.expected}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

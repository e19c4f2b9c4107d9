"""CI gate: fail when a smoke metric falls below its committed expected value by more than its
measured band.

``dvc metrics diff`` reports differences but has no thresholds, so the gate reads the score
stage's JSON directly. Expected values live in ``tests/expected/smoke.json`` (committed), one
entry per gated (run, metric)::

    {"expected": 0.43, "band": 0.11, "basis": "seed spread: s 0.05 over 12 samples ..."}

The band is measured, not guessed (``--calibrate``): the same code is run under conditions that
must not change a result's meaning — other seeds, another CPU instruction set (AVX-512/AMX vs AVX2
vs SSE kernels in oneDNN, MKL, OpenBLAS and faiss), thread counts — and for each value

* if every seed gave the same value under every condition (per-seed shift at most
  ``STABLE_SHIFT``), the run is reproducible across machines: band = ``floor``;
* otherwise the run is chaotic (a rounding difference sends training to another local optimum,
  as another seed does), so a seed on another machine is a fresh draw from the run's seed
  distribution: band = ``z * s * sqrt(1/n + 1/m)``, ``s`` the standard deviation of the ``m``
  pooled per-seed samples, ``n`` the seeds of one smoke run, and expected = the pooled mean; never
  less than twice the largest move of the smoke mean between the measured conditions.

A value whose band reaches down to chance cannot detect a collapse; the gate says so and does not
count it as gated (``ungated``). ``--update`` keeps the bands and rewrites only expected values of
stable runs after a deliberate change; run ``--calibrate`` again when a chaotic run changed.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

GATED_METRICS = ("acc", "nmi", "ari", "top1")
DEFAULT_TOLERANCE = 0.02      # the floor of every band
STABLE_SHIFT = 0.001          # per-seed change across conditions up to which a run counts as reproducible
DEFAULT_Z = 3.5               # one-sided; ~2e-4 false alarms per chaotic value under a normal model
EXPECTED_DIR = Path("tests/expected")
# What a clustering that ignores the data scores (ACC of one cluster / random labels on balanced
# classes ~ 1/k; NMI and ARI ~ 0): a band whose lower edge is at or below this plus a margin
# cannot tell a working method from a broken one.
CHANCE_MARGIN = 0.02


def expected_path(profile: str = "smoke") -> Path:
    """The committed expected values of a profile (only ``smoke`` has them)."""
    return EXPECTED_DIR / f"{profile}.json"


def load_expected(profile: str = "smoke") -> dict | None:
    path = expected_path(profile)
    return json.loads(path.read_text()) if path.is_file() else None


def entry(expected: dict | None, run: str, metric: str) -> tuple[float, float] | None:
    """(expected value, band) the gate holds for one run's metric, or None when it holds none."""
    if not expected:
        return None
    value = (expected.get("runs", {}).get(run) or {}).get(metric)
    if value is None:
        return None
    if isinstance(value, dict):
        return float(value["expected"]), float(value["band"])
    return float(value), float(expected.get("tolerance", DEFAULT_TOLERANCE))  # the old flat format


def grade(got: float, expected: float, tol: float) -> str:
    """``below expected`` exactly when the gate fails (got < expected - tol); ``above expected``
    when got > expected + tol (the gate passes; ``--update`` would raise the floor)."""
    if got < expected - tol:
        return "below expected"
    if got > expected + tol:
        return "above expected"
    return "as expected"


def chance_level(metric: str, n_clusters: int | None) -> float:
    """What a data-blind clustering scores on balanced classes (used only to flag useless bands)."""
    if metric in ("acc", "top1"):
        return 1.0 / n_clusters if n_clusters else 0.1
    return 0.0


def can_fail(expected_value: float, band: float, metric: str, n_clusters: int | None) -> bool:
    """Whether a drop to chance would fall below the band (else the value cannot detect a collapse)."""
    return expected_value - band > chance_level(metric, n_clusters) + CHANCE_MARGIN


def compare(expected: dict, actual: dict) -> list[str]:
    """One line per gated value below its band, or missing."""
    failures = []
    runs = actual.get("runs", {})
    for run, values in expected["runs"].items():
        if run not in runs:
            failures.append(f"{run}: missing from the metrics (not run?)")
            continue
        for metric in values:
            want, band = entry(expected, run, metric)
            got = runs[run].get(metric)
            if got is None:
                failures.append(f"{run}.{metric}: missing")
            elif grade(got, want, band) == "below expected":
                failures.append(f"{run}.{metric}: {got:.4f} < expected {want:.4f} - band {band:.4f}"
                                + _basis_note(values[metric]))
    return failures


def _basis_note(value) -> str:
    return f" ({value['basis']})" if isinstance(value, dict) and value.get("basis") else ""


def ungated(expected: dict) -> list[str]:
    """The values whose band reaches chance: they pass whatever the method does."""
    out = []
    for run, values in expected["runs"].items():
        for metric, value in values.items():
            want, band = entry(expected, run, metric)
            k = value.get("n_clusters") if isinstance(value, dict) else None
            if not can_fail(want, band, metric, k):
                out.append(f"{run}.{metric}")
    return out


# --- calibration -----------------------------------------------------------------------------

def per_seed_values(reports: Path) -> dict[str, dict]:
    """{run: {"seeds": [...], "n_clusters": k, metric: [per-seed values]}} from <reports>/metrics/."""
    out = {}
    for path in sorted((Path(reports) / "metrics").glob("*.json")):
        record = json.loads(path.read_text())
        per = record.get("per_seed") or {}
        out[record.get("run", path.stem)] = {"seeds": list(record.get("seeds", [])),
                                             "n_clusters": record.get("n_clusters"),
                                             **{m: list(v) for m, v in per.items() if m in GATED_METRICS}}
    return out


def calibrate(reference: dict, variants: list[dict], extra: dict[str, dict[str, list[float]]] | None = None,
              floor: float = DEFAULT_TOLERANCE, z: float = DEFAULT_Z, stable_shift: float = STABLE_SHIFT,
              conditions: list[str] | None = None, chaotic: set[str] | frozenset = frozenset()) -> dict:
    """Expected values and bands from the reference run of the smoke profile, the same runs under
    other conditions (``variants``: same seeds) and optional extra per-seed samples of chaotic runs
    (``extra[run][metric]``: values of other seeds, any condition). Runs in ``chaotic`` get a
    measured band even where the given conditions agree: conditions that reuse the reference's
    views and graphs (gate_calibration.py) cannot show a move that starts in the kNN graph."""
    extra = extra or {}
    runs = {}
    for run, ref in sorted(reference.items()):
        n = len(ref["seeds"])
        gated = {}
        for metric in GATED_METRICS:
            if metric not in ref:
                continue
            ref_values = ref[metric]
            shift = mean_shift = 0.0
            samples = list(ref_values)
            mean_ref = sum(ref_values) / n
            for var in variants:
                other = (var.get(run) or {}).get(metric)
                if other is None or len(other) != len(ref_values):
                    continue
                shift = max(shift, max(abs(a - b) for a, b in zip(ref_values, other)))
                mean_shift = max(mean_shift, abs(sum(other) / n - mean_ref))
                samples += list(other)
            if shift <= stable_shift and run not in chaotic:
                value = {"expected": round(mean_ref, 6), "band": floor,
                         "basis": f"reproducible: per-seed shift {shift:.4f} across {1 + len(variants)} conditions"}
            else:
                samples += list((extra.get(run) or {}).get(metric, []))
                m = len(samples)
                mean = sum(samples) / m
                s = math.sqrt(sum((x - mean) ** 2 for x in samples) / (m - 1))
                # a run whose seeds agree can still move with the instruction set (e.g. a
                # deterministic density clustering): the band never undercuts twice the measured
                # move of the smoke mean between conditions
                band = max(floor, z * s * math.sqrt(1.0 / n + 1.0 / m), 2 * mean_shift)
                value = {"expected": round(mean, 6), "band": round(band, 4),
                         "basis": f"chaotic: per-seed shift {shift:.3f}, mean shift {mean_shift:.3f} across conditions; "
                                  f"seed s.d. {s:.3f} over {m} samples; band max({floor:g}, {z:g} s sqrt(1/{n} + 1/{m}), "
                                  f"2 x mean shift)"}
            value["n_clusters"] = ref.get("n_clusters")
            gated[metric] = value
        if gated:
            runs[run] = gated
    return {"floor": floor, "z": z, "stable_shift": stable_shift,
            "conditions": conditions or [], "runs": runs}


def update_expected(expected: dict, actual: dict) -> tuple[dict, list[str]]:
    """After a deliberate change: new expected values for the runs whose band is the floor
    (reproducible runs); chaotic runs are listed — recalibrate them (their expected value is a
    pooled mean over many seeds, which one smoke run cannot give)."""
    stale = []
    for run, values in expected["runs"].items():
        for metric, value in values.items():
            got = (actual.get("runs", {}).get(run) or {}).get(metric)
            if got is None:
                continue
            if isinstance(value, dict) and value["band"] > expected.get("floor", DEFAULT_TOLERANCE) + 1e-12:
                if abs(got - value["expected"]) > value["band"] / 2:
                    stale.append(f"{run}.{metric}")
                continue
            if isinstance(value, dict):
                value["expected"] = round(got, 6)
            else:
                values[metric] = round(got, 6)
    return expected, stale


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--metrics", default="reports/smoke/metrics.json")
    ap.add_argument("--expected", default=str(expected_path("smoke")))
    ap.add_argument("--update", action="store_true",
                    help="after a deliberate change: rewrite expected values of reproducible runs from the metrics")
    ap.add_argument("--calibrate", metavar="REPORTS", nargs="+",
                    help="measure the bands: the reference <reports> folder first (e.g. reports/smoke), then the "
                         "same smoke run's reports made under other conditions")
    ap.add_argument("--extra", help="with --calibrate: JSON {run: {metric: [values of other seeds]}}")
    ap.add_argument("--runs", nargs="+", help="with --calibrate: recalibrate only these runs, keep the others' values; "
                                             "a condition may then be a JSON file of benchmarks/gate_calibration.py "
                                             "with the smoke seeds instead of a reports folder")
    ap.add_argument("--conditions", nargs="*", default=None, help="with --calibrate: names of the conditions")
    ap.add_argument("--chaotic", nargs="+", help="with --calibrate: runs to band from their seed spread even if the "
                                                "conditions agree (a move that starts in the graph, see calibrate)")
    ap.add_argument("--z", type=float, default=DEFAULT_Z)
    ap.add_argument("--floor", type=float, default=DEFAULT_TOLERANCE)
    args = ap.parse_args(argv)

    if args.calibrate:
        reference, *variants = [per_seed_values(Path(r)) if Path(r).is_dir() else json.loads(Path(r).read_text())
                                for r in args.calibrate]
        extra = json.loads(Path(args.extra).read_text()) if args.extra else None
        data = calibrate(reference, variants, extra, floor=args.floor, z=args.z, conditions=args.conditions,
                         chaotic=set(args.chaotic or ()))
        if args.runs:   # recalibrate these runs only; every other run keeps its committed values
            unknown = sorted(set(args.runs) - set(data["runs"]))
            if unknown:
                raise SystemExit(f"gate: --runs {', '.join(unknown)}: not in {args.calibrate[0]}'s metrics")
            kept = json.loads(Path(args.expected).read_text())
            kept["runs"].update({run: data["runs"][run] for run in args.runs})
            data = kept
        _write(Path(args.expected), data)
        n_chaotic = sum(v["band"] > args.floor for vals in data["runs"].values() for v in vals.values())
        print(f"wrote {len(data['runs'])} runs to {args.expected}: {n_chaotic} chaotic values with measured bands, "
              f"{len(ungated(data))} that cannot detect a collapse")
        return 0

    actual = json.loads(Path(args.metrics).read_text())
    expected = json.loads(Path(args.expected).read_text())
    if args.update:
        expected, stale = update_expected(expected, actual)
        _write(Path(args.expected), expected)
        print(f"updated the reproducible values in {args.expected}")
        if stale:
            print(f"{len(stale)} chaotic values moved by more than half their band; run --calibrate: "
                  + ", ".join(stale), file=sys.stderr)
            return 1
        return 0

    failures = compare(expected, actual)
    blind = ungated(expected)
    n = sum(len(v) for v in expected["runs"].values()) - len(blind)
    if blind:
        print(f"gate: {len(blind)} values cannot detect a collapse (band reaches chance; not counted): "
              + ", ".join(blind))
    if failures:
        print(f"gate: {len(failures)} of {n} gated values regressed:", file=sys.stderr)
        for line in failures:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"gate: all {n} gated values within their measured bands of {args.expected}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Validate the paper-table transcriptions in this folder (stdlib only).

Usage: python3 check_transcription.py [folder]   (default: the folder of this script)
Exit status 0 when every check passes, 1 otherwise; problems are printed one a line.
"""
import csv
import math
import re
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

PAPERS = ["constellationnet", "iciclegcn", "ghdcc", "lnscc", "hilander"]
HEADER = ["paper", "table", "row", "column", "dataset", "metric", "value", "printed", "cited", "note"]
TABLES_HEADER = ["paper", "table", "caption", "kind", "note"]
KINDS = {"results", "baselines", "ablation", "supervised", "datasets", "timing", "other"}

# metrics whose value is a fraction in [0, 1]
UNIT_METRICS = {"acc", "nmi", "ari", "pairwise_acc", "top1", "fp", "fb", "f_score", "error"}
# other metrics: non-negative numbers (flag: 0/1; data_type: always empty value)
OTHER_METRICS = {"time_s", "params_m", "epochs", "size_mb", "gflops", "flag",
                 "n_samples", "n_classes", "sample_dim", "data_type"}
ALLOWED_METRICS = UNIT_METRICS | OTHER_METRICS
MISSING = {"–", "-", "—"}

# cells the transcription must contain: (paper, table, row, column, metric) -> (value, dataset, cited)
SPOT = {
    ("lnscc", "2", "k-means", "Fashion-MNIST", "acc"): ("0.476", "fashion-mnist-test", "yes"),
    ("lnscc", "2", "k-means", "Fashion-MNIST", "nmi"): ("0.512", "fashion-mnist-test", "yes"),
    ("lnscc", "2", "LNSCC (ours)", "MNIST-test", "acc"): ("0.946", "mnist-test", "no"),
    ("lnscc", "2", "LNSCC (ours)", "MNIST-test", "nmi"): ("0.889", "mnist-test", "no"),
    ("constellationnet", "3", "GIN", "MNIST", "nmi"): ("0.771", "mnist", "no"),
    ("constellationnet", "3", "GIN", "MNIST", "ari"): ("0.712", "mnist", "no"),
    ("iciclegcn", "1", "IcicleGCN", "CIFAR-10", "acc"): ("0.807", "cifar-10", "no"),
}


def parse_printed(printed):
    """Number in a printed cell ('0.309*', '99.96%', '10,000'), or None if not a plain number."""
    p = printed.strip().rstrip("*").strip().replace(",", "")
    pct = p.endswith("%")
    p = p.rstrip("%").strip()
    if not re.fullmatch(r"-?\d+(\.\d+)?", p):
        return None, pct
    return Decimal(p), pct


def main(folder):
    errors = []

    def err(where, msg):
        errors.append(f"{where}: {msg}")

    # ---- tables.csv
    tpath = folder / "tables.csv"
    listed = set()
    if not tpath.exists():
        err("tables.csv", "missing")
    else:
        with open(tpath, newline="", encoding="utf-8") as fh:
            rd = csv.reader(fh)
            header = next(rd, None)
            if header != TABLES_HEADER:
                err("tables.csv", f"header {header} != {TABLES_HEADER}")
            for i, rec in enumerate(rd, start=2):
                where = f"tables.csv:{i}"
                if len(rec) != len(TABLES_HEADER):
                    err(where, f"{len(rec)} fields, expected {len(TABLES_HEADER)}")
                    continue
                paper, table, caption, kind, _note = rec
                if paper not in PAPERS:
                    err(where, f"unknown paper {paper!r}")
                if not table:
                    err(where, "empty table id")
                if not caption:
                    err(where, "empty caption")
                if kind not in KINDS:
                    err(where, f"kind {kind!r} not in {sorted(KINDS)}")
                if (paper, table) in listed:
                    err(where, f"duplicate table {paper} {table}")
                listed.add((paper, table))

    # ---- per-paper files
    seen_cells = {}
    counts = {}
    for paper in PAPERS:
        path = folder / f"{paper}.csv"
        if not path.exists():
            err(path.name, "missing")
            continue
        with open(path, newline="", encoding="utf-8") as fh:
            rd = csv.reader(fh)
            header = next(rd, None)
            if header != HEADER:
                err(path.name, f"header {header} != {HEADER}")
                continue
            for i, rec in enumerate(rd, start=2):
                where = f"{path.name}:{i}"
                if len(rec) != len(HEADER):
                    err(where, f"{len(rec)} fields, expected {len(HEADER)}")
                    continue
                r = dict(zip(HEADER, rec))
                counts[(paper, r["table"])] = counts.get((paper, r["table"]), 0) + 1
                if r["paper"] != paper:
                    err(where, f"paper {r['paper']!r} does not match file name")
                for f in ("table", "row", "column", "metric"):
                    if not r[f].strip():
                        err(where, f"empty {f}")
                if r["metric"] not in ALLOWED_METRICS:
                    err(where, f"metric {r['metric']!r} not allowed")
                if not r["printed"].strip():
                    err(where, "printed is empty")
                if r["cited"] not in ("yes", "no"):
                    err(where, f"cited {r['cited']!r} not in yes/no")
                if r["dataset"] and not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", r["dataset"]):
                    err(where, f"dataset id {r['dataset']!r} is not lowercase-hyphen")
                if (paper, r["table"]) not in listed:
                    err(where, f"table {r['table']!r} not listed in tables.csv")
                key = (paper, r["table"], r["row"], r["column"], r["metric"])
                if key in seen_cells:
                    err(where, f"duplicate cell {key} (first at line {seen_cells[key][0]})")
                seen_cells[key] = (i, r)

                # value checks
                v = r["value"]
                if v != "":
                    if v != v.strip() or "e" in v.lower():
                        err(where, f"value {v!r} not written plainly")
                    try:
                        x = float(v)
                    except ValueError:
                        err(where, f"value {v!r} is not a number")
                        continue
                    if math.isnan(x) or math.isinf(x):
                        err(where, f"value {v!r} is not finite")
                    if r["metric"] in UNIT_METRICS and not 0.0 <= x <= 1.0:
                        err(where, f"{r['metric']} value {v} outside [0, 1]")
                    if r["metric"] == "flag" and v not in ("0", "1"):
                        err(where, f"flag value {v!r} not 0/1")
                    if r["metric"] in OTHER_METRICS and x < 0:
                        err(where, f"negative value {v}")
                    if r["metric"] == "data_type":
                        err(where, "data_type cells carry no value")
                else:
                    if r["metric"] == "flag":
                        err(where, "flag without value")
                # printed <-> value consistency for plain numeric cells
                printed = r["printed"].strip()
                if printed in MISSING:
                    if v != "":
                        err(where, f"printed {printed!r} (missing) but value {v!r}")
                    continue
                num, pct = parse_printed(printed)
                if num is None:
                    continue
                if v == "":
                    err(where, f"printed number {printed!r} but empty value")
                    continue
                dv = Decimal(v)
                ok = dv == num or dv == num.scaleb(-2)
                if pct and dv != num.scaleb(-2):
                    ok = False
                if not ok:
                    err(where, f"value {v} inconsistent with printed {printed!r}")
                if dv == num.scaleb(-2) and dv != num:
                    # percentage conversion must keep the printed digits (no re-rounding)
                    if str(dv) != str(num.scaleb(-2)):
                        err(where, f"value {v} does not keep printed precision of {printed!r}")

    # ---- every listed table has an entry; report tables without cells (lost tables are allowed)
    for (paper, table) in sorted(listed):
        if (paper, table) not in counts:
            pass  # e.g. GHDCC tables whose values are lost; tables.csv note must say so
    with open(tpath, newline="", encoding="utf-8") as fh:
        for rec in list(csv.DictReader(fh)):
            if (rec["paper"], rec["table"]) not in counts and rec["kind"] != "datasets":
                if "lost" not in rec["note"] and "lost" not in rec["caption"]:
                    err("tables.csv", f"{rec['paper']} table {rec['table']} has no cells and no "
                        "'lost' note")

    # ---- spot checks
    for key, (value, dataset, cited) in SPOT.items():
        hit = seen_cells.get(key)
        if hit is None:
            err("spot", f"missing cell {key}")
            continue
        _, r = hit
        if (r["value"], r["dataset"], r["cited"]) != (value, dataset, cited):
            err("spot", f"{key}: got value={r['value']} dataset={r['dataset']} cited={r['cited']}, "
                f"expected {value} {dataset} {cited}")

    for e in errors:
        print(e)
    total = sum(counts.values())
    print(f"{'FAIL' if errors else 'OK'}: {total} cells in {len(counts)} tables with cells, "
          f"{len(listed)} tables listed, {len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    sys.exit(main(folder))

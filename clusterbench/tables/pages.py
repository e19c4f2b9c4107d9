"""The tables stage's outputs: every table's page and CSV, the scorecard README, and the
summary that `dvc exp show` compares."""
from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np

from .. import gate, io
from ..config import Params
from .cells import (CSV_FIELDS, FULL, LOST, NOT_COMPARABLE, PAPERS, Cell, read_row_properties, read_table_captions,
                    resolve_cells)
from .render import _wrap, render_table


_BUCKETS = {"within tolerance": "within", "as expected": "within", "below expected": "below",
            "above expected": "above", "no paper value": "extra", "not gated": "not gated", LOST: "extra",
            NOT_COMPARABLE: "extra"}


def bucket(status: str) -> str:
    if status in _BUCKETS:
        return _BUCKETS[status]
    return "outside" if status.startswith("outside") else "not run"


def render_all(params: Params, profile: str, scores: dict[str, dict], expected: dict | None = None) -> dict:
    """Write ``<reports>/tables/<paper>-table<N>.{md,csv}`` and ``<reports>/README.md``.

    For a profile other than ``full``, ``expected`` defaults to the gate's committed values
    (``tests/expected/<profile>.json``)."""
    reports = Path(params.profiles[profile].reports)
    out_dir = reports / "tables"
    if profile != FULL and expected is None:
        expected = gate.load_expected(profile)
    expected_tol = None if expected is None else float(expected.get("floor", expected.get("tolerance", gate.DEFAULT_TOLERANCE)))
    full_dir = Path(params.profiles[FULL].reports) / "tables" if FULL in params.profiles else None
    captions = read_table_captions()
    card = []
    with io.atomic_dir(out_dir) as tmp:
        for paper in PAPERS:
            cells = resolve_cells(paper, params, scores, profile, expected)
            properties = read_row_properties(paper)
            by_table: dict[str, list[Cell]] = {}
            for c in cells:
                by_table.setdefault(c.table, []).append(c)
            for (p, t), meta in captions.items():
                if p == paper and t not in by_table:
                    by_table[t] = []  # a table with no numeric cells (e.g. values lost) still gets a page
            for table, tcells in by_table.items():
                meta = captions.get((paper, table), {})
                caption = meta.get("caption", "")
                if not tcells and meta.get("note"):
                    caption = f"{caption} — {meta['note']}"
                stem = f"{paper}-table{table}"
                full_page = ""
                if profile != FULL and full_dir is not None:
                    full_page = os.path.relpath(full_dir / f"{stem}.md", out_dir).replace(os.sep, "/")
                md, rows = render_table(paper, table, caption, tcells, profile, params=params,
                                        full_page=full_page, expected_tolerance=expected_tol,
                                        properties={row: props for (t, row), props in properties.items()
                                                    if t == table})
                (tmp / f"{stem}.md").write_text(md)
                with open(tmp / f"{stem}.csv", "w", newline="") as fh:
                    writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
                    writer.writeheader()
                    writer.writerows(rows)
                counts = {"within": 0, "outside": 0, "not run": 0, "extra": 0,
                          "below": 0, "above": 0, "not gated": 0, "not in profile": 0}
                for c in tcells:
                    kind = bucket(c.status)
                    if kind == "not run" and profile != FULL and not c.configured:
                        kind = "not in profile"
                    counts[kind] += 1
                card.append({"paper": paper, "table": table, "file": f"tables/{stem}.md", **counts,
                             "cells": len(tcells)})
        # The spatial leaderboard (its own stage) is published beside the paper tables.
        for name in ("spatial-leaderboard.md", "spatial-leaderboard.csv"):
            board = reports / "leaderboard" / name
            if board.is_file():
                shutil.copyfile(board, tmp / name)
    io.write_json(reports / "summary.json", summary_metrics(params, profile, scores, card))
    readme = render_scorecard(card, profile)
    if (reports / "leaderboard" / "spatial-leaderboard.md").is_file():
        readme += "\nBeyond the papers: [the spatial-clustering leaderboard](tables/spatial-leaderboard.md).\n"
    io.write_text(reports / "README.md", readme)
    return {"tables": len(card)}


SUMMARY_METRICS = ("acc", "nmi", "ari", "top1")
# Short column names, so `dvc exp show` fits a terminal (`make compare`)
SUMMARY_NAMES = {"constellationnet": "cnet", "constellationnet-supervised": "cnet-sup"}


def summary_metrics(params: Params, profile: str, scores: dict[str, dict], card: list[dict]) -> dict:
    """The few numbers `dvc exp show` / `dvc metrics diff` compare (``<reports>/summary.json``):
    per paper method (ConstellationNet as `cnet`), and for the baselines together, the mean over
    their scored runs of this profile; and the scorecard counts (smoke: `ok` = as the CI gate
    expects). Per-run numbers stay in ``<reports>/metrics/``."""
    groups: dict[str, list[dict]] = {}
    for block in ("train", "baselines"):
        for name, run in getattr(params, block).items():
            if run.profile == profile and name in scores:
                key = SUMMARY_NAMES.get(run.method, run.method) if block == "train" else "baselines"
                groups.setdefault(key, []).append(scores[name])
    out: dict[str, dict] = {}
    for group, rows in sorted(groups.items()):
        means = {m: round(float(np.mean([r["mean"][m] for r in rows if m in r["mean"]])), 4)
                 for m in SUMMARY_METRICS if any(m in r["mean"] for r in rows)}
        out[group] = {**means, "runs": len(rows)}
    keys = ([("within", "within"), ("outside", "outside"), ("not run", "not_run")] if profile == FULL else
            [("within", "ok"), ("below", "below"), ("not run", "not_run")])
    out["cells"] = {label: sum(row[k] for row in card) for k, label in keys}
    return out


def render_scorecard(card: list[dict], profile: str) -> str:
    if profile == FULL:
        intro = ("Per paper table: cells reproduced within tolerance, outside tolerance, not run (with the "
                 "reason in the table), and extra cells (ours where the paper has no value).")
        keys = [("cells", "Cells"), ("within", "Within"), ("outside", "Outside"), ("not run", "Not run"),
                ("extra", "Extra")]
    else:
        intro = (f"The `{profile}` profile checks that every stage runs, on small subsets with capped epochs: "
                 f"its cells are graded against the values the CI gate expects ({gate.expected_path(profile)}), "
                 "not against the papers. Per paper table: cells as expected, below expected (the gate "
                 "fails), above expected, not gated (no expected value), not run although configured, and "
                 f"not in the `{profile}` profile.")
        keys = [("cells", "Cells"), ("within", "As expected"), ("below", "Below"), ("above", "Above"),
                ("not gated", "Not gated"), ("not run", "Not run"), ("not in profile", "Not in profile")]
    lines = ["# clusterbench results" + ("" if profile == FULL else f" — `{profile}` profile"), "",
             *_wrap(f"{intro} Generated by `dvc repro tables@{profile}`; do not edit by hand."), "",
             "| Paper | Table | " + " | ".join(h for _, h in keys) + " |", "|---|---|" + "---|" * len(keys)]
    totals: dict[str, dict[str, int]] = {}
    for row in card:
        lines.append(f"| {row['paper']} | [{row['table']}]({row['file']}) | "
                     + " | ".join(str(row[k]) for k, _ in keys) + " |")
        t = totals.setdefault(row["paper"], {k: 0 for k, _ in keys})
        for k in t:
            t[k] += row[k]
    lines += ["", "## Per paper", "", "| Paper | " + " | ".join(h for _, h in keys) + " |",
              "|---|" + "---|" * len(keys)]
    for paper, t in totals.items():
        lines.append(f"| {paper} | " + " | ".join(str(t[k]) for k, _ in keys) + " |")
    return "\n".join(lines) + "\n"

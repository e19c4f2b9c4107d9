"""Tables stage: every paper table next to our numbers, and the scorecard.

Inputs: the transcribed paper values (``reports/paper/<paper>.csv``), each paper's table spec
(``reports/paper/specs/<paper>.yaml``: which of our runs and datasets answer which row and
column), and the score stage's metrics. A cell is ``within tolerance``, ``outside tolerance``
or ``not run: <reason>``; our column only ever holds numbers we computed.
"""
from __future__ import annotations

import csv
import fnmatch
import shutil
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import io
from .config import Params
from .datasets import REGISTRY

PAPER_DIR = Path("reports/paper")
PAPERS = ("constellationnet", "iciclegcn", "ghdcc", "lnscc", "hilander")
DEFAULT_TOLERANCE = 0.03
METRIC_NAMES = {"acc": "ACC", "nmi": "NMI", "ari": "ARI", "pairwise_acc": "pairwise acc (DMoN code)",
                "top1": "top-1", "fp": "F_P", "fb": "F_B"}
# Datasets our build machine holds offline; anything else needs a user's download.
OFFLINE_DATASETS = {"mnist-sample10k", "fashion-mnist", "fashion-mnist-test", "digits"}


@dataclass
class Cell:
    paper: str
    table: str
    row: str
    column: str
    metric: str
    paper_value: float | None
    printed: str
    cited: bool
    dataset: str = ""  # ours
    run: str = ""
    ours_mean: float | None = None
    ours_std: float | None = None
    n_seeds: int = 0
    status: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def delta(self) -> float | None:
        if self.ours_mean is None or self.paper_value is None:
            return None
        return self.ours_mean - self.paper_value


def read_paper_cells(paper: str) -> list[Cell]:
    path = PAPER_DIR / f"{paper}.csv"
    cells = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            value = row["value"].strip()
            cells.append(Cell(paper, row["table"], row["row"], row["column"], row["metric"],
                              float(value) if value else None, row["printed"], row["cited"] == "yes",
                              notes=[row["note"]] if row.get("note") else []))
    return cells


def read_table_captions() -> dict[tuple[str, str], dict]:
    with open(PAPER_DIR / "tables.csv", newline="") as fh:
        return {(r["paper"], r["table"]): r for r in csv.DictReader(fh)}


def read_spec(paper: str) -> dict:
    path = PAPER_DIR / "specs" / f"{paper}.yaml"
    return yaml.safe_load(path.read_text()) if path.is_file() else {"tables": {}}


def read_not_run() -> list[tuple[str, str]]:
    """Why configured runs were not executed where these tables were made (e.g. compute),
    from reports/paper/not-run.yaml: a list of {runs: <glob>, reason: <text>}, first match wins."""
    path = PAPER_DIR / "not-run.yaml"
    entries = yaml.safe_load(path.read_text()) if path.is_file() else None
    return [(e["runs"], e["reason"]) for e in entries or []]


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _run_key(profile: str, variant: str, dataset: str) -> str:
    base = f"{variant}-{dataset}"
    return base if profile == "full" else f"{profile}-{base}"


def resolve_cells(paper: str, params: Params, scores: dict[str, dict], profile: str) -> list[Cell]:
    spec = read_spec(paper)
    tolerance_default = float(spec.get("tolerance", DEFAULT_TOLERANCE))
    configured = {**params.train, **params.baselines}
    cells = read_paper_cells(paper)
    for table, tspec in spec.get("tables", {}).items():
        for extra in tspec.get("extra", []):
            column = extra["column"]
            tspec.setdefault("columns", {}).setdefault(column, {"dataset": extra["dataset"]})
            tspec.setdefault("rows", {}).setdefault(extra["row"], {"run": extra["run"]})
            for metric in extra.get("metrics", ["acc", "nmi"]):
                cells.append(Cell(paper, str(table), extra["row"], column, metric, None, "–", False,
                                  notes=[extra.get("note", "beyond the paper: no paper value")]))
    for cell in cells:
        tspec = spec.get("tables", {}).get(str(cell.table), {})
        tol = float(tspec.get("tolerance", tolerance_default))
        col = tspec.get("columns", {}).get(cell.column, {})
        row = tspec.get("rows", {}).get(cell.row, {})
        cell.dataset = col.get("dataset", "")
        if col.get("approx"):
            cell.notes.append(col["approx"])
        note = tspec.get("notes", {}).get(f"{cell.row} | {cell.column}")
        if note:
            cell.notes.append(note)
        if not row.get("run"):
            reason = row.get("reason") or ("cited from other work; not a method clusterbench implements"
                                           if cell.cited else "no implementation in clusterbench yet")
            cell.status = f"not run: {reason}"
            continue
        if not cell.dataset:
            cell.status = f"not run: {col.get('reason', 'no dataset mapping for this column')}"
            continue
        cell.run = _run_key(profile, row["run"], cell.dataset)
        score = scores.get(cell.run)
        metric = row.get("metrics", {}).get(cell.metric, cell.metric)
        if score is None:
            cell.status = "not run: " + _why_missing(cell, configured, row, col)
            continue
        if metric not in score["mean"]:
            cell.status = f"not run: our runs do not report {metric}"
            continue
        cell.ours_mean = score["mean"][metric]
        cell.ours_std = score["std"][metric]
        cell.n_seeds = len(score["seeds"])
        if cell.paper_value is None:
            cell.status = "no paper value"
        elif abs(cell.delta) <= tol + 1e-12:
            cell.status = "within tolerance"
        else:
            cell.status = "outside tolerance (" + ("above" if cell.delta > 0 else "below") + ")"
    return cells


def _why_missing(cell: Cell, configured: dict, row: dict, col: dict) -> str:
    if row.get("reason"):
        return row["reason"]
    if col.get("reason"):
        return col["reason"]
    if cell.run not in configured:
        return f"no run {cell.run!r} in params.yaml"
    if cell.dataset not in OFFLINE_DATASETS and not cell.dataset.startswith(("fcps-", "uci-")):
        how = REGISTRY[cell.dataset].how_to_get if cell.dataset in REGISTRY else ""
        return (f"{cell.dataset} must be downloaded, and the machine that produced these tables has no "
                f"network{'; ' + how if how else ''}; `dvc repro` runs it where it can be downloaded")
    for pattern, reason in read_not_run():
        if fnmatch.fnmatchcase(cell.run, pattern):
            return reason
    return "configured but not yet executed on this machine"


def render_table(paper: str, table: str, caption: str, cells: list[Cell], profile: str) -> tuple[str, list[dict]]:
    lines = [f"# {paper} — Table {table}", "", f"> {caption}" if caption else "", "",
             f"Profile: `{profile}`. Ours = mean ± std over n seeds (our runs); Δ = ours − paper. "
             "Tolerance is absolute. Status `not run` says why.", "",
             "| Row | Column | Metric | Paper | Ours (mean ± std, n) | Δ | Status |",
             "|---|---|---|---|---|---|---|"]
    rows, footnotes = [], []
    for c in cells:
        ours = "–" if c.ours_mean is None else f"{c.ours_mean:.3f} ± {c.ours_std:.3f} (n={c.n_seeds})"
        marks = ""
        if c.cited:
            marks += " †"
        for note in c.notes:
            if note not in footnotes:
                footnotes.append(note)
            marks += f" [{footnotes.index(note) + 1}]"
        dataset = f"{c.column}" + (f" → {c.dataset}" if c.dataset and c.dataset != c.column.lower() else "")
        lines.append(f"| {c.row}{marks} | {dataset} | {METRIC_NAMES.get(c.metric, c.metric)} | "
                     f"{c.printed if c.paper_value is None else _fmt(c.paper_value)} | {ours} | "
                     f"{_fmt(c.delta)} | {c.status} |")
        rows.append({"paper": paper, "table": table, "row": c.row, "column": c.column, "dataset": c.dataset,
                     "metric": c.metric, "paper_value": c.paper_value, "cited": "yes" if c.cited else "no",
                     "run": c.run, "ours_mean": c.ours_mean, "ours_std": c.ours_std, "n_seeds": c.n_seeds,
                     "delta": None if c.delta is None else round(c.delta, 6), "status": c.status,
                     "notes": " | ".join(c.notes)})
    lines.append("")
    lines.append("† the paper copied this number from other work (cited).")
    for i, note in enumerate(footnotes, 1):
        lines.append(f"[{i}] {note}")
    return "\n".join(lines) + "\n", rows


def _bucket(status: str) -> str:
    if status == "within tolerance":
        return "within"
    if status.startswith("outside"):
        return "outside"
    if status == "no paper value":
        return "extra"
    return "not run"


def render_all(params: Params, profile: str, scores: dict[str, dict]) -> dict:
    reports = Path(params.profiles[profile].reports)
    out_dir = reports / "tables"
    captions = read_table_captions()
    card = []
    with io.atomic_dir(out_dir) as tmp:
        for paper in PAPERS:
            cells = resolve_cells(paper, params, scores, profile)
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
                md, rows = render_table(paper, table, caption, tcells, profile)
                stem = f"{paper}-table{table}"
                (tmp / f"{stem}.md").write_text(md)
                with open(tmp / f"{stem}.csv", "w", newline="") as fh:
                    fields = ["paper", "table", "row", "column", "dataset", "metric", "paper_value", "cited",
                              "run", "ours_mean", "ours_std", "n_seeds", "delta", "status", "notes"]
                    writer = csv.DictWriter(fh, fieldnames=fields)
                    writer.writeheader()
                    writer.writerows(rows)
                counts = {"within": 0, "outside": 0, "not run": 0, "extra": 0}
                for c in tcells:
                    counts[_bucket(c.status)] += 1
                card.append({"paper": paper, "table": table, "file": f"tables/{stem}.md", **counts,
                             "cells": len(tcells)})
        # The spatial leaderboard (its own stage) is published beside the paper tables.
        for name in ("spatial-leaderboard.md", "spatial-leaderboard.csv"):
            board = reports / "leaderboard" / name
            if board.is_file():
                shutil.copyfile(board, tmp / name)
    readme = render_scorecard(card, profile)
    if (reports / "leaderboard" / "spatial-leaderboard.md").is_file():
        readme += "\nBeyond the papers: [the spatial-clustering leaderboard](tables/spatial-leaderboard.md).\n"
    io.write_text(reports / "README.md", readme)
    return {"tables": len(card)}


def render_scorecard(card: list[dict], profile: str) -> str:
    lines = ["# clusterbench results" + ("" if profile == "full" else f" — `{profile}` profile"), "",
             "Per paper table: cells reproduced within tolerance, outside tolerance, not run (with the "
             "reason in the table), and extra cells (ours where the paper has no value). Generated by "
             "`dvc repro tables@" + profile + "`; do not edit by hand.", "",
             "| Paper | Table | Cells | Within | Outside | Not run | Extra |", "|---|---|---|---|---|---|---|"]
    totals: dict[str, dict[str, int]] = {}
    for row in card:
        lines.append(f"| {row['paper']} | [{row['table']}]({row['file']}) | {row['cells']} | {row['within']} | "
                     f"{row['outside']} | {row['not run']} | {row['extra']} |")
        t = totals.setdefault(row["paper"], {"cells": 0, "within": 0, "outside": 0, "not run": 0, "extra": 0})
        for k in t:
            t[k] += row[k]
    lines += ["", "## Per paper", "", "| Paper | Cells | Within | Outside | Not run | Extra |", "|---|---|---|---|---|---|"]
    for paper, t in totals.items():
        lines.append(f"| {paper} | {t['cells']} | {t['within']} | {t['outside']} | {t['not run']} | {t['extra']} |")
    return "\n".join(lines) + "\n"

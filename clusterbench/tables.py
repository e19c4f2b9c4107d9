"""Tables stage: every paper table next to our numbers, and the scorecard.

Inputs: the transcribed paper values (``reports/paper/<paper>.csv``), each paper's table spec
(``reports/paper/specs/<paper>.yaml``: which of our runs and datasets answer which row and
column), and the score stage's metrics. Our column only ever holds numbers we computed.

What a cell is graded against depends on the profile:

- ``full`` (the papers' settings): the paper's value. A cell is ``within tolerance``,
  ``outside tolerance (above|below)``, ``no paper value`` (our extra cell) or
  ``not run: <reason>``. A table whose values are lost in the surviving copy of the paper lists
  them in its spec (``lost: [acc, ...]``): each of its row x column cells without a transcribed
  value is ``paper value lost`` (our number shown, nothing to compare with) or
  ``paper value lost; not run: <reason>``. A column whose spec says ``comparable: false`` (our
  measurement is of another kind than the paper's: CPU seconds on other data against GPU
  seconds) shows both numbers, no Δ, and the status ``not comparable``.
- any other profile (``smoke``: small subsets, capped epochs): the values the CI gate expects
  (``tests/expected/<profile>.json``, see :mod:`clusterbench.gate`), never the paper's full-size
  numbers. A cell is ``as expected``, ``below expected`` (the gate fails), ``above expected``,
  ``not gated`` or ``not run: <reason>``.

Each page (``<paper>-table<N>.md``) states every ``not run`` reason and every note once, under
the table, and each row refers to it (``not run [a]``, ``[1]``), so rows stay one screen line.
The CSV beside it keeps every field of every cell in full, the reason text included.
"""
from __future__ import annotations

import csv
import fnmatch
import math
import os
import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from . import gate, io
from .config import Params
from .datasets import REGISTRY

PAPER_DIR = Path("reports/paper")
PAPERS = ("constellationnet", "iciclegcn", "ghdcc", "lnscc", "hilander")
DEFAULT_TOLERANCE = 0.03
FULL = "full"  # the profile whose cells are compared with the papers' values
METRIC_NAMES = {"acc": "ACC", "nmi": "NMI", "ari": "ARI", "pairwise_acc": "pair-acc",
                "top1": "top-1", "fp": "F_P", "fb": "F_B"}
METRIC_LEGEND = {"pairwise_acc": "pair-acc = the pairwise accuracy of DMoN's code (over node pairs), "
                                 "not Hungarian ACC",
                 "fp": "F_P = pairwise F-score", "fb": "F_B = BCubed F-score"}
# Short words for the markdown pages; the CSV keeps the full status.
NOT_COMPARABLE = "not comparable"  # spec column ``comparable: false``: both numbers shown, no delta
STATUS_WORDS = {"within tolerance": "within tol.", "outside tolerance (above)": "above tol.",
                "outside tolerance (below)": "below tol.", "no paper value": "extra", "paper value lost": "lost",
                NOT_COMPARABLE: "not compar."}
LOST = "paper value lost"  # the paper printed a value that this copy of it does not hold
NOT_RUN = "not run: "
WRAP = 116  # prose and footnotes are wrapped to fit a 120-column terminal
# Datasets our build machine holds offline; anything else needs a user's download.
OFFLINE_DATASETS = {"mnist-sample10k", "fashion-mnist", "fashion-mnist-test", "digits",
                    # open-set splits of the same files, and generated data
                    "mnist-sample10k-open5", "fashion-mnist-test-open5", "openset-faces-synth", "digits-open5"}
CSV_FIELDS = ["paper", "table", "row", "column", "dataset", "metric", "paper_value", "cited", "run",
              "ours_mean", "ours_std", "n_seeds", "expected", "delta", "delta_vs", "status", "notes"]


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
    approx: str = ""           # the column's data-set note (also in notes); stated once per page
    tolerance: float = DEFAULT_TOLERANCE
    configured: bool = False   # params.yaml configures the cell's run for this profile
    missing_run: bool = False  # not run because params.yaml configures no such run
    expected: float | None = None  # non-full profiles: the gate's expected value
    lost: bool = False         # the paper's value is lost (spec ``lost``), not absent
    comparable: bool = True    # spec column ``comparable: false``: no delta, no grade

    @property
    def delta(self) -> float | None:
        """ours − paper."""
        if self.ours_mean is None or self.paper_value is None or not self.comparable:
            return None
        return self.ours_mean - self.paper_value

    @property
    def expected_delta(self) -> float | None:
        """ours − expected (non-full profiles)."""
        if self.ours_mean is None or self.expected is None:
            return None
        return self.ours_mean - self.expected

    @property
    def reason(self) -> str:
        status = self.status[len(LOST) + 2:] if self.status.startswith(LOST + "; ") else self.status
        return status[len(NOT_RUN):] if status.startswith(NOT_RUN) else ""


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


def _fmt_value(x: float | None) -> str:
    """A paper value: counts and sizes (e.g. 70000 samples) without decimals, scores with three."""
    if x is not None and abs(x) >= 2 and float(x).is_integer():
        return f"{x:.0f}"
    return _fmt(x)


def _run_key(profile: str, variant: str, dataset: str) -> str:
    base = f"{variant}-{dataset}"
    return base if profile == FULL else f"{profile}-{base}"


def _subset(params: Params, profile: str, dataset: str) -> str:
    prof = params.profiles[profile]
    if prof.max_samples is None:
        return f"all of {dataset}"
    return (f"a class-stratified subset of at most {prof.max_samples} points of {dataset} "
            f"(subsample_seed {prof.subsample_seed})")


def _subset_note(params: Params, profile: str, dataset: str) -> str:
    return f"{profile} profile: {_subset(params, profile, dataset)}"


def resolve_cells(paper: str, params: Params, scores: dict[str, dict], profile: str,
                  expected: dict | None = None) -> list[Cell]:
    """Every cell of the paper's tables with our number and its status.

    ``expected`` (non-full profiles only): the gate's expected values and bands (see
    ``clusterbench.gate``); without it every cell we ran is ``not gated``.
    """
    by_paper = profile == FULL
    spec = read_spec(paper)
    tolerance_default = float(spec.get("tolerance", DEFAULT_TOLERANCE))
    configured = {name: run for name, run in {**params.train, **params.baselines}.items()
                  if run.profile == profile}
    cells = read_paper_cells(paper)
    cells += lost_cells(paper, spec, cells)
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
        cell.tolerance = float(tspec.get("tolerance", tolerance_default))
        col = tspec.get("columns", {}).get(cell.column, {})
        row = tspec.get("rows", {}).get(cell.row, {})
        cell.dataset = col.get("dataset", "")
        cell.comparable = bool(col.get("comparable", True))
        if by_paper:
            if col.get("approx"):
                cell.approx = col["approx"]
                cell.notes.append(col["approx"])
            note = tspec.get("notes", {}).get(f"{cell.row} | {cell.column}")
            if note:
                cell.notes.append(note)
        else:
            # The spec's notes (data-set stand-ins, protocols, investigations) and the paper's
            # notes describe full-size runs and the paper's numbers: not this profile's.
            cell.notes = [_subset_note(params, profile, cell.dataset)] if cell.dataset else []
        if not row.get("run"):
            reason = row.get("reason") or ("cited from other work; not a method clusterbench implements"
                                           if cell.cited else "no implementation in clusterbench yet")
            cell.status = f"not run: {reason}"
            continue
        if not cell.dataset:
            cell.status = f"not run: {col.get('reason', 'no dataset mapping for this column')}"
            continue
        cell.run = _run_key(profile, row["run"], cell.dataset)
        cell.configured = cell.run in configured
        score = scores.get(cell.run)
        metric = row.get("metrics", {}).get(cell.metric, cell.metric)
        if score is None:
            cell.status = "not run: " + _why_missing(cell, configured, row, col, profile)
            continue
        if metric not in score["mean"]:
            cell.status = f"not run: our runs do not report {metric}"
            continue
        cell.ours_mean = score["mean"][metric]
        cell.ours_std = score["std"][metric]
        cell.n_seeds = len(score["seeds"])
        if not by_paper:
            held = gate.entry(expected, cell.run, metric)
            if held is None:
                cell.status = "not gated"
            else:
                cell.expected, band = held
                cell.status = gate.grade(cell.ours_mean, cell.expected, band)
        elif cell.paper_value is None:
            cell.status = "no paper value"
        elif not cell.comparable:
            cell.status = NOT_COMPARABLE
        elif abs(cell.delta) <= cell.tolerance + 1e-12:
            cell.status = "within tolerance"
        else:
            cell.status = "outside tolerance (" + ("above" if cell.delta > 0 else "below") + ")"
    if by_paper:
        for cell in cells:
            if cell.lost:
                cell.status = LOST if cell.status == "no paper value" else f"{LOST}; {cell.status}"
    return cells


def lost_cells(paper: str, spec: dict, transcribed: list[Cell]) -> list[Cell]:
    """A cell for every row x column x metric of a table whose spec lists the metric under ``lost``
    and whose value was not transcribed (reports/paper/<paper>.csv holds what survives)."""
    have = {(c.table, c.row, c.column, c.metric) for c in transcribed}
    out = []
    for table, tspec in spec.get("tables", {}).items():
        for row in tspec.get("rows", {}):
            for column in tspec.get("columns", {}):
                for metric in tspec.get("lost", []):
                    if (str(table), row, column, metric) not in have:
                        out.append(Cell(paper, str(table), row, column, metric, None, "lost", False, lost=True))
    return out


def _why_missing(cell: Cell, configured: dict, row: dict, col: dict, profile: str = FULL) -> str:
    """Why a cell's run has no metrics (marks ``cell.missing_run`` when params.yaml lacks the run)."""
    if row.get("reason"):
        return row["reason"]
    if col.get("reason"):
        return col["reason"]
    if cell.run not in configured:
        cell.missing_run = True
        if profile != FULL:
            return f"not in the {profile} profile: params.yaml has no run {cell.run!r}"
        return f"no run {cell.run!r} in params.yaml"
    if cell.dataset not in OFFLINE_DATASETS and not cell.dataset.startswith(("fcps-", "uci-")):
        how = REGISTRY[cell.dataset].how_to_get if cell.dataset in REGISTRY else ""
        return (f"{cell.dataset} must be downloaded, and the machine that produced these tables has no "
                f"network{'; ' + how if how else ''}; `dvc repro` runs it where it can be downloaded")
    if profile != FULL:
        # reports/paper/not-run.yaml measures full-size costs; a configured smoke run without
        # metrics means the smoke run did not finish.
        return (f"configured in the {profile} profile, but {cell.run} has no metrics; "
                f"`dvc repro tables@{profile}` runs it")
    for pattern, reason in read_not_run():
        if fnmatch.fnmatchcase(cell.run, pattern):
            return reason
    return "configured but not yet executed on this machine"


# --- markdown ---------------------------------------------------------------------------------

def _label(i: int) -> str:
    """a, b, ..., z, aa, ab, ...: the labels of not-run reasons (notes are numbered)."""
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(ord("a") + r) + out
    return out


def _wrap(text: str, first: str = "", rest: str = "") -> list[str]:
    # `code spans` are kept on one line: their spaces are protected while wrapping.
    parts = text.split("`")
    text = "`".join(p.replace(" ", "\0") if i % 2 else p for i, p in enumerate(parts))
    lines = textwrap.wrap(text, WRAP, initial_indent=first, subsequent_indent=rest,
                          break_long_words=False, break_on_hyphens=False) or [first.rstrip()]
    return [line.replace("\0", " ") for line in lines]


def _item(label: str, text: str) -> list[str]:
    return _wrap(text, f"- {label} ", "  ")


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def _md_table(header: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> list[str]:
    """A pipe table padded to aligned columns, so it reads in a terminal as well as rendered."""
    cells = [[_md_cell(x) for x in r] for r in [header, *rows]]
    widths = [max(3, *(len(r[i]) for r in cells)) for i in range(len(header))]

    def line(r):
        return "| " + " | ".join(x.rjust(w) if i in right else x.ljust(w)
                                  for i, (x, w) in enumerate(zip(r, widths))) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if i in right else "-" * (w + 2) for i, w in enumerate(widths)) + "|"
    return [line(cells[0]), rule, *(line(r) for r in cells[1:])]


def _ours(c: Cell) -> str:
    return "–" if c.ours_mean is None else f"{c.ours_mean:.3f} ± {c.ours_std:.3f} (n={c.n_seeds})"


def _ours_header(cells: list[Cell]) -> str:
    # A table where nothing ran keeps its Ours column narrow (every entry is "–").
    return "Ours ± std (n)" if any(c.ours_mean is not None for c in cells) else "Ours"


class _Footnotes:
    """Each distinct text once, labelled in order of first use."""

    def __init__(self, label):
        self.texts: list[str] = []
        self.label = label

    def ref(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return self.label(self.texts.index(text))

    def lines(self) -> list[str]:
        out = []
        for i, text in enumerate(self.texts):
            out += _item(f"[{self.label(i)}]", text)
        return out


def _missing_run_reason(cells: list[Cell], profile: str) -> str:
    runs = sorted({c.run for c in cells if c.missing_run and c.reason})
    if profile != FULL:
        return (f"params.yaml configures no {profile} run for them (it would be named "
                f"{profile}-<run>-<data set>; the CSV names each)")
    return "params.yaml configures no such run: " + ", ".join(runs)


def _reason_texts(cells: list[Cell], profile: str):
    """The page's footnote text of each not-run cell: its reason, except that cells whose run is
    missing from params.yaml share one footnote naming the runs."""
    shared = _missing_run_reason(cells, profile)
    return lambda c: shared if c.missing_run else c.reason


def _dataset_lines(cells: list[Cell], profile: str, params: Params | None) -> list[str]:
    groups: dict[tuple[str, str], list[str]] = {}
    for c in cells:
        if not c.dataset:
            continue
        if profile == FULL and c.dataset == c.column.lower() and not c.approx:
            continue
        cols = groups.setdefault((c.dataset, c.approx), [])
        if c.column not in cols:
            cols.append(c.column)
    if not groups:
        return []
    out = ["Data sets (paper column → ours):", ""]
    for (dataset, approx), cols in groups.items():
        names = ", ".join(cols)
        if profile != FULL and params is not None:
            text = f"{names} → {_subset(params, profile, dataset)}"
        elif approx and f"→ {dataset}" in approx:
            text = f"{names}: {approx}"
        else:
            text = f"{names} → {dataset}" + (f": {approx}" if approx else "")
        out += _wrap(text, "- ", "  ")
    return out + [""]


def _metric_lines(cells: list[Cell]) -> list[str]:
    legend = [METRIC_LEGEND[m] for m in dict.fromkeys(c.metric for c in cells) if m in METRIC_LEGEND]
    return _wrap("Metrics: " + "; ".join(legend) + ".") + [""] if legend else []


def _caption_lines(caption: str) -> list[str]:
    return (_wrap(caption, "> ", "> ") + [""]) if caption else []


def render_table(paper: str, table: str, caption: str, cells: list[Cell], profile: str,
                 params: Params | None = None, full_page: str = "",
                 expected_tolerance: float | None = None) -> tuple[str, list[dict]]:
    """The markdown page of one table and its CSV rows."""
    if profile == FULL:
        md = _render_full(paper, table, caption, cells)
    else:
        md = _render_profile(paper, table, caption, cells, profile, params, full_page, expected_tolerance)
    return md, [_csv_row(paper, table, c, profile) for c in cells]


def _render_full(paper: str, table: str, caption: str, cells: list[Cell]) -> str:
    tol = cells[0].tolerance if cells else DEFAULT_TOLERANCE
    lines = [f"# {paper} — Table {table}", "", *_caption_lines(caption)]
    if not cells:
        return "\n".join(lines + ["This table has no cells to compare (see the caption)."]) + "\n"
    lines += _wrap(
        "Profile `full` (the papers' settings). Paper = the paper's value; Ours = mean ± std over n seeds "
        "of our runs (never a copied number); Δ = ours − paper. Status: `within tol.` = |Δ| ≤ "
        f"{tol:g} (absolute), `above tol.` / `below tol.` = outside it; `extra` = our cell, no paper value; "
        "`lost` = the paper printed a value that the surviving copy of it has lost; "
        "`not run [a]` = reason [a] under the table. † = the paper copied this number from other work; "
        "[1] = note under the table. The CSV beside this page has every field of every cell in full."
        + (" `not compar.` = our number measures something of another kind than the paper's (the "
           "data-set note says how): both shown, no Δ." if any(c.status == NOT_COMPARABLE for c in cells)
           else "")) + [""]
    lines += _dataset_lines(cells, FULL, None) + _metric_lines(cells)
    reasons, notes = _Footnotes(_label), _Footnotes(lambda i: str(i + 1))
    reason_of = _reason_texts(cells, FULL)
    rows = []
    for c in cells:
        marks = [notes.ref(n) for n in c.notes if n != c.approx]
        label = c.row + (" †" if c.cited else "") + (f" [{','.join(marks)}]" if marks else "")
        status = f"not run [{reasons.ref(reason_of(c))}]" if c.reason else STATUS_WORDS.get(c.status, c.status)
        if c.reason and c.status.startswith(LOST):
            status = f"lost; {status}"
        paper_value = c.printed if c.paper_value is None else _fmt_value(c.paper_value)
        rows.append([label, c.column, METRIC_NAMES.get(c.metric, c.metric), paper_value, _ours(c),
                     _fmt(c.delta), status])
    lines += _md_table(["Row", "Column", "Metric", "Paper", _ours_header(cells), "Δ", "Status"], rows,
                       right={3, 4, 5})
    if reasons.texts:
        lines += ["", "Not run:", "", *reasons.lines()]
    if notes.texts:
        lines += ["", "Notes:", "", *notes.lines()]
    return "\n".join(lines) + "\n"


def _render_profile(paper: str, table: str, caption: str, cells: list[Cell], profile: str,
                    params: Params | None, full_page: str, expected_tolerance: float | None) -> str:
    lines = [f"# {paper} — Table {table} · `{profile}` profile", "", *_caption_lines(caption)]
    if not cells:
        return "\n".join(lines + ["This table has no cells to compare (see the caption)."]) + "\n"
    about = f"Profile `{profile}`: a check that every stage runs, not a reproduction."
    if params is not None and profile in params.profiles:
        prof = params.profiles[profile]
        size = ("all points of each data set" if prof.max_samples is None else
                f"a class-stratified subset of at most {prof.max_samples} points of each data set "
                f"(subsample_seed {prof.subsample_seed})")
        epochs = "each method's own epochs" if prof.max_epochs is None else f"at most {prof.max_epochs} epochs"
        about += (f" Every run uses {size}, seeds {', '.join(map(str, prof.seeds))} and {epochs}, so its "
                  "numbers are not comparable with the paper's full-size values and are not graded against them.")
    tol = gate.DEFAULT_TOLERANCE if expected_tolerance is None else expected_tolerance
    about += (f" Expected = the value the CI gate holds for the cell's run ({gate.expected_path(profile)}); "
              f"Δ = ours − expected. Status: `as expected` = |Δ| within the value's band, measured over seeds "
              f"and CPU instruction sets ({tol:g} for runs that reproduce across machines, wider for chaotic "
              "trainings; the bands and their basis are in that file); `below expected` = the gate "
              "fails; `above expected` = better (`python -m clusterbench.gate --update` raises the floor); "
              "`not gated` = the gate holds no value for it; `not run [a]` = reason [a] under the table.")
    if full_page:
        about += f" The paper's values and the comparison with them: [full profile]({full_page})."
    lines += _wrap(about) + [""]
    shown = [c for c in cells if c.ours_mean is not None or c.configured]
    hidden = [c for c in cells if not (c.ours_mean is not None or c.configured)]
    reason_of = _reason_texts(cells, profile)
    if shown:
        lines += _dataset_lines(shown, profile, params) + _metric_lines(shown)
        reasons = _Footnotes(_label)
        rows = []
        for c in shown:
            status = f"not run [{reasons.ref(reason_of(c))}]" if c.reason else c.status
            rows.append([c.row, c.column, METRIC_NAMES.get(c.metric, c.metric), _ours(c),
                         _fmt(c.expected), _fmt(c.expected_delta), status])
        lines += _md_table(["Row", "Column", "Metric", _ours_header(shown), "Expected", "Δ", "Status"], rows,
                           right={3, 4, 5})
        if reasons.texts:
            lines += ["", "Not run:", "", *reasons.lines()]
        lines.append("")
    else:
        lines += [f"The `{profile}` profile covers no cell of this table.", ""]
    if hidden:
        counts: dict[str, int] = {}
        for c in hidden:
            counts[reason_of(c)] = counts.get(reason_of(c), 0) + 1
        where = f"; every cell is on the [full-profile page]({full_page})" if full_page else ""
        lines += _wrap(f"Not in the `{profile}` profile: {len(hidden)} of the table's {len(cells)} cells, "
                       f"not listed (this page's CSV has them{where}):") + [""]
        for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]):
            lines += _item(f"{n} {'cell' if n == 1 else 'cells'}:", reason)
    return "\n".join(lines).rstrip("\n") + "\n"


def _csv_row(paper: str, table: str, c: Cell, profile: str) -> dict:
    by_paper = profile == FULL
    delta = c.delta if by_paper else c.expected_delta
    return {"paper": paper, "table": table, "row": c.row, "column": c.column, "dataset": c.dataset,
            "metric": c.metric, "paper_value": c.paper_value, "cited": "yes" if c.cited else "no",
            "run": c.run, "ours_mean": c.ours_mean, "ours_std": c.ours_std, "n_seeds": c.n_seeds,
            "expected": c.expected, "delta": None if delta is None else round(delta, 6),
            "delta_vs": "paper" if by_paper else "expected", "status": c.status, "notes": " | ".join(c.notes)}


# --- pages and scorecard ----------------------------------------------------------------------

_BUCKETS = {"within tolerance": "within", "as expected": "within", "below expected": "below",
            "above expected": "above", "no paper value": "extra", "not gated": "not gated", LOST: "extra",
            NOT_COMPARABLE: "extra"}


def _bucket(status: str) -> str:
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
                                        full_page=full_page, expected_tolerance=expected_tol)
                (tmp / f"{stem}.md").write_text(md)
                with open(tmp / f"{stem}.csv", "w", newline="") as fh:
                    writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
                    writer.writeheader()
                    writer.writerows(rows)
                counts = {"within": 0, "outside": 0, "not run": 0, "extra": 0,
                          "below": 0, "above": 0, "not gated": 0, "not in profile": 0}
                for c in tcells:
                    bucket = _bucket(c.status)
                    if bucket == "not run" and profile != FULL and not c.configured:
                        bucket = "not in profile"
                    counts[bucket] += 1
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

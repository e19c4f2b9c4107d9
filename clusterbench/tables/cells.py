"""Table cells: the transcribed paper values, each paper's spec, and the status of our number.

Inputs: the transcribed paper values (``reports/paper/<paper>.csv``), each paper's table spec
(``reports/paper/specs/<paper>.yaml``: which of our runs and datasets answer which row and
column), and the score stage's metrics. Our column only ever holds numbers we computed.
"""
from __future__ import annotations

import csv
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import gate
from ..config import Params
from ..datasets import REGISTRY

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
              "ours_mean", "ours_std", "n_seeds", "expected", "delta", "delta_vs", "status", "notes", "row_properties"]
FLAG = "flag"   # the metric of a paper's check-mark column (✓/✗) in reports/paper/<paper>.csv


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


@dataclass(frozen=True)
class RowProperty:
    """A paper's check-mark column (LNSCC's "w/ Conv.", "w/ L_im", ...: ``metric: flag``): it says
    what a row is, not how well it did, so it is shown with its row and never graded or counted."""
    table: str
    row: str
    column: str
    printed: str
    notes: tuple[str, ...] = ()

    def text(self) -> str:
        return f"{self.column} {self.printed}"


def _paper_rows(paper: str):
    with open(PAPER_DIR / f"{paper}.csv", newline="") as fh:
        yield from csv.DictReader(fh)


def read_paper_cells(paper: str) -> list[Cell]:
    """The paper's values, one cell each (check-mark columns are row properties, not cells)."""
    cells = []
    for row in _paper_rows(paper):
        if row["metric"] == FLAG:
            continue
        value = row["value"].strip()
        cells.append(Cell(paper, row["table"], row["row"], row["column"], row["metric"],
                          float(value) if value else None, row["printed"], row["cited"] == "yes",
                          notes=[row["note"]] if row.get("note") else []))
    return cells


def read_row_properties(paper: str) -> dict[tuple[str, str], list[RowProperty]]:
    """(table, row) -> the row's check-mark columns, in the paper's order."""
    out: dict[tuple[str, str], list[RowProperty]] = {}
    for row in _paper_rows(paper):
        if row["metric"] == FLAG:
            out.setdefault((row["table"], row["row"]), []).append(
                RowProperty(row["table"], row["row"], row["column"], row["printed"],
                            (row["note"],) if row.get("note") else ()))
    return out


def properties_text(properties: list[RowProperty]) -> str:
    return ", ".join(p.text() for p in properties)


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

"""Markdown and CSV of one table page: notes and not-run reasons once under the table, rows
one screen line, every field of every cell in the CSV."""
from __future__ import annotations

import math
import textwrap

from .. import gate
from ..config import Params
from .cells import (DEFAULT_TOLERANCE, FULL, LOST, METRIC_LEGEND, METRIC_NAMES, NOT_COMPARABLE, STATUS_WORDS,
                    WRAP, Cell, RowProperty, _subset, properties_text)


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _fmt_value(x: float | None) -> str:
    """A paper value: counts and sizes (e.g. 70000 samples) without decimals, scores with three."""
    if x is not None and abs(x) >= 2 and float(x).is_integer():
        return f"{x:.0f}"
    return _fmt(x)


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
                 expected_tolerance: float | None = None,
                 properties: dict[str, list[RowProperty]] | None = None) -> tuple[str, list[dict]]:
    """The markdown page of one table and its CSV rows. ``properties``: row -> its check-mark
    columns, shown as one column of the row (on the row's first line), not as cells."""
    properties = properties or {}
    if profile == FULL:
        md = _render_full(paper, table, caption, cells, properties)
    else:
        md = _render_profile(paper, table, caption, cells, profile, params, full_page, expected_tolerance,
                             properties)
    return md, [_csv_row(paper, table, c, profile, properties.get(c.row, [])) for c in cells]


def _add_properties(header: list[str], rows: list[list[str]], names: list[str], right: set[int],
                    properties: dict[str, list[RowProperty]]) -> tuple[list[str], list[list[str]], set[int]]:
    """A "Row properties" column after "Row", filled on each row's first line only."""
    if not any(name in properties for name in names):
        return header, rows, right
    seen: set[str] = set()
    out = []
    for name, r in zip(names, rows):
        text = "" if name in seen else properties_text(properties.get(name, []))
        seen.add(name)
        out.append([r[0], text, *r[1:]])
    return [header[0], "Row properties", *header[1:]], out, {i + 1 if i >= 1 else i for i in right}


def _render_full(paper: str, table: str, caption: str, cells: list[Cell],
                 properties: dict[str, list[RowProperty]]) -> str:
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
        row_notes = [n for prop in properties.get(c.row, []) for n in prop.notes]
        marks = [notes.ref(n) for n in dict.fromkeys([*c.notes, *row_notes]) if n != c.approx]
        label = c.row + (" †" if c.cited else "") + (f" [{','.join(marks)}]" if marks else "")
        status = f"not run [{reasons.ref(reason_of(c))}]" if c.reason else STATUS_WORDS.get(c.status, c.status)
        if c.reason and c.status.startswith(LOST):
            status = f"lost; {status}"
        paper_value = c.printed if c.paper_value is None else _fmt_value(c.paper_value)
        rows.append([label, c.column, METRIC_NAMES.get(c.metric, c.metric), paper_value, _ours(c),
                     _fmt(c.delta), status])
    lines += _md_table(*_add_properties(["Row", "Column", "Metric", "Paper", _ours_header(cells), "Δ", "Status"],
                                        rows, [c.row for c in cells], {3, 4, 5}, properties))
    if reasons.texts:
        lines += ["", "Not run:", "", *reasons.lines()]
    if notes.texts:
        lines += ["", "Notes:", "", *notes.lines()]
    return "\n".join(lines) + "\n"


def _render_profile(paper: str, table: str, caption: str, cells: list[Cell], profile: str,
                    params: Params | None, full_page: str, expected_tolerance: float | None,
                    properties: dict[str, list[RowProperty]]) -> str:
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
        lines += _md_table(*_add_properties(["Row", "Column", "Metric", _ours_header(shown), "Expected", "Δ",
                                             "Status"], rows, [c.row for c in shown], {3, 4, 5}, properties))
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


def _csv_row(paper: str, table: str, c: Cell, profile: str, properties: list[RowProperty]) -> dict:
    by_paper = profile == FULL
    delta = c.delta if by_paper else c.expected_delta
    return {"paper": paper, "table": table, "row": c.row, "column": c.column, "dataset": c.dataset,
            "metric": c.metric, "paper_value": c.paper_value, "cited": "yes" if c.cited else "no",
            "run": c.run, "ours_mean": c.ours_mean, "ours_std": c.ours_std, "n_seeds": c.n_seeds,
            "expected": c.expected, "delta": None if delta is None else round(delta, 6),
            "delta_vs": "paper" if by_paper else "expected", "status": c.status, "notes": " | ".join(c.notes),
            "row_properties": properties_text(properties)}

"""Tables stage: every paper table next to our numbers, and the scorecard.

- ``cells``: the paper's values, the specs, and each cell's status (what is compared);
- ``render``: one table's markdown page and CSV rows (how it reads);
- ``pages``: every page, the scorecard README and ``summary.json`` (what the stage writes).

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
from .cells import (CSV_FIELDS, DEFAULT_TOLERANCE, FULL, LOST, NOT_RUN, PAPER_DIR, PAPERS, Cell, RowProperty,
                    read_paper_cells, read_row_properties, resolve_cells)
from .pages import bucket, render_all, render_scorecard, summary_metrics
from .render import render_table

__all__ = ["CSV_FIELDS", "DEFAULT_TOLERANCE", "FULL", "LOST", "NOT_RUN", "PAPER_DIR", "PAPERS", "Cell", "RowProperty",
           "bucket", "read_paper_cells", "read_row_properties", "render_all", "render_scorecard", "render_table",
           "resolve_cells", "summary_metrics"]

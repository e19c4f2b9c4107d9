"""Tables stage: paper values beside ours, statuses and the scorecard, on a synthetic paper."""
import csv
import json
import re

import pytest
import yaml

from clusterbench import config, tables

HEADER = ["paper", "table", "row", "column", "dataset", "metric", "value", "printed", "cited", "note"]


@pytest.fixture
def paper_dir(tmp_path, monkeypatch):
    d = tmp_path / "paper"
    (d / "specs").mkdir(parents=True)
    rows = [
        ["lnscc", "2", "k-means", "MNIST-test", "mnist-test", "acc", "0.501", "0.501", "yes", ""],
        ["lnscc", "2", "k-means", "MNIST-test", "mnist-test", "nmi", "0.547", "0.547", "yes", ""],
        ["lnscc", "2", "k-means", "USPS", "usps", "acc", "0.450", "0.450", "yes", ""],
        ["lnscc", "2", "JULE", "MNIST-test", "mnist-test", "acc", "0.961", "0.961", "yes", ""],
        ["lnscc", "2", "DBSCAN", "MNIST-test", "mnist-test", "acc", "", "–", "yes", ""],
    ]
    with open(d / "lnscc.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows(rows)
    with open(d / "tables.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["paper", "table", "caption", "kind", "note"])
        w.writerow(["lnscc", "2", "Clustering performances", "results", ""])
        w.writerow(["lnscc", "9", "A lost table", "results", "values lost in this copy"])
    spec = {"tolerance": 0.03, "tables": {"2": {
        "columns": {"MNIST-test": {"dataset": "mnist-sample10k", "approx": "sample10k approximates MNIST-test"},
                    "USPS": {"dataset": "usps"}},
        "rows": {"k-means": {"run": "kmeans"}, "DBSCAN": {"run": "dbscan"}},
        "extra": [{"row": "k-means", "column": "digits", "dataset": "digits", "run": "kmeans", "metrics": ["acc"]}],
    }}}
    (d / "specs" / "lnscc.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.setattr(tables.cells, "PAPER_DIR", d)
    monkeypatch.setattr(tables.pages, "PAPERS", ("lnscc",))
    return d


def make_params(raw):
    """Validated params in their explicit form (runs listed one by one), as the tables stage gets
    them: independent of how params.yaml spells them."""
    return config.Params(**raw)


@pytest.fixture
def params(tmp_path):
    raw = {
        "profiles": {"full": {"seeds": [0, 1], "reports": str(tmp_path / "reports")}},
        "datasets": ["mnist-sample10k", "digits"],
        "embeddings": {"raw": [{"backend": "raw"}]},
        "views": {"mnist-sample10k-raw": {"dataset": "mnist-sample10k", "embedding": "raw", "profile": "full"},
                  "digits-raw": {"dataset": "digits", "embedding": "raw", "profile": "full"}},
        "methods": {"kmeans": {}},
        "baselines": {"kmeans-mnist-sample10k": {"method": "kmeans", "view": "mnist-sample10k-raw", "profile": "full"},
                      "kmeans-digits": {"method": "kmeans", "view": "digits-raw", "profile": "full"}},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    return make_params(raw)


def score(acc, nmi, std=0.01):
    return {"mean": {"acc": acc, "nmi": nmi}, "std": {"acc": std, "nmi": std}, "seeds": [0, 1]}


def by_key(cells):
    return {(c.row, c.column, c.metric): c for c in cells}


def test_statuses(paper_dir, params):
    scores = {"kmeans-mnist-sample10k": score(0.52, 0.49), "kmeans-digits": score(0.8, 0.7)}
    cells = by_key(tables.resolve_cells("lnscc", params, scores, "full"))
    acc = cells[("k-means", "MNIST-test", "acc")]
    assert acc.run == "kmeans-mnist-sample10k" and acc.status == "within tolerance"
    assert acc.delta == pytest.approx(0.019)
    assert "sample10k approximates MNIST-test" in acc.notes
    assert cells[("k-means", "MNIST-test", "nmi")].status == "outside tolerance (below)"
    # USPS is configured nowhere and cannot be downloaded here: the reason says so.
    assert cells[("k-means", "USPS", "acc")].status.startswith("not run: no run 'kmeans-usps'")
    assert cells[("JULE", "MNIST-test", "acc")].status.startswith("not run: cited from other work")
    assert cells[("DBSCAN", "MNIST-test", "acc")].status.startswith("not run: no run 'dbscan-mnist-sample10k'")
    extra = cells[("k-means", "digits", "acc")]
    assert extra.paper_value is None and extra.ours_mean == 0.8 and extra.status == "no paper value"


def test_missing_download_reason(paper_dir, params, tmp_path):
    raw = yaml.safe_load((tmp_path / "params.yaml").read_text())
    raw["datasets"].append("usps")
    raw["views"]["usps-raw"] = {"dataset": "usps", "embedding": "raw", "profile": "full"}
    raw["baselines"]["kmeans-usps"] = {"method": "kmeans", "view": "usps-raw", "profile": "full"}
    p = make_params(raw)
    cells = by_key(tables.resolve_cells("lnscc", p, {}, "full"))
    assert "usps must be downloaded" in cells[("k-means", "USPS", "acc")].status


def test_never_writes_paper_value_into_ours(paper_dir, params):
    cells = tables.resolve_cells("lnscc", params, {}, "full")
    assert all(c.ours_mean is None for c in cells)
    assert all(c.status.startswith("not run") for c in cells)


def test_render_all_writes_tables_and_scorecard(paper_dir, params, tmp_path):
    scores = {"kmeans-mnist-sample10k": score(0.52, 0.49)}
    tables.render_all(params, "full", scores)
    out = tmp_path / "reports"
    md = (out / "tables" / "lnscc-table2.md").read_text()
    assert "0.520 ± 0.010 (n=2)" in md and "within tol." in md
    assert (out / "tables" / "lnscc-table9.md").exists()  # lost table still gets a page
    assert "values lost" in (out / "tables" / "lnscc-table9.md").read_text()
    with open(out / "tables" / "lnscc-table2.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["status"] for r in rows} >= {"within tolerance", "outside tolerance (below)"}
    card = (out / "README.md").read_text()
    assert "| lnscc | [2](tables/lnscc-table2.md) | 6 | 1 | 1 | 4 | 0 |" in card


def test_not_run_reasons_apply_to_configured_runs_by_glob(paper_dir, params):
    (paper_dir / "not-run.yaml").write_text(yaml.safe_dump([
        {"runs": "kmeans-mnist-*", "reason": "too slow on this CPU"},
        {"runs": "kmeans-*", "reason": "never used: the first match wins"}]))
    cells = by_key(tables.resolve_cells("lnscc", params, {}, "full"))
    assert cells[("k-means", "MNIST-test", "acc")].status == "not run: too slow on this CPU"
    # A run that is not configured keeps its own reason; the file only explains configured ones.
    assert cells[("k-means", "USPS", "acc")].status.startswith("not run: no run 'kmeans-usps'")


def test_spatial_leaderboard_is_published_beside_the_tables(paper_dir, params, tmp_path):
    board = tmp_path / "reports" / "leaderboard"
    board.mkdir(parents=True)
    (board / "spatial-leaderboard.md").write_text("# board\n")
    (board / "spatial-leaderboard.csv").write_text("a,b\n")
    tables.render_all(params, "full", {})
    assert (tmp_path / "reports" / "tables" / "spatial-leaderboard.md").read_text() == "# board\n"
    assert "tables/spatial-leaderboard.md" in (tmp_path / "reports" / "README.md").read_text()


LONG_REASON = ("needs the authors' private 1.2 TB crawl, which is not published; see "
               "https://example.org/a/very/long/download/url/that/nobody/wants/to/read/twice and mirror "
               "folders <mirror>/crawl/ (data.mirrors in params.yaml, $CLUSTERBENCH_MIRROR, /usr/share/datasets)")


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_shared_not_run_reason_is_printed_once_per_page_and_in_full_in_every_csv_row(paper_dir, params, tmp_path):
    # 40 cells of one table share one long reason (a row the spec marks as not runnable).
    with open(paper_dir / "lnscc.csv", "a", newline="") as fh:
        w = csv.writer(fh)
        for i in range(20):
            for metric in ("acc", "nmi"):
                w.writerow(["lnscc", "2", "CrawlNet", f"Set-{i}", f"set-{i}", metric, "0.5", "0.5", "no", ""])
    spec = yaml.safe_load((paper_dir / "specs" / "lnscc.yaml").read_text())
    spec["tables"]["2"]["rows"]["CrawlNet"] = {"reason": LONG_REASON}
    (paper_dir / "specs" / "lnscc.yaml").write_text(yaml.safe_dump(spec))
    tables.render_all(params, "full", {"kmeans-mnist-sample10k": score(0.52, 0.49)})
    out = tmp_path / "reports" / "tables"
    md = (out / "lnscc-table2.md").read_text()
    assert md.count("1.2 TB crawl") == 1  # stated once, under the table
    crawl_rows = [line for line in md.splitlines() if line.startswith("| CrawlNet")]
    assert len(crawl_rows) == 40
    label = crawl_rows[0].rsplit("not run [", 1)[1].split("]")[0]
    assert all(line.rstrip(" |").endswith(f"not run [{label}]") for line in crawl_rows)
    assert f"- [{label}] needs the authors' private 1.2 TB crawl" in md
    # Every row keeps paper value, ours, delta and status, and fits a 120-column terminal.
    assert all(len(line) <= 120 for line in md.splitlines())
    kmeans = next(line for line in md.splitlines() if line.startswith("| k-means") and "0.520" in line)
    assert "0.501" in kmeans and "0.520 ± 0.010 (n=2)" in kmeans and "0.019" in kmeans and "within tol." in kmeans
    # The CSV keeps the reason in full in every row.
    rows = [r for r in read_csv(out / "lnscc-table2.csv") if r["row"] == "CrawlNet"]
    assert len(rows) == 40 and all(r["status"] == f"not run: {LONG_REASON}" for r in rows)


def test_notes_and_missing_runs_are_footnotes(paper_dir, params, tmp_path):
    tables.render_all(params, "full", {})
    md = (tmp_path / "reports" / "tables" / "lnscc-table2.md").read_text()
    # The column's data-set note is stated once (not as a mark on every row of the column).
    assert md.count("sample10k approximates MNIST-test") == 1
    # Runs missing from params.yaml share one footnote that names them.
    assert md.count("params.yaml configures no such run") == 1
    assert "dbscan-mnist-sample10k" in md and "kmeans-usps" in md
    rows = read_csv(tmp_path / "reports" / "tables" / "lnscc-table2.csv")
    usps = next(r for r in rows if r["column"] == "USPS")
    assert usps["status"] == "not run: no run 'kmeans-usps' in params.yaml"
    assert "sample10k approximates MNIST-test" in next(r for r in rows if r["column"] == "MNIST-test")["notes"]


@pytest.fixture
def smoke_params(tmp_path):
    raw = {
        "profiles": {"full": {"seeds": [0, 1, 2], "reports": str(tmp_path / "reports")},
                     "smoke": {"seeds": [0, 1], "max_samples": 600, "max_epochs": 3,
                               "reports": str(tmp_path / "reports" / "smoke")}},
        "datasets": ["mnist-sample10k", "digits"],
        "embeddings": {"raw": [{"backend": "raw"}]},
        "views": {"smoke-mnist-sample10k-raw": {"dataset": "mnist-sample10k", "embedding": "raw", "profile": "smoke"},
                  "smoke-digits-raw": {"dataset": "digits", "embedding": "raw", "profile": "smoke"}},
        "methods": {"kmeans": {}, "dbscan": {}},
        "baselines": {
            "smoke-kmeans-mnist-sample10k": {"method": "kmeans", "view": "smoke-mnist-sample10k-raw", "profile": "smoke"},
            "smoke-kmeans-digits": {"method": "kmeans", "view": "smoke-digits-raw", "profile": "smoke"},
            "smoke-dbscan-mnist-sample10k": {"method": "dbscan", "view": "smoke-mnist-sample10k-raw", "profile": "smoke"}},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    return make_params(raw)


SMOKE_EXPECTED = {"tolerance": 0.02, "runs": {
    "smoke-kmeans-mnist-sample10k": {"acc": 0.30, "nmi": 0.60},
    "smoke-kmeans-digits": {"acc": 0.80}}}


def test_smoke_cells_are_graded_against_the_gate_not_the_paper(paper_dir, smoke_params, tmp_path):
    # k-means' smoke ACC equals the paper's 0.501 exactly: still not "within tolerance" of the paper.
    scores = {"smoke-kmeans-mnist-sample10k": score(0.501, 0.49), "smoke-kmeans-digits": score(0.805, 0.7)}
    cells = by_key(tables.resolve_cells("lnscc", smoke_params, scores, "smoke", SMOKE_EXPECTED))
    assert cells[("k-means", "MNIST-test", "acc")].status == "above expected"
    assert cells[("k-means", "MNIST-test", "nmi")].status == "below expected"  # 0.49 < 0.60 - 0.02: the gate fails
    assert cells[("k-means", "digits", "acc")].status == "as expected"
    assert cells[("k-means", "digits", "acc")].expected == 0.80
    # Configured but without metrics: not run, and says so without full-size costs.
    assert cells[("DBSCAN", "MNIST-test", "acc")].status.startswith("not run: configured in the smoke profile")
    assert all("tolerance" not in c.status for c in cells.values())

    tables.render_all(smoke_params, "smoke", scores, expected=SMOKE_EXPECTED)
    out = tmp_path / "reports" / "smoke"
    md = (out / "tables" / "lnscc-table2.md").read_text()
    assert "tolerance" not in md  # no grading against the paper
    assert "within tol" not in md and "above tol" not in md and "below tol" not in md
    assert "as expected" in md and "below expected" in md and "above expected" in md
    # The header says what the profile is; the page points to the full comparison.
    assert "at most 600 points" in md and "at most 3 epochs" in md and "seeds 0, 1" in md
    assert "](../../tables/lnscc-table2.md)" in md
    # Footnotes do not describe the full-size data (the column's full-data note is gone).
    assert "sample10k approximates MNIST-test" not in md
    assert "at most 600 points of mnist-sample10k" in md
    # No paper value on the smoke page; cells the profile does not cover are summarised, not listed.
    header = next(line for line in md.splitlines() if line.startswith("| Row"))
    assert "Paper" not in header and "Expected" in header
    table_rows = [line for line in md.splitlines() if line.startswith("| ") and line != header]
    assert not any("0.547" in line for line in table_rows)  # the paper's NMI
    assert not any(line.startswith("| JULE") for line in table_rows)
    assert "Not in the `smoke` profile" in md
    rows = read_csv(out / "tables" / "lnscc-table2.csv")
    assert not any("tolerance" in r["status"] for r in rows)
    acc = next(r for r in rows if r["row"] == "k-means" and r["column"] == "MNIST-test" and r["metric"] == "acc")
    assert acc["status"] == "above expected" and acc["delta_vs"] == "expected"
    assert float(acc["expected"]) == 0.30 and float(acc["delta"]) == pytest.approx(0.201)
    assert float(acc["paper_value"]) == 0.501  # the CSV keeps every field
    assert len(rows) == 6  # every cell, listed or not
    card = (out / "README.md").read_text()
    assert "As expected" in card and "Within" not in card
    assert "| lnscc | [2](tables/lnscc-table2.md) | 6 | 1 | 1 | 1 | 0 | 1 | 2 |" in card


def test_smoke_defaults_to_the_gates_expected_values(paper_dir, smoke_params, tmp_path, monkeypatch):
    expected = tmp_path / "expected"
    expected.mkdir()
    (expected / "smoke.json").write_text(json.dumps(SMOKE_EXPECTED))
    monkeypatch.setattr(tables.pages.gate, "EXPECTED_DIR", expected)
    tables.render_all(smoke_params, "smoke", {"smoke-kmeans-digits": score(0.75, 0.7)})
    rows = read_csv(tmp_path / "reports" / "smoke" / "tables" / "lnscc-table2.csv")
    digits = next(r for r in rows if r["column"] == "digits")
    assert digits["status"] == "below expected"


def test_lost_paper_values_are_a_status_not_a_blank(paper_dir, params, tmp_path):
    spec = yaml.safe_load((paper_dir / "specs" / "lnscc.yaml").read_text())
    spec["tables"]["9"] = {"lost": ["acc"],
                           "columns": {"MNIST-test": {"dataset": "mnist-sample10k"}, "Digits": {"dataset": "digits"}},
                           "rows": {"k-means": {"run": "kmeans"}, "GCC": {"reason": "not implemented"}}}
    (paper_dir / "specs" / "lnscc.yaml").write_text(yaml.safe_dump(spec))
    with open(paper_dir / "lnscc.csv", "a", newline="") as fh:  # one value of table 9 survives
        csv.writer(fh).writerow(["lnscc", "9", "k-means", "Digits", "digits", "acc", "0.8", "0.8", "no", ""])
    scores = {"kmeans-mnist-sample10k": score(0.55, 0.5), "kmeans-digits": score(0.79, 0.7)}
    cells = by_key(c for c in tables.resolve_cells("lnscc", params, scores, "full") if c.table == "9")
    assert set(cells) == {("k-means", "MNIST-test", "acc"), ("k-means", "Digits", "acc"),
                          ("GCC", "MNIST-test", "acc"), ("GCC", "Digits", "acc")}
    ours_lost = cells[("k-means", "MNIST-test", "acc")]
    assert ours_lost.status == "paper value lost" and ours_lost.ours_mean == 0.55 and ours_lost.delta is None
    assert cells[("k-means", "Digits", "acc")].status == "within tolerance"  # the surviving value is graded
    not_run = cells[("GCC", "Digits", "acc")]
    assert not_run.status == "paper value lost; not run: not implemented" and not_run.reason == "not implemented"
    assert tables.bucket(ours_lost.status) == "extra" and tables.bucket(not_run.status) == "not run"
    tables.render_all(params, "full", scores)
    page = (tmp_path / "reports" / "tables" / "lnscc-table9.md").read_text()
    assert re.search(r"\| lost +\|$", page, re.M) and "lost; not run [a]" in page and "- [a] not implemented" in page
    with open(tmp_path / "reports" / "tables" / "lnscc-table9.csv") as fh:
        statuses = {(r["row"], r["column"]): r["status"] for r in csv.DictReader(fh)}
    assert statuses[("k-means", "MNIST-test")] == "paper value lost"
    assert all(s for s in statuses.values())


def test_a_column_marked_not_comparable_shows_both_numbers_without_a_grade(paper_dir, params, tmp_path):
    spec = yaml.safe_load((paper_dir / "specs" / "lnscc.yaml").read_text())
    spec["tables"]["9"] = {"columns": {"MNIST-test": {"dataset": "mnist-sample10k", "comparable": False,
                                                      "approx": "CPU seconds, not the paper's GPU seconds"},
                                       "Digits": {"dataset": "digits"}},
                           "rows": {"k-means": {"run": "kmeans"}}}
    (paper_dir / "specs" / "lnscc.yaml").write_text(yaml.safe_dump(spec))
    with open(paper_dir / "lnscc.csv", "a", newline="") as fh:
        for column, dataset in (("MNIST-test", "mnist-sample10k"), ("Digits", "digits")):
            csv.writer(fh).writerow(["lnscc", "9", "k-means", column, dataset, "acc", "0.9", "0.9", "no", ""])
    scores = {"kmeans-mnist-sample10k": score(0.55, 0.5), "kmeans-digits": score(0.79, 0.7)}
    cells = by_key(c for c in tables.resolve_cells("lnscc", params, scores, "full") if c.table == "9")
    apart = cells[("k-means", "MNIST-test", "acc")]
    assert apart.status == "not comparable" and apart.delta is None and apart.ours_mean == 0.55
    assert apart.paper_value == 0.9 and tables.bucket(apart.status) == "extra"
    assert cells[("k-means", "Digits", "acc")].status == "outside tolerance (below)"  # the other column is graded
    tables.render_all(params, "full", scores)
    page = (tmp_path / "reports" / "tables" / "lnscc-table9.md").read_text()
    assert re.search(r"\| 0\.900 +\| +0\.550 .*\| +– +\| not compar\. +\|$", page, re.M)
    assert "`not compar.` = our number measures something of another kind" in " ".join(page.split())


def test_check_mark_columns_are_row_properties_not_counted_cells(paper_dir, params, tmp_path):
    """A paper's ✓/✗ column (metric `flag`) says what a row is: shown once with its row, in the
    CSV of every cell of that row, never a cell of its own, never in the scorecard's counts."""
    with open(paper_dir / "lnscc.csv", "a", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["lnscc", "2", "k-means", "w/ Conv.", "", "flag", "0", "✗", "no", "top panel: shallow methods"])
        w.writerow(["lnscc", "2", "JULE", "w/ Conv.", "", "flag", "1", "✓", "no", ""])
    assert all(c.metric != "flag" for c in tables.resolve_cells("lnscc", params, {}, "full"))
    props = tables.read_row_properties("lnscc")
    assert [p.text() for p in props[("2", "k-means")]] == ["w/ Conv. ✗"]
    tables.render_all(params, "full", {"kmeans-mnist-sample10k": score(0.52, 0.49)})
    out = tmp_path / "reports"
    md = (out / "tables" / "lnscc-table2.md").read_text()
    assert "| Row properties |" in md and "flag" not in md
    kmeans_lines = [line for line in md.splitlines() if line.startswith("| k-means")]
    assert len(kmeans_lines) == 4 and "w/ Conv. ✗" in kmeans_lines[0]   # 3 paper cells + the extra
    assert not any("w/ Conv." in line for line in kmeans_lines[1:])   # once per row
    assert "top panel: shallow methods" in md                           # the property's note kept
    with open(out / "tables" / "lnscc-table2.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and {r["row_properties"] for r in rows if r["row"] == "JULE"} == {"w/ Conv. ✓"}
    assert "| lnscc | [2](tables/lnscc-table2.md) | 6 | 1 | 1 | 4 | 0 |" in (out / "README.md").read_text()

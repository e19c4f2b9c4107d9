"""Tables stage: paper values beside ours, statuses and the scorecard, on a synthetic paper."""
import csv

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
    monkeypatch.setattr(tables, "PAPER_DIR", d)
    monkeypatch.setattr(tables, "PAPERS", ("lnscc",))
    return d


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
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return config.load(path)


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
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    p = config.load(tmp_path / "params.yaml")
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
    assert "0.520 ± 0.010 (n=2)" in md and "within tolerance" in md
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

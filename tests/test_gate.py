"""The CI gate fails exactly when a gated metric drops below expected - tolerance."""
import json

from clusterbench import gate

EXPECTED = {"tolerance": 0.02, "runs": {"r1": {"acc": 0.80, "nmi": 0.70}, "r2": {"top1": 0.9}}}


def test_within_tolerance_passes():
    actual = {"runs": {"r1": {"acc": 0.781, "nmi": 0.75}, "r2": {"top1": 0.95}}}
    assert gate.compare(EXPECTED, actual) == []


def test_drop_beyond_tolerance_fails_and_names_run_and_metric():
    actual = {"runs": {"r1": {"acc": 0.779, "nmi": 0.70}, "r2": {"top1": 0.9}}}
    failures = gate.compare(EXPECTED, actual)
    assert len(failures) == 1 and failures[0].startswith("r1.acc: 0.7790 < expected 0.8000")


def test_missing_run_fails():
    failures = gate.compare(EXPECTED, {"runs": {"r1": {"acc": 0.8, "nmi": 0.7}}})
    assert failures == ["r2: missing from the metrics (not run?)"]


def test_cli_update_then_check(tmp_path):
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"runs": {"r": {"acc": 0.5, "nmi": 0.4, "wall_s": 3.0}}}))
    expected = tmp_path / "expected.json"
    assert gate.main(["--metrics", str(metrics), "--expected", str(expected), "--update", "--tolerance", "0.01"]) == 0
    stored = json.loads(expected.read_text())
    assert stored == {"tolerance": 0.01, "runs": {"r": {"acc": 0.5, "nmi": 0.4}}}  # wall time is not gated
    assert gate.main(["--metrics", str(metrics), "--expected", str(expected)]) == 0
    metrics.write_text(json.dumps({"runs": {"r": {"acc": 0.45, "nmi": 0.4}}}))
    assert gate.main(["--metrics", str(metrics), "--expected", str(expected)]) == 1


def test_grade_names_what_the_gate_does():
    # "below expected" exactly when compare() reports a regression; the tables use grade() for smoke cells.
    assert gate.grade(0.781, 0.80, 0.02) == "as expected"
    assert gate.grade(0.779, 0.80, 0.02) == "below expected"
    assert gate.grade(0.821, 0.80, 0.02) == "above expected"
    assert gate.compare({"tolerance": 0.02, "runs": {"r": {"acc": 0.80}}}, {"runs": {"r": {"acc": 0.821}}}) == []

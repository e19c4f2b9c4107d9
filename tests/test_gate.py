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


def test_cli_calibrate_then_check(tmp_path):
    def reports(name, acc, nmi):
        folder = tmp_path / name / "metrics"
        folder.mkdir(parents=True)
        (folder / "r.json").write_text(json.dumps({"run": "r", "seeds": [0, 1], "n_clusters": 10, "per_seed": {
            "acc": acc, "nmi": nmi, "wall_s": [3.0, 4.0]}}))
        return str(tmp_path / name)
    ref = reports("ref", [0.5, 0.6], [0.4, 0.4])
    isa = reports("isa", [0.5, 0.6], [0.4, 0.4])
    expected = tmp_path / "expected.json"
    assert gate.main(["--calibrate", ref, isa, "--expected", str(expected), "--conditions", "avx2", "sse"]) == 0
    stored = json.loads(expected.read_text())
    assert set(stored["runs"]["r"]) == {"acc", "nmi"}  # wall time is not gated
    assert stored["conditions"] == ["avx2", "sse"] and stored["runs"]["r"]["acc"]["expected"] == 0.55
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"runs": {"r": {"acc": 0.55, "nmi": 0.4}}}))
    assert gate.main(["--metrics", str(metrics), "--expected", str(expected)]) == 0
    metrics.write_text(json.dumps({"runs": {"r": {"acc": 0.52, "nmi": 0.4}}}))
    assert gate.main(["--metrics", str(metrics), "--expected", str(expected)]) == 1


def test_cli_recalibrates_only_the_named_runs(tmp_path):
    """After a change to one method: its runs get new bands from the reference reports, a JSON
    condition (gate_calibration.py's output for the smoke seeds) and extra seeds; every other
    run keeps its committed values, and an unknown run is refused by name."""
    folder = tmp_path / "ref" / "metrics"
    folder.mkdir(parents=True)
    for run, acc in (("changed", [0.5, 0.7]), ("other", [0.9, 0.9])):
        (folder / f"{run}.json").write_text(json.dumps({"run": run, "seeds": [0, 1], "n_clusters": 10,
                                                        "per_seed": {"acc": acc}}))
    expected = tmp_path / "expected.json"
    committed = {"floor": 0.02, "conditions": ["avx2"], "runs": {
        "changed": {"acc": {"expected": 0.3, "band": 0.02}}, "other": {"acc": {"expected": 0.1, "band": 0.02}}}}
    expected.write_text(json.dumps(committed))
    sse = tmp_path / "sse.json"
    sse.write_text(json.dumps({"changed": {"acc": [0.52, 0.69]}}))
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"changed": {"acc": [0.55, 0.65, 0.6, 0.58]}}))
    assert gate.main(["--calibrate", str(tmp_path / "ref"), str(sse), "--extra", str(extra), "--runs", "changed",
                      "--expected", str(expected)]) == 0
    stored = json.loads(expected.read_text())
    assert stored["runs"]["other"] == committed["runs"]["other"] and stored["conditions"] == ["avx2"]
    new = stored["runs"]["changed"]["acc"]
    assert new["band"] > 0.02 and abs(new["expected"] - (0.5 + 0.7 + 0.52 + 0.69 + 0.55 + 0.65 + 0.6 + 0.58) / 8) < 1e-6
    # conditions that agree give the floor, unless the run is named chaotic (its move starts in the graph)
    (folder / "changed.json").write_text(json.dumps({"run": "changed", "seeds": [0, 1], "n_clusters": 10,
                                                     "per_seed": {"acc": [0.52, 0.69]}}))
    assert gate.main(["--calibrate", str(tmp_path / "ref"), str(sse), "--extra", str(extra), "--runs", "changed",
                      "--expected", str(expected)]) == 0
    assert json.loads(expected.read_text())["runs"]["changed"]["acc"]["band"] == 0.02
    assert gate.main(["--calibrate", str(tmp_path / "ref"), str(sse), "--extra", str(extra), "--runs", "changed",
                      "--chaotic", "changed", "--expected", str(expected)]) == 0
    assert json.loads(expected.read_text())["runs"]["changed"]["acc"]["band"] > 0.02
    import pytest
    with pytest.raises(SystemExit, match="nosuch"):
        gate.main(["--calibrate", str(tmp_path / "ref"), "--runs", "nosuch", "--expected", str(expected)])


def test_grade_names_what_the_gate_does():
    # "below expected" exactly when compare() reports a regression; the tables use grade() for smoke cells.
    assert gate.grade(0.781, 0.80, 0.02) == "as expected"
    assert gate.grade(0.779, 0.80, 0.02) == "below expected"
    assert gate.grade(0.821, 0.80, 0.02) == "above expected"
    assert gate.compare({"tolerance": 0.02, "runs": {"r": {"acc": 0.80}}}, {"runs": {"r": {"acc": 0.821}}}) == []


# --- measured bands (issue 18) -------------------------------------------------------------------

def _per_seed(values: dict[str, list[float]], seeds=(0, 1), k=10) -> dict:
    return {"seeds": list(seeds), "n_clusters": k, **values}


def test_a_run_identical_under_every_condition_gets_the_floor():
    ref = {"km": _per_seed({"acc": [0.50, 0.60], "nmi": [0.40, 0.42]})}
    other_isa = {"km": _per_seed({"acc": [0.5005, 0.60], "nmi": [0.40, 0.4001]})}
    data = gate.calibrate(ref, [other_isa], floor=0.02)
    assert data["runs"]["km"]["acc"]["expected"] == 0.55 and data["runs"]["km"]["acc"]["band"] == 0.02
    assert data["runs"]["km"]["acc"]["basis"].startswith("reproducible: per-seed shift 0.0005")


def test_a_seed_independent_run_that_moves_with_the_instruction_set_gets_twice_its_move():
    # e.g. HDBSCAN: every seed gives the same labels, another CPU gives other ones
    ref = {"hd": _per_seed({"nmi": [0.31, 0.31]})}
    amx = {"hd": _per_seed({"nmi": [0.293, 0.293]})}
    extra = {"hd": {"nmi": [0.31] * 10}}
    value = gate.calibrate(ref, [amx], extra, floor=0.02)["runs"]["hd"]["nmi"]
    assert abs(value["band"] - 0.034) < 1e-9 and "mean shift 0.017" in value["basis"]


def test_a_chaotic_run_gets_a_band_from_its_pooled_seed_spread():
    # another instruction set sends seed 0 elsewhere: the run is chaotic; samples = 2 + 2 + 4 extra seeds
    ref = {"ln": _per_seed({"acc": [0.40, 0.30]})}
    other_isa = {"ln": _per_seed({"acc": [0.36, 0.30]})}
    extra = {"ln": {"acc": [0.34, 0.32, 0.38, 0.30]}}
    data = gate.calibrate(ref, [other_isa], extra, floor=0.02, z=3.0)
    samples = [0.40, 0.30, 0.36, 0.30, 0.34, 0.32, 0.38, 0.30]
    mean = sum(samples) / 8
    s = (sum((x - mean) ** 2 for x in samples) / 7) ** 0.5
    value = data["runs"]["ln"]["acc"]
    assert value["expected"] == round(mean, 6)
    assert abs(value["band"] - round(3.0 * s * (1 / 2 + 1 / 8) ** 0.5, 4)) < 1e-12
    assert value["basis"].startswith("chaotic: per-seed shift 0.040, mean shift 0.020")
    # the gate then passes a draw inside the band and fails one below it
    assert gate.compare(data, {"runs": {"ln": {"acc": mean - value["band"] + 0.001}}}) == []
    fails = gate.compare(data, {"runs": {"ln": {"acc": mean - value["band"] - 0.001}}})
    assert len(fails) == 1 and "band" in fails[0] and "chaotic" in fails[0]


def test_values_whose_band_reaches_chance_are_named_and_not_counted(capsys, tmp_path):
    data = {"floor": 0.02, "runs": {
        "good": {"acc": {"expected": 0.6, "band": 0.05, "n_clusters": 10}},
        "flat": {"nmi": {"expected": 0.01, "band": 0.02, "n_clusters": 10},     # a collapsed smoke run
                 "acc": {"expected": 0.30, "band": 0.25, "n_clusters": 10}}}}   # band wider than the signal
    assert sorted(gate.ungated(data)) == ["flat.acc", "flat.nmi"]
    expected = tmp_path / "e.json"
    expected.write_text(json.dumps(data))
    metrics = tmp_path / "m.json"
    metrics.write_text(json.dumps({"runs": {"good": {"acc": 0.6}, "flat": {"nmi": 0.0, "acc": 0.1}}}))
    assert gate.main(["--metrics", str(metrics), "--expected", str(expected)]) == 0
    out = capsys.readouterr().out
    assert "2 values cannot detect a collapse" in out and "all 1 gated values" in out


def test_entry_reads_both_formats():
    assert gate.entry({"tolerance": 0.03, "runs": {"r": {"acc": 0.5}}}, "r", "acc") == (0.5, 0.03)
    assert gate.entry({"runs": {"r": {"acc": {"expected": 0.5, "band": 0.1}}}}, "r", "acc") == (0.5, 0.1)
    assert gate.entry({"runs": {}}, "r", "acc") is None and gate.entry(None, "r", "acc") is None


def test_update_rewrites_reproducible_values_and_flags_moved_chaotic_ones():
    data = {"floor": 0.02, "runs": {"km": {"acc": {"expected": 0.5, "band": 0.02}},
                                    "ln": {"acc": {"expected": 0.4, "band": 0.1}}}}
    new, stale = gate.update_expected(data, {"runs": {"km": {"acc": 0.55}, "ln": {"acc": 0.2}}})
    assert new["runs"]["km"]["acc"]["expected"] == 0.55
    assert new["runs"]["ln"]["acc"]["expected"] == 0.4 and stale == ["ln.acc"]


def test_the_committed_expectations_have_measured_bands_and_can_fail():
    """Every gated value of the committed file has a band with its basis, none below the floor,
    and most can detect a collapse (the few that cannot are named by the gate)."""
    data = gate.load_expected("smoke")
    values = [v for vals in data["runs"].values() for v in vals.values()]
    assert values and all(isinstance(v, dict) and v["band"] >= data["floor"] and v["basis"] for v in values)
    assert len(gate.ungated(data)) < len(values) / 4

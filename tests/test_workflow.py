"""The DVC workflow around the stages: run declarations, the plan, resolve, freshness, repro summary."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from clusterbench import config, figures, freshness, plan, pull, repro, resolve

REPO = Path(__file__).resolve().parents[1]


def _load_repo_params(tmp_path, runs_text: str | None = None):
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    (tmp_path / "runs.yaml").write_text(runs_text if runs_text is not None else (REPO / "runs.yaml").read_text())
    return config.load(tmp_path / "params.yaml")


def test_adding_a_battery_data_set_is_one_line(tmp_path):
    runs_text = (REPO / "runs.yaml").read_text()
    before = _load_repo_params(tmp_path)
    anchor = "    - uci-yeast\n"
    assert runs_text.count(anchor) == 1
    after = _load_repo_params(tmp_path, runs_text.replace(anchor, anchor + "    - wut-x2\n"))
    new_runs = set(after.baselines) - set(before.baselines)
    battery_methods = yaml.safe_load(runs_text)["baselines"]["battery"]["methods"]
    assert new_runs == {f"{variant}-wut-x2" for variant in battery_methods}
    assert after.views["wut-x2-raw"].dataset == "wut-x2" and "wut-x2" in after.datasets
    stage_lists = plan.stage_lists(after)
    assert "wut-x2" in stage_lists["datasets"] and "wut-x2-raw" in stage_lists["views"]
    assert stage_lists["baselines"]["birch-wut-x2"] == {"profile": "full", "view": "wut-x2-raw"}


def test_group_expansion_names_and_overrides():
    raw = {"profiles": {"full": {}, "smoke": {}}, "embeddings": {"raw": [], "pca": []},
           "baselines": {"g": {"profile": "smoke", "embedding": "pca", "datasets": ["digits"],
                               "methods": {"kmeans": {}, "km-fast": {"method": "kmeans", "n_init": 1}}}}}
    out, errors = config.expand(raw)
    assert errors == []
    assert out["baselines"]["smoke-kmeans-digits"] == {"method": "kmeans", "view": "smoke-digits-pca",
                                                       "profile": "smoke", "group": "g"}
    assert out["baselines"]["smoke-km-fast-digits"]["overrides"] == {"n_init": 1}
    assert out["views"]["smoke-digits-pca"] == {"dataset": "digits", "embedding": "pca", "profile": "smoke"}
    assert out["datasets"] == ["digits"]


def test_group_errors_are_one_line_each_with_suggestions():
    raw = {"profiles": {"full": {}}, "embeddings": {"raw": []},
           "baselines": {"g": {"datasets": ["digitz", "digits"], "methods": {"kmeanz": {}, "dbscan": {}}},
                         "h": {"datasets": ["digits"], "methods": {"dbscan": {}}}}}
    _, errors = config.expand(raw)
    assert any("baselines.g.datasets" in e and "did you mean 'digits'" in e for e in errors)
    assert any("baselines.g.methods.kmeanz" in e and "did you mean 'kmeans'" in e for e in errors)
    assert any("dbscan-digits" in e and "also declared" in e for e in errors)
    assert len(errors) == 3


def test_a_bad_method_value_is_reported_once_not_per_run(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["methods"]["kmeans"]["n_init"] = "fast"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "runs.yaml").write_text((REPO / "runs.yaml").read_text())
    with pytest.raises(config.ParamsError) as exc:
        config.load(tmp_path / "params.yaml")
    lines = str(exc.value).splitlines()
    assert len(lines) == 1 and "methods.kmeans.n_init" in lines[0] and "'fast'" in lines[0]


def test_committed_plan_is_in_sync_with_runs_yaml():
    params = config.load(REPO / "params.yaml")
    assert (REPO / "plan.yaml").read_text() == plan.render(params), "run `python -m clusterbench.plan`"


def test_stage_settings_hold_only_what_each_stage_depends_on():
    params = config.load(REPO / "params.yaml")
    settings = resolve.stage_settings(params)
    k_changed = params.model_copy(update={"model": params.model.model_copy(update={"k": 7})})
    seeds_changed = params.model_copy(deep=True)
    seeds_changed.profiles["smoke"] = seeds_changed.profiles["smoke"].model_copy(update={"seeds": [5]})
    after_k = resolve.stage_settings(k_changed)
    after_seeds = resolve.stage_settings(seeds_changed)
    changed_k = {key for key in settings if settings[key] != after_k[key]}
    changed_seeds = {key for key in settings if settings[key] != after_seeds[key]}
    assert changed_k and all(key.startswith(("knn/", "profiles/")) for key in changed_k)
    assert "runs/smoke-kmeans-digits" in changed_seeds
    assert not any(key.startswith(("embed/", "knn/", "download/")) for key in changed_seeds)
    # a run's file is a complete, valid params subset
    sub = config.from_dict({k: v for k, v in settings["runs/smoke-kmeans-digits"].items() if k != "effective_config"},
                           "x", check_references=True)
    assert list(sub.baselines) == ["smoke-kmeans-digits"]


def test_write_settings_rewrites_only_changed_files_and_removes_stale(tmp_path):
    assert resolve.write_settings({"a/x": {"v": 1}, "b/y": {"v": 2}}, tmp_path) == (2, 0)
    mtime = (tmp_path / "a/x.json").stat().st_mtime_ns
    assert resolve.write_settings({"a/x": {"v": 1}, "b/z": {"v": 3}}, tmp_path) == (1, 1)
    assert (tmp_path / "a/x.json").stat().st_mtime_ns == mtime
    assert not (tmp_path / "b/y.json").exists()


def test_freshness_judges_tracked_code_settings_and_outputs_not_data():
    tracked = {"clusterbench/tables.py", "reports/tables/a.md", "reports/paper/x.csv"}
    status = {
        "tables@full": [{"changed deps": {"clusterbench/tables.py": "modified", "data/full/runs": "deleted",
                                          "data/resolved/profiles/full.json": "modified"}},
                        {"changed outs": {"reports/tables": "modified"}}],
        "score@full": [{"changed deps": {"data/full/runs": "deleted"}}],
    }
    problems = freshness.stale(status, tracked)
    assert len(problems) == 3
    assert any("clusterbench/tables.py modified" in p for p in problems)
    assert any("data/resolved/profiles/full.json" in p for p in problems)
    assert any("committed output reports/tables" in p for p in problems)
    assert not any("data/full/runs" in p for p in problems)


def test_repro_summary_names_each_failure_once_with_its_reason():
    log = [
        "Running stage 'resolve':\n", "Updating lock file 'dvc.lock'\n",
        "Stage 'download@digits' didn't change, skipping\n",
        "Running stage 'download@cifar-10':\n",
        "error: dataset 'cifar-10': could not download cifar-10-python.tar.gz\n",
        "ERROR: failed to reproduce 'download@cifar-10': failed to run: python stages/download.py cifar-10\n",
        "Running stage 'train@x':\n", "error: CUDA out of memory\n",
        "ERROR: failed to reproduce 'train@x': failed to run\n",
    ]
    result = repro.parse_log(log)
    assert result["ran"] == ["resolve"] and result["up_to_date"] == ["download@digits"]
    assert repro.classify(result["failed"]["download@cifar-10"]) == "download needed"
    assert repro.classify(result["failed"]["train@x"]) == "no GPU"
    text = repro.summarise(result, ["resolve", "download@digits", "download@cifar-10", "train@x", "embed@c"], [])
    assert "failed: 2 (1 download needed, 1 no GPU)" in text
    assert "not run (an upstream stage failed): 1" in text


def test_repro_summary_reads_dvc_keep_going_output():
    log = [
        "Running stage 'download@usps':\n",
        "error: dataset 'usps': could not download usps.bz2:\n",
        "WARNING: failed to run: python stages/download.py usps, exited with 2\n",
        "WARNING: Stages 'embed@usps-raw', 'knn@usps-raw' and 'tables@full' will be skipped due to this failure\n",
        "Running stage 'download@digits':\n",
        "ERROR: failed to reproduce stages: 'download@usps'\n",
    ]
    result = repro.parse_log(log)
    assert result["failed"] == {"download@usps": "dataset 'usps': could not download usps.bz2:"}
    assert result["ran"] == ["download@digits"]
    assert result["skipped"] == ["embed@usps-raw", "knn@usps-raw", "tables@full"]
    assert "not run (an upstream stage failed): 3" in repro.summarise(result, [], ["download@usps"])


def test_matched_predictions_rename_clusters_to_their_matched_class():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([5, 5, 7, 7, 7, 9])
    matched = figures.matched_predictions(y_true, y_pred)
    assert list(matched) == ["0", "0", "1", "1", "1", "2"]


def test_curve_rows_take_the_methods_loss_name():
    rows = figures._curve_rows([{"epoch": 1, "train_loss": 2.0, "lr": 0.1, "note": "x"}, {"epoch": 2, "lr": 0.1}])
    assert rows == [{"epoch": 1, "train_loss": 2.0, "lr": 0.1, "loss": 2.0}]


def test_stage_scripts_pin_threads_whatever_the_environment():
    env = {**os.environ, "OMP_NUM_THREADS": "8", "OPENBLAS_NUM_THREADS": "8"}
    env.pop("CLUSTERBENCH_THREADS", None)
    code = "from clusterbench import threads; import os; print(os.environ['OMP_NUM_THREADS'], os.environ['OPENBLAS_NUM_THREADS'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1", "1"]
    env["CLUSTERBENCH_THREADS"] = "3"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["3", "3"]
    for script in (REPO / "stages").glob("*.py"):
        first = [line for line in script.read_text().splitlines() if line.startswith(("import", "from"))][0]
        if script.name not in ("score.py", "lnscc_figures.py"):   # unchanged: their committed outputs stay valid
            assert first.startswith("from clusterbench import threads"), script.name


def test_params_yaml_survives_dvc_exp_set_with_a_one_line_diff(tmp_path):
    """`dvc exp run -S model.k=10` rewrites params.yaml through DVC's YAML dumper: the committed file
    is already in that dumper's form, so only the set line changes."""
    from dvc.utils.hydra import apply_overrides

    path = tmp_path / "params.yaml"
    original = (REPO / "params.yaml").read_text()
    path.write_text(original)
    apply_overrides(str(path), ["model.k=10"])
    changed = [(a, b) for a, b in zip(original.splitlines(), path.read_text().splitlines()) if a != b]
    assert len(original.splitlines()) == len(path.read_text().splitlines())
    assert len(changed) == 1 and changed[0][1].startswith("  k: 10")


def test_summary_metrics_are_few_and_per_paper_method():
    from clusterbench import tables

    params = config.load(REPO / "params.yaml")
    scores = {"smoke-lnscc-digits": {"mean": {"acc": 0.5, "nmi": 0.4, "ari": 0.3}},
              "smoke-lnscc-mnist-sample10k": {"mean": {"acc": 0.3, "nmi": 0.2, "ari": 0.1}},
              "smoke-kmeans-digits": {"mean": {"acc": 0.8, "nmi": 0.7, "ari": 0.6}}}
    card = [{"within": 2, "below": 1, "not run": 3}]
    out = tables.summary_metrics(params, "smoke", scores, card)
    assert out["lnscc"] == {"acc": 0.4, "nmi": 0.3, "ari": 0.2, "runs": 2}
    assert out["baselines"]["runs"] == 1
    assert out["cells"] == {"ok": 2, "below": 1, "not_run": 3}
    assert len(json.dumps(out)) < 400


def test_pull_counts_only_cached_outputs_of_recorded_stages(tmp_path):
    lock = {"schema": "2.0", "stages": {
        "tables@full": {"outs": [{"path": "reports/tables", "md5": "a.dir"}]},
        "embed@v": {"outs": [{"path": "data/full/views/v.npz", "md5": "b"}]},
        "resolve": {"outs": [{"path": "data/resolved", "md5": "c.dir"}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    outs, stages = pull.cached_outputs(tmp_path / "dvc.lock", tracked={"reports/tables/x.md"})
    assert outs == ["data/full/views/v.npz", "data/resolved"]
    assert stages == {"tables@full", "embed@v", "resolve"}


def test_a_run_that_starts_from_another_run_depends_on_its_output():
    """IcicleGCN's Table 5/6 rows reuse the stage 1 of iciclegcn-imagenet-dogs: `dvc repro` of such
    a row must train that run first, so its folder is one of the row's dependencies."""
    lists = plan.stage_lists(config.load(REPO / "params.yaml"))["train"]
    assert lists["iciclegcn-k1-imagenet-dogs"]["after"] == "data/full/runs/iciclegcn-imagenet-dogs"
    assert lists["iciclegcn-released-imagenet-dogs"]["after"] == "data/full/runs/cc-imagenet-dogs"
    assert lists["lnscc-digits"]["after"] == "data/resolved/runs/lnscc-digits.json", "else its own settings file"
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert "${item.after}" in str(stages["train"]["do"]["deps"])
    bad = config.Run(method="iciclegcn", view="v", graph="v", profile="full",
                     overrides={"stage1_from": "data/full/runs/a", "backbone_from": "data/full/runs/b"})
    with pytest.raises(ValueError, match="at most one of stage1_from, backbone_from"):
        plan.upstream_output("x", bad)


def test_plan_check_names_the_stages_dvc_would_not_find(tmp_path, monkeypatch, capsys):
    """A run added to runs.yaml with a stale plan.yaml: DVC says only "Stage ... not found", so
    `python -m clusterbench.plan --check` names those stages and the command that fixes it."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    runs = {"datasets": ["digits"],
            "views": {"smoke-digits-raw": {"dataset": "digits", "embedding": "raw", "profile": "smoke"}},
            "baselines": {"smoke-kmeans-digits": {"method": "kmeans", "view": "smoke-digits-raw", "profile": "smoke"}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "runs.yaml").write_text(yaml.safe_dump(runs))
    monkeypatch.chdir(tmp_path)
    assert plan.main([]) == 0 and plan.main(["--check"]) == 0
    runs["baselines"]["smoke-ward-digits"] = {"method": "ward", "view": "smoke-digits-raw", "profile": "smoke"}
    (tmp_path / "runs.yaml").write_text(yaml.safe_dump(runs))
    before = (tmp_path / "plan.yaml").read_text()
    capsys.readouterr()
    assert plan.main(["--check"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "it lacks baselines@smoke-ward-digits," in err and "not found inside 'dvc.yaml'" in err
    assert "run `make plan`" in err
    assert (tmp_path / "plan.yaml").read_text() == before   # --check writes nothing


def test_make_targets_that_run_dvc_stages_regenerate_the_plan_first():
    """Every Makefile entry point that hands stage names to DVC depends on `plan` (so a run just
    added to runs.yaml is a stage DVC knows)."""
    text = (REPO / "Makefile").read_text()
    rules = {}
    for block in text.split("\n\n"):
        for line in block.splitlines():
            if ":" in line and not line.startswith(("\t", "#", " ")) and ":=" not in line and not line.startswith("."):
                target, rest = line.split(":", 1)
                rules[target.strip()] = (rest.split("##")[0].split(), block)
    runs_stages = [t for t, (_, body) in rules.items()
                   if "dvc repro" in body or "clusterbench.repro" in body or "clusterbench.launch" in body
                   or "clusterbench.pull" in body]
    assert {"smoke", "repro", "stage", "pull"} <= set(runs_stages)
    for target in runs_stages:
        assert "plan" in rules[target][0], f"make {target} does not regenerate plan.yaml first"


def test_readme_says_which_outputs_survive_a_failing_stage():
    """README's claim: DVC removes a stage's outputs before its command unless they are persistent,
    and only data/resolved is. dvc.yaml must keep it true."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    persistent = set()
    for stage in stages.values():
        body = stage.get("do", stage)
        for key in ("outs", "metrics", "plots"):
            for out in body.get(key, []):
                if isinstance(out, dict):
                    persistent |= {path for path, opts in out.items() if (opts or {}).get("persist")}
    assert persistent == {"data/resolved"}
    readme = (REPO / "README.md").read_text()
    section = readme.split("## When a command stops", 1)[1].split("\n## ", 1)[0]
    assert "`persist: true` (here\n  only `data/resolved`)" in section
    assert "dvc checkout <stage>" in section and "git checkout -- <path>" in section
    assert "not found inside 'dvc.yaml' file" in section and "make stage S=" in section


def _lock_of_figures(nfiles: int) -> dict:
    return {"figures@smoke": {"outs": [{"path": "reports/smoke/plots/curves", "md5": "x.dir", "nfiles": nfiles},
                                       {"path": "reports/smoke/summary.png", "md5": "y"}]},
            "train@smoke-x": {"outs": [{"path": "data/smoke/runs/smoke-x", "md5": "z.dir", "nfiles": 3}]}}


def test_freshness_fails_on_an_output_file_the_stage_wrote_but_git_lacks(tmp_path, monkeypatch):
    """figures@smoke wrote curves/smoke-ae-kmeans-mnist-sample10k.csv, dvc.lock counts it, nobody
    committed it: `dvc status` is clean here, a fresh clone lacks the file. Freshness says so."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.chdir(tmp_path)
    curves = tmp_path / "reports" / "smoke" / "plots" / "curves"
    curves.mkdir(parents=True)
    for name in ("a.csv", "b.csv"):
        (curves / name).write_text("epoch,loss\n")
    (tmp_path / "reports" / "smoke" / "summary.png").write_text("png")
    subprocess.run(["git", "add", "reports"], check=True)
    (curves / "smoke-ae-kmeans-mnist-sample10k.csv").write_text("epoch,loss\n")   # written, not committed
    (curves / ".c.csv.ab12.part").write_text("half")   # a killed writer's leftover: DVC ignores it
    tracked = freshness.git_tracked()
    untracked = freshness.untracked_files(["reports/smoke/plots/curves"])
    assert untracked == {"reports/smoke/plots/curves/smoke-ae-kmeans-mnist-sample10k.csv",
                         "reports/smoke/plots/curves/.c.csv.ab12.part"}
    ignored = [".*.part", ".*.old", "__pycache__"]
    problems = freshness.output_files_not_in_git(_lock_of_figures(3), tracked, untracked, ignored)
    assert problems == ["figures@smoke: reports/smoke/plots/curves/smoke-ae-kmeans-mnist-sample10k.csv in output "
                        "reports/smoke/plots/curves not committed to git (a fresh clone lacks it: `git add` it, "
                        "or remove it if the stage no longer writes it)"]
    # A fresh clone: the file is not on disk, dvc.lock still counts 3 files, git has 2.
    assert freshness.output_files_not_in_git(_lock_of_figures(3), tracked, set(), ignored) == [
        "figures@smoke: dvc.lock records 3 files in reports/smoke/plots/curves, git tracks 2 "
        "(commit the stage's outputs together with dvc.lock, or re-run it)"]
    # The reverse: git has a file the stage no longer writes (dvc.lock counts 1).
    assert "dvc.lock records 1 files" in freshness.output_files_not_in_git(_lock_of_figures(1), tracked, set())[0]
    # In agreement: nothing to say; the uncommitted train@ stage (outputs in the DVC cache) is not judged.
    assert freshness.output_files_not_in_git(_lock_of_figures(2), tracked, set(), ignored) == []
    # A single-file output of a committed stage that git lacks.
    tracked.discard("reports/smoke/summary.png")
    assert freshness.output_files_not_in_git(_lock_of_figures(2), tracked, set(), ignored) == [
        "figures@smoke: output reports/smoke/summary.png is recorded in dvc.lock but not committed to git"]


"""GHDCC figures (clusterbench/methods/ghdcc/figures.py, stages/ghdcc_figures.py): hand-made run folders
with known labels, so the drawn counts and scores are checked, not only that a PNG appeared."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import yaml

from clusterbench import config, io, metrics
from clusterbench.methods.ghdcc.figures import (PNG_MAGIC, confusion_figure, embedding_figure, lambda_sweep_figure,
                                        matched_confusion, write_all)

REPO = Path(__file__).resolve().parents[1]

# class 0 -> cluster 5 (2 of 3), class 1 -> cluster 7 (2 of 2), class 2 -> cluster 9 (2 of 3)
Y = np.array([0, 0, 0, 1, 1, 2, 2, 2])
PRED = np.array([5, 5, 7, 7, 7, 9, 9, 5])


def fake_run(path: Path, labels: np.ndarray, n_features: int = 4, seeds=None) -> Path:
    """A run folder as train@ leaves it: predictions.npz (labels per seed) and embedding.npz."""
    labels = np.atleast_2d(labels)
    seeds = np.arange(len(labels)) if seeds is None else np.asarray(seeds)
    n = labels.shape[1]
    io.write_npz(path / "predictions.npz", labels=labels, index=np.arange(n), seeds=seeds)
    emb = np.random.default_rng(0).normal(size=(n, n_features)).astype(np.float32)
    io.write_npz(path / "embedding.npz", embedding=emb, labels=labels[0], seed=seeds[0])
    return path


def is_png(path) -> bool:
    return Path(path).read_bytes()[:8] == PNG_MAGIC


def test_matched_confusion_puts_the_matched_clusters_on_the_diagonal():
    conf = matched_confusion(Y, PRED)
    assert list(conf["clusters"]) == [5, 7, 9] and list(conf["classes"]) == [0, 1, 2]
    np.testing.assert_array_equal(conf["matrix"], [[2, 1, 0], [0, 2, 0], [1, 0, 2]])
    assert conf["matched"] == 6 == np.trace(conf["matrix"])
    assert conf["acc"] == metrics.hungarian_accuracy(Y, PRED) == 0.75
    assert conf["cluster_to_class"] == {5: 0, 7: 1, 9: 2}


def test_matched_confusion_puts_unmatched_clusters_last_and_drops_noise():
    y = np.array([0, 0, 1, 1, -1, 0])
    pred = np.array([3, 3, 1, 1, 2, 8])   # four clusters, two classes; the -1 row is noise
    conf = matched_confusion(y, pred)
    assert list(conf["clusters"][:2]) == [3, 1] and set(conf["clusters"][2:]) == {8}
    assert conf["n"] == 5 and conf["matched"] == 4
    np.testing.assert_array_equal(conf["matrix"], [[2, 0, 1], [0, 2, 0]])


def test_confusion_figure_of_a_hand_made_run(tmp_path):
    run = fake_run(tmp_path / "run", np.stack([PRED, Y]), seeds=[3, 4])
    out = confusion_figure(run, Y, tmp_path / "fig" / "confusion.png")
    assert is_png(out["path"]) and out["seed"] == 3, "first seed only"
    np.testing.assert_array_equal(out["matrix"], [[2, 1, 0], [0, 2, 0], [1, 0, 2]])
    assert not [p for p in (tmp_path / "fig").iterdir() if p.name.endswith(".part")]


def test_embedding_figure_subsamples_with_a_fixed_seed_and_scores_all_rows(tmp_path):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 120)
    pred = np.where(rng.random(120) < 0.8, y + 10, 10)
    run = fake_run(tmp_path, pred)
    seen = []

    def project(x, seed):
        seen.append(x.copy())
        return x[:, :2]

    out = embedding_figure(run, y, tmp_path / "a.png", max_points=50, project=project)
    again = embedding_figure(run, y, tmp_path / "b.png", max_points=50, project=project)
    assert is_png(out["path"]) and (out["n"], out["drawn"]) == (120, 50)
    np.testing.assert_array_equal(seen[0], seen[1])
    assert out["acc"] == again["acc"] == pytest.approx(metrics.hungarian_accuracy(y, pred))
    assert out["nmi"] == pytest.approx(metrics.nmi(y, pred))
    with pytest.raises(ValueError, match="projection"):
        embedding_figure(run, y, tmp_path / "c.png", projection="pca")
    io.write_npz(run / "embedding.npz", embedding=np.zeros((100, 4)), labels=pred[:100], seed=0)
    with pytest.raises(ValueError, match="rows"):   # an embedding of other rows than the evaluated ones
        embedding_figure(run, y, tmp_path / "d.png", project=project)


def test_embedding_figure_with_tsne_on_a_few_points(tmp_path):
    y = np.repeat([0, 1, 2], 20)
    run = fake_run(tmp_path, y)
    out = embedding_figure(run, y, tmp_path / "t.png", projection="tsne")
    assert is_png(out["path"]) and out["projection"] == "tsne" and out["acc"] == 1.0


def test_lambda_sweep_with_one_run_missing(tmp_path):
    y = np.repeat([0, 1], 10)
    perfect, half = y, np.tile([0, 1], 10)
    runs = [(0.3, fake_run(tmp_path / "a", np.stack([perfect, half]))),   # ACC 1.0 and 0.5
            (0.5, tmp_path / "never-ran"),
            (0.1, fake_run(tmp_path / "b", np.stack([perfect, perfect])))]
    out = lambda_sweep_figure(runs, tmp_path / "fig6.png", view=y, reason="needs a GPU")
    assert is_png(out["path"])
    assert out["plotted"] == [0.1, 0.3] and out["missing"] == [0.5]
    mean, std, n = out["scores"][0.3]["acc"]
    assert (mean, std, n) == (pytest.approx(0.75), pytest.approx(0.25), 2)
    assert out["scores"][0.1]["nmi"][:2] == (pytest.approx(1.0), pytest.approx(0.0))
    assert out["notes"] == ["not run (λ = 0.5): needs a GPU"]


def test_lambda_sweep_with_no_run_still_renders_the_reason(tmp_path):
    runs = [(lam / 10, None) for lam in range(1, 10)]
    out = lambda_sweep_figure(runs, tmp_path / "fig6.png", reason={0.7: "ran elsewhere"} | {
        lam / 10: "needs the ImageNet-Dogs download and a GPU" for lam in (1, 2, 3, 4, 5, 6, 8, 9)})
    assert is_png(out["path"]) and out["plotted"] == [] and len(out["missing"]) == 9
    assert out["notes"] == ["not run (λ = 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 0.9): needs the ImageNet-Dogs "
                            "download and a GPU", "not run (λ = 0.7): ran elsewhere"]


def test_write_all_is_all_or_nothing(tmp_path):
    run = fake_run(tmp_path / "run", PRED)
    first, second = tmp_path / "out" / "confusion.png", tmp_path / "out" / "fig6.png"
    first.parent.mkdir()
    first.write_bytes(b"old")

    def boom(out):
        raise RuntimeError("drawing failed")

    with pytest.raises(RuntimeError, match="drawing failed"):
        write_all({first: lambda out: confusion_figure(run, Y, out), second: boom})
    assert first.read_bytes() == b"old" and not second.exists()
    assert sorted(p.name for p in first.parent.iterdir()) == ["confusion.png"], "no temporaries left"
    results = write_all({first: lambda out: confusion_figure(run, Y, out),
                         second: lambda out: lambda_sweep_figure([(0.7, run)], out, view=Y)})
    assert is_png(first) and is_png(second) and results[second]["path"] == second
    assert sorted(p.name for p in first.parent.iterdir()) == ["confusion.png", "fig6.png"]


def _stage():
    spec = importlib.util.spec_from_file_location("ghdcc_figures_stage", REPO / "stages" / "ghdcc_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stage_finds_the_lambda_sweeps_of_both_profiles(tmp_path, monkeypatch):
    stage = _stage()
    params = config.load(REPO / "params.yaml")
    monkeypatch.chdir(tmp_path)   # no run folders here: lambdas come from the settings
    full = stage.sweep_runs(params, stage.DEFAULT_SWEEP["full"])
    assert sorted(stage.run_lambda(params, r) for r in full) == pytest.approx([l / 10 for l in range(1, 10)])
    smoke = stage.sweep_runs(params, stage.DEFAULT_SWEEP["smoke"])
    assert sorted(stage.run_lambda(params, r) for r in smoke) == pytest.approx([0.1, 0.3, 0.5, 0.7, 0.9])
    assert all(params.train[r].profile == "smoke" for r in smoke)
    with pytest.raises(config.ParamsError, match="no GHDCC train run"):
        stage.sweep_runs(params, "ghdcc-lambda0?-imagenet-cats")
    monkeypatch.chdir(REPO)
    assert "GPU" in stage.not_run_reason("full", "ghdcc-lambda01-imagenet-dogs")
    assert "train@smoke-ghdcc-lambda01" in stage.not_run_reason("smoke", "smoke-ghdcc-lambda01-cnn-fashion-mnist-test")


def test_dvc_stage_matches_the_scripts_defaults():
    stage = _stage()
    item = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["ghdcc-figures"]
    for profile, entry in item["foreach"].items():
        assert entry["sweep"] == stage.DEFAULT_SWEEP[profile]
    outs = [next(iter(o)) for o in item["do"]["outs"]]
    assert outs == ["${item.reports}/figures/ghdcc-embedding-${item.dataset}.png",
                    "${item.reports}/figures/ghdcc-confusion-${item.dataset}.png",
                    "${item.reports}/figures/ghdcc-fig6-lambda.png"]

"""`python -m clusterbench.progress`: a long run's seeds read from their checkpoints, never trained."""
import hashlib

import numpy as np
import pytest

from clusterbench import config, datasets, embeddings, graphs, io, metrics, progress, runs
from clusterbench.methods import RunContext
from clusterbench.methods.constellationnet import unsupervised

from test_pipeline import SMOKE_PARAMS, write_params

RUN = "smoke-constellationnet-digits"


def _tree_digest(folder) -> str:
    digest = hashlib.sha1()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = SMOKE_PARAMS | {
        "methods": {"kmeans": {"n_init": 3},
                    "constellationnet": {"epochs": 3, "num_layers": 2, "batch_size": 32, "num_neighbors": [5, 5]}},
        "train": {RUN: {"method": "constellationnet", "view": "smoke-digits-raw", "graph": "smoke-digits-raw",
                        "profile": "smoke"}}}
    write_params(tmp_path, params)
    arrays = datasets.prepare("digits", io.dataset_dir("digits"), datasets.Fetcher(offline=True, progress=False))
    view = embeddings.build_view(arrays, datasets.stratified_subsample(arrays.y, 300, 0), [{"backend": "raw"}])
    view.save(io.view_path("smoke", "smoke-digits-raw"))
    graphs.view_graph(view.X, 10).save(io.graph_path("smoke", "smoke-digits-raw"))
    return config.load()


def test_finished_seeds_score_as_the_run_did_and_their_checkpoints_are_left_alone(project):
    params = project
    record = runs.execute(params, "train", RUN, progress=False)
    predictions = io.read_npz(io.run_dir("smoke", RUN) / "predictions.npz")
    y = embeddings.View.load(io.view_path("smoke", "smoke-digits-raw")).y[predictions["index"]]

    seeds = progress.run_progress(params, RUN)
    assert [s["seed"] for s in seeds] == [0, 1] and all(s["finished"] for s in seeds)
    assert [s["checkpoints"][0]["epoch"] for s in seeds] == [p["extra"]["epochs"] for p in record["per_seed"]]

    for seed, labels in zip((0, 1), predictions["labels"]):
        folder = io.checkpoint_dir("smoke", RUN, seed)
        before = _tree_digest(folder)
        scores = progress.score_finished_seed(params, RUN, seed)
        expected = metrics.score(y, labels, "clustering")
        assert scores == {k: round(float(v), 6) for k, v in expected.items()}
        assert _tree_digest(folder) == before


def test_an_unfinished_seed_is_reported_and_never_trained(project, capsys):
    params = project
    runs.execute(params, "train", RUN, progress=False)
    folder = io.checkpoint_dir("smoke", RUN, 1)
    for path in folder.rglob("*.pt"):
        path.unlink()

    class Interrupted(Exception):
        pass

    def interrupt_after_epoch_1(row):
        if row["epoch"] == 1:
            raise Interrupted

    run = params.train[RUN]
    impl, settings = config.method_config(params, "train", RUN)
    view, _ = runs.load_run_view(run)
    ctx = RunContext(view=view, graph=graphs.KnnGraph.load(io.graph_path("smoke", "smoke-digits-raw")), seed=1,
                     n_clusters=view.n_clusters, progress=False, checkpoint_dir=folder, log=interrupt_after_epoch_1)
    with pytest.raises(Interrupted):
        unsupervised.fit_predict(ctx, settings)

    seed0, seed1 = progress.run_progress(params, RUN)
    assert seed0["finished"] and not seed1["finished"]
    assert seed1["checkpoints"][0]["epoch"] == 1 and seed1["checkpoints"][0]["max_epochs"] == 2  # the smoke profile caps 3 at 2
    assert seed1["checkpoints"][0]["at_most_s_left"] >= 0
    before = _tree_digest(folder)
    with pytest.raises(progress.WouldTrain, match="seed 1"):
        progress.score_finished_seed(params, RUN, 1)
    assert _tree_digest(folder) == before

    progress.main([RUN, "--score"])
    out = capsys.readouterr().out
    assert f"{RUN}: 1 of 2 seeds finished" in out
    assert "seed 1 [constellationnet]: epoch 1/2" in out and "running or interrupted" in out
    assert "finished seeds (n=1)" in out

    for path in folder.rglob("*.pt"):
        path.unlink()
    assert progress.run_progress(params, RUN)[1] == {"seed": 1, "started": False, "checkpoints": [],
                                                     "finished": False}
    with pytest.raises(config.ParamsError, match="'smoke-kmeans-digits' is not a train run"):
        progress.run_progress(params, "smoke-kmeans-digits")

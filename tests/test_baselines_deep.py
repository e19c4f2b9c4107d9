"""Deep baselines: a tiny run of each (few iterations) for shapes, determinism and the AE cache."""
import numpy as np
import pytest
import torch

from clusterbench.baselines import deep, load_baseline
from clusterbench.embeddings import View
from clusterbench.methods import RunContext

TINY = {"hidden": [16], "embedding_dim": 2, "batch_size": 32, "schedule_unit": "iterations", "layerwise": 5,
        "finetune": 10, "pretrain_optimizer": "adam", "pretrain_lr": 1e-3}
PER_METHOD = {"ae-kmeans": {}, "dec": {"max_iter": 12, "update_interval": 4},
              "idec": {"max_iter": 12, "update_interval": 4}, "dcn": {"cluster_epochs": 2},
              "dkm": {"n_alphas": 2, "epochs_per_alpha": 1, "embedding_dim": None}}

@pytest.fixture(autouse=True, scope="module")
def _single_threaded():
    """One BLAS/OpenMP thread: on a shared 2-core machine spinning worker threads make these
    tiny problems 10-50x slower (see docs/baselines.md); results do not depend on it."""
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(threads)



@pytest.fixture(scope="module")
def view():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(m, 0.3, (30, 8)) for m in (0.0, 3.0, 6.0)]).astype(np.float32)
    y = np.repeat(np.arange(3), 30)
    return View(x, y, np.zeros(len(x), np.uint8), np.arange(len(x)))


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(deep, "CACHE_DIR", tmp_path / "ae-cache")
    return tmp_path / "ae-cache"


def _run(name, view, seed=0, **extra):
    impl = load_baseline(name)
    cfg = impl.Config(**{**TINY, **PER_METHOD[name], **extra})
    torch.manual_seed(123)  # the runner seeds globally; the baseline must reseed from ctx.seed itself
    return impl.fit_predict(RunContext(view=view, graph=None, seed=seed, n_clusters=3, progress=False), cfg)


@pytest.mark.parametrize("name", list(PER_METHOD))
def test_tiny_deep_run_shapes_and_determinism(view, name):
    a = _run(name, view, cache_pretrained=False)
    b = _run(name, view, cache_pretrained=False)
    assert a.labels.shape == (90,) and a.labels.min() >= 0 and a.labels.max() < 3
    dim = 3 if name == "dkm" else 2  # DKM's embedding size defaults to the number of clusters
    assert a.embedding.shape == (90, dim)
    assert np.array_equal(a.labels, b.labels) and np.allclose(a.embedding, b.embedding)
    assert a.extra["epochs"] >= 1


def test_layerwise_stage_trains_every_layer_then_the_whole(view):
    rows = []
    cfg = deep.AEKMeansConfig(**{**TINY, "hidden": [16, 8]})
    x = torch.from_numpy(view.X)
    ae, epochs = deep.pretrain(x, cfg, 3, seed=0, device="cpu", progress=False, log=rows.append)
    phases = [r["phase"] for r in rows]
    assert phases[0] == "layer1" and "layer3" in phases and phases[-1] == "autoencoder"
    assert rows[-1]["iteration"] == 10
    assert epochs == pytest.approx((3 * 5 + 10) / 3)  # 90 points / batch 32 -> 3 iterations per epoch


def test_epochs_cap_bounds_every_phase():
    cfg = deep.DECConfig(schedule_unit="iterations", layerwise=50000, finetune=100000, epochs=3, batch_size=256)
    assert deep.phase_iterations(cfg.layerwise, cfg, n=600) == 9  # 3 epochs x 3 batches
    cfg = deep.DCNConfig(schedule_unit="epochs", layerwise=50, epochs=1_000_000, batch_size=100)
    assert deep.phase_iterations(cfg.layerwise, cfg, n=1000) == 500


def test_dec_target_distribution_matches_its_definition():
    q = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    f = q.sum(0)
    expected = (q ** 2 / f) / (q ** 2 / f).sum(1, keepdim=True)
    assert torch.allclose(deep.target_distribution(q), expected)
    z = torch.tensor([[0.0, 0.0]])
    centres = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    q = deep.soft_assignment(z, centres, alpha=1.0)
    assert torch.allclose(q, torch.tensor([[0.5 / 0.7, 0.2 / 0.7]]))  # 1/(1+1), 1/(1+4), normalised


def test_pretrained_autoencoder_is_shared_through_the_cache(view, cache_dir):
    first = _run("ae-kmeans", view)
    assert first.extra["pretrained_from_cache"] is False and len(list(cache_dir.glob("*.pt"))) == 1
    dec = _run("dec", view)  # same pretraining settings and seed: reuses the autoencoder
    assert dec.extra["pretrained_from_cache"] is True
    other_seed = _run("ae-kmeans", view, seed=1)
    assert other_seed.extra["pretrained_from_cache"] is False
    again = _run("ae-kmeans", view)
    assert np.array_equal(first.labels, again.labels)


def test_a_cached_pretraining_logs_the_same_history_as_a_fresh_one(view, cache_dir):
    """A run's loss curve must not depend on whether its pretraining came from the cache."""
    def logged(name):
        rows = []
        impl = load_baseline(name)
        cfg = impl.Config(**{**TINY, **PER_METHOD[name]})
        result = impl.fit_predict(RunContext(view=view, graph=None, seed=0, n_clusters=3, progress=False,
                                             log=rows.append), cfg)
        return result, [r for r in rows if r.get("phase") != "clustering"]

    fresh, fresh_rows = logged("ae-kmeans")
    cached, cached_rows = logged("dec")
    assert (fresh.extra["pretrained_from_cache"], cached.extra["pretrained_from_cache"]) == (False, True)
    assert fresh_rows and cached_rows == fresh_rows
    # an entry from before the cache kept the history is pretrained again, not replayed empty
    path = next(cache_dir.glob("*.pt"))
    stored = torch.load(path, weights_only=True)
    torch.save({"state": stored["state"], "epochs": stored["epochs"]}, path)
    again, again_rows = logged("dec")
    assert again.extra["pretrained_from_cache"] is False and again_rows == fresh_rows


def test_reconstruction_losses():
    x = torch.zeros(2, 4)
    y = torch.ones(2, 4)
    assert deep.reconstruction_loss(x, y, "mse").item() == 1.0
    assert deep.reconstruction_loss(x, y, "half_mse").item() == 0.5
    assert deep.reconstruction_loss(x, y, "sse").item() == 4.0

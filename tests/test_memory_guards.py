"""Refuse before allocating: a width or batch setting that would need more memory than the machine
has is refused in one line naming the setting, its value, the estimate and the limit, before the
model or any batch exists (each refusal below takes milliseconds, where the allocation would take
terabytes); the configurations we run (params.yaml defaults, the smoke runs) are accepted."""
import time

import numpy as np
import pytest
import torch

from clusterbench import config as cfg
from clusterbench import graphs, resources
from clusterbench.checks import DataError
from clusterbench.datasets.synthetic import openset_faces
from clusterbench.embeddings import View
from clusterbench.methods import RunContext, cc, ghdcc, hilander, iciclegcn, lnscc
from clusterbench.methods.constellationnet import supervised, unsupervised

torch.set_num_threads(1)
GiB = 1 << 30


def _features(n=60, d=8):
    x = np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)
    return View(x, np.arange(n) % 3, np.zeros(n, np.uint8), np.arange(n))


def _images(n=64, size=16, c=3):
    px = np.random.default_rng(0).random((n, size, size, c), dtype=np.float32)
    return View(px.reshape(n, -1), np.arange(n) % 4, np.zeros(n, np.uint8), np.arange(n), (size, size, c))


def _ctx(view, k=None):
    return RunContext(view=view, graph=graphs.knn(view.X, k) if k else None, seed=0,
                      n_clusters=view.n_clusters, progress=False)


def _open_set():
    a = openset_faces(n_train_ids=10, n_test_ids=10, dim=16, max_size=12, seed=0)
    return View(a.X, a.y, a.split, np.arange(len(a.X)))


CNN = {"backbone": "cnn", "image_size": None}
CASES = {  # what the issue reported, and one obvious width / batch setting per method
    "lnscc batch_size": (lnscc, lambda: _ctx(_features(), 10), lnscc.Config(batch_size=int(1e9)), "batch_size",
                         "1000000000"),
    "lnscc encoder_dims": (lnscc, lambda: _ctx(_features(), 10), lnscc.Config(encoder_dims=(10**6, 10**6)),
                           "encoder_dims", "1000000"),
    "constellationnet hidden": (unsupervised, lambda: _ctx(_features(), 5), unsupervised.Config(hidden=200000),
                                "hidden", "200000"),
    "constellationnet-supervised hidden": (supervised, lambda: _ctx(_images(size=8, c=1), 5),
                                           supervised.Config(hidden=10**6), "hidden", "1000000"),
    "constellationnet-supervised cnn_rgb_hidden": (supervised, lambda: _ctx(_images(size=8), 5),
                                                   supervised.Config(cnn_rgb_hidden=10**8), "cnn_rgb_hidden",
                                                   "100000000"),
    "cc image_size": (cc, lambda: _ctx(_images()), cc.Config(backbone="cnn", image_size=100000), "image_size",
                      "100000"),
    "cc feature_dim": (cc, lambda: _ctx(_images()), cc.Config(**CNN, feature_dim=10**9), "feature_dim",
                       "1000000000"),
    "ghdcc gcn_hidden": (ghdcc, lambda: _ctx(_images()), ghdcc.Config(**CNN, gcn_hidden=10**8), "gcn_hidden",
                         "100000000"),
    "iciclegcn ae_hidden": (iciclegcn, lambda: _ctx(_images()), iciclegcn.Config(**CNN, ae_hidden=[10**8]),
                            "ae_hidden", "100000000"),
    "hilander hidden": (hilander, lambda: _ctx(_open_set()), hilander.Config(hidden=10**7), "hidden", "10000000"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_oversized_setting_is_refused_before_allocating(case):
    module, make_ctx, config, setting, value = CASES[case]
    ctx = make_ctx()
    start = time.perf_counter()
    with pytest.raises(MemoryError) as err:
        module.fit_predict(ctx, config)
    assert time.perf_counter() - start < 2.0  # nothing of the estimate's size was allocated
    message = str(err.value)
    assert "\n" not in message and f"{setting} = " in message and value in message
    assert "GiB" in message and "limit of" in message and setting in message.split(": lower ")[1].split(" or ")


def test_graph_batch_size_of_ghdcc_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(resources, "available_memory_bytes", lambda: 2 * GiB)
    costs = ghdcc.memory_costs(ghdcc.Config(**CNN, graph_batch_size=60000), (60000, 1, 28, 28), "cpu", 10)
    with pytest.raises(MemoryError, match=r"graph_batch_size = 60000 .*cosine graph over each prediction batch"):
        resources.check_costs("ghdcc", costs, "cpu")


def test_huge_beta_is_refused_naming_beta_not_the_distance_scale():
    graph = graphs.knn(_features().X, 10)
    with pytest.raises(DataError) as err:
        lnscc.pairs.build_pair_sets(graph, lnscc.Config(beta=1e9))
    message = str(err.value)
    assert message.startswith("lnscc: beta = 1e+09") and "lower beta (at most" in message
    assert "distance" not in message and "\n" not in message
    # the largest beta the line offers is accepted, just above it refused
    most = float(message.split("at most ")[1].split(" ")[0])
    sets = lnscc.pairs.build_pair_sets(graph, lnscc.Config(beta=most * 0.999))
    assert len(sets.fixed) + sets.n_dis <= lnscc.Config().max_pairs
    with pytest.raises(ValueError, match="finite"):
        lnscc.Config(beta=float("inf"))


def test_the_limit_is_the_gpu_memory_for_what_lives_on_the_gpu(monkeypatch):
    monkeypatch.setattr(resources, "available_memory_bytes", lambda: 64 * GiB)
    monkeypatch.setattr(resources, "available_device_memory_bytes",
                        lambda device: 2 * GiB if str(device).startswith("cuda") else None)
    host = resources.Cost("images", 10 * GiB, on_device=False)
    weights = resources.Cost("weights", 1 * GiB, (("hidden", 4096),))
    assert resources.check_costs("m", [host, weights], "cuda") == 11 * GiB  # 10 GiB host, 1 GiB GPU: fits
    with pytest.raises(MemoryError, match=r"m: hidden = 4096 would need about 2\.0 GiB on cuda .*1\.6 GiB"):
        resources.check_costs("m", [host, weights, resources.Cost("batch", 1 * GiB)], "cuda")
    with pytest.raises(MemoryError, match=r"about 61\.0 GiB \(more: 50\.0 GiB\).*limit of 51\.2 GiB"):  # CPU: all host
        resources.check_costs("m", [host, weights, resources.Cost("more", 50 * GiB, (("batch_size", 9),))], "cpu")


def test_backbone_constants_match_the_networks():
    for name in ("cnn", "resnet18"):
        net, dim = cc.build_backbone(name)
        assert dim == cc.BACKBONE_DIM[name]
        assert sum(p.numel() for p in net.parameters()) == cc.BACKBONE_PARAMS[name]


# --- what we run is accepted ---------------------------------------------------------------------

SMOKE_SHAPES = {"mnist-sample10k": (600, 1, 28, 28), "fashion-mnist-test": (600, 1, 28, 28),
                "digits": (600, 1, 8, 8), "openset-faces-synth": (600, 64), "fashion-mnist-test-open5": (600, 50)}


def _estimate(module, config, shape, k=50, n_clusters=10, device="cpu"):
    n, dims = shape[0], int(np.prod(shape[1:]))
    if module is lnscc:
        x = np.random.default_rng(0).random((n, 16), dtype=np.float32)  # the pair sets of a kNN graph of n rows
        sets = lnscc.pairs.build_pair_sets(graphs.knn(x, config.n_neighbors), config)
        return lnscc.memory_costs(config, sets, n, dims, n_clusters)
    if module is unsupervised:
        return unsupervised.memory_costs(config, n, dims, k, n_clusters)
    if module is supervised:
        return supervised.memory_costs(config, shape, int(n * 0.7), k, n_clusters)
    if module is hilander:
        return hilander.memory_costs(config, n // 2, n // 2, dims)
    if module is cc:
        return cc.memory_costs(config, shape, device, 2 * 512 * 512 + 512 * (config.feature_dim + n_clusters))
    return module.memory_costs(config, shape, device, n_clusters)


def test_every_smoke_run_fits_in_two_gib(monkeypatch):
    monkeypatch.setattr(resources, "available_memory_bytes", lambda: int(2 / resources.MEMORY_FRACTION * GiB))
    params = cfg.load()
    runs = [name for name, run in params.train.items() if run.profile == "smoke"]
    assert len(runs) >= 20
    for name in runs:
        module, config = cfg.method_config(params, "train", name)
        dataset = params.views[params.train[name].view].dataset
        shape = SMOKE_SHAPES.get(dataset, (600, 1, 28, 28))  # a data set added later: a 28 x 28 stand-in
        resources.check_costs(name, _estimate(module, config, shape), "cpu")


@pytest.mark.parametrize("method, shape, device, budget", [
    ("lnscc", (10000, 784), "cpu", 2),                    # fashion-mnist-test, run on the 2-core machine
    ("constellationnet", (10000, 784), "cpu", 2),         # mnist-sample10k
    ("constellationnet-supervised", (70000, 1, 28, 28), "cpu", 8),
    ("hilander", (20000, 64), "cpu", 2),                  # openset-faces-synth
    ("cc", (60000, 3, 32, 32), "cuda", 40),               # CIFAR-10 at 224 x 224, ResNet-34: GPU-sized
    ("ghdcc", (60000, 3, 32, 32), "cuda", 40),
    ("iciclegcn", (60000, 3, 32, 32), "cuda", 40),
])
def test_params_yaml_defaults_are_accepted(method, shape, device, budget):
    from clusterbench.methods import load_method

    module = {"constellationnet": unsupervised, "constellationnet-supervised": supervised}.get(method) \
        or load_method(method)
    config = module.Config(**cfg.load().methods.get(method, {}))
    total = sum(c.nbytes for c in _estimate(module, config, shape, device=device))
    assert total < budget * GiB, f"{method}: {resources.format_bytes(total)}"

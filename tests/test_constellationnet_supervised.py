"""Supervised ConstellationNet: the split, the inductive graph (no message ever leaves a test
point), the CNN embedders, the ConvNeXt path (random-init model, weights checks), end to end."""
import hashlib

import numpy as np
import pytest
import torch

from clusterbench.embeddings import View
from clusterbench.graphs import knn
from clusterbench.methods import RunContext, load_method
from clusterbench.methods.constellationnet import convnext as C
from clusterbench.methods.constellationnet import supervised as S
from clusterbench.methods.constellationnet.models import CNNEmbedder, embed_in_chunks
from clusterbench.methods.constellationnet.sampling import inductive_graph, sample_subgraph, seed_batches


# --- split ----------------------------------------------------------------------------------

def test_split_uses_the_views_split_and_carves_validation_from_train():
    y = np.tile(np.arange(4), 50)
    split = np.r_[np.zeros(160, np.uint8), np.ones(40, np.uint8)]
    fit, val, test, source = S.make_split(y, split, 0.2, 0.25, seed=0)
    assert source == "the view's split"
    assert np.array_equal(test, np.arange(160, 200))
    assert len(val) == 40 and len(fit) == 120 and not set(val) & set(fit)
    assert set(fit) | set(val) == set(range(160))
    assert np.bincount(y[val]).tolist() == [10, 10, 10, 10]  # stratified


def test_own_split_is_seeded_stratified_and_disjoint():
    y = np.repeat(np.arange(5), 40)
    split = np.ones(200, np.uint8)  # mnist-sample10k: every row is "test"
    a = S.make_split(y, split, 0.2, 0.1, seed=0)
    b = S.make_split(y, split, 0.2, 0.1, seed=0)
    c = S.make_split(y, split, 0.2, 0.1, seed=1)
    assert all(np.array_equal(u, v) for u, v in zip(a[:3], b[:3]))
    assert not np.array_equal(a[2], c[2])
    fit, val, test, source = a
    assert "stratified" in source and len(test) == 40 and len(val) == 16
    assert np.bincount(y[test]).tolist() == [8] * 5
    assert sorted(np.concatenate([fit, val, test]).tolist()) == list(range(200))


# --- the inductive graph --------------------------------------------------------------------

def test_inductive_graph_links_queries_to_fit_points_only():
    rng = np.random.default_rng(0)
    x_fit = rng.normal(size=(50, 4)).astype(np.float32)
    x_query = rng.normal(size=(20, 4)).astype(np.float32)
    graph = inductive_graph(x_fit, x_query, k=5)
    assert graph.n == 70 and graph.k == 5
    # Every message starts at a fit point: no test->test and no test->train path exists.
    assert graph.sources.max() < 50
    # Fit points listen to their 5 nearest other fit points, queries to their 5 nearest fit points.
    d_fit = np.linalg.norm(x_fit[:, None] - x_fit[None], axis=2)
    np.fill_diagonal(d_fit, np.inf)
    assert np.array_equal(np.sort(graph.sources[:50], 1), np.sort(np.argsort(d_fit, 1)[:, :5], 1))
    d_query = np.linalg.norm(x_query[:, None] - x_fit[None], axis=2)
    assert np.array_equal(np.sort(graph.sources[50:], 1), np.sort(np.argsort(d_query, 1)[:, :5], 1))
    np.testing.assert_allclose(graph.weights[50:], 1 / (np.sort(d_query, 1)[:, :5] + 1e-8), rtol=1e-4)
    # Training subgraphs, seeded with fit points, never reach a query point.
    rng = np.random.default_rng(0)
    for seeds in seed_batches(np.arange(50), 16, rng):
        sub = sample_subgraph(graph, seeds, [5, 5], rng)
        assert sub.nodes.max() < 50


# --- embedders ------------------------------------------------------------------------------

def test_cnn_embedders_match_the_paper_architecture():
    grey = CNNEmbedder(1, 28, 28)
    # conv 1->32, 32->64, 64->128 (3x3) and 128*7*7 -> 256: the MNIST CNN's 1,698,560 weights.
    assert sum(p.numel() for p in grey.parameters()) == 320 + 18_496 + 73_856 + 1_605_888
    assert grey(torch.zeros(2, 1, 28, 28)).shape == (2, 256)
    rgb = CNNEmbedder(3, 32, 32)
    assert [m.out_features for m in rgb.project if isinstance(m, torch.nn.Linear)] == [512, 256]
    assert rgb(torch.zeros(2, 3, 32, 32)).shape == (2, 256)
    with pytest.raises(ValueError, match="too small"):
        CNNEmbedder(1, 3, 3)


def test_chunked_checkpointed_embedding_equals_the_plain_one():
    torch.manual_seed(0)
    cnn = CNNEmbedder(1, 8, 8, out_dim=6)
    images = torch.randn(10, 1, 8, 8)
    plain = cnn(images)
    grads_plain = torch.autograd.grad(plain.square().sum(), list(cnn.parameters()))
    chunked = embed_in_chunks(cnn, images, chunk=3, checkpoint=True)
    grads_chunked = torch.autograd.grad(chunked.square().sum(), list(cnn.parameters()))
    torch.testing.assert_close(plain, chunked)
    for a, b in zip(grads_plain, grads_chunked):
        torch.testing.assert_close(a, b)


def test_convnext_features_on_a_random_init_model():
    import torchvision

    model = C.ConvNeXtFeatures(torchvision.models.convnext_tiny(weights=None))
    images = np.random.default_rng(0).random((3, 1, 20, 20)).astype(np.float32)  # grey -> RGB
    feats = C.convnext_features(model, images, "cpu", batch_size=2, size=32)
    assert feats.shape == (3, 768) and np.isfinite(feats).all()
    x = C.preprocess(images, size=32)
    assert x.shape == (3, 3, 32, 32)
    torch.testing.assert_close(x[:, 0], x[:, 1] * C.IMAGENET_STD[1] / C.IMAGENET_STD[0]
                               + (C.IMAGENET_MEAN[1] - C.IMAGENET_MEAN[0]) / C.IMAGENET_STD[0])


def test_convnext_weights_are_verified_and_missing_weights_are_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CLUSTERBENCH_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    monkeypatch.setenv("CLUSTERBENCH_OFFLINE", "1")
    spec = C.CONVNEXTS["convnext-large"]
    with pytest.raises(C.MissingWeightsError, match="convnext_large-ea097f82.pth"):
        C.locate_weights(spec)
    (tmp_path / spec.filename).write_bytes(b"not the weights")
    with pytest.raises(C.MissingWeightsError, match="corrupt"):
        C.locate_weights(spec)
    good = tmp_path / "good-file.pth"
    good.write_bytes(b"some weights")
    prefix = hashlib.sha256(b"some weights").hexdigest()[:8]
    ok = C.ConvNeXtSpec("convnext_tiny", f"https://example.invalid/{good.name}", prefix, 768, 0)
    assert C.locate_weights(ok) == good
    with pytest.raises(ValueError, match="convnext-large"):
        C.load_convnext("convnext-huge")


# --- end to end -----------------------------------------------------------------------------

def bar_images(n_per=30, channels=1, size=8, seed=0):
    """Two classes of tiny images: a bright left half or a bright right half, plus noise."""
    rng = np.random.default_rng(seed)
    images = rng.random((2 * n_per, size, size, channels)).astype(np.float32) * 0.4
    images[:n_per, :, : size // 2] += 0.6
    images[n_per:, :, size // 2:] += 0.6
    y = np.repeat([0, 1], n_per)
    shape = (size, size) if channels == 1 else (size, size, channels)
    return images.reshape(len(y), -1), y, shape


def context(x, y, shape, split=None, seed=0):
    split = np.ones(len(y), np.uint8) if split is None else split
    view = View(x, y, split, np.arange(len(y)), shape)
    return RunContext(view=view, graph=knn(x, 10), seed=seed, n_clusters=2, progress=False)


FAST = dict(epochs=4, num_layers=2, batch_size=16, num_neighbors=[5, 5], cnn_out=16, cnn_rgb_hidden=16,
            hidden=16, lr=3e-3)


@pytest.mark.parametrize("channels, inference", [(1, "full_graph"), (3, "all_neighbours")])
def test_supervised_end_to_end(channels, inference):
    assert load_method("constellationnet-supervised") is S and S.TASK == "classification"
    x, y, shape = bar_images(channels=channels)
    config = S.Config(**FAST, inference=inference)
    a = S.fit_predict(context(x, y, shape), config)
    b = S.fit_predict(context(x, y, shape), config)
    assert np.array_equal(a.labels, b.labels), "a fixed seed must give the same predictions"
    _, _, test, _ = S.make_split(y, np.ones(len(y), np.uint8), config.test_fraction, config.val_fraction, 0)
    assert np.array_equal(a.index, test) and len(a.labels) == len(test)
    assert (a.labels == y[test]).mean() >= 0.9
    assert a.extra["n_test"] == len(test) and a.extra["epochs"] >= 1
    assert {"train_loss", "val_loss", "val_top1"} <= set(a.history[0])


def test_a_test_prediction_never_depends_on_other_test_points():
    """Replace every other test image by noise: the remaining prediction must not change."""
    x, y, shape = bar_images()
    split = np.zeros(len(y), np.uint8)
    split[[5, 6, 40, 41, 42]] = 1
    config = S.Config(**{**FAST, "epochs": 2})
    base = S.fit_predict(context(x, y, shape, split), config)
    scores = {}
    for variant in range(2):
        x2 = x.copy()
        others = [r for r in (6, 40, 41, 42)]
        x2[others] = np.random.default_rng(variant).random((len(others), x.shape[1]))
        result = S.fit_predict(context(x2, y, shape, split), config)
        scores[variant] = result.labels[list(result.index).index(5)]
    assert scores[0] == scores[1] == base.labels[list(base.index).index(5)]


def test_log_probabilities_of_a_test_node_ignore_the_other_test_nodes():
    """Direct check at the network level: perturbing other queries' inputs leaves a query's
    log-probabilities bit-identical (both inference modes)."""
    torch.manual_seed(0)
    x, y, shape = bar_images()
    images = torch.from_numpy(x.reshape(len(y), 1, 8, 8))
    graph = inductive_graph(x[:50], x[50:], k=5)
    model = S.SupervisedConstellationNet(CNNEmbedder(1, 8, 8, 8), 0, 8, 2, 2)
    targets = np.arange(50, 60)
    for inference in ("full_graph", "all_neighbours"):
        config = S.Config(inference=inference, num_neighbors=[5, 5])
        before = S.predict_log_proba(model, images, graph, 50, targets, config, "cpu")
        perturbed = images.clone()
        perturbed[51:] = torch.randn_like(perturbed[51:])
        after = S.predict_log_proba(model, perturbed, graph, 50, targets, config, "cpu")
        torch.testing.assert_close(before[0], after[0], rtol=0, atol=0)
        assert not torch.equal(before[1:], after[1:])


def test_convnext_variant_end_to_end_with_a_random_init_model(monkeypatch):
    import torchvision

    def tiny(name):
        assert name == "convnext-large"
        return C.ConvNeXtFeatures(torchvision.models.convnext_tiny(weights=None))

    real_features = C.convnext_features
    monkeypatch.setattr(C, "load_convnext", tiny)
    monkeypatch.setattr(C, "convnext_features",  # 32x32 inputs keep the test fast
                        lambda model, images, device, progress=False: real_features(model, images, device, size=32))
    x, y, shape = bar_images(channels=3)
    config = S.Config(**{**FAST, "epochs": 1}, embedder="convnext-large")
    result = S.fit_predict(context(x, y, shape), config)
    assert len(result.labels) == result.extra["n_test"]
    assert result.extra["params"] < 100_000  # the frozen ConvNeXt (28 M) is not trained

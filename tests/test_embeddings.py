"""Embed stage: raw/pca/umap steps, option validation, preprocessing, pretrained backends.

Pretrained weights cannot be downloaded in CI, so the backends run here on randomly initialised
networks of the same architectures (``pretrained: false``), and the loading path is exercised
with checkpoints the tests write themselves in the published formats.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from clusterbench.datasets import DatasetArrays
from clusterbench.embeddings import (EmbeddingError, MissingWeightsError, View, apply_steps, build_view,
                                     raw_pixels, step_errors)
from clusterbench.embeddings import preprocess as pp
from clusterbench.embeddings import pretrained as ptr
from clusterbench.embeddings.steps import DINOV2_MODELS, parse_step


@pytest.fixture(autouse=True)
def _isolated_weights(tmp_path, monkeypatch):
    """No test may see a developer's cached weights or reach the network."""
    monkeypatch.setenv("CLUSTERBENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("CLUSTERBENCH_OFFLINE", "1")


def images(n=4, h=28, w=28, c=None, seed=0) -> DatasetArrays:
    rng = np.random.default_rng(seed)
    shape = (n, h, w) if c is None else (n, h, w, c)
    return DatasetArrays(rng.integers(0, 256, shape, dtype=np.uint8), np.arange(n) % 2, np.zeros(n, np.uint8))


# --- raw, pca, umap --------------------------------------------------------------------------------

def test_raw_scales_uint8_to_unit_interval_and_keeps_pixel_shape():
    x = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    feats, shape = raw_pixels(DatasetArrays(x, [0], [0]))
    np.testing.assert_allclose(feats, [[0.0, 1.0, 0.2, 0.4]], atol=1e-7)
    assert feats.dtype == np.float32 and shape == (2, 2)


def test_raw_passes_float_vectors_through_without_pixel_shape():
    x = np.array([[1.5, -2.0, 3.0]], dtype=np.float64)
    feats, shape = apply_steps(DatasetArrays(x, [0], [0]), [{"backend": "raw"}])
    np.testing.assert_array_equal(feats, x.astype(np.float32))
    assert shape == ()


def test_pca_dimension_and_known_variance():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(200, 1))
    x = np.hstack([t, 2 * t, -t]) + 1e-6 * rng.normal(size=(200, 3))  # a line in 3-D
    z, shape = apply_steps(DatasetArrays(x.astype(np.float32), np.zeros(200), np.zeros(200)),
                           [{"backend": "pca", "n_components": 2}])
    assert z.shape == (200, 2) and shape == ()
    # all variance on the first axis: var(t) * |(1, 2, -1)|^2 = 6 var(t)
    np.testing.assert_allclose(z[:, 0].var(), 6 * t.var(), rtol=1e-3)
    assert z[:, 1].var() < 1e-9


def test_pca_whiten_gives_unit_variance():
    x = np.random.default_rng(1).normal(size=(300, 5)).astype(np.float32) * [1, 2, 3, 4, 5]
    z, _ = apply_steps(DatasetArrays(x, np.zeros(300), np.zeros(300)),
                       [{"backend": "pca", "n_components": 3, "whiten": True}])
    np.testing.assert_allclose(z.var(axis=0, ddof=1), 1.0, rtol=1e-3)


def test_pca_too_many_components_is_an_error():
    x = np.zeros((5, 3), np.float32)
    with pytest.raises(EmbeddingError, match="n_components=4 exceeds"):
        apply_steps(DatasetArrays(x, np.zeros(5), np.zeros(5)), [{"backend": "pca", "n_components": 4}])


def test_umap_is_deterministic_for_a_seed_and_depends_on_it():
    x = np.random.default_rng(0).normal(size=(80, 6)).astype(np.float32)
    arrays = DatasetArrays(x, np.zeros(80), np.zeros(80))
    chain = [{"backend": "umap", "n_components": 3, "n_neighbors": 10}]
    a, _ = apply_steps(arrays, chain, seed=7)
    b, _ = apply_steps(arrays, chain, seed=7)
    c, _ = apply_steps(arrays, chain, seed=8)
    assert a.shape == (80, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_umap_bad_options_are_errors_naming_the_option():
    arrays = DatasetArrays(np.zeros((20, 4), np.float32), np.zeros(20), np.zeros(20))
    with pytest.raises(EmbeddingError, match="unknown option 'n_component'.*n_components"):
        apply_steps(arrays, [{"backend": "umap", "n_component": 2}])
    with pytest.raises(EmbeddingError, match="n_neighbors=30 must be smaller than the number of rows"):
        apply_steps(arrays, [{"backend": "umap", "n_neighbors": 30}])
    with pytest.raises(EmbeddingError, match="min_dist"):
        apply_steps(arrays, [{"backend": "umap", "min_dist": -1}])


# --- option validation ----------------------------------------------------------------------------

@pytest.mark.parametrize("steps, message", [
    ([{"backend": "tsne"}], "unknown embedding backend 'tsne'"),
    ([{"backend": "pca"}, {"backend": "raw"}], "step 1: 'raw' .* must be the first step"),
    ([{"backend": "raw"}, {"backend": "dinov2"}], "step 1: 'dinov2' .* must be the first step"),
    ([{"backend": "dinov2", "image_size": 200}], "multiple of the patch size 14"),
    ([{"backend": "dinov2", "model": "vitl16"}], "'vits14'.*'vitl14_reg'"),
    ([{"backend": "vgg16", "layer": "fc8"}], "'fc7'.*'gap'"),
    ([{"backend": "simclr"}], "model: Field required"),
    ([{"backend": "simclr", "model": "cifar-10", "features": "proj"}], "'head'.*'backbone'"),
    ([{"backend": "vgg16", "batch_size": 0}], "batch_size"),
])
def test_step_errors_name_the_problem(steps, message):
    errors = step_errors(steps)
    assert len(errors) == 1
    assert __import__("re").search(message, errors[0]), errors[0]


def test_valid_chains_have_no_errors():
    assert step_errors([{"backend": "dinov2", "model": "vitl14_reg", "batch_size": 64},
                        {"backend": "umap", "n_components": 256, "n_neighbors": 50, "min_dist": 0.0}]) == []
    assert step_errors([{"backend": "simclr", "model": "stl-10", "features": "backbone"}]) == []


def test_params_yaml_chains_are_valid_and_bad_options_fail_validation(tmp_path):
    import yaml

    from clusterbench import config

    root = Path(__file__).resolve().parents[1]
    params = config.load(root / "params.yaml")
    for name in ("dinov2-l", "dinov2-l-umap256", "dinov2-l-umap512", "umap256", "umap512", "vgg16",
                 "simclr-cifar10", "simclr-cifar20", "simclr-stl10"):
        assert name in params.embeddings, name
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["embeddings"]["vgg16"] = [{"backend": "vgg16", "layer": "fc9"}]
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(config.ParamsError, match=r"embeddings\.vgg16: step 0: vgg16: layer"):
        config.load(bad)


# --- preprocessing --------------------------------------------------------------------------------

def test_constant_grey_image_normalises_to_known_values():
    x = np.full((1, 28, 28), 128, np.uint8)
    t = pp.preprocess(pp.check_images(x, "dinov2"), 224)
    assert tuple(t.shape) == (1, 3, 224, 224) and t.dtype == torch.float32
    v = 128 / 255
    expected = [(v - 0.485) / 0.229, (v - 0.456) / 0.224, (v - 0.406) / 0.225]  # 0.0740645, 0.2051821, 0.4264924
    for ch in range(3):
        np.testing.assert_allclose(t[0, ch].numpy(), expected[ch], atol=1e-6)
    np.testing.assert_allclose(expected, [0.0740645, 0.2051821, 0.4264924], atol=1e-7)


def test_grayscale_becomes_three_identical_channels_at_224():
    x = images(2).X
    t = pp.preprocess(pp.check_images(x, "vgg16"), 224)
    assert tuple(t.shape) == (2, 3, 224, 224)
    # undo the per-channel normalisation: the three channels hold the same grey values
    m = torch.tensor(pp.IMAGENET_MEAN).view(1, 3, 1, 1)
    s = torch.tensor(pp.IMAGENET_STD).view(1, 3, 1, 1)
    g = t * s + m
    torch.testing.assert_close(g[:, 0], g[:, 1], atol=1e-6, rtol=0)
    torch.testing.assert_close(g[:, 0], g[:, 2], atol=1e-6, rtol=0)


@pytest.mark.parametrize("channels", [None, 3])
def test_preprocessing_matches_torchvision_on_pil_images(channels):
    """Our batch pipeline == the papers' Resize((224, 224)) -> ToTensor -> Normalize on PIL."""
    from PIL import Image
    from torchvision import transforms

    x = images(3, 32, 32, channels, seed=3).X
    ours = pp.preprocess(pp.check_images(x, "dinov2"), 224)
    tv = transforms.Compose([transforms.Resize((224, 224)), transforms.ToTensor(),
                             transforms.Normalize(pp.IMAGENET_MEAN, pp.IMAGENET_STD)])
    ref = torch.stack([tv(Image.fromarray(img).convert("RGB")) for img in x])
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)


def test_pretrained_backends_reject_vector_data():
    arrays = DatasetArrays(np.zeros((3, 10), np.float32), np.zeros(3), np.zeros(3))
    with pytest.raises(EmbeddingError, match="needs images .* uint8.*float32 \\(3, 10\\)"):
        apply_steps(arrays, [{"backend": "dinov2", "pretrained": False}])


# --- pretrained backends on random weights ----------------------------------------------------------

def embed(arrays, **step):
    prov: list = []
    x = ptr.embed_images(arrays, step, device="cpu", provenance=prov)
    return x, prov[0]


def test_dinov2_vits14_dimension_and_batch_size_invariance():
    arrays = images(4, 28, 28)
    step = {"backend": "dinov2", "model": "vits14", "pretrained": False, "image_size": 56}
    x1, info = embed(arrays, batch_size=1, **step)
    x4, _ = embed(arrays, batch_size=4, **step)
    assert x1.shape == (4, 384) and x1.dtype == np.float32
    np.testing.assert_allclose(x1, x4, atol=1e-5, rtol=1e-5)
    assert not np.allclose(x1[0], x1[1])  # different images, different features
    assert info["resized_from"] == [28, 28] and "CLS token" in info["output"]
    assert info["weights"].startswith("random initialisation")


@pytest.mark.parametrize("name", DINOV2_MODELS)
def test_dinov2_output_dimension_per_model(name):
    """Every DINOv2 size builds (on the meta device: no memory) with the documented width."""
    import timm

    spec = ptr.DINOV2[name]
    with torch.device("meta"):
        model = timm.create_model(spec.timm_name, pretrained=False, img_size=224, num_classes=0)
    assert model.num_features == {"s": 384, "b": 768, "l": 1024, "g": 1536}[name[3]] == spec.dim
    assert getattr(model, "num_reg_tokens", 0) == (4 if name.endswith("_reg") else 0)
    assert spec.weights_file.urls[0].startswith("https://dl.fbaipublicfiles.com/dinov2/dinov2_vit")


def _official_dinov2_state_dict(timm_model, registers: bool) -> dict:
    """A checkpoint in Meta's released key layout, made from a timm model built at 518 px.

    DINOv2 keeps the class token's position inside ``pos_embed`` and calls the registers
    ``register_tokens``, and stores the unused ``mask_token`` (ViT-S has no SwiGLU to rename).
    """
    sd = {k: v.clone() for k, v in timm_model.state_dict().items()}
    dim = sd["cls_token"].shape[-1]
    if registers:
        cls_pos = torch.randn(1, 1, dim)
        sd["register_tokens"] = sd.pop("reg_token")
        sd["cls_token"] = sd["cls_token"] - cls_pos
        sd["pos_embed"] = torch.cat([cls_pos, sd["pos_embed"]], dim=1)
    sd["mask_token"] = torch.zeros(1, dim)
    return sd


def test_dinov2_position_embedding_resampling_known_answers():
    const = torch.full((1, 37 * 37, 8), 0.25)
    out = ptr.interpolate_dinov2_pos_embed(const, 16)
    assert tuple(out.shape) == (1, 256, 8)
    torch.testing.assert_close(out, torch.full((1, 256, 8), 0.25))  # bicubic weights sum to one
    ramp = torch.randn(1, 37 * 37, 4)
    assert ptr.interpolate_dinov2_pos_embed(ramp, 37) is ramp  # native size: untouched (as DINOv2)


def test_dinov2_position_resampling_matches_dinov2_reference_values():
    """4x4 -> 2x2 grid of values k^2/10. Expected values were produced by DINOv2's own
    interpolate_pos_encoding (facebookresearch/dinov2, offset 0.1, no antialias); timm's
    antialiased resampling gives [1.301, 2.706, 10.925, 14.999] instead."""
    table = (torch.arange(16.0) ** 2 / 10).view(1, 16, 1)
    out = ptr.interpolate_dinov2_pos_embed(table, 2)[0, :, 0]
    torch.testing.assert_close(out, torch.tensor([0.43543941, 1.62528324, 10.38750076, 15.06850529]),
                               atol=1e-5, rtol=0)


def test_dinov2_register_checkpoint_conversion_folds_class_position():
    dim, m = 6, 3
    sd = {"cls_token": torch.ones(1, 1, dim), "pos_embed": torch.arange((1 + m * m) * dim, dtype=torch.float32).view(1, -1, dim),
          "register_tokens": torch.zeros(1, 4, dim), "mask_token": torch.zeros(1, dim),
          "blocks.0.mlp.w12.weight": torch.zeros(2), "blocks.0.mlp.w3.bias": torch.zeros(1)}
    out = ptr.convert_dinov2_state_dict(sd, grid=m)
    torch.testing.assert_close(out["cls_token"], 1 + sd["pos_embed"][:, :1])
    torch.testing.assert_close(out["pos_embed"], sd["pos_embed"][:, 1:])
    assert set(out) == {"cls_token", "pos_embed", "reg_token", "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc2.bias"}


@pytest.mark.parametrize("model", ["vits14", "vits14_reg"])
def test_dinov2_loads_a_released_format_checkpoint_from_the_cache(tmp_path, model):
    """The pretrained path end to end: cache lookup, sha256 recorded, conversion, features equal
    to the same weights run at 224 px in timm with DINOv2's position resampling."""
    import timm

    spec = ptr.DINOV2[model]
    torch.manual_seed(0)
    src = timm.create_model(spec.timm_name, pretrained=False, img_size=518, num_classes=0).eval()
    with torch.no_grad():
        for p in src.parameters():
            p.add_(0.02 * torch.randn_like(p))
    official = _official_dinov2_state_dict(src, registers=spec.registers > 0)
    path = tmp_path / "weights" / spec.weights_file.filename
    path.parent.mkdir(parents=True)
    torch.save(official, path)

    arrays = images(2, 28, 28, 3)
    x, info = embed(arrays, backend="dinov2", model=model, image_size=224, batch_size=2)
    assert info["weights"]["file"] == path.name and len(info["weights"]["sha256"]) == 64
    assert "trust on first use" in info["weights"]["verification"]
    lock = __import__("json").loads((path.parent / "clusterbench-weights.lock.json").read_text())
    assert lock[path.name]["sha256"] == info["weights"]["sha256"]

    ref = timm.create_model(spec.timm_name, pretrained=False, img_size=224, num_classes=0).eval()
    ref.load_state_dict(ptr.convert_dinov2_state_dict(official, 16))
    with torch.inference_mode():
        expected = ref(pp.preprocess(arrays.X, 224)).numpy()
    np.testing.assert_allclose(x, expected, atol=1e-5, rtol=1e-5)


def test_vgg16_layers_and_dimensions():
    arrays = images(2, 28, 28)
    x, info = embed(arrays, backend="vgg16", pretrained=False, image_size=32, batch_size=2)
    assert x.shape == (2, 4096) and (x >= 0).all()  # fc7 after ReLU
    assert info["output"].startswith("fc7")
    extractor = ptr.build_vgg16(parse_step({"backend": "vgg16", "pretrained": False, "layer": "gap"}))
    vgg = extractor.model.eval()
    batch = pp.preprocess(arrays.X, 32)
    with torch.inference_mode():
        gap = extractor.forward(batch)
        conv = vgg.features(batch)
        pool5 = torch.flatten(vgg.avgpool(conv), 1)
        fc7 = vgg.classifier[:5](pool5)  # fc6, ReLU, Dropout, fc7, ReLU in torchvision's order
    assert tuple(gap.shape) == (2, 512) and extractor.dim == 512
    torch.testing.assert_close(gap, conv.mean(dim=(2, 3)))
    assert pool5.shape[1] == ptr.VGG16_DIMS["pool5"] == 25088
    # the random-init fc7 extractor above is the same seeded network: same fc7 features
    np.testing.assert_allclose(x, fc7.numpy(), atol=1e-5, rtol=1e-5)
    assert ptr.VGG16_DIMS == {"fc7": 4096, "fc6": 4096, "pool5": 25088, "gap": 512}


def test_vgg16_weights_are_torchvisions_published_file():
    from torchvision.models import VGG16_Weights

    assert ptr.VGG16_WEIGHTS.urls[0] == VGG16_Weights.IMAGENET1K_V1.url
    assert ptr.VGG16_WEIGHTS.filename.endswith(f"-{ptr.VGG16_WEIGHTS.sha256_prefix}.pth")


def test_simclr_constants_are_scans():
    """SCAN's configs/pretext/simclr_{cifar10,cifar20,stl10}.yml (transformation_kwargs)."""
    assert ptr.SIMCLR["cifar-10"].mean == (0.4914, 0.4822, 0.4465)
    assert ptr.SIMCLR["cifar-10"].std == (0.2023, 0.1994, 0.2010)
    assert ptr.SIMCLR["cifar-20"].mean == (0.5071, 0.4867, 0.4408)
    assert ptr.SIMCLR["cifar-20"].std == (0.2675, 0.2565, 0.2761)
    assert (ptr.SIMCLR["stl-10"].mean, ptr.SIMCLR["stl-10"].std) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert [ptr.SIMCLR[m].image_size for m in ("cifar-10", "cifar-20", "stl-10")] == [32, 32, 96]
    assert [ptr.SIMCLR[m].variant for m in ("cifar-10", "cifar-20", "stl-10")] == ["cifar", "cifar", "stl"]


@pytest.mark.parametrize("model, size", [("cifar-10", 32), ("stl-10", 96)])
def test_simclr_dimensions_normalisation_and_batch_invariance(model, size):
    arrays = images(4, size, size, 3)
    head1, info = embed(arrays, backend="simclr", model=model, pretrained=False, batch_size=1)
    head4, _ = embed(arrays, backend="simclr", model=model, pretrained=False, batch_size=4)
    back, _ = embed(arrays, backend="simclr", model=model, pretrained=False, features="backbone")
    assert head1.shape == (4, 128) and back.shape == (4, 512)
    np.testing.assert_allclose(np.linalg.norm(head1, axis=1), 1.0, atol=1e-5)  # L2-normalised head
    np.testing.assert_allclose(head1, head4, atol=1e-5)
    assert "resized_from" not in info


def test_simclr_loads_scans_checkpoint_formats(tmp_path):
    """SCAN saves plain state dicts; training checkpoints wrap them in {'model': ...}; DataParallel
    adds 'module.'. All three load; a checkpoint of the wrong architecture is refused."""
    from clusterbench.embeddings.scan_resnet import ContrastiveModel

    torch.manual_seed(1)
    net = ContrastiveModel("cifar").eval()
    folder = tmp_path / "weights"
    folder.mkdir()
    arrays = images(3, 32, 32, 3)
    spec = ptr.SIMCLR["cifar-20"]
    with torch.inference_mode():
        expected = net(pp.preprocess(arrays.X, 32, spec.mean, spec.std)).numpy()
    sd = net.state_dict()
    for payload in (sd, {"model": sd, "epoch": 500}, {f"module.{k}": v for k, v in sd.items()}):
        for f in folder.iterdir():
            f.unlink()
        torch.save(payload, folder / spec.filename)
        x, info = embed(arrays, backend="simclr", model="cifar-20")
        np.testing.assert_allclose(x, expected, atol=1e-6)
    torch.save({k: v for k, v in sd.items() if not k.startswith("contrastive_head")}, folder / spec.filename)
    (folder / "clusterbench-weights.lock.json").unlink()
    with pytest.raises(EmbeddingError, match="does not fit the architecture; missing \\['contrastive_head"):
        embed(arrays, backend="simclr", model="cifar-20")


def test_device_falls_back_to_cpu_when_cuda_is_missing(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    prov: list = []
    with pytest.warns(UserWarning, match="CUDA is not available"):
        x = ptr.embed_images(images(2, 32, 32, 3), {"backend": "simclr", "model": "cifar-10", "pretrained": False},
                             device="cuda", provenance=prov)
    assert x.shape == (2, 128) and prov[0]["device"] == "cpu"
    assert ptr.resolve_device(None) == "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ptr.resolve_device("cpu") == "cpu"


def test_missing_weights_is_one_clear_error(tmp_path):
    with pytest.raises(MissingWeightsError) as err:
        apply_steps(images(2), [{"backend": "dinov2", "model": "vitl14"}])
    msg = str(err.value)
    assert "DINOv2 ViT-L/14 weights (dinov2_vitl14_pretrain.pth) are not available" in msg
    assert str(tmp_path / "weights") in msg and str(tmp_path / "torch-home" / "hub" / "checkpoints") in msg
    assert "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth" in msg
    assert "CLUSTERBENCH_OFFLINE" in msg and "CLUSTERBENCH_WEIGHTS" in msg
    assert "\n" not in msg


def test_build_view_records_provenance_and_round_trips(tmp_path):
    arrays = images(6, 32, 32, 3)
    view = build_view(arrays, np.array([0, 2, 4]), [{"backend": "simclr", "model": "cifar-10", "pretrained": False},
                                                  {"backend": "pca", "n_components": 2}], seed=3,
                      device="cpu", meta={"dataset": "toy"})
    assert view.X.shape == (3, 2) and view.image_shape == ()
    prov = view.meta["provenance"]
    assert [p["backend"] for p in prov] == ["simclr", "pca"]
    assert prov[0]["output_dim"] == 128 and prov[1]["seed"] == 3 and view.meta["dataset"] == "toy"
    view.save(tmp_path / "v.npz")
    back = View.load(tmp_path / "v.npz")
    np.testing.assert_array_equal(back.X, view.X)
    assert back.meta == view.meta and list(back.index) == [0, 2, 4]

"""Shared contrastive blocks: the two losses against explicit loops and closed forms, and the
batched augmentations against torchvision's single-image transforms."""
import colorsys
import math

import numpy as np
import pytest
import torch

from clusterbench.methods import contrastive as C

torch.set_num_threads(1)


def _cos(u, v):
    return float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))


def _loop_nt_xent(a, b, t, self_term=False):
    """Eqs. (1)-(3) of IcicleGCN written out term by term."""
    rows = list(a) + list(b)
    n = len(a)
    total = 0.0
    for i, x in enumerate(rows):
        pos = i + n if i < n else i - n
        num = math.exp(_cos(x, rows[pos]) / t)
        den = sum(math.exp(_cos(x, y) / t) for k, y in enumerate(rows) if self_term or k != i)
        total += -math.log(num / den)
    return total / (2 * n)


A = np.array([[1.0, 2.0, 0.5], [-1.0, 0.3, 2.0], [0.2, -0.7, 1.1]])
B = np.array([[0.9, 2.2, 0.1], [-0.5, 0.1, 1.0], [1.5, -0.2, 0.3]])


@pytest.mark.parametrize("t", [0.5, 1.0])
@pytest.mark.parametrize("self_term", [False, True])
def test_nt_xent_matches_the_explicit_formula(t, self_term):
    got = C.nt_xent(torch.tensor(A), torch.tensor(B), t, self_in_denominator=self_term)
    assert float(got) == pytest.approx(_loop_nt_xent(A, B, t, self_term), rel=1e-6)


def test_nt_xent_closed_form_for_orthonormal_pairs():
    # a_i = b_i = e_i: s(a_i, b_i) = 1, every other pair 0; denominator e^{1/t} + 2(N-1) e^0.
    e = torch.eye(3)
    t = 0.5
    assert float(C.nt_xent(e, e, t)) == pytest.approx(math.log(1 + 4 * math.exp(-1 / t)), rel=1e-6)
    # Swapping the partners of two rows makes the loss larger (the positives are no longer aligned).
    assert float(C.nt_xent(e, e[[1, 0, 2]], t)) > float(C.nt_xent(e, e, t))


def test_cluster_loss_is_nt_xent_over_columns_plus_entropy():
    pa = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.6, 0.1, 0.3]])
    pb = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.2, 0.2, 0.6], [0.5, 0.2, 0.3]])
    got = C.cluster_contrastive_loss(torch.tensor(pa), torch.tensor(pb), temperature=1.0)
    contrast = _loop_nt_xent(pa.T, pb.T, 1.0)   # eq. (4)-(5): columns are the contrasted rows
    entropy = lambda p: -sum(q * math.log(q) for q in p.mean(0))  # noqa: E731
    k = 3
    assert float(got.contrastive) == pytest.approx(contrast, rel=1e-6)
    assert float(got.entropy_a) == pytest.approx(entropy(pa), rel=1e-6)
    expected = contrast + (math.log(k) - entropy(pa)) + (math.log(k) - entropy(pb))
    assert float(got.total) == pytest.approx(expected, rel=1e-6)
    # A collapsed assignment (everything in cluster 0) pays the full entropy penalty log K per view.
    collapsed = torch.tensor([[1.0, 0.0, 0.0]] * 4)
    assert float(C.assignment_entropy(collapsed)) == pytest.approx(0.0, abs=1e-9)


def test_losses_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match="nt_xent"):
        C.nt_xent(torch.zeros(3, 2), torch.zeros(4, 2), 0.5)
    with pytest.raises(ValueError, match="cluster_contrastive_loss"):
        C.cluster_contrastive_loss(torch.zeros(3, 2), torch.zeros(3, 3), 1.0)


# --- augmentations -------------------------------------------------------------------------------

def _images(n=6, c=3, h=16, w=16, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_augment_shape_range_and_seed_determinism():
    x = _images()
    spec = C.AugmentSpec(size=24)
    a = C.augment(x, spec, torch.Generator().manual_seed(3))
    b = C.augment(x, spec, torch.Generator().manual_seed(3))
    c = C.augment(x, spec, torch.Generator().manual_seed(4))
    assert a.shape == (6, 3, 24, 24) and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_grayscale_images_go_through_by_channel_repeat():
    x = _images(c=1)
    out = C.augment(x, C.AugmentSpec(size=16), torch.Generator().manual_seed(0))
    assert out.shape == (6, 3, 16, 16)
    assert torch.equal(C.to_rgb(x)[:, 0], C.to_rgb(x)[:, 2])


def _identity_spec(size=16, flip_p=0.0):
    return C.AugmentSpec(size=size, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=flip_p, jitter_p=0.0,
                         grayscale_p=0.0)


def test_full_crop_without_jitter_is_the_identity_and_flip_mirrors():
    x = _images()
    same = C.augment(x, _identity_spec(), torch.Generator().manual_seed(0))
    assert torch.allclose(same, x, atol=1e-5)
    flipped = C.augment(x, _identity_spec(flip_p=1.0), torch.Generator().manual_seed(0))
    assert torch.allclose(flipped, torch.flip(x, dims=[3]), atol=1e-5)


def test_crop_boxes_fit_inside_the_image_and_follow_the_scale():
    boxes = C.crop_boxes(2000, 32, 32, C.AugmentSpec(size=32), torch.Generator().manual_seed(0))
    cx, cy, w, h = boxes.T
    assert bool(((cx - w / 2) >= -1e-9).all() and ((cx + w / 2) <= 1 + 1e-9).all())
    assert bool(((cy - h / 2) >= -1e-9).all() and ((cy + h / 2) <= 1 + 1e-9).all())
    area = (w * h).numpy()
    assert area.min() >= 0.06 and area.max() <= 1.0 + 1e-9   # scale (0.08, 1), up to pixel rounding
    assert 0.45 < np.median(area) < 0.65                      # U(0.08, 1) area, truncated by the fit test


def test_color_jitter_matches_torchvision_per_image():
    import torchvision.transforms.functional as TF

    x = _images(n=3)
    b, c, s, h = (torch.tensor([0.7, 1.0, 1.3]), torch.tensor([1.2, 0.6, 1.0]),
                  torch.tensor([0.8, 1.4, 1.0]), torch.tensor([0.05, -0.1, 0.0]))
    got = C.color_jitter(x, b, c, s, h)
    for i in range(3):
        ref = TF.adjust_brightness(x[i], float(b[i]))
        ref = TF.adjust_contrast(ref, float(c[i]))
        ref = TF.adjust_saturation(ref, float(s[i]))
        ref = TF.adjust_hue(ref, float(h[i]))
        assert torch.allclose(got[i], ref, atol=1e-4), i


def test_hsv_round_trip_matches_colorsys():
    rgb = torch.rand(1, 3, 4, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    hsv = C._rgb_to_hsv(rgb)
    for (i, j) in [(0, 0), (1, 3), (3, 4)]:
        ref = colorsys.rgb_to_hsv(*rgb[0, :, i, j].tolist())
        assert np.allclose(hsv[0, :, i, j].numpy(), ref, atol=1e-9)
    assert torch.allclose(C._hsv_to_rgb(hsv), rgb, atol=1e-9)


def test_resize_images_is_the_test_transform():
    x = _images(h=8, w=8)
    assert C.resize_images(x, None).shape == (6, 3, 8, 8)
    assert C.resize_images(x, 16).shape == (6, 3, 16, 16)
    assert torch.equal(C.resize_images(x, 8), x)

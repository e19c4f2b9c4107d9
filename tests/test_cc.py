"""CC: resume from a checkpoint gives exactly the uninterrupted result, kept epochs become
outputs, end to end through the method interface, and config errors name the parameter."""
import numpy as np
import pytest
import torch
from pydantic import ValidationError

from clusterbench.embeddings import View
from clusterbench.methods import RunContext, checkpoints, load_method
from clusterbench.methods import cc as CC

torch.set_num_threads(1)


def _view(n=64, c=3, size=16, seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.random((n, size, size, c), dtype=np.float32)
    shape = (size, size, c) if c == 3 else (size, size)
    return View(pixels.reshape(n, -1), np.arange(n) % 4, np.zeros(n, np.uint8), np.arange(n), shape)


def _ctx(tmp_path, name, view=None, seed=0):
    return RunContext(view=view or _view(), graph=None, seed=seed, n_clusters=4, progress=False,
                      workdir=tmp_path / name / "out", checkpoint_dir=tmp_path / name / "ckpt")


TINY = dict(backbone="cnn", image_size=None, batch_size=16, epochs=4, checkpoint_every=1, keep_checkpoints=[2, 4])


def _weights(tmp_path, name):
    return checkpoints.load(tmp_path / name / "ckpt" / "cc" / "latest.pt")["model"]


def test_resume_after_an_interruption_gives_exactly_the_uninterrupted_run(tmp_path, monkeypatch):
    config = CC.Config(**TINY)
    straight = CC.fit_predict(_ctx(tmp_path, "straight"), config)

    class Interrupt(Exception):
        pass

    def stop_after_two(epoch):
        if epoch == 2:
            raise Interrupt

    original_init = CC.contrastive.TwoViewTrainer.__post_init__

    def with_callback(self):
        original_init(self)
        self.on_epoch_end = stop_after_two

    monkeypatch.setattr(CC.contrastive.TwoViewTrainer, "__post_init__", with_callback)
    with pytest.raises(Interrupt):
        CC.fit_predict(_ctx(tmp_path, "resumed"), config)
    assert checkpoints.load(tmp_path / "resumed" / "ckpt" / "cc" / "latest.pt")["epoch"] == 2
    monkeypatch.setattr(CC.contrastive.TwoViewTrainer, "__post_init__", original_init)
    # Disturb the global RNGs: the checkpoint must restore everything the loop depends on.
    torch.manual_seed(123)
    np.random.seed(123)
    resumed = CC.fit_predict(_ctx(tmp_path, "resumed"), config)

    assert resumed.extra["resumed_from_epoch"] == 2 and straight.extra["resumed_from_epoch"] is None
    assert np.array_equal(straight.labels, resumed.labels)
    assert np.array_equal(straight.embedding, resumed.embedding)
    a, b = _weights(tmp_path, "straight"), _weights(tmp_path, "resumed")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["loss"] for r in straight.history] == [r["loss"] for r in resumed.history]


def test_two_epochs_then_four_equals_four(tmp_path):
    four = CC.fit_predict(_ctx(tmp_path, "four"), CC.Config(**TINY))
    CC.fit_predict(_ctx(tmp_path, "steps"), CC.Config(**{**TINY, "epochs": 2}))
    continued = CC.fit_predict(_ctx(tmp_path, "steps"), CC.Config(**TINY))
    assert continued.extra["resumed_from_epoch"] == 2
    assert np.array_equal(four.labels, continued.labels)
    a, b = _weights(tmp_path, "four"), _weights(tmp_path, "steps")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_kept_epochs_are_outputs_and_other_settings_do_not_resume(tmp_path):
    ctx = _ctx(tmp_path, "keep")
    CC.fit_predict(ctx, CC.Config(**TINY))
    kept = sorted(p.name for p in (ctx.workdir / "checkpoints").iterdir())
    assert kept == ["cc-epoch2.pt", "cc-epoch4.pt"]
    assert checkpoints.load(ctx.workdir / "checkpoints" / "cc-epoch2.pt")["epoch"] == 2
    # Another temperature changes the trajectory: the old checkpoint must not be continued.
    other = CC.fit_predict(_ctx(tmp_path, "keep"), CC.Config(**{**TINY, "instance_temperature": 0.2}))
    assert other.extra["resumed_from_epoch"] is None


def test_a_checkpoint_of_other_code_is_not_continued(tmp_path, monkeypatch):
    config = CC.Config(**{**TINY, "epochs": 2})
    CC.fit_predict(_ctx(tmp_path, "code"), config)
    same = CC.fit_predict(_ctx(tmp_path, "code"), CC.Config(**TINY))
    assert same.extra["resumed_from_epoch"] == 2
    monkeypatch.setattr(CC, "code_fingerprint", lambda *modules: "edited")
    fresh = CC.fit_predict(_ctx(tmp_path, "code"), CC.Config(**TINY))
    assert fresh.extra["resumed_from_epoch"] is None


def test_end_to_end_through_the_method_interface(tmp_path):
    impl = load_method("cc")
    assert impl.TASK == "clustering"
    config = impl.Config(backbone="cnn", image_size=20, batch_size=32, epochs=2, keep_checkpoints=[])
    result = impl.fit_predict(_ctx(tmp_path, "e2e", view=_view(c=1)), config)   # grayscale 16x16 -> 3x20x20
    assert result.labels.shape == (64,) and result.labels.min() >= 0 and result.labels.max() < 4
    assert result.embedding.shape == (64, 128)
    assert len(result.history) == 2 and {"instance_loss", "cluster_loss", "entropy"} <= set(result.history[0])


def test_training_lowers_the_loss_on_a_learnable_problem(tmp_path):
    # Two colours of images: CC should learn quickly that the two views agree.
    n = 64
    pixels = np.zeros((n, 16, 16, 3), np.float32)
    pixels[: n // 2, ..., 0] = 1.0
    pixels[n // 2:, ..., 2] = 1.0
    view = View(pixels.reshape(n, -1), np.repeat([0, 1], n // 2), np.zeros(n, np.uint8), np.arange(n), (16, 16, 3))
    config = CC.Config(backbone="cnn", image_size=None, batch_size=32, epochs=6, keep_checkpoints=[], lr=1e-3,
                       jitter_p=0.0, grayscale_p=0.0)
    ctx = RunContext(view=view, graph=None, seed=0, n_clusters=2, progress=False)
    result = CC.fit_predict(ctx, config)
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < losses[0]


def test_config_errors_name_the_parameter():
    with pytest.raises(ValidationError, match="keep_checkpoints"):
        CC.Config(keep_checkpoints=[0, 500])
    with pytest.raises(ValidationError, match="backbone"):
        CC.Config(backbone="resnet50")
    with pytest.raises(ValidationError, match="image_size"):
        CC.Config(image_size=2)


def test_a_feature_view_is_refused_with_a_clear_error(tmp_path):
    view = View(np.random.default_rng(0).random((20, 5), dtype=np.float32), np.arange(20) % 2,
                np.zeros(20, np.uint8), np.arange(20))
    ctx = RunContext(view=view, graph=None, seed=0, n_clusters=2, progress=False)
    with pytest.raises(ValueError, match="raw-pixel view"):
        CC.fit_predict(ctx, CC.Config(backbone="cnn", epochs=1))


def test_resnet_backbones_have_no_classifier():
    net, dim = CC.build_backbone("resnet18")
    assert dim == 512 and net(torch.rand(2, 3, 32, 32)).shape == (2, 512)


def test_checkpoint_folder_is_beside_the_run_outputs(tmp_path):
    from clusterbench import io

    runs = tmp_path / "data" / "full" / "runs"
    # inside runs.execute the seed folder lives in atomic_dir's temporary .<run>.XXXX.part folder,
    # in data/<profile>/.tmp (in runs/ before; both resolve to the same checkpoints)
    assert io.checkpoint_dir_of(runs.parent / ".tmp" / ".cc-cifar-10.ab12_x9.part" / "seed-2") == \
        tmp_path / "data" / "full" / "checkpoints" / "cc-cifar-10" / "seed-2"
    assert io.checkpoint_dir_of(runs / ".cc-cifar-10.ab12_x9.part" / "seed-2") == \
        tmp_path / "data" / "full" / "checkpoints" / "cc-cifar-10" / "seed-2"
    assert io.checkpoint_dir_of(runs / "cc-cifar-10" / "seed-0") == \
        tmp_path / "data" / "full" / "checkpoints" / "cc-cifar-10" / "seed-0"
    assert io.checkpoint_dir_of(tmp_path / "scratch" / "seed-0") == tmp_path / "scratch" / "seed-0" / "state"
    ctx = RunContext(view=_view(), graph=None, seed=0, n_clusters=4, workdir=runs / ".cc-x.q1.part" / "seed-0")
    assert CC.checkpoint_folder(ctx, "cc") == tmp_path / "data" / "full" / "checkpoints" / "cc-x" / "seed-0" / "cc"


def test_resume_through_the_derived_folder_after_a_failed_run(tmp_path):
    # A failed stage discards its .part folder; the next attempt (another .part name) resumes.
    runs = tmp_path / "data" / "smoke" / ".tmp"   # where runs.execute's temporaries are (io.temp_home)
    config = CC.Config(**{**TINY, "epochs": 2})
    first = RunContext(view=_view(), graph=None, seed=0, n_clusters=4, progress=False,
                       workdir=runs / ".smoke-cc-x.aaaa.part" / "seed-0")
    CC.fit_predict(first, config)
    second = RunContext(view=_view(), graph=None, seed=0, n_clusters=4, progress=False,
                        workdir=runs / ".smoke-cc-x.bbbb.part" / "seed-0")
    assert CC.fit_predict(second, CC.Config(**TINY)).extra["resumed_from_epoch"] == 2


def test_mixed_precision_and_loader_augmentation_paths_run(tmp_path):
    view = _view(n=32)
    for options in ({"mixed_precision": "on"}, {"augment_on": "loader"}):
        config = CC.Config(backbone="cnn", image_size=None, batch_size=16, epochs=1, keep_checkpoints=[], **options)
        ctx = RunContext(view=view, graph=None, seed=0, n_clusters=4, progress=False)
        result = CC.fit_predict(ctx, config)
        assert result.labels.shape == (32,) and np.isfinite(result.history[0]["loss"])

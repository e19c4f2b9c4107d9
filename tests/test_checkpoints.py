"""Checkpoints are read weights-only: a crafted file from the remote runs nothing and is refused in
one line; our own files (model, optimiser, every RNG state) round-trip exactly."""
import os
import pickle
import random

import numpy as np
import pytest
import torch

from clusterbench.checks import DataError
from clusterbench.methods import checkpoints


class RunsCode:
    """Unpickling this runs a shell command (what a crafted .pt on the DVC remote could do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _crafted(path, marker, how):
    if how == "torch.save":  # the zip format torch.save writes
        torch.save({"epoch": 1, "model": RunsCode(marker)}, path)
    else:  # a bare pickle, torch.load's legacy format
        path.write_bytes(pickle.dumps({"epoch": 1, "model": RunsCode(marker)}, protocol=2))


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path, how):
    marker = tmp_path / "pwned"
    path = tmp_path / "latest.pt"
    _crafted(path, marker, how)
    with pytest.raises(DataError) as err:
        checkpoints.load(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "system" in message
    assert f"delete {path} to restart from scratch" in message
    # resuming reads the same file the same way
    with pytest.raises(DataError, match="weights-only"):
        checkpoints.load_latest(tmp_path, fingerprint={}, max_epoch=10)
    assert not marker.exists()


def test_crafted_stage1_and_backbone_files_name_their_fix(tmp_path):
    from clusterbench.methods import iciclegcn

    marker = tmp_path / "pwned"
    path = tmp_path / "stage1-epoch2.pt"
    _crafted(path, marker, "torch.save")
    config = iciclegcn.Config(backbone="cnn", epochs=2, stage1_from=str(path))
    with pytest.raises(DataError, match="re-run the stage-1 run that wrote it"):
        iciclegcn.training._load_stage1(None, config, {"settings": {}}, seed=0)
    with pytest.raises(DataError, match="re-run the cc run that wrote it"):
        iciclegcn.training._init_backbone_from(None, str(path))
    assert not marker.exists()


def test_checkpoint_of_the_previous_format_is_refused_with_the_fix(tmp_path):
    """The old format stored np.random.get_state() (a NumPy array): weights-only loading refuses
    it, and the line says which global it asked for and what to do."""
    old = {"epoch": 2, "model": {"w": torch.ones(2)}, "torch_rng": torch.get_rng_state(),
           "numpy_rng": np.random.get_state(), "python_rng": random.getstate(), "fingerprint": {}}
    path = tmp_path / "latest.pt"
    torch.save(old, path)
    with pytest.raises(DataError) as err:
        checkpoints.load_latest(tmp_path, fingerprint={}, max_epoch=10)
    assert "numpy" in str(err.value) and f"delete {path} to restart from scratch" in str(err.value)


def test_rng_states_model_and_optimiser_round_trip(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(4, 3)).sum().backward()
    optimiser.step()
    generator = torch.Generator().manual_seed(3)
    shuffle = np.random.default_rng(5)
    random.seed(1), np.random.seed(2), torch.manual_seed(4)
    np.random.normal()  # leaves a cached Gaussian in NumPy's legacy state
    state = {"epoch": 3, "model": model.state_dict(), "optimizer": optimiser.state_dict(),
             "augment_rng": generator.get_state(), "shuffle_rng": shuffle.bit_generator.state,
             "history": [{"loss": 0.5}], "fingerprint": {"settings": {"dims": (1, 2)}, "seed": 0},
             **checkpoints.global_rng_states()}
    path = checkpoints.save(tmp_path, state)
    expected = (random.random(), np.random.normal(), np.random.randint(1 << 30), torch.rand(3))

    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    loaded = checkpoints.load(path)
    checkpoints.set_global_rng_states(loaded)
    got = (random.random(), np.random.normal(), np.random.randint(1 << 30), torch.rand(3))
    assert got[:3] == expected[:3] and torch.equal(got[3], expected[3])
    assert loaded["shuffle_rng"] == shuffle.bit_generator.state
    assert torch.equal(loaded["augment_rng"], generator.get_state())
    assert all(torch.equal(loaded["model"][k], v) for k, v in model.state_dict().items())
    other = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=1e-3)
    other.load_state_dict(loaded["optimizer"])
    assert other.state_dict()["param_groups"] == optimiser.state_dict()["param_groups"]
    assert loaded["fingerprint"] == state["fingerprint"] and loaded["history"] == state["history"]


def test_save_refuses_what_weights_only_loading_could_not_read(tmp_path):
    with pytest.raises(TypeError, match="numpy"):
        checkpoints.save(tmp_path, {"epoch": 1, "history": [{"loss": np.float64(0.5)}]})
    assert not (tmp_path / checkpoints.LATEST).exists()


def test_cached_autoencoder_is_read_weights_only(tmp_path, monkeypatch):
    from clusterbench.baselines import deep
    from clusterbench.embeddings import View
    from clusterbench.methods import RunContext

    monkeypatch.setattr(deep, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(deep, "_cache_key", lambda *args: "same")
    marker = tmp_path / "pwned"
    _crafted(tmp_path / "same.pt", marker, "torch.save")
    x = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    ctx = RunContext(view=View(x, np.arange(20) % 2, np.zeros(20, np.uint8), np.arange(20)), graph=None, seed=0,
                     n_clusters=2, progress=False)
    with pytest.raises(DataError, match="to pretrain again"):
        deep.pretrained_autoencoder(ctx, deep.AutoencoderConfig(hidden=[8], embedding_dim=2))
    assert not marker.exists()


def test_code_fingerprint_covers_a_method_folder_but_its_figures(tmp_path, monkeypatch):
    """One hash for every resumable method: a package counts every module of its folder except
    figures.py; editing any counted file (or the shared modules named beside it) changes it."""
    import importlib
    import sys as _sys

    package = tmp_path / "toymethod"
    package.mkdir()
    for name in ("__init__", "model", "figures"):
        (package / f"{name}.py").write_text(f"# {name}\n")
    (tmp_path / "shared_block.py").write_text("# shared\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    toy, shared = importlib.import_module("toymethod"), importlib.import_module("shared_block")
    try:
        before = checkpoints.code_fingerprint(toy, shared)
        assert checkpoints.code_fingerprint(toy, shared) == before and len(before) == 16
        (package / "figures.py").write_text("# a new plot\n")
        assert checkpoints.code_fingerprint(toy, shared) == before
        (package / "model.py").write_text("# model, fixed\n")
        after_model = checkpoints.code_fingerprint(toy, shared)
        assert after_model != before
        (tmp_path / "shared_block.py").write_text("# shared, fixed\n")
        assert checkpoints.code_fingerprint(toy, shared) != after_model
        assert checkpoints.code_fingerprint(toy) != checkpoints.code_fingerprint(toy, shared)
    finally:
        _sys.modules.pop("toymethod", None)
        _sys.modules.pop("shared_block", None)


def test_every_resumable_method_hashes_its_whole_folder():
    """The methods' fingerprints go through the one helper: editing a module a method's
    training imports (not only the ones a list names) must restart its checkpoints."""
    import inspect

    from clusterbench.methods import cc
    from clusterbench.methods.constellationnet import unsupervised
    from clusterbench.methods.ghdcc import training as ghdcc_training
    from clusterbench.methods.iciclegcn import training as iciclegcn_training
    from clusterbench.methods.lnscc import training as lnscc_training

    for module in (ghdcc_training, iciclegcn_training, lnscc_training, unsupervised):
        assert "code_fingerprint(sys.modules[__package__]" in inspect.getsource(module), module.__name__
    assert "checkpoints.code_fingerprint(contrastive, sys.modules[__name__]" in inspect.getsource(cc)

"""params.yaml validation: every mistake stops with one line naming key, value and choices."""
import copy

import pytest
import yaml

from clusterbench import config

VALID = {
    "model": {"k": 10},
    "profiles": {"smoke": {"max_samples": 100, "seeds": [0], "max_epochs": 2, "subsample_seed": 0,
                           "reports": "reports/smoke"}},
    "datasets": ["digits"],
    "embeddings": {"raw": [{"backend": "raw"}]},
    "views": {"smoke-digits-raw": {"dataset": "digits", "embedding": "raw", "profile": "smoke"}},
    "methods": {"kmeans": {"n_init": 2}},
    "baselines": {"smoke-kmeans-digits": {"method": "kmeans", "view": "smoke-digits-raw", "profile": "smoke"}},
}


def write(tmp_path, params):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def error_for(tmp_path, mutate) -> str:
    params = copy.deepcopy(VALID)
    mutate(params)
    with pytest.raises(config.ParamsError) as exc:
        config.load(write(tmp_path, params))
    return str(exc.value)


def test_valid_params_load(tmp_path):
    p = config.load(write(tmp_path, VALID))
    assert p.model.k == 10 and p.baselines["smoke-kmeans-digits"].method == "kmeans"


def test_unknown_dataset_names_value_and_suggests(tmp_path):
    msg = error_for(tmp_path, lambda p: p["datasets"].append("fashoin-mnist"))
    assert "datasets" in msg and "'fashoin-mnist'" in msg and "did you mean 'fashion-mnist'" in msg


def test_unknown_method_lists_allowed(tmp_path):
    def mutate(p):
        p["baselines"]["smoke-kmeans-digits"]["method"] = "kmaens"
    msg = error_for(tmp_path, mutate)
    assert "baselines.smoke-kmeans-digits.method" in msg and "'kmaens'" in msg and "kmeans" in msg


def test_wrong_type_names_key_and_value(tmp_path):
    msg = error_for(tmp_path, lambda p: p["model"].update(k="fifty"))
    assert "model.k" in msg and "'fifty'" in msg


def test_out_of_range_value(tmp_path):
    msg = error_for(tmp_path, lambda p: p["model"].update(k=0))
    assert "model.k" in msg and "greater than or equal to 1" in msg


def test_unknown_key_is_an_error(tmp_path):
    msg = error_for(tmp_path, lambda p: p["model"].update(kk=3))
    assert "model.kk" in msg and "Extra inputs are not permitted" in msg


def test_method_hyperparameters_are_validated_by_the_method(tmp_path):
    msg = error_for(tmp_path, lambda p: p["methods"]["kmeans"].update(init="banana"))
    assert "methods.kmeans" in msg and "init" in msg and "'banana'" in msg and "k-means++" in msg


def test_view_referencing_missing_embedding(tmp_path):
    msg = error_for(tmp_path, lambda p: p["views"]["smoke-digits-raw"].update(embedding="rwa"))
    assert "views.smoke-digits-raw.embedding" in msg and "did you mean 'raw'" in msg


def test_run_and_view_profiles_must_agree(tmp_path):
    def mutate(p):
        p["profiles"]["full"] = {**p["profiles"]["smoke"], "reports": "reports"}
        p["baselines"]["smoke-kmeans-digits"]["profile"] = "full"
    assert "belongs to profile 'smoke'" in error_for(tmp_path, mutate)


def test_every_problem_is_one_line(tmp_path):
    def mutate(p):
        p["datasets"].append("nope")
        p["views"]["smoke-digits-raw"]["embedding"] = "nope"
    msg = error_for(tmp_path, mutate)
    assert len(msg.splitlines()) == 2


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(config.ParamsError, match="not found"):
        config.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed")
    with pytest.raises(config.ParamsError, match="not valid YAML"):
        config.load(bad)


def test_profile_epoch_cap_applies_to_methods_with_epochs(tmp_path):
    p = config.load(write(tmp_path, VALID))
    impl, cfg = config.method_config(p, "baselines", "smoke-kmeans-digits")
    assert cfg.n_init == 2 and not hasattr(cfg, "epochs")


def test_repository_params_yaml_is_valid():
    params = config.load("params.yaml")
    assert "full" in params.profiles and "smoke" in params.profiles


def test_a_train_run_may_carry_its_own_seeds(tmp_path):
    def with_run(seeds):
        def mutate(p):
            p["methods"]["lnscc"] = {}
            p["train"] = {"smoke-lnscc-digits": {"method": "lnscc", "view": "smoke-digits-raw",
                                                 "graph": "smoke-digits-raw", "profile": "smoke", "seeds": seeds}}
        return mutate
    params = copy.deepcopy(VALID)
    with_run([3])(params)
    assert config.load(write(tmp_path, params)).train["smoke-lnscc-digits"].seeds == [3]
    msg = error_for(tmp_path, with_run([]))
    assert "train.smoke-lnscc-digits.seeds" in msg

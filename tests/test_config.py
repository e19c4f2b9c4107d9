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
    assert msg.endswith("model.kk: unknown key 'kk' (did you mean 'k'?); allowed: k")


@pytest.mark.parametrize("mutate, line", [
    (lambda p: p.update(methds=p.pop("methods")),
     "methds: unknown key 'methds' (did you mean 'methods'?)"),
    (lambda p: p["data"].update(mirros=[]) if "data" in p else p.update(data={"mirros": []}),
     "data.mirros: unknown key 'mirros' (did you mean 'mirrors'?); allowed: imagenet_dir, mirrors, offline"),
    (lambda p: p["profiles"]["smoke"].update(max_sampels=5),
     "profiles.smoke.max_sampels: unknown key 'max_sampels' (did you mean 'max_samples'?)"),
    (lambda p: p["views"]["smoke-digits-raw"].update(datset="digits"),
     "views.smoke-digits-raw.datset: unknown key 'datset' (did you mean 'dataset'?); "
     "allowed: dataset, embedding, min_k, profile"),
    (lambda p: p["baselines"]["smoke-kmeans-digits"].update(overides={"n_init": 1}),
     "baselines.smoke-kmeans-digits.overides: unknown key 'overides' (did you mean 'overrides'?)"),
    (lambda p: p["methods"]["kmeans"].update(n_inti=3),
     "methods.kmeans.n_inti: unknown key 'n_inti' (did you mean 'n_init'?)"),
    (lambda p: p["baselines"]["smoke-kmeans-digits"].update(overrides={"n_inti": 3}),
     "baselines.smoke-kmeans-digits (overrides of kmeans): n_inti: unknown key 'n_inti' (did you mean 'n_init'?)"),
    (lambda p: p["embeddings"]["raw"].append({"backend": "pca", "n_component": 2}),
     "unknown option 'n_component' (did you mean 'n_components'?)"),
])
def test_misspelt_key_at_every_level_gets_a_did_you_mean(tmp_path, mutate, line):
    """A typo in a key is the usual mistake: the message names it and suggests the right one."""
    msg = error_for(tmp_path, mutate)
    assert line in msg, msg
    assert len(msg.splitlines()) == 1


def test_misspelt_key_in_runs_yaml_group_and_block(tmp_path):
    """runs.yaml: a baselines group's keys and the file's own blocks get a did-you-mean too."""
    params = {k: v for k, v in copy.deepcopy(VALID).items() if k not in ("datasets", "views", "baselines")}
    write(tmp_path, params)
    runs = {"datasets": ["digits"], "views": VALID["views"],
            "baselines": {"g": {"profile": "smoke", "embeding": "raw", "datasets": ["digits"],
                                "methods": {"kmeans": {}}}}}
    (tmp_path / "runs.yaml").write_text(yaml.safe_dump(runs))
    with pytest.raises(config.ParamsError) as exc:
        config.load(tmp_path / "params.yaml")
    assert "runs.yaml: baselines.g.embeding: unknown key 'embeding' (did you mean 'embedding'?)" in str(exc.value)
    (tmp_path / "runs.yaml").write_text(yaml.safe_dump({"trian": {}}))
    with pytest.raises(config.ParamsError, match=r"unknown block 'trian' \(did you mean 'train'\?\)"):
        config.load(tmp_path / "params.yaml")


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

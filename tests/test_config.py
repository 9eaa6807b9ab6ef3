import json

import pytest

from spectral._config import DEFAULT_CONFIG, ConfigError, case_id, load_config, parse_case_id


def test_default_is_valid_and_has_required_cases():
    config = load_config()
    assert config["seeds"] >= 8 and config["alpha"] == 0.05 and config["min_relative_effect"] == 0.05
    assert config["shrink_factor"] == 0.2
    ids = {case_id(c) for c in config["cases"]}
    assert {"1d-relu", "1d-tanh", "1d-sine", "1d-relu-nobias", "2d-relu", "2d-tanh", "2d-sine", "2d-relu-nobias"} <= ids
    factors = config["sweep"]["factors"]
    assert min(factors) <= 0.1 and max(factors) == 1.0
    assert config is not DEFAULT_CONFIG


def test_file_overrides_part_and_keeps_the_rest(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('seeds = 3\n[training]\nwidth = 8\n')
    config = load_config(path)
    assert config["seeds"] == 3 and config["training"]["width"] == 8
    assert config["training"]["depth"] == DEFAULT_CONFIG["training"]["depth"]
    json_path = tmp_path / "c.json"
    json_path.write_text(json.dumps({"alpha": 0.01}))
    assert load_config(json_path, {"seeds": 2})["seeds"] == 2


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"seeds": 0}, "seeds"),
        ({"seeds": 2.5}, "seeds"),
        ({"seeds": "8"}, "seeds"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": "0.05"}, "alpha"),
        ({"shrink_factor": -1.0}, "shrink_factor"),
        ({"shrink_factor": float("nan")}, "shrink_factor"),
        ({"training": {"widht": 3}}, "widht"),
        ({"nonsense": 1}, "nonsense"),
        ({"training": {"learning_rate": {"sine": 0}}}, "learning_rate"),
        ({"training": 5}, "training"),
        ({"cases": []}, "cases"),
        ({"cases": [{"signal": "3d", "activation": "relu", "bias": True}]}, "signal"),
        ({"cases": [{"signal": "1d", "activation": "relu"}]}, "cases"),
        ({"cases": [{"signal": "1d", "activation": "relu", "bias": True}] * 2}, "cases"),
        ({"sweep": {"case": "1d-nothing"}}, "sweep.case"),
        ({"sweep": {"factors": [0.2, 0]}}, "sweep.factors"),
        ({"window": "nope"}, "window"),
        ({"signals": {"1d": {"frequencies": [1, 2]}}}, "signals.1d"),
    ],
)
def test_bad_values_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key):
        load_config(overrides=overrides)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.json"
    bad.write_text("{seeds: 3")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(bad)
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("seeds = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad_toml)
    top = tmp_path / "list.json"
    top.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="table"):
        load_config(top)


@pytest.mark.parametrize("name", ["1d-tanh", "2d-relu-nobias", "1d-sine", "2d-gelu"])
def test_case_names_round_trip(name):
    assert case_id(parse_case_id(name)) == name


@pytest.mark.parametrize("name", ["3d-tanh", "1d", "1d-swish", "1d-relu-bias", "", 5])
def test_bad_case_names(name):
    with pytest.raises(ConfigError, match="case name"):
        parse_case_id(name)

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral.claim._config import DEFAULT_CONFIG, ConfigError, case_id, load_config, parse_case_id


def test_default_is_valid_and_has_required_cases():
    config = load_config()
    assert config["seeds"] >= 16 and config["alpha"] == 0.05 and config["correction"] == "bh" and config["min_relative_effect"] == 0.05
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
        ({"correction": "bonferroni"}, "correction"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"alternate_window": ["kaiser", 1e308]}, "alternate_window"),
        ({"window": ["kaiser", float("nan")]}, "window"),
        ({"scope": "all"}, "scope"),
        ({"scope_grid": {"cases": ["2d-tanh"]}}, "scope_grid.cases"),
        ({"scope_grid": {"widths": []}}, "scope_grid.widths"),
        ({"cases": [{"signal": "1d", "activation": "relu", "bias": True, "optimizer": "lbfgs"}]}, "optimizer"),
        # issue 10, item 12: refused before any training, naming the key
        ({"sweep": {"factors": []}}, "sweep.factors"),
        ({"signals": {"1d": {"frequencies": [0, 3, 5]}}}, "signals.1d.frequencies"),
        ({"signals": {"2d": {"frequencies": [[0, 0], [1, 2], [-2, 1]]}}}, "signals.2d.frequencies"),
        ({"signals": {"1d": {"amplitudes": [1e300, 0.5, 0.25]}}}, "signals.1d.amplitudes"),
        ({"signals": {"2d": {"frequencies": [[100, 0], [1, 2], [-2, 1]]}}}, "signals.2d.frequencies"),
        ({"signals": {"1d": {"cutoff_margin": 200.0}}}, "signals.1d.cutoff_margin"),
        ({"window": ["kaiser", 1e308]}, "window"),
        # issue 10, item 9: work that cannot fit is refused up front, naming what to lower
        ({"seeds": 100000000000000000000}, "seeds"),
        ({"seeds": 100000}, "seeds"),
    ],
)
def test_bad_values_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key):
        load_config(overrides=overrides)


def test_only_toml_and_json(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seeds: 3")
    with pytest.raises(ConfigError, match="TOML .* or JSON .* only"):
        load_config(path)


def test_deeply_nested_files_are_refused(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ConfigError, match="not valid JSON: nested too deeply"):
        load_config(path)


def test_sgd_case_names_round_trip():
    assert parse_case_id("1d-tanh-sgd") == {"signal": "1d", "activation": "tanh", "bias": True, "optimizer": "sgd"}
    assert case_id(parse_case_id("2d-relu-nobias-sgd")) == "2d-relu-nobias-sgd"


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                     lambda children: st.lists(children, max_size=4)
                     | st.dictionaries(st.sampled_from(["seeds", "alpha", "training", "width", "cases", "signals",
                                                        "1d", "window", "sweep", "factors", "x"]), children,
                                       max_size=4), max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(_JSON)
def test_random_nested_json_is_a_config_or_a_config_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "c.json"
    path.write_text(json.dumps(data, allow_nan=True))
    try:
        config = load_config(path)
    except ConfigError:
        return
    assert config["seeds"] >= 1


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

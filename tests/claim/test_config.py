import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral.claim._config import (
    DEFAULT_CONFIG,
    ClaimConfig,
    ConfigError,
    SignalConfig,
    TrainingConfig,
    case_id,
    load_config,
    parse_case_id,
)


def test_default_is_valid_and_has_required_cases():
    config = load_config()
    assert config.seeds >= 16 and config.alpha == 0.05 and config.correction == "bh" and config.min_relative_effect == 0.05
    assert config.shrink_factor == 0.2
    ids = {case_id(c) for c in config.cases}
    # the synthetic cases only: the digits cases run from examples/claim-digits.toml (the default stays < 3 min)
    assert {"1d-relu", "1d-tanh", "1d-sine", "1d-relu-nobias", "2d-relu", "2d-tanh", "2d-sine", "2d-relu-nobias"} == ids
    factors = config.sweep.factors
    assert min(factors) <= 0.1 and max(factors) == 1.0
    assert config.to_dict() == DEFAULT_CONFIG


def test_file_overrides_part_and_keeps_the_rest(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('seeds = 3\n[training]\nwidth = 8\n')
    config = load_config(path)
    assert config.seeds == 3 and config.training.width == 8
    assert config.training.depth == DEFAULT_CONFIG["training"]["depth"]
    json_path = tmp_path / "c.json"
    json_path.write_text(json.dumps({"alpha": 0.01}))
    assert load_config(json_path, {"seeds": 2}).seeds == 2


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
        ({"weight_decay": 0.5}, "weight_decay"),  # the fixed-decay arm is gone (gradual_shrink replaced it)
        ({"training": {"recovery_max_steps": 100}}, "training.recovery_max_steps"),
        ({"training": {"init_jitter_ulps": -1}}, "training.init_jitter_ulps"),
        ({"training": {"min_overfit_fraction": 0.0}}, "training.min_overfit_fraction"),
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
    assert parse_case_id("1d-tanh-sgd").to_dict() == {"signal": "1d", "activation": "tanh", "bias": True, "optimizer": "sgd"}
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
    assert config.seeds >= 1


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


# --- The typed config (issue 13, item 2) ---------------------------------------------------------------------------


def test_tables_given_directly_are_frozen_too():
    config = ClaimConfig(signals={**ClaimConfig().signals})
    with pytest.raises(TypeError, match="frozen"):
        config.signals["1d"] = None
    assert hash(config) == hash(ClaimConfig())


def test_config_is_frozen_all_the_way_down():
    import dataclasses

    config = load_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seeds = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.training.width = 3
    with pytest.raises(TypeError, match="frozen"):
        config.training.learning_rate["relu"] = 1.0
    with pytest.raises(TypeError, match="frozen"):
        config.signals["1d"] = config.signals["2d"]


@pytest.mark.parametrize("build, key", [
    (lambda: TrainingConfig(width=0), "'width'"),
    (lambda: TrainingConfig(learning_rate={"relu": 0.1}), "'learning_rate'"),
    (lambda: ClaimConfig(seeds=2.5), "'seeds'"),
    (lambda: ClaimConfig(window="nope"), "'window'"),
    (lambda: load_config().replace(alpha=2.0), "'alpha'"),
    (lambda: load_config().signals["2d"].replace(noise=-1.0), "'noise'"),
    (lambda: ClaimConfig(training={"width": 3}), "'training'"),
    (lambda: ClaimConfig(signals={"1d": SignalConfig()}), "'signals'"),
    (lambda: ClaimConfig(signals={**ClaimConfig().signals, "2d": SignalConfig()}), "'signals.2d'"),
    (lambda: ClaimConfig(cases=[{"signal": "1d", "activation": "relu", "bias": True}]), "'cases'"),
    (lambda: TrainingConfig(check_every=500, overfit_max_steps=100), "'check_every'"),
])
def test_direct_construction_is_checked_too(build, key):
    with pytest.raises(ConfigError, match=key):
        build()


@pytest.mark.parametrize("overrides, key", [
    ({"signals": {"2d": {"noise": 0}}}, "'signals.2d.noise'"),
    ({"precision": {"manifold": {"depth": 0}}}, "'precision.manifold.depth'"),
    ({"training": {"sgd_learning_rate": {"tanh": -1}}}, "'training.sgd_learning_rate.tanh'"),
    ({"cases": [{"signal": "1d", "activation": "swish", "bias": True}]}, "'cases[0].activation'"),
    ({"signals": {"1d": {"dims": 2}}}, "'signals.1d'"),
])
def test_nested_errors_name_the_dotted_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")) as error:
        load_config(overrides=overrides)
    assert error.value.key is not None


@pytest.mark.parametrize("overrides", [
    {},
    {"window": None, "alternate_window": "hann", "seeds": 7, "training": {"learning_rate": {"sine": 2e-4}}},
    {"cases": [{"signal": "1d", "activation": "tanh", "bias": True, "optimizer": "sgd"}], "sweep": {"case": ""},
     "signals": {"1d": {"noise": 1, "frequencies": [2, 7]}, "2d": {"frequencies": [[3, -1]]}}},
    {"window": ["exponential", None, 3.0]},  # a null inside an array: TOML has none, written "none" and read back
])
def test_json_and_toml_round_trip(tmp_path, overrides):
    if "signals" in overrides:
        overrides["signals"]["1d"].update(amplitudes=[1, 0.5], phases=[0, 1])
        overrides["signals"]["2d"].update(amplitudes=[1.0], phases=[0.5])
    config = load_config(overrides=overrides)
    json_path, toml_path = tmp_path / "c.json", tmp_path / "c.toml"
    json_path.write_text(json.dumps(config.to_dict()))
    toml_path.write_text(config.to_toml())
    assert load_config(json_path) == config
    assert load_config(toml_path) == config
    assert load_config(toml_path).to_dict() == config.to_dict()


def test_one_source_for_activations_signals_and_schemes():
    from spectral.models import ACTIVATIONS
    from spectral.signals import default_1d, default_2d

    config = load_config()
    assert set(config.training.learning_rate) == set(config.training.sgd_learning_rate) == set(ACTIVATIONS)
    np.testing.assert_array_equal(default_1d().wavevectors[:, 0], config.signals["1d"].frequencies)
    np.testing.assert_array_equal(default_2d().wavevectors, config.signals["2d"].frequencies)
    np.testing.assert_array_equal(default_2d().amplitudes, config.signals["2d"].amplitudes)


def test_toml_needs_tomli_only_before_python_3_11(monkeypatch, tmp_path):
    """Python < 3.11 has no tomllib: the config reads TOML with tomli (a dependency there)."""
    import builtins

    pytest.importorskip("tomli")  # in the test extra
    real_import = builtins.__import__

    def no_tomllib(name, *args, **kwargs):
        if name == "tomllib":
            raise ImportError("simulated Python 3.10")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tomllib)
    path = tmp_path / "c.toml"
    path.write_text("seeds = 3\n")
    assert load_config(path).seeds == 3


# --- issue 18: values refused at load, before any training -------------------------------------------------------


@pytest.mark.parametrize("overrides, key", [
    ({"training": {"learning_rate": {"tanh": 1e39}}}, "training.learning_rate.tanh"),
    # Adam's first step is the rate / (1 - beta1): 1e38 overflowed float32 there
    ({"training": {"learning_rate": {"tanh": 1e38}}}, "training.learning_rate.tanh"),
    ({"training": {"learning_rate": {"relu": 1e-45}}}, "training.learning_rate.relu"),  # 0 in float32
    ({"training": {"sgd_learning_rate": {"tanh": 1e39}}}, "training.sgd_learning_rate.tanh"),
    ({"signals": {"digits": {"learning_rate": 1e39}}}, "signals.digits.learning_rate"),
    ({"signals": {"digits": {"sgd_learning_rate": 1e39}}}, "signals.digits.sgd_learning_rate"),
    ({"shrink_perturb": {"perturb": 1e39}}, "shrink_perturb.perturb"),
    ({"shrink_perturb": {"shrink": 1e39}}, "shrink_perturb.shrink"),
    ({"shrink_factor": 1e39}, "shrink_factor"),
    ({"sweep": {"factors": [0.2, 1e39]}}, "sweep.factors"),
])
def test_values_that_do_not_fit_float32_training_are_refused(overrides, key):
    with pytest.raises(ConfigError, match="float32") as error:
        load_config(overrides=overrides)
    assert error.value.key == key


@pytest.mark.parametrize("alpha", [5e-324, 1e-300, 9.99e-7, 0.0])
def test_alpha_below_the_floor_is_refused(alpha):
    with pytest.raises(ConfigError, match=r"'alpha' must be in \[1e-06, 1\)") as error:
        load_config(overrides={"alpha": alpha})
    assert error.value.key == "alpha"


def test_alpha_at_the_floor_loads_and_needs_twenty_seeds():
    from spectral.claim._stats import smallest_testable_n

    config = load_config(overrides={"alpha": 1e-6})
    assert smallest_testable_n(config.alpha) == 20  # 2**-20 < 1e-6 <= 2**-19


@pytest.mark.parametrize("width", [1e300, 1e-300, 1e-160, 9e-4, 1001.0])
@pytest.mark.parametrize("name", ["filter_width", "alternate_filter_width"])
def test_digits_filter_widths_outside_the_range_are_refused(name, width):
    with pytest.raises(ConfigError, match=r"in \[0.001, 1000\]") as error:
        load_config(overrides={"signals": {"digits": {name: width}}})
    assert error.value.key == f"signals.digits.{name}"


@pytest.mark.parametrize("width", [1e-3, 1e3])
def test_digits_filter_widths_at_the_ends_of_the_range_load(width):
    assert load_config(overrides={"signals": {"digits": {"filter_width": width}}}).signals["digits"].filter_width == width


@pytest.mark.parametrize("precision", [True, False])
def test_scope_cells_are_built_at_load_without_the_precision_study(precision):
    """A small cell (6 points, width 4) runs: its config has no precision study whose manifold needs 12 points."""
    config = load_config(overrides={"scope": "full", "precision": {"enabled": precision},
                                    "scope_grid": {"train_points": [6], "widths": [4]}})
    cell = config.scope_cell(6, 4)
    assert (cell.signals["1d"].train_points, cell.training.width) == (6, 4)
    assert (cell.precision.enabled, cell.sweep.case, cell.scope) == (False, "", "default")


def test_precision_manifold_points_are_checked_only_when_the_study_runs():
    overrides = {"signals": {"1d": {"train_points": 6}}, "precision": {"enabled": False}}
    assert load_config(overrides=overrides).precision.manifold.points == 12
    with pytest.raises(ConfigError, match="precision.manifold.points"):
        load_config(overrides={**overrides, "precision": {"enabled": True}})


def test_a_scope_cell_that_cannot_run_is_refused_at_load_naming_the_cell():
    with pytest.raises(ConfigError, match="the cell with train_points=50000000 and width=32 cannot run: .* GiB") as error:
        load_config(overrides={"scope": "full", "scope_grid": {"train_points": [12, 50000000], "widths": [32]}})
    assert error.value.key == "scope_grid"
    assert "manifold" not in str(error.value)
    # the cells are checked only when the grid runs
    assert load_config(overrides={"scope_grid": {"train_points": [50000000]}}).scope == "default"


@pytest.mark.parametrize("cases, message", [
    (["1d-tanh-n5"], "without a size"),
    (["1d-tanh", "1d-relu-n12-sgd"], "without a size"),
    (["1d-tanh", "1d-relu", "1d-tanh"], "distinct case names"),
    ([], "non-empty list"),
])
def test_scope_grid_cases_are_unsized_distinct_and_not_empty(cases, message):
    with pytest.raises(ConfigError, match=message) as error:
        load_config(overrides={"scope_grid": {"cases": cases}})
    assert error.value.key == "scope_grid.cases"


def test_scope_grid_takes_sgd_case_names():
    assert load_config(overrides={"scope_grid": {"cases": ["1d-tanh-sgd", "1d-tanh"]}}).scope_grid.cases == (
        "1d-tanh-sgd", "1d-tanh")


def test_duplicate_keys_in_a_json_config_are_refused(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"seeds": 3, "training": {"width": 8, "width": 16}}')
    with pytest.raises(ConfigError, match="duplicate config key 'width'") as error:
        load_config(path)
    assert error.value.key == "width"
    path.write_text('{"seeds": 3, "seeds": 4}')
    with pytest.raises(ConfigError, match="c.json.*duplicate config key 'seeds'"):
        load_config(path)


def test_duplicate_keys_in_a_set_value_are_refused():
    from spectral.claim._config import parse_assignments

    with pytest.raises(ConfigError, match="--set .*duplicate config key 'width'"):
        parse_assignments(['training={"width": 8, "width": 16}'])

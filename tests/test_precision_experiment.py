"""The precision experiment: low-precision storage, lost updates, noise floor, manifold, report, resumption."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from spectral import _precision_experiment as experiment
from spectral._claim import Case, Trainer
from spectral._config import DEFAULT_CONFIG, ConfigError, load_config
from spectral._precision_experiment import (CURVE_POINTS, PRECISION_UNITS, SCHEMES, StoredTrainer,
                                            precision_figures, precision_markdown, round_to, run_precision)
from spectral.precision import lost_update_fraction

CASE = {"signal": "1d", "activation": "tanh", "bias": True}
#: Small enough to be quick; a learning rate of 1e-4 is below half a bfloat16 spacing of most weights.
TINY = {
    "seeds": 3, "bootstrap_resamples": 200, "sweep": {"case": ""}, "cases": [CASE],
    "training": {"width": 8, "depth": 2, "overfit_max_steps": 40, "check_every": 20, "retrain_steps": 30,
                 "learning_rate": {"tanh": 1e-4}},
    "signals": {"1d": {"train_points": 10, "grid": 64}},
    "precision": {"window_steps": 5, "continue_steps": 10},
}


def tiny_config(**precision):
    overrides = copy.deepcopy(TINY)
    overrides["precision"].update(precision)
    return load_config(overrides=overrides)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("precision")
    calls = []
    result = run_precision(tiny_config(), out, lambda: calls.append(1))
    return result, out, len(calls)


def test_result_has_the_documented_keys(run):
    result, _, _ = run
    assert list(result["schemes"]) == list(SCHEMES)
    assert set(result["verdicts"]) == set(SCHEMES) - {"float32"}
    for scheme in result["schemes"].values():
        assert set(scheme["lost_fraction"]) == {"before_shrink", "slingshot", "control"}
        assert set(scheme["hf_fraction"]) == {"overfit", "shrunk", "slingshot", "control"}
        assert set(scheme["test_mse"]) == {"overfit", "slingshot", "control"}
        for table in (scheme["lost_fraction"], scheme["hf_fraction"], scheme["test_mse"]):
            assert all(len(values) == 3 for values in table.values())
        assert scheme["phase1_steps"] == result["schemes"]["float32"]["phase1_steps"]
        curve = scheme["curve"]
        assert len(curve["steps"]) == len(curve["slingshot"]) == len(curve["control"]) <= CURVE_POINTS
        assert curve["shrink_step"] == scheme["phase1_steps"]
        assert np.all(np.diff(curve["steps"]) > 0)
    for verdict in result["verdicts"].values():
        assert {"holds", "effect", "ci", "p_value", "relative_effect", "n", "metric", "claim", "reference"} <= set(verdict)
    noise = result["noise_floor"]
    assert len(noise["frequencies"]) == len(noise["float32"]) == 64 // 2 + 1
    for name in ("bfloat16", "float16"):
        assert len(noise[name]["amplitude"]) == len(noise["frequencies"])
        assert 0 < noise[name]["median_amplitude"] <= noise[name]["max_amplitude"]
    assert noise["float16"]["rms"] < noise["bfloat16"]["rms"]  # 11 significant bits against 8
    manifold = result["manifold"]
    width = 8
    assert manifold["parameters"] == 2 * width + width * (width + 1) + width + 1
    assert manifold["points"] == 10
    assert manifold["parameters_minus_points"] == manifold["parameters"] - 10
    assert manifold["rank"] + manifold["manifold_dimension"] == manifold["parameters"]
    assert math.isclose(manifold["fraction_along"], manifold["along"] ** 2 / (manifold["along"] ** 2
                                                                             + manifold["across"] ** 2))


def test_progress_is_called_precision_units_times(run):
    assert run[2] == PRECISION_UNITS


def test_float32_loses_fewer_updates_than_bfloat16(run):
    result, _, _ = run
    lost = {name: np.mean(result["schemes"][name]["lost_fraction"]["before_shrink"]) for name in SCHEMES}
    assert lost["float32"] < 0.01 < lost["bfloat16"]
    assert lost["bfloat16+master"] < lost["bfloat16"]  # a float32 master copy keeps the small updates


def test_resume_returns_the_same_result_without_training(run, monkeypatch):
    result, out, _ = run

    def refuse(self):
        raise AssertionError("trained again")

    monkeypatch.setattr(StoredTrainer, "step", refuse)
    calls = []
    assert run_precision(tiny_config(), out, lambda: calls.append(1)) == result
    assert len(calls) == PRECISION_UNITS
    with pytest.raises(AssertionError, match="trained again"):  # other inputs: no reuse
        run_precision(tiny_config(window_steps=6), out)


def test_a_subset_of_schemes(tmp_path):
    result = run_precision(tiny_config(schemes=["float16", "float32"]), tmp_path)
    assert list(result["schemes"]) == ["float32", "float16"]
    assert list(result["verdicts"]) == ["float16"]


def test_round_to_in_float16_near_subnormals_loses_what_float32_keeps():
    smallest_normal = 2.0**-14
    values = torch.tensor([1.0, 1.5, 1.75, 1.875]) * smallest_normal  # normal in float16, 4 significant bits
    shrunk = round_to(values * 0.2, torch.float16)  # subnormal: spacing 2**-24, about 2e-3 relative here
    assert not torch.equal(shrunk, values * 0.2)
    assert not torch.equal(round_to(shrunk * 5, torch.float16), values)  # the shrink cannot be undone
    tiny = torch.tensor([1.0, 2.0]) * 2.0**-24  # the two smallest float16 subnormals
    assert round_to(tiny * 0.2, torch.float16).tolist() == [0.0, 0.0]  # both flushed to zero
    normal = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(round_to(round_to(normal * 0.25, torch.float32) * 4, torch.float32), normal)
    assert torch.equal(round_to(normal, torch.float32), normal)


def test_round_to_rejects_non_float_input():
    with pytest.raises(TypeError, match="values"):
        round_to(torch.tensor([1, 2]), torch.float16)
    with pytest.raises(TypeError, match="dtype"):
        round_to(torch.tensor([1.0]), torch.int32)


def test_stored_weights_stay_representable_and_lost_counts_match_lost_update_fraction():
    config = tiny_config()
    case = Case(CASE, config, [0, 1])
    trainer = StoredTrainer(case.ensemble(case.seeds), case.x, case.y, 1e-3, SCHEMES["bfloat16"])
    updates = []
    compute = trainer.adam.update
    trainer.adam.update = lambda gradient: updates.append(compute(gradient)) or updates[-1]
    for _ in range(5):
        before = trainer.theta.clone()
        trainer.step()
        assert torch.equal(round_to(trainer.theta, torch.bfloat16), trainer.theta)
        lost, changed = trainer.lost[-1].sum().item(), trainer.changed[-1].sum().item()
        assert lost / changed == lost_update_fraction(before, updates[-1], "bfloat16")


def test_float32_storage_follows_torch_adam():
    case = Case(CASE, tiny_config(), [0, 1])
    ensemble = case.ensemble(case.seeds)
    stored = StoredTrainer(ensemble, case.x, case.y, 1e-3, SCHEMES["float32"])
    reference = Trainer(copy.deepcopy(ensemble), case.x, case.y, 1e-3)
    stored.run(20)
    reference.run(20)
    np.testing.assert_allclose(stored.ensemble()(case.x).detach(), reference.ensemble(case.x).detach(), atol=1e-5)


def test_markdown_states_the_tables(run):
    text = precision_markdown(run[0])
    for header in ("| scheme | compute | storage | lost before shrink |", "| scheme | holds | effect | 95% CI |",
                   "| evaluated in | rms of f_D - f_32 |", "| P | N | P - N | rank of J |",
                   "figures/precision-lost-updates.png", "figures/precision-noise-floor.png"):
        assert header in text
    assert "nan" not in text.lower()


def test_figures_are_png_files(run, tmp_path):
    paths = precision_figures(run[0], tmp_path / "figures")
    assert sorted(p.name for p in paths) == sorted(experiment.FIGURES.values())
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in (tmp_path / "figures").iterdir() if p not in paths]  # no temporary files left


def test_default_schemes_are_the_known_ones():
    assert DEFAULT_CONFIG["precision"]["schemes"] == list(SCHEMES)


@pytest.mark.parametrize("precision, key", [
    ({"schemes": ["float32", "float8"]}, "precision.schemes"),
    ({"schemes": ["bfloat16", "float16"]}, "precision.schemes"),
    ({"schemes": ["float32", "float32"]}, "precision.schemes"),
    ({"schemes": []}, "precision.schemes"),
    ({"schemes": "float32"}, "precision.schemes"),
    ({"case": "3d-tanh"}, "precision.case"),
    ({"case": "1d-swish"}, "precision.case"),
    ({"window_steps": 0}, "precision.window_steps"),
    ({"continue_steps": -1}, "precision.continue_steps"),
    ({"enabled": "yes"}, "precision.enabled"),
])
def test_bad_precision_config_names_the_key(precision, key):
    overrides = copy.deepcopy(TINY)
    overrides["precision"].update(precision)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(overrides=overrides)


def test_a_disabled_experiment_may_name_any_case():
    config = tiny_config(enabled=False, case="2d-tanh")
    assert config["precision"]["case"] == "2d-tanh"


def test_a_2d_case(tmp_path):
    overrides = copy.deepcopy(TINY)
    overrides["cases"] = [{"signal": "2d", "activation": "tanh", "bias": True}]
    overrides["signals"]["2d"] = {"train_points": 12, "grid": 16}
    overrides["precision"].update(case="2d-tanh", schemes=["float32", "bfloat16"])
    result = run_precision(load_config(overrides=overrides), tmp_path)
    noise = result["noise_floor"]
    assert len(noise["frequencies"]) == len(noise["float32"]) == len(noise["bfloat16"]["amplitude"])
    assert "2d-tanh" in precision_markdown(result)
    assert len(precision_figures(result, tmp_path)) == 2

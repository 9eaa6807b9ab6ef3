"""The claim on real data: per-seed digits splits, the filtering-method measure, a digits case end to end."""

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from claim_config import assert_same_per_seed

from spectral import low_pass
from spectral.claim._check import Case, run_case
from spectral.claim._config import ConfigError, DigitsConfig, load_config, parse_case_id
from spectral.claim._digits import FilterMeasure, split_digits
from spectral.claim._kinds import kind_of

TINY = {"seeds": 5, "sweep": {"case": ""}, "precision": {"enabled": False},
        "training": {"width": 16, "depth": 2, "overfit_max_steps": 100, "check_every": 25, "retrain_steps": 40,
                     "recovery_max_steps": 200, "curve_points": 2},
        "signals": {"digits": {"validation_points": 16, "test_points": 200, "learning_rate": 0.003}},
        "cases": [{"signal": "digits", "activation": "relu", "bias": True, "train_points": 32}]}


def test_a_seeds_split_depends_on_that_seed_only_and_never_touches_the_test_set():
    spec = DigitsConfig(validation_points=16, test_points=200)
    few = split_digits(spec, 32, [3], torch.device("cpu"))
    many = split_digits(spec, 32, [1, 2, 3], torch.device("cpu"))
    torch.testing.assert_close(few.x[0], many.x[2], rtol=0, atol=0)
    torch.testing.assert_close(few.y_validation[0], many.y_validation[2], rtol=0, atol=0)
    torch.testing.assert_close(few.x_test, many.x_test, rtol=0, atol=0)
    test = {tuple(row) for row in many.x_test.numpy()}
    assert many.x_test.shape == (200, 64) and many.y.shape == (3, 32, 10)
    seen = [tuple(row) for row in torch.cat([many.x, many.x_validation], dim=1).reshape(-1, 64).numpy()]
    # the digits hold a few duplicate images; the split is by index, so overlap can only be such duplicates
    assert sum(row in test for row in seen) <= 3
    assert torch.all(many.y.sum(-1) == 1) and set(many.y.unique().tolist()) == {0.0, 1.0}


def test_label_noise_replaces_the_stated_fraction():
    spec = DigitsConfig(train_points=500, validation_points=100, test_points=500, label_noise=0.5)
    from spectral._datasets import digits

    pixels, labels = digits()
    data = split_digits(spec, 500, [0, 1, 2, 3], torch.device("cpu"))
    index = {tuple(row): label for row, label in zip(pixels.astype(np.float32), labels)}
    truth = np.array([[index[tuple(row)] for row in member] for member in data.x.numpy()])
    changed = (data.y.argmax(-1).numpy() != truth).mean()
    assert changed == pytest.approx(0.5 * 0.9, abs=0.03)  # a random class is the true one a tenth of the time
    assert spec.noise_variance == pytest.approx(0.5 * 0.9 * 0.2)


class _Lookup(torch.nn.Module):
    """A fake ensemble: fixed outputs for the training inputs (per member) and for the test inputs (shared)."""

    def __init__(self, train, test):
        super().__init__()
        self.train_out, self.test_out = train, test
        self.members = train.shape[0]
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return (self.train_out if x.ndim == 3 else self.test_out).to(x.dtype)


def test_filter_measure_reads_known_functions():
    data = split_digits(DigitsConfig(validation_points=16, test_points=100), 40, [0, 1], torch.device("cpu"))
    measure = FilterMeasure(data, {"primary": 1.5, "alternate": 2.0})
    targets = data.y.double()
    kernel = torch.stack([low_pass(x.double(), torch.eye(40, dtype=torch.float64), 1.5)[0] for x in data.x])
    clean = torch.nn.functional.one_hot(data.labels_test, 10).double()
    # members: the targets themselves (seed 0), their smoothed version (seed 1), then constants
    train = torch.stack([targets[0], kernel[1] @ targets[1], torch.full_like(targets[0], 0.1),
                         torch.full_like(targets[1], 0.1)])
    test = torch.stack([clean, clean.roll(1, dims=1), torch.full_like(clean, 0.1), torch.full_like(clean, 0.1)])
    result = measure(_Lookup(train, test))
    assert result["hf_error:primary"][0] == pytest.approx(0, abs=1e-12)  # fits every high-frequency detail
    # The Gaussian smoother is not a projection: a smoothed function still has a (smaller) high-pass part.
    smoothed = kernel[1] @ targets[1]
    expected = ((targets[1] - kernel[1] @ targets[1]) - (smoothed - kernel[1] @ smoothed)).norm() / (
        targets[1] - kernel[1] @ targets[1]).norm()
    assert result["hf_error:primary"][1] == pytest.approx(float(expected), rel=1e-12)
    assert result["hf_error:primary"][2] == pytest.approx(1, abs=1e-12)  # a constant keeps none of them
    assert result["high_power:primary"][2] == pytest.approx(0, abs=1e-20)  # the kernel keeps constants
    assert result["low_power:primary"][2] == pytest.approx(0, abs=1e-20)  # nor once its mean is removed
    assert result["test_error"][0] == 0 and result["test_error"][1] == 1 and result["test_mse"][0] == 0
    assert result["test_mse"][1] == pytest.approx(0.2)
    high = targets[0] - kernel[0] @ targets[0]
    low = kernel[0] @ (targets[0] - targets[0].mean(0))
    share = float(high.pow(2).sum() / (high.pow(2).sum() + low.pow(2).sum()))
    assert result["hf_fraction:primary"][0] == pytest.approx(share, rel=1e-12)
    # The parts are complementary as functions, but their powers do not add up to the total: the Gaussian
    # smoother is not an orthogonal projection, so the share is of |low|^2 + |high|^2 (the docstring says so).
    centred = targets[0] - targets[0].mean(0)
    torch.testing.assert_close(low + high, centred, rtol=0, atol=1e-12)
    total, parts = float(centred.pow(2).sum()), result["low_power:primary"][0] + result["high_power:primary"][0]
    assert parts == pytest.approx(total - 2 * float((low * high).sum()), rel=1e-12)
    assert abs(parts - total) > 1e-3 * total


@pytest.fixture(scope="module")
def digits_case():
    config = load_config(overrides=TINY)
    return config, run_case(config.cases[0], config, list(range(5)))[0]


@pytest.mark.slow
def test_a_digits_case_has_every_arm_verdict_and_metric(digits_case):
    _, result = digits_case
    assert result["id"] == "digits-relu-n32" and result["train_points"] == 32
    assert set(result["verdicts"]) == set(kind_of("digits").verdicts)
    assert {"slingshot_beats_control_on_test_error", "slingshot_beats_early_stop"} <= set(result["verdicts"])
    for name in ("test_mse", "test_error", "hf_error:primary", "hf_error:alternate", "test_error@end"):
        assert len(result["metrics"][name]["slingshot"]) == 5
    spectral = result["verdicts"]["shrink_removes_high_frequencies"]
    assert spectral["metric"] == "hf_fraction" and "alternate_window" in spectral  # scale-free
    fit = result["verdicts"]["slingshot_fits_high_frequencies_less"]
    assert (fit["metric"], fit["claim"], fit["reference"]) == ("hf_error", "control", "slingshot")
    assert "alternate_window" in fit


@pytest.mark.slow
def test_a_digits_seeds_numbers_do_not_depend_on_the_other_seeds(digits_case):
    config, five = digits_case
    six, _ = run_case(config.cases[0], config, list(range(6)))
    assert_same_per_seed(five, six)


def test_a_digits_case_trains_a_ten_output_net_on_64_inputs():
    config = load_config(overrides=TINY)
    setup = Case(config.cases[0], config, [0, 1])
    assert setup.ensemble([0, 1])(setup.x).shape == (2, 32, 10)
    assert setup.learning_rate == 0.003 and setup.overfit_threshold == pytest.approx(0.1 * 0.2 * 0.9 * 0.2)


@pytest.mark.parametrize("overrides, key", [
    ({"cases": [{"signal": "digits", "activation": "relu", "bias": True, "train_points": 1500}]}, "cases[0].train_points"),
    ({"precision": {"case": "digits-relu"}}, "precision.case"),
    ({"signals": {"digits": {"label_noise": 0}}}, "signals.digits.label_noise"),
    ({"signals": {"digits": {"filter_width": -1}}}, "signals.digits.filter_width"),
    ({"signals": {"digits": {"dims": 3}}}, "signals.digits"),
    ({"cases": [{"signal": "digits", "activation": "relu", "bias": True}], "sweep": {"case": "digits-relu"}},
     "sweep.case"),
])
def test_bad_digits_config_names_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        load_config(overrides=overrides)


def test_digits_case_names_round_trip():
    for name in ("digits-relu-n64", "digits-tanh-nobias-n256-sgd", "1d-tanh-n12"):
        assert parse_case_id(name).id == name
    with pytest.raises(ConfigError):
        parse_case_id("digits-relu-n0")


@pytest.mark.slow
def test_the_homogeneous_digits_net_reads_no_shrink_effect():
    """A bias-free ReLU net on the digits is positively homogeneous: the shrink scales its output and nothing else,
    so no scale-free spectral verdict may hold (the HF error, which is not scale-free, is never used for it)."""
    overrides = {**TINY, "cases": [{"signal": "digits", "activation": "relu", "bias": False, "train_points": 32}]}
    config = load_config(overrides=overrides)
    result, _ = run_case(config.cases[0], config, list(range(5)))
    assert result["negative_control"]["passed"]
    for name in ("shrink_removes_high_frequencies", "shrink_removes_high_more_than_low"):
        verdict = result["verdicts"][name]
        assert verdict["holds"] is False and abs(verdict["relative_effect"]) < 1e-4, name

"""The claim on MNIST-1D: the offline generator, per-seed splits, the shared filtering measure, a case end to end."""

import numpy as np
import pytest
import torch

from spectral import low_pass
from spectral.claim._config import (
    ConfigError,
    Mnist1dConfig,
    load_config,
    parse_case_id,
)
from spectral.claim._digits import FilterMeasure, LabelledSplit
from spectral.claim._kinds import kind_of

TINY = {"seeds": 5, "sweep": {"case": ""}, "precision": {"enabled": False},
        "training": {"width": 16, "depth": 2, "overfit_max_steps": 100, "check_every": 25, "retrain_steps": 40,
                     "recovery_max_steps": 200, "curve_points": 2},
        "signals": {"mnist1d": {"validation_points": 16, "test_points": 200, "learning_rate": 0.003}},
        "cases": [{"signal": "mnist1d", "activation": "relu", "bias": True, "train_points": 32}]}


def test_the_filter_measure_reads_a_known_answer_for_any_number_of_classes():
    """Three classes on 40-sample inputs: an exact fit has HF error 0, a constant HF error 1 and the closed-form loss."""
    rng = np.random.default_rng(0)
    labels = torch.as_tensor(rng.integers(0, 3, (2, 12)))
    test_labels = torch.tensor([0, 1, 2, 2])
    y = torch.nn.functional.one_hot(labels, 3).float()
    data = LabelledSplit(torch.as_tensor(rng.normal(size=(2, 12, 40)), dtype=torch.float32), y,
                         torch.zeros(2, 4, 40), torch.zeros(2, 4, 3), torch.zeros(4, 40), test_labels)
    measure = FilterMeasure(data, {"primary": 3.0, "alternate": 4.0})
    clean = torch.nn.functional.one_hot(test_labels, 3).double()
    constant = 0.25

    class Lookup(torch.nn.Module):  # member 0 fits the targets and the test labels, member 1 is a constant
        members = 2

        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            if x.ndim == 3:
                return torch.stack([y[0].double(), torch.full((12, 3), constant, dtype=torch.float64)]).to(x.dtype)
            return torch.stack([clean, torch.full((4, 3), constant, dtype=torch.float64)]).to(x.dtype)

    result = measure(Lookup())
    assert result["hf_error:primary"][0] == pytest.approx(0, abs=1e-12)
    assert result["hf_error:primary"][1] == pytest.approx(1, abs=1e-12)  # the kernel keeps constants: no high part
    assert result["test_mse"][0] == 0 and result["test_error"][0] == 0
    # a constant 1/4 against one-hot rows of 3: (3/4)^2 once and (1/4)^2 twice per row, over 3 outputs
    assert result["test_mse"][1] == pytest.approx(((1 - constant) ** 2 + 2 * constant ** 2) / 3, rel=1e-12)
    kernel = low_pass(data.x[0].double(), torch.eye(12, dtype=torch.float64), 3.0)[0]
    high = y[0].double() - kernel @ y[0].double()
    low = kernel @ (y[0].double() - y[0].double().mean(0))
    share = float(high.pow(2).sum() / (high.pow(2).sum() + low.pow(2).sum()))
    assert result["hf_fraction:primary"][0] == pytest.approx(share, rel=1e-12)


@pytest.mark.parametrize("overrides, key", [
    ({"signals": {"mnist1d": {"test_points": 1001}}}, "signals.mnist1d.test_points"),
    ({"signals": {"mnist1d": {"train_points": 3990}}}, "signals.mnist1d.train_points"),
    ({"cases": [{"signal": "mnist1d", "activation": "relu", "bias": True, "train_points": 3990}]},
     "cases[0].train_points"),
    ({"signals": {"mnist1d": {"label_noise": 0}}}, "signals.mnist1d.label_noise"),
    ({"signals": {"mnist1d": {"dims": 64}}}, "signals.mnist1d"),
])
def test_bad_mnist1d_config_names_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        load_config(overrides=overrides)


def test_mnist1d_config_and_case_names():
    spec = load_config(overrides=TINY).signals["mnist1d"]
    assert isinstance(spec, Mnist1dConfig) and spec.dims == 40 and spec.filter_width == 3.0
    assert parse_case_id("mnist1d-relu-n256").id == "mnist1d-relu-n256"
    assert kind_of("mnist1d").choice == "filter width" and kind_of("mnist1d").verdicts == kind_of("digits").verdicts


@pytest.fixture(scope="module")
def signals():
    pytest.importorskip("mnist1d", reason='the MNIST-1D generator is the "mnist1d" extra')
    from spectral.claim._mnist1d import mnist1d_signals

    return mnist1d_signals()


@pytest.mark.slow
def test_the_generator_is_the_standard_set_and_leaves_global_randomness_alone(signals, monkeypatch):
    import socket

    from spectral.claim._mnist1d import mnist1d_signals

    def offline(*args, **kwargs):
        raise AssertionError("the MNIST-1D generator tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", offline)
    mnist1d_signals.cache_clear()
    np.random.seed(7)
    expected = np.random.rand(3)
    np.random.seed(7)
    again, labels = mnist1d_signals()
    assert np.array_equal(np.random.rand(3), expected)  # the generator's global seeding was undone
    x, y = signals
    assert np.array_equal(again, x) and np.array_equal(labels, y)  # deterministic
    assert x.shape == (5000, 40) and np.bincount(y).min() > 350
    assert abs(x.mean()) < 1e-9 and x.std() == pytest.approx(1, abs=1e-9)  # the generator standardises the set


@pytest.mark.slow
def test_a_seeds_split_depends_on_that_seed_only_and_never_touches_the_test_set(signals):
    from spectral.claim._mnist1d import split_mnist1d

    spec = Mnist1dConfig(validation_points=16, test_points=200, label_noise=0.5)
    few = split_mnist1d(spec, 32, [3], torch.device("cpu"))
    many = split_mnist1d(spec, 32, [1, 2, 3], torch.device("cpu"))
    torch.testing.assert_close(few.x[0], many.x[2], rtol=0, atol=0)
    torch.testing.assert_close(few.y[0], many.y[2], rtol=0, atol=0)
    torch.testing.assert_close(few.y_validation[0], many.y_validation[2], rtol=0, atol=0)
    torch.testing.assert_close(few.x_test, many.x_test, rtol=0, atol=0)
    x, labels = signals
    torch.testing.assert_close(many.x_test, torch.as_tensor(x[4000:4200], dtype=torch.float32), rtol=0, atol=0)
    assert torch.equal(many.labels_test, torch.as_tensor(labels[4000:4200]))  # clean test labels
    test = {tuple(row) for row in many.x_test.numpy()}
    seen = torch.cat([many.x, many.x_validation], dim=1).reshape(-1, 40).numpy()
    assert not any(tuple(row) in test for row in seen)
    assert many.y.shape == (3, 32, 10) and torch.all(many.y.sum(-1) == 1)


@pytest.mark.slow
def test_an_mnist1d_case_has_every_verdict_and_numbers_per_seed(signals):
    from claim_config import assert_same_per_seed

    from spectral.claim._check import Case, run_case

    config = load_config(overrides=TINY)
    setup = Case(config.cases[0], config, [0, 1])
    assert setup.ensemble([0, 1])(setup.x).shape == (2, 32, 10) and setup.in_features == 40
    five, _ = run_case(config.cases[0], config, list(range(5)))
    assert five["id"] == "mnist1d-relu-n32" and set(five["verdicts"]) == set(kind_of("mnist1d").verdicts)
    assert "MNIST-1D" in kind_of("mnist1d").describe(five)
    for name in ("test_mse", "test_error", "hf_error:primary", "hf_error:alternate"):
        assert len(five["metrics"][name]["slingshot"]) == 5
    six, _ = run_case(config.cases[0], config, list(range(6)))
    assert_same_per_seed(five, six)

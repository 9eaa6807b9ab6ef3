import numpy as np
import pytest
import torch

from spectral import Grid, SpectrumHistory, SpectrumProbe, shrink_, spectrum
from spectral.models import mlp


def sine(k):
    return lambda x: np.sin(2 * np.pi * k * x[:, 0])


def test_numpy_callable_reads_its_spectrum():
    probe = SpectrumProbe(Grid.uniform(64))
    probe.snapshot(lambda x: 2 * np.sin(2 * np.pi * 5 * x[:, 0]), "model")
    assert probe.history.amplitude[0, 5] == pytest.approx(2.0)


def test_torch_function_callable_and_column_output():
    probe = SpectrumProbe(Grid.uniform(32))
    probe.snapshot(lambda x: torch.sin(2 * torch.pi * 3 * x), "column")
    assert probe.history.amplitude[0, 3] == pytest.approx(1.0)


def test_update_records_every_and_snapshot_labels():
    net = mlp(1, width=8, depth=1, seed=0)
    probe = SpectrumProbe(Grid.uniform(16), every=5)
    recorded = [probe.update(net, step) for step in range(12)]
    assert recorded.count(True) == 3
    probe.snapshot(net, "before shrink")
    probe.update(net, 15)
    probe.update(net, 20)
    probe.snapshot(net, "after shrink", step=99)
    np.testing.assert_array_equal(probe.history.steps, [0, 5, 10, 11, 15, 20, 99])
    assert list(probe.history.labels) == ["", "", "", "before shrink", "", "", "after shrink"]
    assert probe.history.index("before shrink") == 3
    assert not hasattr(probe, "probe") and not callable(probe)  # one name per action: update


def test_module_matches_direct_spectrum_and_training_mode_restored():
    net = torch.nn.Sequential(torch.nn.Linear(1, 16), torch.nn.Dropout(0.5), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    net.train()
    net[1].eval()  # mixed modes must come back as they were
    grid = Grid.uniform(64)
    probe = SpectrumProbe(grid)
    probe.update(net, 0)
    assert net.training and not net[1].training and net[0].training
    with torch.no_grad():
        net.eval()
        direct = spectrum(net(torch.tensor(grid.points, dtype=torch.float32))[:, 0])
    np.testing.assert_allclose(probe.history.amplitude[0], direct.amplitude, rtol=1e-6, atol=1e-9)


def test_batches_give_same_result_as_one_pass():
    net = mlp(2, width=8, depth=2, activation="tanh", seed=1)
    grid = Grid.uniform((16, 12))
    one, many = SpectrumProbe(grid), SpectrumProbe(grid, batch_size=7)
    one.update(net, 0)
    many.update(net, 0)
    np.testing.assert_allclose(one.history.power, many.history.power, rtol=1e-5, atol=1e-10)


def test_float64_model_runs_in_float64():
    net = mlp(1, width=8, depth=1, seed=0).double()
    probe = SpectrumProbe(Grid.uniform(32))
    probe.update(net, 0)
    assert probe.history.finite[0]


def test_relative_error_against_target_counts_phase():
    grid = Grid.uniform(64)
    target = lambda x: np.sin(2 * np.pi * 2 * x[:, 0]) + 0.5 * np.sin(2 * np.pi * 6 * x[:, 0])
    probe = SpectrumProbe(grid, target=target)
    np.testing.assert_allclose(probe.history.target_freqs, [2, 6])
    probe.snapshot(target, "exact")
    probe.snapshot(lambda x: np.sin(2 * np.pi * 2 * x[:, 0]), "missing 6")
    probe.snapshot(lambda x: -target(x), "opposite phase")
    errors = probe.history.relative_error()
    np.testing.assert_allclose(errors[0], [0, 0], atol=1e-12)
    np.testing.assert_allclose(errors[1], [0, 1], atol=1e-12)
    np.testing.assert_allclose(errors[2], [2, 2], atol=1e-12)


def test_target_as_grid_values_2d():
    grid = Grid.uniform((8, 8))
    y, x = grid.points.T
    values = np.cos(2 * np.pi * (y + 2 * x)).reshape(grid.shape)
    probe = SpectrumProbe(grid, target=values)
    freqs = {tuple(k) for k in probe.history.target_freqs}
    assert freqs == {(1.0, 2.0), (-1.0, -2.0)}


def test_nonfinite_model_is_flagged_not_raised():
    grid = Grid.uniform(16)
    probe = SpectrumProbe(grid, target=sine(1))
    net = mlp(1, width=4, depth=1, seed=0)
    probe.update(net, 0)
    with torch.no_grad():
        net[0].weight.fill_(float("nan"))
    probe.update(net, 1)
    probe.snapshot(lambda x: np.full(len(x), np.inf), "inf")
    np.testing.assert_array_equal(probe.history.finite, [True, False, False])
    assert np.isnan(probe.history.amplitude[1]).all()
    assert np.isnan(probe.history.relative_error()[1]).all()
    assert np.isnan(probe.history.high_frequency_fraction(2)[1])


def test_homogeneous_network_spectrum_after_shrink():
    depth = 2
    net = mlp(1, width=32, depth=depth, activation="relu", bias=False, constant_feature=True, seed=3)
    probe = SpectrumProbe(Grid.uniform(128))
    probe.snapshot(net, "before shrink")
    shrink_(net, 0.2)
    probe.snapshot(net, "after shrink")
    before, after = probe.history.amplitude
    np.testing.assert_allclose(after, before * 0.2 ** (depth + 1), rtol=1e-4, atol=1e-12)
    np.testing.assert_allclose(after / after.sum(), before / before.sum(), rtol=1e-4, atol=1e-9)
    hf = probe.history.high_frequency_fraction(5)
    assert hf[1] == pytest.approx(hf[0], rel=1e-4)


def test_biased_network_is_not_homogeneous():
    net = mlp(1, width=32, depth=2, activation="relu", seed=3)
    with torch.no_grad():
        for layer in net:
            if isinstance(layer, torch.nn.Linear):
                layer.bias.normal_()
    probe = SpectrumProbe(Grid.uniform(128))
    probe.snapshot(net, "before shrink")
    shrink_(net, 0.2)
    probe.snapshot(net, "after shrink")
    before, after = probe.history.amplitude
    assert not np.allclose(after / after.sum(), before / before.sum(), rtol=1e-2)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"every": 0}, ValueError, "every"),
        ({"every": 1.5}, TypeError, "every"),
        ({"window": "nope"}, ValueError, "window"),
        ({"target": np.ones(5)}, ValueError, "target"),
        ({"target": np.zeros(16)}, ValueError, "target"),
        ({"target": np.full(16, np.nan)}, ValueError, "target"),
        ({"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_bad_probe_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        SpectrumProbe(Grid.uniform(16), **kwargs)


def test_bad_grid():
    with pytest.raises(TypeError, match="grid"):
        SpectrumProbe((16,))


def test_model_width_mismatch_is_value_error():
    probe = SpectrumProbe(Grid.uniform((8, 8)))
    with pytest.raises(ValueError, match="model"):
        probe.update(mlp(1, width=4, depth=1), 0)
    custom = torch.nn.Sequential(torch.nn.Tanh(), torch.nn.Linear(3, 1))
    with pytest.raises(ValueError, match="model"):
        probe.update(custom, 0)
    assert len(probe.history) == 0


@pytest.mark.parametrize(
    "model, error",
    [
        (lambda x: np.ones(len(x) - 1), ValueError),
        (lambda x: np.ones((len(x), 2)), ValueError),
        (lambda x: np.ones(len(x), dtype=complex), TypeError),
        (lambda x: np.array(["a"] * len(x)), TypeError),
        ("not a model", TypeError),
    ],
)
def test_bad_model_output(model, error):
    probe = SpectrumProbe(Grid.uniform(16))
    with pytest.raises(error, match="model"):
        probe.update(model, 0)
    assert len(probe.history) == 0


def test_bad_step_and_label():
    probe = SpectrumProbe(Grid.uniform(16))
    with pytest.raises(TypeError, match="step"):
        probe.update(sine(1), 1.0)
    with pytest.raises(TypeError, match="label"):
        probe.snapshot(sine(1), "")


def test_wrapped_mlp_with_constant_feature_is_accepted():
    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = mlp(1, width=8, depth=2, bias=False, constant_feature=True, seed=0)

        def forward(self, x):
            return self.net(x)

    probe = SpectrumProbe(Grid.uniform(16))
    probe.update(Wrapper(), 0)
    assert probe.history.finite[0]


def test_target_frequencies_are_not_smeared_by_the_window():
    target = lambda x: np.sin(2 * np.pi * 3 * x[:, 0]) + 0.5 * np.sin(2 * np.pi * 7 * x[:, 0])
    probe = SpectrumProbe(Grid.uniform(64), target=target, window="hann")
    np.testing.assert_allclose(probe.history.target_freqs, [3, 7])
    probe.snapshot(target, "exact")
    np.testing.assert_allclose(probe.history.relative_error()[0], 0, atol=1e-12)


def test_model_with_fourier_features_is_accepted():
    class FourierFeatures(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.frequencies = torch.nn.Parameter(torch.randn(2, 16, generator=torch.Generator().manual_seed(0)),
                                                  requires_grad=False)
            self.head = torch.nn.Linear(32, 1)

        def forward(self, x):
            z = 2 * torch.pi * x @ self.frequencies
            return self.head(torch.cat([z.sin(), z.cos()], dim=-1))

    probe = SpectrumProbe(Grid.uniform((8, 8)))
    probe.update(FourierFeatures(), 0)
    assert probe.history.finite[0]


class ShiftsItsInput(torch.nn.Module):
    """Changes its input in place, then undoes the shift in its output: f(x) = x."""

    def forward(self, x):
        x.sub_(0.5)
        return x[:, 0] + 0.5


def shifting_callable(q):
    q *= 3
    return q[:, 0] / 3


@pytest.mark.parametrize("model", [ShiftsItsInput(), shifting_callable], ids=["module", "callable"])
def test_models_that_change_their_input_cannot_move_the_grid(model):
    probe = SpectrumProbe(Grid.uniform(16))
    for step in range(3):
        probe.update(model, step)
    # f(x) = x on the grid j/16: its mean is 15/32, every record alike.
    np.testing.assert_allclose(probe.history.amplitude[:, 0], [15 / 32] * 3, rtol=1e-14)  # an FFT: to rounding
    np.testing.assert_array_equal(probe.grid.points[:, 0], np.arange(16) / 16)


def test_target_that_changes_its_input_cannot_move_the_grid():
    def target(q):
        q += 0.25
        return np.cos(2 * np.pi * (q[:, 0] - 0.25))

    probe = SpectrumProbe(Grid.uniform(16), target=target)
    probe.update(lambda p: np.cos(2 * np.pi * p[:, 0]), 0)
    np.testing.assert_allclose(probe.history.relative_error(), [[0.0]], atol=1e-12)


def test_ordinary_torch_callables_work_and_match_the_module():
    net = mlp(1, width=8, depth=2, seed=0)
    probe = SpectrumProbe(Grid.uniform(32))
    probe.update(net, 0)
    probe.update(lambda p: net(torch.as_tensor(p, dtype=torch.float32)), 1)
    outputs = net(torch.as_tensor(probe.grid.points, dtype=torch.float32))  # requires grad
    probe.update(lambda p: outputs, 2)
    assert outputs.requires_grad
    np.testing.assert_allclose(probe.history.amplitude[1:], probe.history.amplitude[[0, 0]], rtol=1e-6, atol=1e-7)


def test_callable_with_the_wrong_dtype_says_how_to_convert():
    net = mlp(1, width=8, depth=2, seed=0)
    probe = SpectrumProbe(Grid.uniform(8))
    with pytest.raises(TypeError, match=r"float64 numpy array.*torch\.as_tensor\(p, dtype=torch\.float32\)"):
        probe.update(lambda p: net(p), 0)
    assert len(probe.history) == 0


@pytest.mark.parametrize("value, dtype", [(3e38, torch.float32), (1e200, torch.float64)])
def test_outputs_whose_spectrum_overflows_are_not_finite(value, dtype):
    probe = SpectrumProbe(Grid.uniform(16), target=lambda p: np.cos(2 * np.pi * p[:, 0]), window="hann")
    probe.update(lambda p: torch.full((len(p),), value, dtype=dtype), 0)
    assert probe.history.finite.tolist() == [False]
    assert np.isnan(probe.history.power).all() and np.isnan(probe.history.relative_error()).all()


def test_large_but_representable_outputs_stay_finite_and_exact():
    probe = SpectrumProbe(Grid.uniform(16))
    probe.update(lambda p: np.full(len(p), 1e150), 0)
    assert probe.history.finite.tolist() == [True]
    assert probe.history.amplitude[0, 0] == pytest.approx(1e150) and probe.history.power[0, 0] == pytest.approx(1e300)
    assert np.isfinite(probe.history.power).all()


def test_refused_huge_step_leaves_a_history_that_saves(tmp_path):
    net = mlp(1, width=8, depth=2, seed=0)
    probe = SpectrumProbe(Grid.uniform(8))
    probe.update(net, 2**63 - 1)
    with pytest.raises(ValueError, match="step"):
        probe.update(net, 2**63)
    probe.history.save(tmp_path / "h.npz")
    assert SpectrumHistory.load(tmp_path / "h.npz").steps.tolist() == [2**63 - 1]


def test_rectangular_grid_with_bounds_per_axis(tmp_path):
    # [-5, 5) x [0, 1): f_y = 0.3 (bin 3 of 10 units), f_x = 2 (bin 2 of 1 unit), |f| = 2.02 in ring 20 of 0.1.
    grid = Grid.uniform((32, 16), bounds=((-5, 5), (0, 1)))
    wave = lambda p: np.sin(2 * np.pi * (0.3 * p[:, 0] + 2 * p[:, 1]))
    probe = SpectrumProbe(grid, target=wave)
    probe.update(lambda p: 0.5 * wave(p), 0)
    history = probe.history
    assert history.extent == (10.0, 1.0)
    assert {tuple(k) for k in np.round(history.target_freqs, 12)} == {(0.3, 2.0), (-0.3, -2.0)}
    assert history.amplitude[0, 3, 2] == pytest.approx(0.5) and history.amplitude[0].argmax() == 3 * 16 + 2
    np.testing.assert_allclose(history.relative_error()[0], [0.5, 0.5], rtol=1e-12)
    radii, rings = history.radial()
    assert rings[0].argmax() == 20 and radii[20] == pytest.approx(2.0)
    assert np.sqrt(2 * rings[0, 20]) == pytest.approx(0.5)
    assert history.high_frequency_fraction(2.0)[0] == pytest.approx(1.0)
    loaded = SpectrumHistory.load(history.save(tmp_path / "rectangle.npz"))
    assert loaded.extent == (10.0, 1.0) and loaded.shape == (32, 16)
    np.testing.assert_array_equal(loaded.radial()[1], rings)
    assert (loaded.freqs[0][3], loaded.freqs[1][2]) == pytest.approx((0.3, 2.0))


def test_history_amplitude_and_power_are_spectrum_with_each_scaling():
    # Under a window the history keeps each array in its natural normalisation.
    grid = Grid.uniform((12, 10), extent=(2.0, 3.0))
    model = lambda p: np.exp(np.sin(2 * np.pi * p[:, 0] / 2)) + p[:, 1]
    probe = SpectrumProbe(grid, window="hann")
    probe.update(model, 0)
    values = model(grid.points).reshape(grid.shape)
    amplitude = spectrum(values, extent=grid.extent, window="hann", scaling="amplitude").amplitude
    power = spectrum(values, extent=grid.extent, window="hann", scaling="power").power
    np.testing.assert_allclose(probe.history.amplitude[0], amplitude, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(probe.history.power[0], power, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("window", [None, "hann"])
@pytest.mark.parametrize("where", [0, 7])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_one_non_finite_value_anywhere_makes_the_record_non_finite(window, where, bad):
    # The probe reads non-finite values from the spectra alone: the DC bin sums every (windowed) value, and a
    # window's zero times inf is NaN.
    def model(points):
        values = np.sin(2 * np.pi * points[:, 0])
        values[where] = bad
        return values

    probe = SpectrumProbe(Grid.uniform(16), window=window)
    probe.update(model, 0)
    assert probe.history.finite.tolist() == [False] and np.isnan(probe.history.power[0]).all()

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import ive

from spectral import FilterHistory, FilterProbe, filter_error, low_pass
from spectral._filter_probe import WIDTH_RANGE, _filter_dtype, plot_filter_history


def kept_fraction(width, k):
    """Amplitude a Gaussian of standard deviation ``width`` keeps of a sinusoid of ``k`` cycles per unit length."""
    return np.exp(-2 * np.pi**2 * width**2 * k**2)


def test_sinusoid_keeps_gaussian_fraction_in_the_interior():
    # 1000 samples per unit length on [0, 2), sinusoids as columns, three widths in one pass. Six widths
    # from either end the kernel's missing tail weighs at most exp(-18) ~ 2e-8, and 25+ samples per
    # width make the Riemann sums exact to far below that: interior values match the continuous
    # filter to 1e-6, and a wrong width convention (delta as variance, a missing 2) is off by > 1e-2.
    x = np.arange(2000) / 1000.0
    cycles = np.array([1, 3, 7, 12])
    waves = np.sin(2 * np.pi * cycles * x[:, None] + 0.3)
    widths = [0.01, 0.02, 0.04]
    low = low_pass(x, waves, widths)
    for w, width in enumerate(widths):
        interior = (x >= 6 * width) & (x <= 2 - 6 * width)
        np.testing.assert_allclose(low[w, interior], kept_fraction(width, cycles) * waves[interior], atol=1e-6)


def test_low_plus_high_is_the_whole_and_filter_is_linear():
    rng = np.random.default_rng(0)
    x, g, h = rng.normal(size=(300, 4)), rng.normal(size=300), rng.normal(size=300)
    low = low_pass(x, g, [0.5, 2.0])
    high = g - low
    np.testing.assert_allclose(low + high, np.broadcast_to(g, low.shape), rtol=0, atol=4 * np.finfo(float).eps * 8)
    np.testing.assert_allclose(low_pass(x, g + h, 1.0), low_pass(x, g, 1.0) + low_pass(x, h, 1.0), atol=1e-12)


def test_chunking_does_not_change_the_result():
    rng = np.random.default_rng(1)
    x, g = rng.normal(size=(257, 3)), rng.normal(size=(257, 2))
    whole = low_pass(x, g, [0.3, 1.0], chunk_elements=257 * 257)
    np.testing.assert_allclose(low_pass(x, g, [0.3, 1.0], chunk_elements=7 * 257), whole, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(low_pass(x, g, [0.3, 1.0], chunk_elements=1), whole, rtol=1e-12, atol=1e-14)


def test_tensor_in_tensor_out_keeps_float32():
    x = torch.linspace(0, 1, 50)
    low = low_pass(x, torch.sin(6 * x), 0.1)
    assert isinstance(low, torch.Tensor) and low.dtype == torch.float32 and low.shape == (1, 50)


def circle(count, radius=1.0):
    theta = 2 * np.pi * np.arange(count) / count
    return theta, radius * np.stack([np.cos(theta), np.sin(theta)], axis=1)


def angle(points):
    return np.arctan2(points[:, 1], points[:, 0])


def von_mises_fraction(m, width, radius=1.0):
    """On a circle, exp(-|x - x'|^2 / (2 w^2)) = const * exp(kappa cos(dtheta)), kappa = r^2 / w^2: a
    von Mises kernel, which keeps I_m(kappa) / I_0(kappa) of the m-th harmonic, exactly (no boundary)."""
    kappa = radius**2 / width**2
    return ive(m, kappa) / ive(0, kappa)


def test_probe_errors_match_the_periodic_truth_on_a_circle():
    # Targets sin(theta) + sin(6 theta); the model has learned sin(theta) only, so the residual is
    # -sin(6 theta). Harmonics are orthogonal on the uniform circle, so every RMS has a closed form.
    theta, x = circle(720)
    widths = [0.1, 0.3, 1.0]
    probe = FilterProbe(x, np.sin(theta) + np.sin(6 * theta), widths)
    assert probe.update(lambda p: np.sin(angle(p)), 0)
    rho1 = np.array([von_mises_fraction(1, w) for w in widths])
    rho6 = np.array([von_mises_fraction(6, w) for w in widths])
    history = probe.history
    np.testing.assert_allclose(history.target_low, np.sqrt((rho1**2 + rho6**2) / 2), rtol=1e-9)
    np.testing.assert_allclose(history.target_high, np.sqrt(((1 - rho1) ** 2 + (1 - rho6) ** 2) / 2), rtol=1e-9)
    np.testing.assert_allclose(history.residual_low[0], rho6 / np.sqrt(2), rtol=1e-9)
    np.testing.assert_allclose(history.low_error()[0], rho6 / np.sqrt(rho1**2 + rho6**2), rtol=1e-9)
    np.testing.assert_allclose(history.high_error()[0], (1 - rho6) / np.sqrt((1 - rho1) ** 2 + (1 - rho6) ** 2),
                               rtol=1e-9)
    # A large circle tends to a line: the fraction tends to the Gaussian's exp(-2 pi^2 d^2 k^2).
    radius = 50.0
    k = 6 / (2 * np.pi * radius)
    assert abs(von_mises_fraction(6, 1.0, radius) - kept_fraction(1.0, k)) < 1e-3


def test_narrow_and_wide_limits():
    rng = np.random.default_rng(2)
    x, y = rng.uniform(size=(200, 3)), rng.normal(size=200)
    h = y + rng.normal(size=200) * 0.5
    # Much narrower than any spacing: low(g) = g, the high part is 0 (its error undefined: NaN).
    # Much wider than the data: low(g) = mean(g) everywhere.
    probe = FilterProbe(x, y, [1e-6, 1e6])
    with pytest.warns(UserWarning, match=r"no high-pass part beyond round-off at widths \[1e-06\]"):
        probe.update(lambda p: h, 0)
    r = h - y
    np.testing.assert_allclose(probe.history.low_error()[0, 0], np.linalg.norm(r) / np.linalg.norm(y), rtol=1e-12)
    assert np.isnan(probe.history.high_error()[0, 0])
    np.testing.assert_allclose(probe.history.low_error()[0, 1], abs(r.mean()) / abs(y.mean()), rtol=1e-9)
    np.testing.assert_allclose(probe.history.high_error()[0, 1],
                               np.linalg.norm(r - r.mean()) / np.linalg.norm(y - y.mean()), rtol=1e-9)


def test_torch_module_with_several_outputs_matches_columns_one_by_one():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    labels = np.eye(3)[rng.integers(0, 3, size=120)]
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    net.train()
    probe = FilterProbe(x, labels, [1.0, 3.0], chunk_elements=16 * 120)
    probe.update(net, 0)
    assert net.training and probe.history.finite.tolist() == [True]
    with torch.no_grad():
        outputs = net(torch.from_numpy(x)).double().numpy()
    low_h, low_y = low_pass(x.astype(np.float64), outputs, [1.0, 3.0]), low_pass(x.astype(np.float64), labels, [1.0, 3.0])
    expected = np.linalg.norm((low_h - low_y).reshape(2, -1), axis=1) / np.linalg.norm(low_y.reshape(2, -1), axis=1)
    np.testing.assert_allclose(probe.history.low_error()[0], expected, rtol=1e-4)   # the filter runs in float32


def test_wrong_output_shape_is_refused():
    probe = FilterProbe(np.zeros((10, 2)) + np.arange(10)[:, None], np.zeros((10, 3)), 1.0)
    with pytest.raises(ValueError, match=r"\(10, 3\)"):
        probe.update(lambda p: np.zeros((len(p), 2)), 0)


def test_every_and_non_finite_outputs():
    x = np.linspace(0, 1, 30)
    probe = FilterProbe(x, np.sin(6 * x), 0.1, every=5)
    recorded = [probe.update(lambda p, s=s: np.full(len(p), np.nan if s == 5 else 0.0), s) for s in range(12)]
    assert recorded == [s % 5 == 0 for s in range(12)]
    history = probe.history
    assert history.steps.tolist() == [0, 5, 10] and history.finite.tolist() == [True, False, True]
    assert np.isnan(history.low_error()[1]).all() and np.isfinite(history.low_error()[[0, 2]]).all()
    np.testing.assert_allclose(history.low_error()[0], 1.0)


def test_save_load_round_trip(tmp_path):
    x = np.linspace(0, 1, 40)
    probe = FilterProbe(x, np.cos(5 * x), [0.05, 0.2])
    for step in range(3):
        probe.update(lambda p, s=step: s * np.cos(5 * p[:, 0]) / 3, step)
    path = tmp_path / "filter.npz"
    probe.history.save(path)
    loaded = FilterHistory.load(path)
    for key in ("steps", "finite", "widths", "residual_low", "residual_high", "target_low", "target_high"):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(probe.history, key))
    np.testing.assert_array_equal(loaded.low_error(), probe.history.low_error())
    np.testing.assert_array_equal(loaded.high_error(), probe.history.high_error())
    with np.load(path, allow_pickle=False) as archive:
        assert '"schema_version": 2' in str(archive["metadata"])


def test_load_refuses_foreign_and_inconsistent_files(tmp_path):
    from spectral._io import save_npz

    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.zeros(3))
    with pytest.raises(ValueError, match="path"):
        FilterHistory.load(foreign)
    broken = tmp_path / "broken.npz"
    save_npz(broken, {"steps": np.zeros(2, np.int64), "finite": np.ones(2, bool), "residual_low": np.zeros((2, 3)),
                      "residual_high": np.zeros((2, 2)), "widths": np.ones(2), "target_low": np.ones(2),
                      "target_high": np.ones(2)},
             {"format": FilterHistory.FORMAT, "schema_version": 2, "labels": ["", ""]})
    with pytest.raises(ValueError, match="residual_low"):
        FilterHistory.load(broken)


@pytest.mark.parametrize("kwargs, name", [
    ({"widths": []}, "widths"), ({"widths": [1.0, -1.0]}, "widths"), ({"widths": "wide"}, "widths"),
    ({"widths": [float("nan")]}, "widths"), ({"every": 0}, "every"), ({"chunk_elements": 0}, "chunk_elements"),
    ({"target": np.zeros(9)}, "target"), ({"inputs": np.full((10, 2), np.inf)}, "inputs"),
    ({"inputs": np.zeros((10, 2, 2))}, "inputs"), ({"target": np.full(10, np.nan)}, "target"),
])
def test_bad_arguments_name_the_parameter(kwargs, name):
    arguments = {"inputs": np.zeros((10, 2)), "target": np.zeros(10), "widths": 1.0} | kwargs
    with pytest.raises((TypeError, ValueError), match=name):
        FilterProbe(**arguments)


def test_plot_returns_figure_and_axes():
    x = np.linspace(0, 1, 40)
    probe = FilterProbe(x, np.sin(9 * x), [0.02, 0.2])
    probe.update(lambda p: np.zeros(len(p)), 0)
    fig, ax = plot_filter_history(probe.history)
    assert ax.figure is fig and len(ax.lines) == 4
    with pytest.raises(ValueError, match="empty"):
        plot_filter_history(FilterHistory([1.0]))


@pytest.mark.parametrize("width", [1e-300, 1e300, 1e-160, 1e16, 1e-16])
def test_widths_outside_the_float32_range_are_refused_naming_widths_and_the_range(width):
    # 1e-300 and 1e300 crashed (ZeroDivisionError, OverflowError); 1e-160 gave NaN silently.
    x = np.linspace(0, 1, 20)
    with pytest.raises(ValueError, match=r"widths must lie in \[1e-15, 1e\+15\]"):
        FilterProbe(x, np.sin(6 * x), width)
    with pytest.raises(ValueError, match="widths"):
        low_pass(x, np.sin(6 * x), [0.1, width])


def test_widths_at_the_ends_of_the_range_give_the_narrow_and_wide_limits():
    x, y = np.linspace(0, 1, 20), np.sin(6 * np.linspace(0, 1, 20))
    low = low_pass(x, y, list(WIDTH_RANGE))
    np.testing.assert_array_equal(low[0], y)                       # no neighbour within reach: the function itself
    np.testing.assert_allclose(low[1], np.full(20, y.mean()), rtol=1e-12)   # every point weighs the same: the mean
    low32 = low_pass(x.astype(np.float32), y, list(WIDTH_RANGE))
    assert np.isfinite(low32).all()


def test_constant_target_has_an_undefined_high_error_not_a_round_off_ratio():
    # The high-pass part of a constant is zero; round-off left ~1e-16 of it, and high_error read 1.1e15.
    x = np.linspace(0, 1, 50)
    probe = FilterProbe(x, np.full(50, 3.0), [0.1, 0.5])
    with pytest.warns(UserWarning, match=r"no high-pass part beyond round-off at widths \[0.1, 0.5\]"):
        probe.update(lambda p: np.zeros(len(p)), 0)
    assert probe.history.target_high.tolist() == [0.0, 0.0]
    assert np.isnan(probe.history.high_error()).all()
    np.testing.assert_allclose(probe.history.low_error(), 1.0, rtol=1e-12)   # the low part is the constant


def test_all_zero_target_warns_that_both_errors_are_undefined():
    x = np.linspace(0, 1, 50)
    probe = FilterProbe(x, np.zeros(50), 0.1)
    with pytest.warns(UserWarning) as caught:
        probe.update(lambda p: np.ones(len(p)), 0)
    messages = [str(w.message) for w in caught]
    assert any("low-frequency error is undefined" in m for m in messages)
    assert any("high-frequency error is undefined" in m for m in messages)
    assert {w.filename for w in caught} == {__file__}   # points at the caller
    assert np.isnan(probe.history.low_error()).all() and np.isnan(probe.history.high_error()).all()


def test_filter_error_matches_the_periodic_truth_and_the_probe():
    theta, x = circle(720)
    widths = [0.1, 0.3, 1.0]
    y = np.sin(theta) + np.sin(6 * theta)
    errors = filter_error(x, np.sin(theta), y, widths)
    rho1 = np.array([von_mises_fraction(1, w) for w in widths])
    rho6 = np.array([von_mises_fraction(6, w) for w in widths])
    np.testing.assert_allclose(errors.low, rho6 / np.sqrt(rho1**2 + rho6**2), rtol=1e-9)
    np.testing.assert_allclose(errors.high, (1 - rho6) / np.sqrt((1 - rho1) ** 2 + (1 - rho6) ** 2), rtol=1e-9)
    probe = FilterProbe(x, y, widths)
    probe.update(lambda p: np.sin(angle(p)), 0)
    np.testing.assert_allclose(probe.history.low_error()[0], errors.low, rtol=1e-12)
    np.testing.assert_allclose(probe.history.high_error()[0], errors.high, rtol=1e-12)
    assert np.isnan(filter_error(x, np.full(720, np.inf), y, widths).high).all()
    with pytest.raises(ValueError, match="outputs"):
        filter_error(x, np.zeros((720, 2)), y, widths)


def test_inputs_whose_squared_distances_overflow_are_refused():
    # Squared distances of 1e200-sized inputs are inf in float64: the kernel was NaN, silently.
    with pytest.raises(ValueError, match="inputs are too large"):
        FilterProbe(np.linspace(0, 1, 20) * 1e200, np.zeros(20), 0.1)
    with pytest.raises(ValueError, match="inputs are too large"):
        low_pass(np.linspace(0, 1, 20).astype(np.float32) * 1e20, np.zeros(20), 0.1)


def test_half_precision_is_filtered_in_float32_and_float64_falls_back_to_float32_without_float64():
    x = torch.linspace(0, 1, 50)
    y = torch.sin(6 * x)
    half = low_pass(x.half(), y, 0.1)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, low_pass(x.half().float(), y, 0.1))
    assert _filter_dtype(torch.float16, torch.device("cpu")) == torch.float32
    assert _filter_dtype(torch.bfloat16, torch.device("cpu")) == torch.float32
    assert _filter_dtype(torch.float64, torch.device("cpu")) == torch.float64
    assert _filter_dtype(torch.float64, torch.device("mps")) == torch.float32   # MPS has no float64
    probe = FilterProbe(x.half(), y, 0.1)
    probe.update(lambda p: np.zeros(len(p)), 0)
    assert probe._placed(torch.device("cpu"))[0].dtype == torch.float32


def test_every_is_keyword_only_and_renamed_keywords_say_their_new_name():
    x = np.linspace(0, 1, 20)
    with pytest.raises(TypeError, match="positional"):
        FilterProbe(x, np.zeros(20), 0.1, 5)
    with pytest.raises(TypeError, match="targets=, which is now called target="):
        FilterProbe(x, targets=np.zeros(20), widths=0.1)
    with pytest.raises(TypeError, match="chunk_size=, which is now called chunk_elements="):
        FilterProbe(x, np.zeros(20), 0.1, chunk_size=4)


def test_chunk_elements_bounds_the_kernel_block():
    x = np.linspace(0, 1, 100)
    assert FilterProbe(x, np.zeros(100), 0.1, chunk_elements=1000).chunk_elements == 1000   # 10 rows of 100
    assert FilterProbe(x, np.zeros(100), 0.1, chunk_elements=5).chunk_elements == 100       # at least one row
    assert FilterProbe(x, np.zeros(100), 0.1).chunk_elements == 100 * 100                   # all rows fit the default


@pytest.mark.parametrize("changed, match", [
    ({"widths": np.array([0.05 + 1j, 0.2])}, "widths"),
    ({"widths": np.array([0.05, 1e300])}, "widths"),
    ({"target_low": np.array([-1.0, 0.5])}, "target_low"),
    ({"target_high": np.array([np.nan, 0.5])}, "target_high"),
    ({"target_low": np.array([np.nan, np.nan]), "target_high": np.array([np.nan, np.nan])}, "target"),
    ({"residual_high": np.array([[-0.1, 0.2]])}, "residual_high"),
])
def test_load_refuses_what_the_probe_refuses(rewritten_history, changed, match):
    # Complex widths and negative RMS values were accepted on load.
    x = np.linspace(0, 1, 30)
    probe = FilterProbe(x, np.sin(6 * x), [0.05, 0.2])
    probe.update(lambda p: np.zeros(len(p)), 0)
    with pytest.raises(ValueError, match=match):
        FilterHistory.load(rewritten_history(probe.history, lambda arrays: changed))


def test_examples_and_the_filter_benchmark_use_public_names_only():
    root = Path(__file__).resolve().parents[1]
    files = [*sorted((root / "examples").glob("*.py")), root / "benchmarks" / "filter_probe.py"]
    for path in files:
        private = re.findall(r"^\s*(?:from|import) spectral(?:\.\w+)*\._\w+|^\s*from spectral(?:\.\w+)* import .*\b_\w+"
                             r"|\._evaluator\b", path.read_text(), flags=re.MULTILINE)
        assert not private, f"{path.name} uses private names: {private}"

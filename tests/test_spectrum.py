import subprocess
import sys

import numpy as np
import pytest
import torch

from spectral import Grid, spectrum
from spectral._spectrum import window_array


def sinusoid(n, k, amplitude=1.0, phase=0.0, extent=1.0):
    x = Grid.uniform(n, extent=extent).points[:, 0]
    return amplitude * np.sin(2 * np.pi * k * x / extent + phase)


@pytest.mark.parametrize("n", [64, 65])
@pytest.mark.parametrize("k", [1, 7, 20])
def test_unit_sinusoid_reads_one(n, k):
    s = spectrum(sinusoid(n, k, phase=0.3))
    assert s.amplitude[k] == pytest.approx(1.0, abs=1e-12)
    others = np.delete(s.amplitude, k)
    assert others.max() < 1e-12


def test_amplitude_and_phase_of_cosine_coefficients():
    s = spectrum(2.5 * np.cos(2 * np.pi * 3 * Grid.uniform(32).points[:, 0]))
    assert s.coefficients[3] == pytest.approx(1.25 + 0j, abs=1e-12)
    assert s.amplitude[3] == pytest.approx(2.5)


def test_dc_and_nyquist_use_single_sided_rule():
    n = 16
    x = np.arange(n)
    values = 0.7 + 0.3 * np.cos(np.pi * x)  # DC 0.7 and Nyquist amplitude 0.3
    s = spectrum(values)
    assert s.amplitude[0] == pytest.approx(0.7)
    assert s.amplitude[n // 2] == pytest.approx(0.3)
    assert s.power[0] == pytest.approx(0.49)
    assert s.power[n // 2] == pytest.approx(0.09)


def test_freqs_and_extent_scaling():
    s = spectrum(sinusoid(40, 4, extent=2.0), extent=2.0)
    np.testing.assert_allclose(s.freqs, np.arange(21) / 2.0)
    assert s.freqs[np.argmax(s.amplitude)] == pytest.approx(2.0)  # 4 cycles over length 2


@pytest.mark.parametrize("shape", [(100,), (33,), (16, 20), (9, 7)])
def test_parseval(shape):
    values = np.random.default_rng(0).normal(size=shape) + 0.3
    s = spectrum(values)
    assert s.power.sum() == pytest.approx(np.mean(values**2), rel=1e-12)


def test_plane_wave_lands_in_its_ring():
    grid = Grid.uniform((32, 32))
    ky, kx, a = 3, 4, 0.8  # |k| = 5
    y, x = grid.points.T
    values = (a * np.sin(2 * np.pi * (ky * y + kx * x))).reshape(grid.shape)
    s = spectrum(values)
    radii, power = s.radial()
    assert np.argmax(power) == 5 and radii[5] == 5.0
    assert np.sqrt(2 * power[5]) == pytest.approx(a)
    assert power.sum() == pytest.approx(s.power.sum())
    assert s.amplitude[ky, kx] == pytest.approx(a) and s.amplitude[-ky, -kx] == pytest.approx(a)
    assert s.high_frequency_fraction(4.9) == pytest.approx(1.0)
    assert s.high_frequency_fraction(5.0) == pytest.approx(0.0)


def test_radial_keeps_dc_and_rounds_radius():
    grid = Grid.uniform((16, 16))
    y, x = grid.points.T
    values = (2.0 + np.cos(2 * np.pi * (1 * y + 1 * x))).reshape(grid.shape)  # |k| = 1.41 -> ring 1
    _, power = spectrum(values).radial()
    assert power[0] == pytest.approx(4.0)
    assert power[1] == pytest.approx(0.5)


def test_2d_frequency_axes_and_extent():
    s = spectrum(np.zeros((4, 6)) + 1.0, extent=2.0)
    np.testing.assert_allclose(s.freqs[0], np.fft.fftfreq(4, d=0.5))
    np.testing.assert_allclose(s.freqs[1], np.fft.fftfreq(6, d=2.0 / 6))


def test_high_frequency_fraction_1d():
    x = Grid.uniform(64).points[:, 0]
    values = 5 + np.sin(2 * np.pi * 2 * x) + np.sin(2 * np.pi * 10 * x)
    s = spectrum(values)
    assert s.high_frequency_fraction(5) == pytest.approx(0.5)  # DC excluded
    assert s.high_frequency_fraction(10) == pytest.approx(0.0)
    assert np.isnan(spectrum(np.ones(8)).high_frequency_fraction(1))


def test_hann_window_cuts_leakage_and_keeps_amplitude():
    x = Grid.uniform(256).points[:, 0]
    ramp = x.copy()  # not periodic: a jump at the boundary leaks everywhere
    plain = spectrum(ramp).amplitude
    hann = spectrum(ramp, window="hann").amplitude
    assert hann[40:].max() < plain[40:].max() / 1000
    s = spectrum(np.sin(2 * np.pi * 20 * x), window="hann")
    assert s.amplitude[20] == pytest.approx(1.0)  # coherent gain corrected
    assert spectrum(np.sin(2 * np.pi * 20 * x), window=("kaiser", 8.0)).amplitude[20] == pytest.approx(1.0, rel=1e-4)


def test_smooth_nonperiodic_function_reads_near_zero_high_frequency_with_window():
    x = Grid.uniform(256).points[:, 0]
    values = np.exp(x) + x**2
    assert spectrum(values).high_frequency_fraction(10) > 0.01
    assert spectrum(values, window="hann").high_frequency_fraction(10) < 1e-4


def test_torch_input_matches_numpy_and_stays_numpy_out():
    values = np.random.default_rng(1).normal(size=(8, 10))
    a = spectrum(values)
    b = spectrum(torch.from_numpy(values).float())
    assert isinstance(b.power, np.ndarray)
    np.testing.assert_allclose(a.power, b.power, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "values, error, match",
    [
        (np.zeros((2, 2, 2)), ValueError, "values"),
        (np.array([]), ValueError, "values"),
        (np.zeros(4, dtype=complex), TypeError, "values"),
        (torch.zeros(4, dtype=torch.complex64), TypeError, "values"),
        (np.array(["a", "b"]), TypeError, "values"),
        (5.0, ValueError, "values"),
    ],
)
def test_bad_values(values, error, match):
    with pytest.raises(error, match=match):
        spectrum(values)


@pytest.mark.parametrize("extent", [0, -2.0, float("nan"), float("inf")])
def test_bad_extent(extent):
    with pytest.raises(ValueError, match="extent"):
        spectrum(np.ones(8), extent=extent)


def test_unknown_window():
    with pytest.raises(ValueError, match="window"):
        spectrum(np.ones(8), window="no-such-window")
    with pytest.raises(TypeError, match="window"):
        spectrum(np.ones(8), window={"hann": 1})


def test_bad_cutoff():
    with pytest.raises(ValueError, match="cutoff"):
        spectrum(np.ones(8)).high_frequency_fraction(-1)


def test_radial_refuses_1d():
    with pytest.raises(ValueError, match="2D"):
        spectrum(np.ones(8)).radial()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_input(dtype):
    x = torch.as_tensor(Grid.uniform(64).points[:, 0])
    s = spectrum(torch.sin(2 * torch.pi * 3 * x).to(dtype))
    assert s.amplitude[3] == pytest.approx(1.0, abs=1e-2)
    assert spectrum(np.ones(8, dtype=np.float16)).amplitude[0] == pytest.approx(1.0)


@pytest.mark.parametrize("window", [("kaiser", float("nan")), ("kaiser", float("inf")), ("general_hamming", 0.0),
                                    ("tukey", float("nan"))])
def test_windows_with_non_finite_or_zero_gain_are_refused(window):
    with pytest.raises(ValueError, match="window"):
        spectrum(np.ones(16), window=window)
    with pytest.raises(ValueError, match="window"):
        window_array(window, (16, 8))


def test_refuses_boolean_arrays_and_meta_tensors():
    with pytest.raises(TypeError, match="values must hold real numbers"):
        spectrum(np.array([True, False, True, False]))
    with pytest.raises(TypeError, match="values is on the meta device"):
        spectrum(torch.zeros(8, device="meta"))


@pytest.mark.slow
def test_import_does_not_load_scipy_signal():
    code = "import sys, spectral; assert 'scipy.signal' not in sys.modules, 'scipy.signal imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def hann(shape):
    return window_array("hann", shape)


@pytest.mark.parametrize("k", [3, 20])
def test_hann_amplitude_scaling_reads_a_unit_sine_as_one_in_amplitude_and_power(k):
    s = spectrum(sinusoid(64, k, phase=0.4), window="hann", scaling="amplitude")
    assert s.amplitude[k] == pytest.approx(1.0, abs=1e-12) and s.power[k] == pytest.approx(0.5, abs=1e-12)
    inner = slice(1, 32)  # off DC and Nyquist: power is amplitude**2 / 2 in every bin, leakage included
    np.testing.assert_allclose(np.sqrt(2 * s.power[inner]), s.amplitude[inner], rtol=1e-12, atol=1e-15)
    assert s.amplitude[[k - 1, k + 1]] == pytest.approx([0.5, 0.5], abs=1e-12)  # Hann's leakage, coherent gain
    assert s.power.sum() == pytest.approx(0.5 * 1.5, abs=1e-12)  # sums count Hann's ENBW of 1.5 bins


@pytest.mark.parametrize("shape", [(100,), (33,), (16, 20), (9, 7)])
def test_hann_power_scaling_keeps_parseval(shape):
    values = np.random.default_rng(0).normal(size=shape) + 0.3
    w = hann(shape)
    s = spectrum(values, window="hann", scaling="power")
    assert s.power.sum() == pytest.approx(np.mean((values * w) ** 2) / np.mean(w**2), rel=1e-12)
    wave = spectrum(sinusoid(64, 5), window="hann", scaling="power")
    assert wave.power.sum() == pytest.approx(0.5, abs=1e-12)  # a unit sine's mean square, spread over 3 bins
    assert wave.amplitude[5] == pytest.approx(np.sqrt(2 / 3), abs=1e-12)  # its peak: 1 / sqrt(ENBW)
    np.testing.assert_allclose(np.sqrt(2 * wave.power[1:32]), wave.amplitude[1:32], rtol=1e-12, atol=1e-15)


def test_scalings_match_scipy_periodogram_spectrum_and_density():
    from scipy.signal import periodogram

    values = np.random.default_rng(2).normal(size=64)
    for scaling, scipy_scaling, bin_width in (("amplitude", "spectrum", 1.0), ("power", "density", 1 / 64)):
        _, expected = periodogram(values, window="hann", detrend=False, scaling=scipy_scaling)
        np.testing.assert_allclose(spectrum(values, window="hann", scaling=scaling).power, expected * bin_width,
                                   rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("window", [None, "hann"])
def test_without_a_window_the_scalings_agree_and_with_one_they_differ(window):
    values = np.random.default_rng(3).normal(size=(12, 10))
    a, p = spectrum(values, window=window), spectrum(values, window=window, scaling="power")
    assert a.scaling == "amplitude" and p.scaling == "power"
    assert np.array_equal(a.power, p.power) == (window is None)
    assert np.array_equal(a.amplitude, p.amplitude) == (window is None)
    assert a.high_frequency_fraction(2) == pytest.approx(p.high_frequency_fraction(2), rel=1e-12)  # a ratio


@pytest.mark.parametrize("scaling", ["amplitude", "power"])
@pytest.mark.parametrize("window", [None, "hann"])
def test_leading_batch_axes_equal_looping(scaling, window):
    rng = np.random.default_rng(4)
    batch = rng.normal(size=(3, 4, 64))
    s = spectrum(batch, ndim=1, window=window, scaling=scaling, extent=2.0)
    assert s.amplitude.shape == s.power.shape == s.coefficients.shape == (3, 4, 33) and s.ndim == 1
    for i in range(3):
        for j in range(4):
            one = spectrum(batch[i, j], window=window, scaling=scaling, extent=2.0)
            np.testing.assert_allclose(s.amplitude[i, j], one.amplitude, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(s.power[i, j], one.power, rtol=1e-12, atol=1e-15)
            assert s.high_frequency_fraction(5)[i, j] == pytest.approx(one.high_frequency_fraction(5), rel=1e-12)
    np.testing.assert_array_equal(s.freqs, np.arange(33) / 2.0)
    images = rng.normal(size=(2, 8, 10))
    s2 = spectrum(torch.as_tensor(images), ndim=2, window=window, scaling=scaling)
    _, rings = s2.radial()
    for i in range(2):
        one = spectrum(images[i], window=window, scaling=scaling)
        np.testing.assert_allclose(s2.power[i], one.power, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(rings[i], one.radial()[1], rtol=1e-12, atol=1e-15)


def test_a_sinusoid_on_minus_five_to_five_reads_its_frequency_in_cycles_per_unit_length():
    grid = Grid.uniform(200, bounds=(-5, 5))
    s = spectrum(0.7 * np.cos(2 * np.pi * 0.3 * grid.points[:, 0] + 1.0), extent=grid.extent)
    assert s.freqs[np.argmax(s.amplitude)] == pytest.approx(0.3) and s.amplitude.max() == pytest.approx(0.7)


def test_plane_wave_on_a_rectangle_lands_on_its_bin_and_ring():
    # [-5, 5) x [0, 1): f_y = 0.3 (bin 3 of a length-10 axis), f_x = 2 (bin 2 of a length-1 axis).
    grid = Grid.uniform((64, 32), bounds=((-5, 5), (0, 1)))
    y, x = grid.points.T
    values = (0.8 * np.sin(2 * np.pi * (0.3 * y + 2 * x))).reshape(grid.shape)
    s = spectrum(values, extent=grid.extent)
    assert s.extent == (10.0, 1.0)
    peaks = {tuple(k) for k in np.argwhere(s.power > 1e-3 * s.power.max())}
    assert peaks == {(3, 2), (64 - 3, 32 - 2)}  # (k_y, k_x) and its mirror
    assert (s.freqs[0][3], s.freqs[1][2]) == pytest.approx((0.3, 2.0))
    assert s.amplitude[3, 2] == pytest.approx(0.8)
    radii, rings = s.radial()
    ring = int(np.argmax(rings))
    assert radii[1] == pytest.approx(0.1)  # rings 1 / 10 wide: the finer axis' spacing
    assert radii[ring] == pytest.approx(np.hypot(0.3, 2.0), abs=0.05) and ring == 20
    assert np.sqrt(2 * rings[ring]) == pytest.approx(0.8) and rings.sum() == pytest.approx(s.power.sum())
    assert s.high_frequency_fraction(2.0) == pytest.approx(1.0) and s.high_frequency_fraction(2.03) < 1e-20


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"ndim": 3}, ValueError, "ndim"),
        ({"ndim": 1.0}, TypeError, "ndim"),
        ({"ndim": True}, TypeError, "ndim"),
        ({"scaling": "density"}, ValueError, "scaling"),
        ({"extent": (1.0, 2.0, 3.0)}, ValueError, "extent"),
        ({"extent": (1.0, -2.0)}, ValueError, "extent"),
    ],
)
def test_bad_batch_and_scaling_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        spectrum(np.ones((3, 8)), **kwargs)
    with pytest.raises(ValueError, match="ndim"):
        spectrum(np.ones(8), ndim=2)

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
    radii, power = spectrum(values).radial()
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


def test_import_does_not_load_scipy_signal():
    code = "import sys, spectral; assert 'scipy.signal' not in sys.modules, 'scipy.signal imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)

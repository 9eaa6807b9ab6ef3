import numpy as np
import pytest
import torch

from spectral import Grid, nudft, spectrum


def test_equals_fft_on_uniform_grid_1d():
    n = 48
    x = Grid.uniform(n).points[:, 0]
    y = np.random.default_rng(0).normal(size=n)
    k = np.arange(-5, 30)
    np.testing.assert_allclose(nudft(x, y, k), np.fft.fft(y)[k % n] / n, atol=1e-13)
    amplitude = spectrum(y).amplitude
    np.testing.assert_allclose(2 * np.abs(nudft(x, y, np.arange(1, n // 2))), amplitude[1 : n // 2], atol=1e-13)


def test_equals_fft_on_uniform_grid_2d():
    grid = Grid.uniform((8, 12))
    y = np.random.default_rng(1).normal(size=grid.shape)
    ky, kx = np.meshgrid(np.arange(-3, 4), np.arange(-5, 6), indexing="ij")
    k = np.stack([ky.ravel(), kx.ravel()], axis=1)
    expected = np.fft.fft2(y)[k[:, 0] % 8, k[:, 1] % 12] / y.size
    np.testing.assert_allclose(nudft(grid.points, y.ravel(), k), expected, atol=1e-13)


def test_chunking_does_not_change_result_and_scattered_sinusoid():
    rng = np.random.default_rng(2)
    x = rng.uniform(size=5000)
    y = 2 * np.sin(2 * np.pi * 7 * x + 0.4)
    k = np.arange(0, 12)
    whole = nudft(x, y, k)
    chunked = nudft(x, y, k, chunk_elements=100)
    np.testing.assert_allclose(whole, chunked, atol=1e-12)
    assert 2 * abs(whole[7]) == pytest.approx(2.0, abs=0.05)
    exact = (y[:, None] * np.exp(-2j * np.pi * np.outer(x, k))).mean(axis=0)
    np.testing.assert_allclose(whole, exact, atol=1e-12)


def test_large_frequency_stays_exact():
    x = np.array([0.1, 0.37, 0.9])
    y = np.array([1.0, -2.0, 0.5])
    k = np.array([1_000_003])
    exact = np.mean(y * np.exp(-2j * np.pi * ((k[0] * x) % 1.0)))
    assert nudft(x, y, k)[0] == pytest.approx(exact, abs=1e-9)


def test_torch_in_torch_out():
    x = torch.rand(100, dtype=torch.float64)
    y = torch.sin(2 * torch.pi * 3 * x)
    c = nudft(x, y[:, None], torch.arange(5))
    assert isinstance(c, torch.Tensor) and c.dtype == torch.complex128
    np.testing.assert_allclose(c.numpy(), nudft(x.numpy(), y.numpy(), np.arange(5)))


@pytest.mark.parametrize(
    "x, y, k, match",
    [
        (np.zeros(4), np.zeros(3), [1], "y"),
        (np.zeros((4, 3)), np.zeros(4), [[1, 1, 1]], "x"),
        (np.zeros(4), np.zeros(4), [0.5], "freqs"),
        (np.zeros(4), np.zeros(4), [], "freqs"),
        (np.zeros((4, 2)), np.zeros(4), [1, 2], "freqs"),
        (np.zeros(0), np.zeros(0), [1], "x"),
    ],
)
def test_bad_input(x, y, k, match):
    with pytest.raises(ValueError, match=match):
        nudft(x, y, k)


def test_complex_values_refused():
    with pytest.raises(TypeError, match="y"):
        nudft(np.zeros(3), np.zeros(3, dtype=complex), [1])

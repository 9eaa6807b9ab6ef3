import sys

import numpy as np
import pytest
import torch

from spectral import Grid, _nudft, nudft, spectrum
from spectral._nudft import blocks


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


def _direct(x, y, k):
    """The unchunked sum, written out."""
    x = np.atleast_2d(np.asarray(x).T).T
    k = np.atleast_2d(np.asarray(k).T).T
    return (y[:, None] * np.exp(-2j * np.pi * (x @ k.T))).mean(axis=0)


def test_blocks_bound_memory_whatever_m_times_k():
    assert blocks(10**7, 10**6, 1 << 16) == (1, 1 << 16)  # frequencies split too: one block is 2**16 terms
    assert blocks(10**7, 256, 1 << 16) == (256, 256)
    assert blocks(5, 3, 1 << 16) == (5, 3)
    for rows, frequencies, chunk in [(1000, 7, 10), (3, 1000, 50), (17, 17, 1)]:
        block_rows, columns = blocks(rows, frequencies, chunk)
        assert 1 <= block_rows * columns <= chunk


@pytest.mark.parametrize("chunk_elements", [pytest.param(1, marks=pytest.mark.slow), 5, 64, 10**6])
def test_exact_chunked_over_rows_and_frequencies_equals_direct_sum(chunk_elements):
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(300, 2))
    y = rng.normal(size=300)
    k = rng.integers(-20, 20, size=(37, 2))
    rows, columns = blocks(300, 37, chunk_elements)
    assert chunk_elements >= 10**6 or -(-300 // rows) * -(-37 // columns) > 1  # more than one block
    got = nudft(x, y, k, chunk_elements=chunk_elements, backend="exact")
    np.testing.assert_allclose(got, _direct(x, y, k), atol=1e-12)


def test_auto_is_exact_for_small_sums_and_bad_backend():
    x = np.random.default_rng(4).uniform(size=50)
    y = np.cos(2 * np.pi * 3 * x)
    np.testing.assert_array_equal(nudft(x, y, [1, 3]), nudft(x, y, [1, 3], backend="exact"))
    for backend in ("fft", None, "EXACT"):
        with pytest.raises(ValueError, match="backend"):
            nudft(x, y, [1], backend=backend)


def test_finufft_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "finufft", None)  # import finufft now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "spectral-probes\[finufft\]"'):
        nudft(np.zeros(3), np.zeros(3), [1], backend="finufft")


@pytest.mark.parametrize("ndim", [1, 2])
def test_finufft_equals_exact(ndim):
    pytest.importorskip("finufft")
    rng = np.random.default_rng(5)
    x = rng.uniform(size=(4000, ndim)) if ndim == 2 else rng.uniform(size=4000)
    y = rng.normal(size=4000)
    k = rng.integers(-40, 41, size=(60, 2)) if ndim == 2 else np.arange(-40, 90)
    exact = nudft(x, y, k, backend="exact")
    np.testing.assert_allclose(nudft(x, y, k, backend="finufft"), exact, atol=1e-10)
    shifted = nudft(x - 3.0, y, k, backend="finufft")  # positions outside [0, 1): only k.x mod 1 matters
    np.testing.assert_allclose(shifted, exact, atol=1e-10)


def test_finufft_torch_in_torch_out_and_auto_picks_it_for_large_sums(monkeypatch):
    pytest.importorskip("finufft")
    x = torch.rand(2000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.sin(2 * torch.pi * 7 * x)
    c = nudft(x, y, torch.arange(10), backend="finufft")
    assert isinstance(c, torch.Tensor) and c.dtype == torch.complex128
    np.testing.assert_allclose(c.numpy(), nudft(x, y, torch.arange(10), backend="exact").numpy(), atol=1e-10)
    monkeypatch.setattr(_nudft, "AUTO_FINUFFT_TERMS", 100)
    calls = []
    monkeypatch.setattr(_nudft, "_finufft", lambda *args: calls.append(1) or _nudft._exact(*args, 1 << 16))
    nudft(x, y, torch.arange(10))
    assert calls == [1]
    nudft(x, y, [10**6])  # the mode grid would be too large: auto stays exact
    assert calls == [1]


def test_finufft_refuses_a_huge_mode_grid():
    pytest.importorskip("finufft")
    with pytest.raises(ValueError, match="freqs"):
        nudft(np.array([0.1, 0.2]), np.ones(2), [10**7], backend="finufft")


def test_bad_chunk_elements():
    with pytest.raises(ValueError, match="chunk_elements"):
        nudft(np.zeros(3), np.zeros(3), [1], chunk_elements=0)
    with pytest.raises(TypeError, match="chunk_elements"):
        nudft(np.zeros(3), np.zeros(3), [1], chunk_elements=2.5)


def exact_coefficient(x, y, k):
    """``mean(y * exp(-2 pi i k x))`` with ``k x mod 1`` in exact rational arithmetic, then rounded once."""
    from fractions import Fraction

    turns = [float((k * Fraction(float(position))) % 1) for position in x]
    return np.mean(np.asarray(y) * np.exp(-2j * np.pi * np.array(turns)))


@pytest.mark.parametrize("k", [10**12, 10**15, 2**53 + 1, 2**60 + 3, -(2**60) - 3, 2**63 - 1, -(2**63) + 1])
def test_large_frequencies_match_exact_rational_arithmetic(k):
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.uniform(size=40), [0.1, 0.37, 0.9, 1e-300, 1 - 2**-53, 3.3, -7.123456789]])
    y = rng.normal(size=len(x))
    assert abs(nudft(x, y, [k])[0] - exact_coefficient(x, y, k)) < 1e-14


def test_frequency_above_2_53_on_a_uniform_grid():
    x = np.arange(16) / 16
    y = np.cos(2 * np.pi * 3 * x)
    # (2**60 + 3) j / 16 = 2**56 j + 3 j / 16: the line at 3 cycles, c = 1/2 (it read 7e-18).
    c = nudft(x, y, np.array([2**60 + 3, -(2**60) - 3, 2**60], dtype=np.int64))
    np.testing.assert_allclose(c, [0.5, 0.5, 0.0], atol=1e-15)
    np.testing.assert_allclose(nudft(np.stack([x, x], 1), y, [[2**60 + 3, 0], [2**61, 2**60 + 3]]), [0.5, 0.5],
                               atol=1e-15)


@pytest.mark.parametrize("freqs", [[1e300], [2.0**63], [-(2.0**63)], np.array([2**63], dtype=np.uint64), [2**70]])
def test_frequencies_beyond_int64_are_refused(freqs):
    with pytest.raises(ValueError, match="freqs"):
        nudft([0.1, 0.2], [1.0, 2.0], freqs)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_positions_are_refused(bad):
    with pytest.raises(ValueError, match="x"):
        nudft(np.array([0.1, bad]), [1.0, 2.0], [1])

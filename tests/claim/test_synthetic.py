import numpy as np
import pytest
import torch

from spectral import Grid
from spectral.claim._synthetic import Measure


class _Fixed(torch.nn.Module):
    def __init__(self, rows):
        super().__init__()
        self.rows = rows
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, points):
        return self.rows.to(points.dtype)


def _measure():
    grid = Grid.uniform(128)
    x = torch.as_tensor(grid.points[:, 0])
    clean = torch.sin(2 * torch.pi * 2 * x)
    return x, clean, Measure(grid, clean, {"primary": "hann", "alternate": None}, cutoff=6.0)


def test_measure_reads_known_functions():
    x, clean, measure = _measure()
    smooth = torch.exp(x) + x**2  # not periodic: with the window, leakage must not count as high frequency
    high = clean + torch.sin(2 * torch.pi * 20 * x)
    offset = clean + 5.0  # the mean is removed before windowing: an offset must not leak into |k| = 1
    diverged = torch.full_like(x, float("nan"))
    result = measure(_Fixed(torch.stack([clean, smooth, high, offset, diverged])))
    assert result["test_mse"][0] == pytest.approx(0, abs=1e-10)
    assert result["hf_fraction:primary"][1] < 1e-4
    assert result["hf_fraction:primary"][2] == pytest.approx(0.5, rel=1e-3)
    assert result["hf_fraction:alternate"][2] == pytest.approx(0.5, rel=1e-9)
    # Unit sines: each carries power 1/2 (Parseval without a window), all of it in its band.
    assert result["low_power:alternate"][0] == pytest.approx(0.5) and result["high_power:alternate"][0] < 1e-20
    assert result["high_power:alternate"][2] == pytest.approx(0.5)
    assert result["low_power:primary"][3] == pytest.approx(result["low_power:primary"][0], rel=1e-9)
    assert np.isnan(result["test_mse"][4]) and np.isnan(result["hf_fraction:primary"][4])


def test_the_test_metrics_alone_equal_the_full_measure():
    x, clean, measure = _measure()
    rows = torch.stack([clean, clean + 0.5, torch.full_like(x, float("inf"))])
    alone, full = measure.test(_Fixed(rows)), measure(_Fixed(rows))
    np.testing.assert_allclose(alone["test_mse"][:2], full["test_mse"][:2], rtol=1e-12)
    assert alone["test_mse"][1] == pytest.approx(0.25)  # a constant offset of 0.5 everywhere
    assert not np.isfinite(alone["test_mse"][2])

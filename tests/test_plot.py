import matplotlib.pyplot as plt
import numpy as np
import pytest

from spectral import Grid, SpectrumProbe, plot


def history(ndim):
    grid = Grid.uniform(64) if ndim == 1 else Grid.uniform((16, 16))
    target = lambda x: np.sin(2 * np.pi * 3 * x[:, 0])
    probe = SpectrumProbe(grid, target=target)
    for step in range(3):
        probe.update(lambda x, s=step: target(x) * (1 + s) + 0.01 * np.cos(2 * np.pi * 7 * x[:, -1]), step)
    probe.snapshot(target, "before shrink")
    probe.snapshot(lambda x: 0.2 * target(x), "after shrink")
    probe.snapshot(lambda x: np.full(len(x), np.nan), "diverged")
    return probe.history


def test_before_after_on_given_axes_and_new_figure():
    h = history(1)
    fig, ax = plt.subplots()
    assert plot.before_after(h, ax=ax) is fig
    assert len(ax.get_lines()) >= 2
    plt.close(fig)
    fig = plot.before_after(h, "before shrink", "diverged", normalise=True)
    assert any("non-finite" in t.get_text() for t in fig.axes[0].texts)


def test_error_heatmap_and_spectra_2d(tmp_path):
    fig = plot.error_heatmap(history(1))
    fig.savefig(tmp_path / "heat.png")
    fig = plot.spectra_2d(history(2))
    assert len(fig.axes) >= 3
    fig.savefig(tmp_path / "2d.png")
    assert (tmp_path / "2d.png").stat().st_size > 0


def test_wrong_dimension_and_types():
    with pytest.raises(ValueError, match="2D"):
        plot.spectra_2d(history(1))
    with pytest.raises(ValueError, match="1D"):
        plot.before_after(history(2))
    with pytest.raises(TypeError, match="history"):
        plot.before_after([1, 2])
    with pytest.raises(ValueError, match="before='nope'"):
        plot.before_after(history(1), "nope", "after shrink")
    with pytest.raises(ValueError, match="after='gone'"):
        plot.spectra_2d(history(2), after="gone")


def test_spectra_2d_draws_on_given_axes():
    fig, axes = plt.subplots(1, 3)
    assert plot.spectra_2d(history(2), ax=axes) is fig
    assert axes[2].get_lines()
    plt.close(fig)
    with pytest.raises(ValueError, match="three"):
        plot.spectra_2d(history(2), ax=axes[:2])

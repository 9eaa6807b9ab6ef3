import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import QuadMesh
from matplotlib.patches import Circle

from spectral import Grid, SpectrumProbe, plot


def history(ndim, steps=(0, 1, 2), window=None):
    grid = Grid.uniform(64) if ndim == 1 else Grid.uniform((16, 16))
    target = lambda x: np.sin(2 * np.pi * 3 * x[:, 0]) + (np.sin(2 * np.pi * 2 * x[:, 1]) if ndim == 2 else 0)
    probe = SpectrumProbe(grid, target=target, window=window)
    for i, step in enumerate(steps):
        probe.update(lambda x, s=i: target(x) * (1 + s) + 0.01 * np.cos(2 * np.pi * 7 * x[:, -1]), step)
    probe.snapshot(target, "before shrink")
    probe.snapshot(lambda x: 0.2 * target(x) + 0.05 * x[:, 0], "after shrink")
    probe.update(lambda x: target(x) + 0.02 * np.cos(2 * np.pi * 6 * x[:, 0]), steps[-1] + 50)
    probe.snapshot(lambda x: np.full(len(x), np.nan), "diverged")
    return probe.history


def legend_texts(ax):
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def lines_labelled(ax, start):
    return [line for line in ax.get_lines() if line.get_label().startswith(start)]


def test_before_after_draws_raw_and_normalised_with_cutoff_targets_and_steps():
    fig = plot.before_after(history(1), cutoff=8, title="1d-tanh, seed 0")
    raw, normalised = fig.axes
    assert [raw.get_ylabel(), normalised.get_ylabel()] == ["amplitude", "share of non-DC power"]
    for ax in (raw, normalised):
        (cutoff,) = lines_labelled(ax, "HF cutoff 8")
        assert list(cutoff.get_xdata()) == [8, 8]
        assert "target frequencies" in legend_texts(ax)
        assert {"before shrink (step 2)", "after shrink (step 2)"} <= set(legend_texts(ax))
    title = fig._suptitle.get_text()
    assert title.startswith("1d-tanh, seed 0:") and "step 2" in title


def test_normalised_spectra_do_not_change_under_a_uniform_scale():
    probe = SpectrumProbe(Grid.uniform(64), window="hann")
    wave = lambda x: np.sin(2 * np.pi * 3 * x[:, 0]) + 0.1 * np.sin(2 * np.pi * 20 * x[:, 0])
    probe.snapshot(wave, "before shrink")
    probe.snapshot(lambda x: 1e-3 * wave(x), "after shrink")
    raw, normalised = plot.before_after(probe.history).axes
    before, after = (line.get_ydata() for line in normalised.get_lines()[:2])
    np.testing.assert_allclose(after, before, rtol=1e-9)
    raw_before, raw_after = (line.get_ydata() for line in raw.get_lines()[:2])
    assert raw_after.max() == pytest.approx(1e-3 * raw_before.max())  # the raw level does drop


def test_before_after_single_panels_on_given_axes():
    h = history(1)
    fig, ax = plt.subplots()
    assert plot.before_after(h, ax=ax, normalise=False) is fig
    assert ax.get_ylabel() == "amplitude" and len(ax.get_lines()) >= 2
    plt.close(fig)
    fig, axes = plt.subplots(1, 2)
    assert plot.before_after(h, ax=axes) is fig
    plt.close(fig)
    fig = plot.before_after(h, "before shrink", "diverged", normalise=True)
    assert any("non-finite" in t.get_text() for t in fig.axes[0].texts)


def test_values_below_the_display_floor_are_drawn_on_a_labelled_floor():
    probe = SpectrumProbe(Grid.uniform(64))
    probe.snapshot(lambda x: np.sin(2 * np.pi * 3 * x[:, 0]), "before shrink")  # exact zeros elsewhere
    probe.snapshot(lambda x: 0.5 * np.sin(2 * np.pi * 3 * x[:, 0]), "after shrink")
    ax = plot.before_after(probe.history, normalise=False).axes[0]
    (floor,) = lines_labelled(ax, "display floor")
    assert np.all(ax.get_lines()[0].get_ydata() >= floor.get_ydata()[0])
    assert np.isfinite(ax.get_lines()[0].get_ydata()).all()  # no gaps: the curve does not end unexplained


def test_error_heatmap_is_on_a_step_axis_with_the_shrink_marked():
    steps = (0, 300, 700, 1000)
    h = history(1, steps=steps)
    fig = plot.error_heatmap(h, title="1d-tanh, seed 0")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "training step"
    meshes = [c for c in ax.collections if isinstance(c, QuadMesh)]
    assert len(meshes) == 2  # before and after the shrink
    # Cells reach halfway to the neighbouring records' steps (not record indices); the shrink splits them at its step.
    np.testing.assert_allclose(meshes[0].get_coordinates()[0, :, 0], [-150, 150, 500, 850, 1000])
    np.testing.assert_allclose(meshes[1].get_coordinates()[0, :, 0], [1000, 1025, 1075])
    (shrink,) = lines_labelled(ax, "shrink (step 1000)")
    assert list(shrink.get_xdata()) == [1000, 1000]
    colour_bar = fig.axes[1].get_ylabel()
    assert "relative error" in colour_bar and "target" in colour_bar and "Fourier coefficient" in colour_bar
    title = fig._suptitle.get_text()
    assert title.startswith("1d-tanh, seed 0:") and "non-finite at steps [1050]" in title


def test_error_heatmap_without_a_shrink_and_2d_rows_on_a_half_plane():
    h = history(2)
    fig = plot.error_heatmap(h, after=None)
    ax = fig.axes[0]
    assert not lines_labelled(ax, "shrink")
    rows = [tuple(float(v) for v in t.get_text().strip("()").split(",")) for t in ax.get_yticklabels()]
    assert len(h.target_freqs) == 2 * len(rows)  # each +k/-k pair drawn once
    assert not any((-ky, -kx) in rows for ky, kx in rows)


def test_spectra_2d_raw_and_normalised_rows_with_cutoff_nyquist_and_window_note():
    fig = plot.spectra_2d(history(2, window="hann"), cutoff=5, title="2d-tanh, seed 0")
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 6
    for ax in panels:
        if ax.get_title().startswith("radial"):
            assert lines_labelled(ax, "HF cutoff 5")
            assert any("incomplete rings" in text for text in legend_texts(ax))
        else:
            assert "step 2" in ax.get_title()
            assert any(isinstance(p, Circle) and p.get_radius() == 5 for p in ax.patches)
    assert {ax.get_title() for ax in panels} >= {"radial profile, raw", "radial profile, normalised"}
    title = fig._suptitle.get_text()
    assert title.startswith("2d-tanh, seed 0:") and "separable hann window" in title and "leakage" in title


def test_spectra_2d_draws_on_given_axes():
    fig, axes = plt.subplots(1, 3)
    assert plot.spectra_2d(history(2), ax=axes, normalise=False) is fig
    assert axes[2].get_lines() and fig._suptitle is None  # the caller's figure keeps its own title
    with pytest.raises(ValueError, match="six|6 Axes"):
        plot.spectra_2d(history(2), ax=axes)
    with pytest.raises(ValueError, match="3 Axes"):
        plot.spectra_2d(history(2), ax=axes[:2], normalise=True)
    plt.close(fig)


def test_wrong_dimension_types_and_options():
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
    with pytest.raises(ValueError, match="normalise='maybe'"):
        plot.before_after(history(1), normalise="maybe")
    with pytest.raises(ValueError, match="cutoff"):
        plot.before_after(history(1), cutoff=-1.0)
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="2 Axes"):
        plot.before_after(history(1), ax=ax)
    plt.close(fig)


def test_rectangular_histories_draw_in_cycles_per_unit_length():
    grid = Grid.uniform((32, 16), bounds=((-5, 5), (0, 1)))
    wave = lambda p: np.sin(2 * np.pi * (0.3 * p[:, 0] + 2 * p[:, 1]))
    probe = SpectrumProbe(grid, target=wave, window="hann")
    probe.snapshot(wave, "before shrink")
    probe.snapshot(lambda p: 0.2 * wave(p), "after shrink")
    fig = plot.spectra_2d(probe.history, cutoff=1.0)
    maps = [ax for ax in fig.axes if ax.get_images()]
    left, right, bottom, top = maps[0].get_images()[0].get_extent()
    assert (left, right) == pytest.approx((-8.5, 7.5)) and (bottom, top) == pytest.approx((-1.65, 1.55))
    profile = next(ax for ax in fig.axes if ax.get_title() == "radial profile, raw")
    assert any("Nyquist 1.6" in text for text in legend_texts(profile))  # the y axis' 16 / 10 is the smaller
    heatmap = plot.error_heatmap(probe.history)
    assert [t.get_text() for t in heatmap.axes[0].get_yticklabels()] == ["(0.3, 2)"]

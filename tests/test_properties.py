"""Property-based tests of the transforms, the shrink and the history file format."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spectral import Grid, SpectrumHistory, SpectrumProbe, nudft, shrink_, spectrum
from spectral.models import mlp

SETTINGS = settings(max_examples=40, deadline=None)
FINITE = st.floats(-1e3, 1e3, allow_subnormal=False)
SHAPES_1D = hnp.array_shapes(min_dims=1, max_dims=1, min_side=1, max_side=64)
SHAPES_2D = hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=16)


def values(shapes: st.SearchStrategy) -> st.SearchStrategy:
    return hnp.arrays(np.float64, shapes, elements=FINITE)


@st.composite
def pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    shape = draw(SHAPES_1D | SHAPES_2D)
    return draw(values(st.just(shape))), draw(values(st.just(shape)))


def assert_close(actual, desired, scale: float) -> None:
    """Equal up to float64 round-off on numbers of size ``scale``."""
    np.testing.assert_allclose(actual, desired, rtol=1e-9, atol=1e-12 * max(scale, 1e-300))


def peak(*arrays: np.ndarray) -> float:
    return max(float(np.abs(a).max()) for a in arrays)


@SETTINGS
@given(values(SHAPES_1D | SHAPES_2D))
def test_parseval(v):
    assert_close(spectrum(v).power.sum(), np.mean(v**2), peak(v) ** 2)


@SETTINGS
@given(pairs(), FINITE, FINITE)
def test_linearity(xy, a, b):
    x, y = xy
    combined = spectrum(a * x + b * y).coefficients
    assert_close(combined, a * spectrum(x).coefficients + b * spectrum(y).coefficients, peak(a * x, b * y))


@SETTINGS
@given(values(SHAPES_1D | SHAPES_2D), st.lists(st.integers(-100, 100), min_size=2, max_size=2))
def test_circular_shift_keeps_amplitude_and_power(v, shifts):
    shifted = spectrum(np.roll(v, shifts[: v.ndim], axis=tuple(range(v.ndim))))
    original = spectrum(v)
    assert_close(shifted.amplitude, original.amplitude, peak(v))
    assert_close(shifted.power, original.power, peak(v) ** 2)


@SETTINGS
@given(values(SHAPES_2D))
def test_2d_coefficients_are_conjugate_symmetric(v):
    c = spectrum(v).coefficients
    h, w = v.shape
    mirror = c[np.ix_(-np.arange(h) % h, -np.arange(w) % w)]  # c[-ky, -kx]
    assert_close(c, mirror.conj(), peak(v))


@SETTINGS
@given(values(SHAPES_2D), st.floats(0.01, 100))
def test_radial_rings_sum_to_total_power(v, extent):
    s = spectrum(v, extent=extent)
    radii, rings = s.radial()
    assert len(radii) == len(rings) == int(np.rint(np.hypot(v.shape[0] // 2, v.shape[1] // 2))) + 1
    np.testing.assert_allclose(radii * extent, np.arange(len(radii)))
    assert_close(rings.sum(), s.power.sum(), peak(v) ** 2)


@SETTINGS
@given(values(SHAPES_1D), st.lists(st.integers(-200, 200), min_size=1, max_size=10))
def test_nudft_equals_fft_on_uniform_grid_1d(y, k):
    m = len(y)
    expected = np.fft.fft(y)[np.array(k) % m] / m
    assert_close(nudft(Grid.uniform(m).points, y, k), expected, peak(y))


@SETTINGS
@given(values(SHAPES_2D), st.lists(st.tuples(st.integers(-50, 50), st.integers(-50, 50)), min_size=1, max_size=10))
def test_nudft_equals_fft_on_uniform_grid_2d(v, k):
    (h, w), k = v.shape, np.array(k)
    expected = np.fft.fft2(v)[k[:, 0] % h, k[:, 1] % w] / v.size
    assert_close(nudft(Grid.uniform(v.shape).points, v.ravel(), k), expected, peak(v))


@SETTINGS
@given(st.sampled_from([(32,), (8, 8)]), st.integers(1, 3), st.integers(1, 8), st.integers(0, 2**16),
       st.floats(0.1, 4.0))
def test_shrinking_a_homogeneous_net_scales_output_and_keeps_normalised_spectrum(shape, depth, width, seed, c):
    grid = Grid.uniform(shape)
    net = mlp(grid.ndim, width=width, depth=depth, bias=False, constant_feature=True, seed=seed).double()
    points = torch.from_numpy(grid.points)
    probe = SpectrumProbe(grid)
    with torch.no_grad():
        before = net(points)
        probe.snapshot(net, "before shrink")
        shrink_(net, c)
        after = net(points)
        probe.snapshot(net, "after shrink")
    degree = depth + 1  # linear layers
    assert_close(after.numpy(), c**degree * before.numpy(), c**degree * peak(before.numpy()))
    amplitude = probe.history.amplitude
    total = amplitude.sum(axis=tuple(range(1, amplitude.ndim)))
    if total[0] > 0:
        assert_close(amplitude[1] / total[1], amplitude[0] / total[0], 1.0)
    assert_close(probe.history.power[1], c ** (2 * degree) * probe.history.power[0],
                 c ** (2 * degree) * peak(probe.history.power[0]))


@st.composite
def histories(draw: st.DrawFn) -> SpectrumHistory:
    ndim = draw(st.sampled_from([1, 2]))
    shape = tuple(draw(st.lists(st.integers(1, 8), min_size=ndim, max_size=ndim)))
    k = draw(st.none() | st.integers(1, 4))
    target = None if k is None else draw(hnp.arrays(np.float64, (k,) if ndim == 1 else (k, 2),
                                                    elements=st.integers(-4, 4).map(float)))
    window = draw(st.sampled_from([None, "hann", ("kaiser", 8.0), ("tukey", 0.25)]))
    history = SpectrumHistory(shape, draw(st.floats(1e-3, 1e3)), window, target)
    bins = (shape[0] // 2 + 1,) if ndim == 1 else shape
    for _ in range(draw(st.integers(0, 5))):
        finite = draw(st.booleans())
        numbers = st.floats(0, 1e6) if finite else st.just(np.nan)
        errors = None if k is None else draw(hnp.arrays(np.float64, k, elements=numbers))
        rows = {"amplitude": draw(hnp.arrays(np.float64, bins, elements=numbers)),
                "power": draw(hnp.arrays(np.float64, bins, elements=numbers))}
        if errors is not None:
            rows["relative_error"] = errors
        history.append(draw(st.integers(-2**63, 2**63 - 1)), draw(st.text(max_size=12)), finite, **rows)
    return history


@SETTINGS
@given(histories())
def test_save_load_round_trip(tmp_path_factory, history):
    path = tmp_path_factory.mktemp("history") / "run.npz"
    history.save(path)
    loaded = SpectrumHistory.load(path)
    assert (loaded.shape, loaded.extent, loaded.window) == (history.shape, history.extent, history.window)
    assert len(loaded) == len(history)
    for name in ("steps", "labels", "finite", "amplitude", "power"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(history, name), err_msg=name)
    if history.target_freqs is None:
        assert loaded.target_freqs is None
    else:
        np.testing.assert_array_equal(loaded.target_freqs, history.target_freqs)
        np.testing.assert_array_equal(loaded.relative_error(), history.relative_error())

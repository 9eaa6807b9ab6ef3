import numpy as np
import pytest

from spectral import Grid, SpectrumProbe, spectrum


def test_uniform_1d_points_exclude_endpoint():
    grid = Grid.uniform(4, extent=2.0)
    assert grid.shape == (4,) and grid.extent == 2.0 and grid.ndim == 1
    np.testing.assert_array_equal(grid.points[:, 0], [0.0, 0.5, 1.0, 1.5])


def test_uniform_2d_points_row_major():
    grid = Grid.uniform((2, 3))
    assert grid.points.shape == (6, 2) and grid.size == 6
    np.testing.assert_allclose(grid.points[1], [0.0, 1 / 3])
    np.testing.assert_allclose(grid.points[3], [0.5, 0.0])


@pytest.mark.parametrize("shape", [0, -1, (1, 2, 3), (), (4, 0), 2.5, "8", (True,)])
def test_bad_shape(shape):
    with pytest.raises((TypeError, ValueError), match="shape"):
        Grid.uniform(shape)


@pytest.mark.parametrize("extent", [0.0, -1.0, float("inf"), float("nan"), "1"])
def test_bad_extent(extent):
    with pytest.raises((TypeError, ValueError), match="extent"):
        Grid.uniform(8, extent=extent)


def test_bounds_shift_points_keep_spacing():
    grid = Grid.uniform(4, bounds=(-1, 1))
    assert grid.extent == 2.0 and grid.origin == -1.0 and grid.bounds == ((-1.0, 1.0),)
    np.testing.assert_array_equal(grid.points[:, 0], [-1.0, -0.5, 0.0, 0.5])


def test_rectangular_bounds_per_axis():
    grid = Grid.uniform((2, 4), bounds=[(0, 1), (-3, 3)])
    assert grid.extent == (1.0, 6.0) and grid.lengths == (1.0, 6.0) and grid.lower == (0.0, -3.0)
    np.testing.assert_allclose(grid.axes()[1], [-3.0, -1.5, 0.0, 1.5])
    np.testing.assert_allclose(grid.points[5], [0.5, -1.5])


def test_equal_lengths_collapse_to_one_extent():
    # A square domain has one float extent, whatever its bounds.
    grid = Grid.uniform((4, 4), bounds=[(-5, 5), (0, 10)])
    assert grid.extent == 10.0 and grid.origin == (-5.0, 0.0)
    assert Grid(shape=(4, 4), extent=(2.0, 2.0)) == Grid(shape=(4, 4), extent=2.0)


def test_bounds_keep_frequencies_in_cycles_per_unit_length():
    # sin(2 pi f x) with f = 0.3 cycles per unit length on [-5, 5): bin 3 of a length-10 domain.
    grid = Grid.uniform(256, bounds=(-5, 5))
    probe = SpectrumProbe(grid, target=lambda p: np.sin(2 * np.pi * 0.3 * p[:, 0]))
    probe.update(lambda p: 0.5 * np.sin(2 * np.pi * 0.3 * p[:, 0]), 0)
    np.testing.assert_allclose(probe.history.target_freqs, [0.3])
    assert probe.history.amplitude[0].argmax() == 3
    np.testing.assert_allclose(probe.history.amplitude[0][3], 0.5, rtol=1e-12)
    np.testing.assert_allclose(probe.history.relative_error()[0], [0.5], rtol=1e-12)


def test_shifted_domain_has_the_same_amplitudes():
    # A shift of the domain only changes phases: amplitudes on [-5, 5) equal those on [0, 10).
    def signal(p):
        return np.exp(-((p[:, 0] - 1.0) ** 2))
    shifted, plain = Grid.uniform(128, bounds=(-5, 5)), Grid.uniform(128, extent=10.0)
    amplitudes = []
    for grid, offset in ((shifted, 0.0), (plain, -5.0)):
        probe = SpectrumProbe(grid)
        probe.update(lambda p, offset=offset: signal(p + offset), 0)
        amplitudes.append(probe.history.amplitude[0])
    np.testing.assert_allclose(amplitudes[0], amplitudes[1], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("bounds", [(1, 1), (2, -2), (0, float("inf")), ("a", 1), (0, 1, 2), [(0, 1)] * 3, (True, 2)])
def test_bad_bounds(bounds):
    with pytest.raises((TypeError, ValueError), match="bounds"):
        Grid.uniform((4, 4), bounds=bounds)


def test_extent_and_bounds_together_refused():
    with pytest.raises(ValueError, match="extent or bounds"):
        Grid.uniform(8, extent=2.0, bounds=(0, 2))


@pytest.mark.parametrize("kwargs, name", [
    ({"shape": (0,)}, "shape"), ({"shape": (2, 2, 2)}, "shape"), ({"shape": 8}, "shape"),
    ({"shape": (8.0,)}, "shape"), ({"shape": ()}, "shape"), ({"shape": (True,)}, "shape"),
    ({"shape": (8,), "extent": -1}, "extent"), ({"shape": (8,), "extent": 0}, "extent"),
    ({"shape": (8,), "extent": float("nan")}, "extent"), ({"shape": (8,), "extent": "1"}, "extent"),
    ({"shape": (8, 8), "extent": (1.0, 2.0, 3.0)}, "extent"), ({"shape": (8,), "origin": float("inf")}, "origin"),
    ({"shape": (8,), "origin": None}, "origin"),
])
def test_direct_construction_is_validated(kwargs, name):
    with pytest.raises((TypeError, ValueError), match=name):
        Grid(**kwargs)


def test_direct_construction_normalises_lists():
    grid = Grid(shape=[4, 2], extent=[1, 1])
    assert grid.shape == (4, 2) and grid.extent == 1.0 and hash(grid) == hash(Grid(shape=(4, 2)))


@pytest.mark.parametrize("build, name", [
    (lambda: Grid.uniform(8, bounds=(0, 5e-324)), "bounds"),          # every point was 0.0
    (lambda: Grid.uniform(8, bounds=(1e16, 1e16 + 8)), "bounds"),     # points 1 apart where floats are 2 apart
    (lambda: Grid.uniform(3, bounds=(-1e308, 1e308)), "bounds"),      # the length overflows
    (lambda: Grid.uniform(8, extent=5e-324), "extent"),
    (lambda: Grid(shape=(4, 4), extent=(1.0, 1e-320)), "extent"),     # frequencies k / 1e-320 overflow
    (lambda: spectrum(np.ones(8), extent=1e-320), "extent"),          # gave infinite frequencies with a warning
])
def test_grids_whose_points_coincide_or_whose_frequencies_overflow_are_refused(build, name):
    with pytest.raises(ValueError, match=name):
        build()


def test_tiny_but_representable_grids_are_kept():
    grid = Grid.uniform(4, bounds=(1.0, 1.0 + 1e-12))
    assert np.all(np.diff(grid.points[:, 0]) > 0)
    assert np.isfinite(spectrum(np.ones(4), extent=1e-300).freqs).all()

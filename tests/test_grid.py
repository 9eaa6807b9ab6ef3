import numpy as np
import pytest

from spectral import Grid


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

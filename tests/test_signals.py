import numpy as np
import pytest

from spectral import Grid, spectrum
from spectral.signals import PlaneWaveSum, SineSum, default_1d, default_2d


def test_sine_sum_has_its_amplitudes_on_a_grid():
    signal = SineSum([2, 5], [1.0, 0.25], [0.3, 1.0])
    amplitude = spectrum(signal.on_grid(Grid.uniform(64))).amplitude
    assert amplitude[2] == pytest.approx(1.0) and amplitude[5] == pytest.approx(0.25)
    assert signal.max_frequency == 5


def test_plane_wave_sum_in_its_rings():
    signal = PlaneWaveSum([[3, 4], [0, 2]], [0.5, 1.0])
    radii, power = spectrum(signal.on_grid(Grid.uniform((32, 32)))).radial()
    assert np.sqrt(2 * power[5]) == pytest.approx(0.5)
    assert np.sqrt(2 * power[2]) == pytest.approx(1.0)


def test_sample_is_seeded_and_noisy():
    signal = default_1d()
    x1, y1 = signal.sample(200, noise=0.1, seed=3)
    x2, y2 = signal.sample(200, noise=0.1, seed=3)
    np.testing.assert_array_equal(y1, y2)
    assert x1.shape == (200, 1) and np.all((x1 >= 0) & (x1 < 1))
    assert np.std(y1 - signal(x1)) == pytest.approx(0.1, rel=0.2)
    x, y = default_2d().sample(10, seed=0)
    assert x.shape == (10, 2) and y.shape == (10,)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: SineSum([1.5], [1.0]), "integers"),
        (lambda: SineSum([1, 2], [1.0]), "length"),
        (lambda: default_1d().sample(0), "n"),
        (lambda: default_1d().sample(5, noise=-1), "noise"),
        (lambda: default_2d()(np.zeros((3, 1))), "x"),
        (lambda: default_2d().on_grid(Grid.uniform(8)), "grid"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()

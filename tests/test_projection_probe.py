import numpy as np
import pytest
import torch

from spectral._projection_probe import (
    ProjectionHistory,
    ProjectionProbe,
    plot_projection_history,
)


def one_direction_data(count=512, dimension=6, seed=0):
    """Inputs whose coordinate along a known unit vector u is the uniform grid j / count, plus
    orthogonal noise that is exactly uncorrelated with it (so u is exactly the first principal
    direction: its variance 1/12 is far above the noise's)."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=dimension)
    u /= np.linalg.norm(u)
    basis = np.linalg.qr(np.column_stack([u, rng.normal(size=(dimension, dimension - 1))]))[0]
    orthogonal = basis[:, 1:]                                   # (d, d - 1), orthonormal, orthogonal to u
    p = np.arange(count) / count
    noise = 0.05 * rng.normal(size=(count, dimension - 1))
    design = np.column_stack([np.ones(count), p])
    noise -= design @ np.linalg.lstsq(design, noise, rcond=None)[0]  # mean 0, uncorrelated with p
    return p[:, None] * u + noise @ orthogonal.T, u, orthogonal


def target(x, u):
    p = x @ u
    return np.sin(2 * np.pi * 3 * p) + 0.5 * np.cos(2 * np.pi * 7 * p)


def test_pca_finds_the_direction_and_reads_exact_amplitudes():
    x, u, _ = one_direction_data()
    probe = ProjectionProbe(x, target(x, u), freqs=[3, 5, 7])
    np.testing.assert_allclose(np.abs(probe.history.directions[0] @ u), 1.0, atol=1e-12)
    # Along u the inputs are the uniform grid: the DFT reads each sinusoid's amplitude exactly.
    np.testing.assert_allclose(probe.history.target_amplitude[0], [1.0, 0.0, 0.5], atol=1e-10)
    # A model that has learned the 3-cycle part only: error 0 there, 1 at 7 cycles (at 5 the target has
    # no amplitude, so the ratio of two round-off levels means nothing).
    probe.update(lambda points: np.sin(2 * np.pi * 3 * (points @ u)), 0)
    np.testing.assert_allclose(probe.history.fit_amplitude[0, 0], [1.0, 0.0, 0.0], atol=1e-10)
    errors = probe.history.relative_error()[0, 0]
    np.testing.assert_allclose(errors[[0, 2]], [0.0, 1.0], atol=1e-9)


def test_given_directions_sign_and_orthogonal_direction():
    x, u, orthogonal = one_direction_data()
    w = orthogonal[:, 0]
    probe = ProjectionProbe(x, target(x, u), freqs=[3, 7], directions=np.stack([u, -u, w]))
    amplitude = probe.history.target_amplitude
    np.testing.assert_allclose(amplitude[0], [1.0, 0.5], atol=1e-10)
    np.testing.assert_allclose(amplitude[1], amplitude[0], atol=1e-12)
    # Along an orthogonal direction the positions are noise (std 0.05): 3 and 7 cycles per unit length
    # barely change the phase over that spread, so the transform is close to the mean of y, near 0.
    assert np.all(amplitude[2] < 0.2)


def test_several_outputs_and_a_torch_module():
    x, u, _ = one_direction_data(count=256)
    y = target(x, u)
    targets = np.stack([y, 2 * y], axis=1)
    net = torch.nn.Linear(x.shape[1], 2).double()
    with torch.no_grad():
        net.weight.zero_()
        net.bias.zero_()
    probe = ProjectionProbe(x, targets, freqs=[3, 7], directions=u)
    probe.update(net, 0)
    # Root sum of squares over outputs: sqrt(1 + 4) times the single-output amplitude.
    np.testing.assert_allclose(probe.history.target_amplitude[0], np.sqrt(5) * np.array([1.0, 0.5]), atol=1e-10)
    np.testing.assert_allclose(probe.history.relative_error()[0, 0], [1.0, 1.0], atol=1e-12)


def test_every_non_finite_and_round_trip(tmp_path):
    x, u, _ = one_direction_data(count=64)
    probe = ProjectionProbe(x, target(x, u), freqs=[3, 7], every=2, components=2)
    assert probe.history.directions.shape == (2, x.shape[1])
    for step in range(5):
        probe.update(lambda points, s=step: np.full(len(points), np.inf if s == 2 else 0.0), step)
    history = probe.history
    assert history.steps.tolist() == [0, 2, 4] and history.finite.tolist() == [True, False, True]
    assert history.fit_amplitude.shape == (3, 2, 2) and np.isnan(history.fit_amplitude[1]).all()
    path = tmp_path / "projection.npz"
    history.save(path)
    loaded = ProjectionHistory.load(path)
    for key in ("steps", "finite", "freqs", "directions", "target_amplitude", "fit_amplitude", "residual_amplitude"):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(history, key))


@pytest.mark.parametrize("kwargs, name", [
    ({"directions": [1.0, 1.0, 0.0]}, "unit"), ({"directions": [1.0, 0.0]}, "directions"),
    ({"directions": "ica"}, "directions"), ({"components": 4}, "components"), ({"components": 0}, "components"),
    ({"freqs": []}, "freqs"), ({"freqs": [1.0, np.nan]}, "freqs"), ({"freqs": "low"}, "freqs"),
    ({"every": -1}, "every"), ({"target": np.zeros(5)}, "target"),
])
def test_bad_arguments_name_the_parameter(kwargs, name):
    arguments = {"inputs": np.random.default_rng(0).normal(size=(20, 3)), "target": np.zeros(20),
                 "freqs": [1.0]} | kwargs
    with pytest.raises((TypeError, ValueError), match=name):
        ProjectionProbe(**arguments)


def test_plot_returns_figure_and_axes():
    x, u, _ = one_direction_data(count=64)
    probe = ProjectionProbe(x, target(x, u), freqs=[3, 7])
    probe.update(lambda points: np.zeros(len(points)), 0)
    fig, ax = plot_projection_history(probe.history)
    assert ax.figure is fig
    with pytest.raises(ValueError, match="direction"):
        plot_projection_history(probe.history, direction=1)


def test_inputs_scaled_by_1e160_give_the_same_directions_and_amplitudes():
    # The covariance of 1e160-sized inputs overflowed and eigh raised a raw _LinAlgError.
    x, u, _ = one_direction_data()
    y = target(x, u)
    plain = ProjectionProbe(x, y, freqs=[3, 7], components=2)
    huge = ProjectionProbe(x * 1e160, y, freqs=[3e-160, 7e-160], components=2)
    np.testing.assert_allclose(huge.directions, plain.directions, atol=1e-12)
    np.testing.assert_allclose(huge.history.target_amplitude, plain.history.target_amplitude, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match=r"freqs times the inputs' positions reach .* turns"):
        ProjectionProbe(x * 1e160, y, freqs=[3.0])


def test_huge_outputs_read_their_amplitude_and_overflowing_ones_are_flagged(tmp_path):
    # Amplitudes were |c|^2 summed then rooted: outputs of 1e200 gave inf, recorded as finite (the file did not load).
    x, u, _ = one_direction_data(count=64)
    probe = ProjectionProbe(x, target(x, u), freqs=[3, 7])
    probe.update(lambda points: 1e200 * np.sin(2 * np.pi * 3 * (points @ u)), 0)
    probe.update(lambda points: np.full(len(points), 1.7e308), 1)   # the sums overflow
    assert probe.history.finite.tolist() == [True, False]
    np.testing.assert_allclose(probe.history.fit_amplitude[0, 0], [1e200, 0.0], rtol=1e-9, atol=1e186)
    loaded = ProjectionHistory.load(probe.history.save(tmp_path / "history.npz"))
    np.testing.assert_array_equal(loaded.fit_amplitude, probe.history.fit_amplitude)


def test_every_is_keyword_only_and_targets_is_now_target():
    x, u, _ = one_direction_data(count=64)
    with pytest.raises(TypeError, match="positional"):
        ProjectionProbe(x, target(x, u), [3], "pca", 2)
    with pytest.raises(TypeError, match="targets=, which is now called target="):
        ProjectionProbe(x, targets=target(x, u), freqs=[3])


def test_chunk_elements_does_not_change_the_amplitudes():
    x, u, _ = one_direction_data(count=100)
    whole = ProjectionProbe(x, target(x, u), freqs=[3, 5, 7]).history.target_amplitude
    chunked = ProjectionProbe(x, target(x, u), freqs=[3, 5, 7], chunk_elements=1).history.target_amplitude
    np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("change, match", [
    (lambda a: {"freqs": np.array([3.0, np.nan])}, "freqs"),
    (lambda a: {"freqs": np.array([3.0, np.inf])}, "freqs"),
    (lambda a: {"directions": a["directions"] * np.nan}, "directions"),
    (lambda a: {"directions": a["directions"] * 2}, "unit vectors"),
    (lambda a: {"target_amplitude": -a["target_amplitude"]}, "target_amplitude"),
    (lambda a: {"fit_amplitude": a["fit_amplitude"] - 1}, "fit_amplitude"),
])
def test_load_refuses_what_the_probe_refuses(rewritten_history, change, match):
    # NaN or inf frequencies, NaN or non-unit directions and negative amplitudes were accepted on load.
    x, u, _ = one_direction_data(count=64)
    probe = ProjectionProbe(x, target(x, u), freqs=[3, 7])
    probe.update(lambda points: np.zeros(len(points)), 0)
    with pytest.raises(ValueError, match=match):
        ProjectionHistory.load(rewritten_history(probe.history, change))

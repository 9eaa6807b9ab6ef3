"""Tests of BatchSpectrumProbe: spectra of the fit and residual from outputs the training step computed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectral import Grid, nudft, spectrum
from spectral._batch_probe import BatchSpectrumProbe
from spectral.models import mlp


class Sinusoid(torch.nn.Module):
    """A model whose output is ``a*sin(2*pi*k.x + phi)`` plus a trainable offset, counting its forward calls."""

    def __init__(self, k: tuple[int, ...], amplitude: float, phase: float) -> None:
        super().__init__()
        self.register_buffer("k", torch.tensor(k, dtype=torch.float64))
        self.amplitude, self.phase = amplitude, phase
        self.offset = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.amplitude * torch.sin(2 * torch.pi * x @ self.k + self.phase) + self.offset


def test_1d_amplitudes_match_spectrum_on_uniform_grid():
    n = 64
    x = torch.as_tensor(Grid.uniform(n).points)
    model = Sinusoid((5,), 1.5, 0.3)
    outputs = model(x)  # requires grad: the probe detaches
    targets = 0.5 * torch.cos(2 * torch.pi * 3 * x[:, 0])
    probe = BatchSpectrumProbe(np.arange(n // 2))
    assert probe.update(x, outputs, targets, 0)
    history = probe.history
    np.testing.assert_allclose(history.fit_amplitude[0], spectrum(outputs.detach()).amplitude[: n // 2], atol=1e-12)
    residual = (outputs - targets).detach()
    np.testing.assert_allclose(history.residual_amplitude[0], spectrum(residual).amplitude[: n // 2], atol=1e-12)
    assert history.fit_amplitude[0, 5] == pytest.approx(1.5)
    assert history.residual_amplitude[0, 3] == pytest.approx(0.5)
    assert outputs.grad_fn is not None and history.finite.tolist() == [True]
    np.testing.assert_array_equal(history.wavevectors, np.arange(n // 2))


def test_2d_amplitudes_match_spectrum_and_nudft():
    grid = Grid.uniform((16, 16))
    x = torch.as_tensor(grid.points)
    model = Sinusoid((2, -3), 0.8, 1.1)
    outputs = model(x)[:, None]
    targets = torch.zeros(len(x))
    freqs = np.array([[0, 0], [2, -3], [-2, 3], [1, 1], [2, 3]])
    probe = BatchSpectrumProbe(freqs)
    probe.update(x, outputs, targets, 0)
    amplitude = spectrum(outputs.detach().reshape(grid.shape)).amplitude
    np.testing.assert_allclose(probe.history.fit_amplitude[0], amplitude[freqs[:, 0], freqs[:, 1]], atol=1e-12)
    np.testing.assert_allclose(probe.history.residual_amplitude[0], probe.history.fit_amplitude[0], atol=1e-14)
    scattered = np.random.default_rng(0).uniform(size=(200, 2))
    values = np.sin(scattered @ [3.0, 1.0])
    probe.update(scattered, values, values * 0, 1)
    expected = 2 * np.abs(nudft(scattered, values, freqs))
    expected[0] /= 2
    np.testing.assert_allclose(probe.history.fit_amplitude[1], expected, rtol=1e-12)


def test_no_extra_forward_pass_and_every():
    model = Sinusoid((3,), 1.0, 0.0)
    x = torch.rand(48, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.sin(2 * torch.pi * 2 * x[:, 0])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    probe = BatchSpectrumProbe([0, 1, 2, 3], every=3)
    recorded = []
    for step in range(10):
        outputs = model(x)
        loss = (outputs - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        recorded.append(probe.update(x, outputs, y, step))
    assert model.calls == 10  # one forward per training step: the probe ran none
    assert recorded == [step % 3 == 0 for step in range(10)]
    np.testing.assert_array_equal(probe.history.steps, [0, 3, 6, 9])
    assert probe.history.fit_amplitude.shape == (4, 4) and probe.history.residual_amplitude.shape == (4, 4)


def test_mlp_outputs_and_minibatches():
    net = mlp(1, width=8, depth=1, seed=0)
    probe = BatchSpectrumProbe(range(4))
    for step in range(3):
        x = torch.rand(32, 1, generator=torch.Generator().manual_seed(step))
        outputs = net(x)
        probe.update(x, outputs, torch.zeros(32), step)
        expected = 2 * np.abs(nudft(x.numpy(), outputs.detach().numpy(), np.arange(4)))
        expected[0] /= 2
        np.testing.assert_allclose(probe.history.fit_amplitude[step], expected, rtol=1e-10)


def test_non_finite_outputs_are_flagged_not_raised():
    probe = BatchSpectrumProbe([0, 1])
    x = np.linspace(0, 1, 8, endpoint=False)
    outputs = np.ones(8)
    outputs[3] = np.nan
    assert probe.update(x, outputs, np.zeros(8), 0)
    assert probe.history.finite.tolist() == [False]
    assert np.isnan(probe.history.fit_amplitude).all() and np.isnan(probe.history.residual_amplitude).all()


def test_empty_history_shapes():
    history = BatchSpectrumProbe([[0, 1], [1, 0], [2, 2]]).history
    assert history.steps.shape == (0,) and history.finite.shape == (0,)
    assert history.fit_amplitude.shape == (0, 3) and history.wavevectors.shape == (3, 2)


@pytest.mark.parametrize(
    "x, outputs, targets, match",
    [
        (np.zeros((8, 2)), np.zeros(8), np.zeros(8), "x"),
        (np.zeros((8, 3)), np.zeros(8), np.zeros(8), "x"),
        (np.zeros(8), np.zeros(7), np.zeros(8), "outputs"),
        (np.zeros(8), np.zeros((8, 2)), np.zeros(8), "outputs"),
        (np.zeros(8), np.zeros(8), np.zeros(9), "target"),
        (np.zeros(8), np.zeros(8), np.full(8, np.nan), "target"),
        (np.zeros(0), np.zeros(0), np.zeros(0), "x"),
    ],
)
def test_bad_shapes_name_the_parameter(x, outputs, targets, match):
    with pytest.raises(ValueError, match=match):
        BatchSpectrumProbe([1, 2]).update(x, outputs, targets, 0)


@pytest.mark.parametrize("freqs", [[0.5], [], [[1, 2, 3]], np.zeros((2, 2, 2))])
def test_bad_freqs(freqs):
    with pytest.raises(ValueError, match="freqs"):
        BatchSpectrumProbe(freqs)


def test_bad_every_and_step():
    with pytest.raises(ValueError, match="every"):
        BatchSpectrumProbe([1], every=0)
    with pytest.raises(TypeError, match="step"):
        BatchSpectrumProbe([1]).update(np.zeros(4), np.zeros(4), np.zeros(4), 1.0)
    with pytest.raises(TypeError, match="outputs"):
        BatchSpectrumProbe([1]).update(np.zeros(4), np.zeros(4, dtype=complex), np.zeros(4), 0)


def test_outputs_whose_sums_overflow_are_not_finite():
    probe = BatchSpectrumProbe([0, 1])
    x = np.linspace(0, 1, 4, endpoint=False)
    assert probe.update(x, np.full(4, 1e308), np.zeros(4), 0)  # finite outputs, infinite sum
    assert probe.update(x, np.full(4, 1e200), np.zeros(4), 1)
    assert probe.history.finite.tolist() == [False, True]
    assert np.isnan(probe.history.fit_amplitude[0]).all()
    assert probe.history.fit_amplitude[1, 0] == pytest.approx(1e200)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_positions_are_refused_and_nothing_recorded(bad):
    probe = BatchSpectrumProbe([1])
    with pytest.raises(ValueError, match="x"):
        probe.update([0.1, bad], [1.0, 2.0], [0.0, 0.0], 0)
    assert len(probe.history) == 0


def test_steps_beyond_int64_are_refused_and_the_history_stays_usable():
    probe = BatchSpectrumProbe([1])
    probe.update([0.1], [1.0], [0.0], -(2**63))
    for step in (2**63, -(2**63) - 1, 2**70):
        with pytest.raises(ValueError, match="step"):
            probe.update([0.1], [1.0], [0.0], step)
    assert probe.history.steps.tolist() == [-(2**63)]


def test_frequencies_above_2_53_are_kept_exactly():
    k = 2**60 + 3
    probe = BatchSpectrumProbe([k])
    x = np.arange(16) / 16
    probe.update(x, np.cos(2 * np.pi * 3 * x), np.zeros(16), 0)
    assert probe.history.wavevectors.tolist() == [k]
    # k x = 2**56 j + 3 j / 16: the cosine at 3 cycles reads amplitude 1 at k.
    assert probe.history.fit_amplitude[0, 0] == pytest.approx(1.0, abs=1e-14)


def test_wavevectors_is_the_name_and_freqs_says_so():
    # freqs meant integer wavevectors here and real cycles per unit length everywhere else.
    probe = BatchSpectrumProbe(wavevectors=[0, 3])
    np.testing.assert_array_equal(probe.history.wavevectors, [0, 3])
    with pytest.raises(TypeError, match="freqs=, which is now called wavevectors="):
        BatchSpectrumProbe(freqs=[0, 3])
    x = np.arange(8) / 8
    with pytest.raises(TypeError, match="targets=, which is now called target="):
        probe.update(x, np.zeros(8), targets=np.zeros(8), step=0)


def test_chunk_elements_does_not_change_the_amplitudes():
    x = np.random.default_rng(0).uniform(size=50)
    y = np.sin(2 * np.pi * 3 * x)
    whole, chunked = BatchSpectrumProbe(range(6)), BatchSpectrumProbe(range(6), chunk_elements=1)
    for probe in (whole, chunked):
        probe.update(x, y, np.zeros(50), 0)
    np.testing.assert_allclose(chunked.history.fit_amplitude, whole.history.fit_amplitude, rtol=1e-12, atol=1e-15)


def test_files_of_schema_version_1_still_load(tmp_path):
    from spectral._batch_probe import BatchSpectrumHistory
    from spectral._io import save_npz

    probe = BatchSpectrumProbe([1, 2])
    probe.update(np.arange(8) / 8, np.arange(8.0), np.zeros(8), 0)
    arrays = {"steps": probe.history.steps, "finite": probe.history.finite, "freqs": np.array([1, 2]),
              "fit_amplitude": probe.history.fit_amplitude, "residual_amplitude": probe.history.residual_amplitude}
    save_npz(tmp_path / "v1.npz", arrays, {"format": BatchSpectrumHistory.FORMAT, "schema_version": 1, "labels": [""]})
    loaded = BatchSpectrumHistory.load(tmp_path / "v1.npz")
    np.testing.assert_array_equal(loaded.wavevectors, [1, 2])
    np.testing.assert_array_equal(loaded.fit_amplitude, probe.history.fit_amplitude)


def test_load_refuses_negative_amplitudes(rewritten_history):
    from spectral._batch_probe import BatchSpectrumHistory

    probe = BatchSpectrumProbe([1, 2])
    probe.update(np.arange(8) / 8, np.arange(8.0), np.zeros(8), 0)
    with pytest.raises(ValueError, match="residual_amplitude"):
        BatchSpectrumHistory.load(rewritten_history(probe.history, lambda a: {"residual_amplitude": -a["residual_amplitude"]}))

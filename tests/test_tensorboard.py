"""log_history / SpectrumProbe.log, read back with TensorBoard's own event reader."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from spectral import Grid, SpectrumHistory, SpectrumProbe
from spectral._tensorboard import log_history
from spectral.models import mlp
from spectral.signals import default_1d, default_2d

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter


def _read(logdir) -> EventAccumulator:
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def _scalars(events: EventAccumulator, tag: str) -> tuple[list[int], np.ndarray]:
    records = events.Scalars(tag)
    return [r.step for r in records], np.array([r.value for r in records])


def _nan_model(x: np.ndarray) -> np.ndarray:
    return np.full(len(x), np.nan)


@pytest.fixture
def probe_1d() -> SpectrumProbe:
    """Records at steps 0, 10, 20 (finite) and 30 (NaN), with the built-in 1D target."""
    probe = SpectrumProbe(Grid.uniform(64), every=10, target=default_1d())
    net = mlp(1, width=16, depth=2, activation="tanh", seed=0)
    for step in range(21):
        probe.update(net, step)
    probe.update(_nan_model, 30)
    return probe


def test_scalars_match_the_history(probe_1d, tmp_path):
    history = probe_1d.history
    with SummaryWriter(tmp_path) as writer:
        log_history(history, writer)
    events = _read(tmp_path)
    # The default cutoff is the largest target frequency (5); the default bands split 0..32 in four.
    steps, fraction = _scalars(events, "spectrum/high_frequency_fraction")
    assert steps == [0, 10, 20]
    np.testing.assert_allclose(fraction, history.high_frequency_fraction(5.0)[:3], rtol=1e-6)
    steps, finite = _scalars(events, "spectrum/finite")
    assert steps == [0, 10, 20, 30] and finite.tolist() == [1, 1, 1, 0]
    bands = [f"spectrum/band_power/{lo}-{hi}" for lo, hi in ((0, 8), (8, 16), (16, 24), (24, 32))]
    assert sorted(events.Tags()["scalars"]) == sorted(bands + ["spectrum/finite", "spectrum/high_frequency_fraction"])
    total = sum(_scalars(events, tag)[1] for tag in bands)
    np.testing.assert_allclose(total, history.power[:3].sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(_scalars(events, bands[0])[1], history.power[:3, :8].sum(axis=1), rtol=1e-6)
    assert events.Tags()["images"] == ["spectrum/figure"]
    assert [image.step for image in events.Images("spectrum/figure")] == [30]


def test_probe_log_one_step_with_options(probe_1d, tmp_path):
    with SummaryWriter(tmp_path) as writer:
        probe_1d.log(writer, step=10, cutoff=2.5, bands=[0, 3, 6], tag="fit")
    events = _read(tmp_path)
    assert sorted(events.Tags()["scalars"]) == ["fit/band_power/0-3", "fit/band_power/3-6", "fit/finite",
                                                "fit/high_frequency_fraction"]
    steps, fraction = _scalars(events, "fit/high_frequency_fraction")
    assert steps == [10]
    np.testing.assert_allclose(fraction, probe_1d.history.high_frequency_fraction(2.5)[1], rtol=1e-6)
    # the last band includes its upper edge
    np.testing.assert_allclose(_scalars(events, "fit/band_power/3-6")[1], probe_1d.history.power[1, 3:7].sum(),
                               rtol=1e-6)
    assert [image.step for image in events.Images("fit/figure")] == [10]


def test_log_directory_and_2d_history(tmp_path):
    probe = SpectrumProbe(Grid.uniform((16, 12)), target=default_2d())
    probe.snapshot(mlp(2, width=8, depth=1, seed=0), "init")
    probe.log(tmp_path)  # a path: log_history opens and closes the writer
    events = _read(tmp_path)
    assert len([tag for tag in events.Tags()["scalars"] if tag.startswith("spectrum/band_power/")]) == 4
    _, fraction = _scalars(events, "spectrum/high_frequency_fraction")
    np.testing.assert_allclose(fraction, probe.history.high_frequency_fraction(np.sqrt(5)), rtol=1e-6)
    assert events.Tags()["images"] == ["spectrum/figure"]


def test_default_cutoff_without_target(tmp_path):
    probe = SpectrumProbe(Grid.uniform(32, extent=2.0))
    probe.update(mlp(1, width=8, depth=1, seed=0), 0)
    log_history(probe.history, tmp_path)
    _, fraction = _scalars(_read(tmp_path), "spectrum/high_frequency_fraction")
    np.testing.assert_allclose(fraction, probe.history.high_frequency_fraction(16 / 2.0 / 4), rtol=1e-6)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"step": 5}, ValueError, "step=5"),
    ({"step": 1.0}, TypeError, "step"),
    ({"cutoff": -1.0}, ValueError, "cutoff"),
    ({"bands": [4, 2]}, ValueError, "bands"),
    ({"bands": [1]}, ValueError, "bands"),
    ({"bands": [0, np.inf]}, ValueError, "bands"),
    ({"tag": ""}, TypeError, "tag"),
])
def test_bad_arguments_write_nothing(probe_1d, tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        log_history(probe_1d.history, tmp_path / "run", **kwargs)
    assert not (tmp_path / "run").exists()


def test_bad_history_or_writer(probe_1d, tmp_path):
    with pytest.raises(TypeError, match="history"):
        log_history(probe_1d, tmp_path)
    with pytest.raises(ValueError, match="empty"):
        log_history(SpectrumHistory((8,), 1.0), tmp_path)
    with pytest.raises(TypeError, match="writer"):
        log_history(probe_1d.history, object())


def test_missing_tensorboard_names_the_extra(probe_1d, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match=r'pip install "spectral-probes\[tensorboard\]"'):
        probe_1d.log(tmp_path)


class Recorder:
    """Anything with SummaryWriter's add_scalar, add_figure and flush."""

    def __init__(self) -> None:
        self.scalars: dict[str, list[tuple[int, float]]] = {}
        self.figures: list[str] = []

    def add_scalar(self, tag, value, step):
        self.scalars.setdefault(tag, []).append((step, value))

    def add_figure(self, tag, figure, step):
        self.figures.append(tag)

    def flush(self):
        pass


def test_rectangular_history_logs_bands_in_cycles_per_unit_length():
    grid = Grid.uniform((32, 16), bounds=((-5, 5), (0, 1)))
    wave = lambda p: np.sin(2 * np.pi * (0.3 * p[:, 0] + 2 * p[:, 1]))
    probe = SpectrumProbe(grid, target=wave)
    probe.update(wave, 0)
    writer = Recorder()
    log_history(probe.history, writer, bands=[0, 2.0, 3.0, 9.0])
    assert writer.scalars["spectrum/band_power/2-3"] == [(0, pytest.approx(0.5))]  # |f| = 2.02
    assert writer.scalars["spectrum/band_power/0-2"] == [(0, pytest.approx(0.0, abs=1e-20))]
    assert writer.scalars["spectrum/high_frequency_fraction"] == [(0, pytest.approx(0.0, abs=1e-20))]  # cutoff |f|
    assert writer.figures == ["spectrum/figure"]

"""Every probe follows one protocol (update, snapshot, reset, history) and every history one file format."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spectral import (
    BatchSpectrumHistory,
    BatchSpectrumProbe,
    FilterHistory,
    FilterProbe,
    Grid,
    ProjectionHistory,
    ProjectionProbe,
    SpectrumHistory,
    SpectrumProbe,
)
from spectral._protocol import History, Probe
from spectral.precision import LostUpdateHistory, LostUpdateProbe

X = np.linspace(0, 1, 32, endpoint=False)


def sine(points):
    return np.sin(2 * np.pi * 3 * points[:, 0])


class Linear:
    """A LostUpdateProbe with the model it watches, stepped by hand: ``data(step)`` takes one SGD step."""

    def __init__(self, every: int) -> None:
        torch.manual_seed(0)
        self.net = torch.nn.Linear(2, 1).double()
        self.probe = LostUpdateProbe(self.net, every=every, dtypes=("bfloat16", "float32"))

    def step(self, step: int) -> bool:
        self.probe.before_step(step)
        with torch.no_grad():
            for parameter in self.net.parameters():
                parameter -= 1e-3
        return self.probe.update(step)


def probes(every: int) -> dict[str, tuple[Probe, tuple, type]]:
    """Each probe with the data its ``update`` and ``snapshot`` take, and its history's type."""
    return {
        "spectrum": (SpectrumProbe(Grid.uniform(32), every=every, target=sine), (sine,), SpectrumHistory),
        "batch": (BatchSpectrumProbe([1, 3], every=every), (X, np.sin(2 * np.pi * 3 * X), np.zeros(32)),
                  BatchSpectrumHistory),
        "filter": (FilterProbe(X, np.sin(2 * np.pi * 3 * X), [0.05, 0.2], every=every), (sine,), FilterHistory),
        "projection": (ProjectionProbe(X, np.sin(2 * np.pi * 3 * X), [1, 3], directions=[1.0], every=every), (sine,),
                       ProjectionHistory),
    }


@pytest.mark.parametrize("name", ["spectrum", "batch", "filter", "projection", "lost updates"])
def test_every_probe_follows_the_protocol(name, tmp_path):
    if name == "lost updates":
        linear = Linear(every=3)
        probe, kind, update = linear.probe, LostUpdateHistory, linear.step
        snapshot = probe.snapshot
    else:
        probe, data, kind = probes(every=3)[name]
        update = lambda step: probe.update(*data, step)
        snapshot = lambda label, **step: probe.snapshot(*data, label, **step)
    assert isinstance(probe, Probe) and isinstance(probe.history, History) and type(probe.history) is kind
    assert [update(step) for step in range(7)] == [True, False, False, True, False, False, True]
    snapshot("before shrink")  # at the last step given to update
    snapshot("after shrink", step=10)
    history = probe.history
    assert len(history) == 5 and history.steps.tolist() == [0, 3, 6, 6, 10]
    assert history.labels.tolist() == ["", "", "", "before shrink", "after shrink"] and history.finite.all()
    assert history.index("before shrink") == 3
    with pytest.raises(TypeError, match="label"):
        snapshot("")
    with pytest.raises(ValueError, match="step"):
        update(2**63)
    loaded = kind.load(history.save(tmp_path / "history"))  # one format: .npz, JSON metadata with the schema
    assert type(loaded) is kind and loaded.labels.tolist() == history.labels.tolist()
    for key in ("steps", "finite"):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(history, key))
    with np.load(tmp_path / "history.npz", allow_pickle=False) as archive:
        metadata = json.loads(str(archive["metadata"]))
    assert metadata["format"] == kind.FORMAT and metadata["schema_version"] == kind.SCHEMA_VERSION
    probe.reset()
    assert len(probe.history) == 0 and len(history) == 5  # a new history; the old one is kept as it was
    assert probe.every == 3 and type(probe.history) is kind
    assert update(3) and not update(4) and probe.history.steps.tolist() == [3]
    snapshot("later")
    assert probe.history.steps.tolist() == [3, 4]


@pytest.mark.parametrize("name", ["spectrum", "batch", "filter", "projection"])
def test_histories_round_trip_with_every_array(name, tmp_path):
    probe, data, kind = probes(every=1)[name]
    probe.update(*data, 0)
    nan = (lambda p: np.full(len(p), np.nan),) if len(data) == 1 else (X, np.full(32, np.nan), np.zeros(32))
    probe.snapshot(*nan, "diverged\x00", step=5)
    history = probe.history
    loaded = kind.load(history.save(tmp_path / "h.npz"))
    assert history.finite.tolist() == [True, False] and loaded.labels.tolist() == ["", "diverged\x00"]
    arrays = [key for key, value in vars(kind).items() if isinstance(value, property)]
    for key in arrays + ["freqs"] * hasattr(history, "freqs"):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(history, key), err_msg=key)


def test_lost_update_history_round_trips_and_flags_non_finite_updates(tmp_path):
    linear = Linear(every=1)
    linear.step(0)
    linear.probe.before_step(1)
    with torch.no_grad():
        linear.net.weight[0, 0] = float("nan")
    linear.probe.update()
    history = linear.probe.history
    assert history.finite.tolist() == [True, False] and history.changed[1].tolist() == [1, 0]  # the NaN changed
    loaded = LostUpdateHistory.load(history.save(tmp_path / "lost.npz"))
    assert (loaded.dtypes, loaded.layers) == (history.dtypes, history.layers)
    for key in ("steps", "finite", "changed", "ratio_bin_edges"):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(history, key))
    for key in ("fraction", "layer_fraction", "ratio_histogram"):
        for dtype in history.dtypes:
            np.testing.assert_array_equal(getattr(loaded, key)[dtype], getattr(history, key)[dtype])


@pytest.mark.parametrize("kind", [SpectrumHistory, BatchSpectrumHistory, FilterHistory, ProjectionHistory,
                                  LostUpdateHistory])
def test_each_history_refuses_the_others_files(kind, tmp_path):
    path = SpectrumProbe(Grid.uniform(8)).history.save(tmp_path / "spectrum.npz")
    if kind is SpectrumHistory:
        path = BatchSpectrumProbe([1]).history.save(tmp_path / "batch.npz")
    with pytest.raises(ValueError, match=f"not a {kind.FORMAT} file"):
        kind.load(path)


def test_inconsistent_files_are_refused_naming_the_array(tmp_path):
    from spectral._io import save_npz

    probe = BatchSpectrumProbe([1, 2])
    probe.update(X, np.sin(2 * np.pi * X), np.zeros(32), 0)
    good = probe.history.save(tmp_path / "good.npz")
    with np.load(good, allow_pickle=False) as archive:
        arrays = dict(archive)
    metadata = json.loads(str(arrays.pop("metadata")))
    cases = {"fit_amplitude": {**arrays, "fit_amplitude": arrays["fit_amplitude"][:, :1]},
             "labels": arrays, "wavevectors": {**arrays, "wavevectors": arrays["wavevectors"] + 0.5},
             "finite": {**arrays, "fit_amplitude": arrays["fit_amplitude"] * np.inf}}
    for name, changed in cases.items():
        save_npz(tmp_path / "bad.npz", changed, {**metadata, "labels": ["", ""]} if name == "labels" else metadata)
        with pytest.raises(ValueError, match=name):
            BatchSpectrumHistory.load(tmp_path / "bad.npz")

"""A catalogue of bad inputs to every public entry point.

Each must raise ``ValueError``/``TypeError`` naming the parameter (or, on the
command line, exit 2 with one line), and a refused call must change nothing:
no weights, no history records, no files.
"""

import numpy as np
import pytest
import torch

from spectral import (
    BatchSpectrumProbe,
    FilterProbe,
    Grid,
    ProjectionProbe,
    SpectrumHistory,
    SpectrumProbe,
    nudft,
    shrink_,
    spectrum,
)
from spectral.cli import main
from spectral.ensemble import MLPEnsemble
from spectral.minima import displacement_split, manifold_dimension
from spectral.models import mlp
from spectral.precision import LostUpdateProbe, lost_update_fraction, ulp
from spectral.signals import SineSum, default_1d


class State:
    """Objects a refused call could damage, and a way to check they are untouched."""

    def __init__(self, tmp_path):
        self.net = mlp(1, width=8, depth=2, seed=0)
        self.weights = [p.detach().clone() for p in self.net.parameters()]
        self.probe = SpectrumProbe(Grid.uniform(16), target=lambda x: np.sin(2 * np.pi * x[:, 0]))
        self.probe.update(self.net, 0)
        self.history_file = tmp_path / "history.npz"
        self.probe.history.save(self.history_file)
        self.file_bytes = self.history_file.read_bytes()
        self.files = sorted(p.name for p in tmp_path.iterdir())
        self.tmp_path = tmp_path

    def unchanged(self):
        assert all(torch.equal(p, q) for p, q in zip(self.net.parameters(), self.weights))
        assert len(self.probe.history) == 1
        assert self.history_file.read_bytes() == self.file_bytes
        assert sorted(p.name for p in self.tmp_path.iterdir()) == self.files


CASES = {
    "grid shape 3D": (lambda s: Grid.uniform((2, 2, 2)), ValueError, "shape"),
    "grid shape zero": (lambda s: Grid.uniform(0), ValueError, "shape"),
    "grid extent negative": (lambda s: Grid.uniform(8, extent=-1.0), ValueError, "extent"),
    "grid extent inf": (lambda s: Grid.uniform(8, extent=float("inf")), ValueError, "extent"),
    "spectrum 3D values": (lambda s: spectrum(np.zeros((2, 2, 2))), ValueError, "values"),
    "spectrum empty": (lambda s: spectrum(np.array([])), ValueError, "values"),
    "spectrum complex": (lambda s: spectrum(np.ones(4, dtype=complex)), TypeError, "values"),
    "spectrum strings": (lambda s: spectrum(["a", "b"]), TypeError, "values"),
    "spectrum extent zero": (lambda s: spectrum(np.ones(8), extent=0), ValueError, "extent"),
    "spectrum extent nan": (lambda s: spectrum(np.ones(8), extent=float("nan")), ValueError, "extent"),
    "spectrum unknown window": (lambda s: spectrum(np.ones(8), window="nope"), ValueError, "window"),
    "cutoff negative": (lambda s: spectrum(np.ones(8)).high_frequency_fraction(-1), ValueError, "cutoff"),
    "nudft mismatched y": (lambda s: nudft(np.zeros(4), np.zeros(3), [1]), ValueError, "y"),
    "nudft fractional freqs": (lambda s: nudft(np.zeros(4), np.zeros(4), [0.5]), ValueError, "freqs"),
    "nudft 3D points": (lambda s: nudft(np.zeros((4, 3)), np.zeros(4), [[1, 1, 1]]), ValueError, "x"),
    "nudft complex y": (lambda s: nudft(np.zeros(3), np.zeros(3, dtype=complex), [1]), TypeError, "y"),
    "probe every zero": (lambda s: SpectrumProbe(Grid.uniform(8), every=0), ValueError, "every"),
    "probe every float": (lambda s: SpectrumProbe(Grid.uniform(8), every=2.0), TypeError, "every"),
    "probe grid tuple": (lambda s: SpectrumProbe((8,)), TypeError, "grid"),
    "probe target wrong shape": (lambda s: SpectrumProbe(Grid.uniform(8), target=np.ones(5)), ValueError, "target"),
    "probe unknown window": (lambda s: SpectrumProbe(Grid.uniform(8), window="nope"), ValueError, "window"),
    "probe model width": (lambda s: s.probe.update(mlp(2, width=4, depth=1), 0), ValueError, "model"),
    "probe short output": (lambda s: s.probe.update(lambda p: np.ones(len(p) - 1), 0), ValueError, "model"),
    "probe complex output": (lambda s: s.probe.update(lambda p: np.ones(len(p), dtype=complex), 0), TypeError, "model"),
    "probe not callable": (lambda s: s.probe.update(42, 0), TypeError, "model"),
    "probe float step": (lambda s: s.probe.update(s.net, 1.5), TypeError, "step"),
    "probe empty label": (lambda s: s.probe.snapshot(s.net, ""), TypeError, "label"),
    "history missing file": (lambda s: SpectrumHistory.load(s.tmp_path / "gone.npz"), FileNotFoundError, "gone.npz"),
    "shrink factor zero": (lambda s: shrink_(s.net, 0.0), ValueError, "factor"),
    "shrink factor negative": (lambda s: shrink_(s.net, -0.2), ValueError, "factor"),
    "shrink factor nan": (lambda s: shrink_(s.net, float("nan")), ValueError, "factor"),
    "shrink factor string": (lambda s: shrink_(s.net, "0.2"), TypeError, "factor"),
    "shrink perturb negative": (lambda s: shrink_(s.net, 0.2, perturb=-1.0), ValueError, "perturb"),
    "shrink not a module": (lambda s: shrink_([1.0], 0.5), TypeError, "model"),
    "mlp activation": (lambda s: mlp(1, activation="swish"), ValueError, "activation"),
    "mlp width": (lambda s: mlp(1, width=0), ValueError, "width"),
    "signal fractional frequency": (lambda s: SineSum([1.5], [1.0]), ValueError, "integers"),
    "signal sample n": (lambda s: default_1d().sample(0), ValueError, "n"),
    "signal noise": (lambda s: default_1d().sample(4, noise=-1.0), ValueError, "noise"),
    "ensemble members": (lambda s: MLPEnsemble(1, members=0), ValueError, "members"),
    "ensemble input width": (lambda s: MLPEnsemble(1, members=2, width=4, depth=1)(torch.zeros(3, 2)), ValueError, "x"),
    "ensemble factors": (lambda s: MLPEnsemble(1, members=2, width=4, depth=1).scale_output_([1.0]), ValueError, "factors"),
    "ulp integer": (lambda s: ulp(torch.tensor([1, 2])), TypeError, "x must"),
    "lost update dtype": (lambda s: lost_update_fraction(torch.ones(3), torch.ones(3), torch.int32), ValueError, "dtype"),
    "lost update shapes": (lambda s: lost_update_fraction(torch.ones(3), torch.ones(4), "float16"), ValueError, "updates"),
    "manifold rtol": (lambda s: manifold_dimension(s.net, torch.rand(4, 1), rtol=-1.0), ValueError, "rtol"),
    "displacement length": (lambda s: displacement_split(torch.ones(1, 3), torch.ones(4)), ValueError, "displacement"),
}


CASES.update({
    "shrink perturb seed string": (lambda s: shrink_(s.net, 0.5, perturb=0.1, seed="x"), TypeError, "seed"),
    "sample seed string": (lambda s: default_1d().sample(3, seed="x"), TypeError, "seed"),
    "plane waves 1D wavevectors": (lambda s: __import__("spectral.signals").signals.PlaneWaveSum([1, 2, 3], [1.0] * 3),
                                   ValueError, "wavevectors"),
    "nudft ragged freqs": (lambda s: nudft(np.zeros((3, 2)), np.zeros(3), [[1], [1, 2]]), ValueError, "freqs"),
    "manifold wrong input width": (lambda s: manifold_dimension(s.net, torch.rand(3, 3)), ValueError, "inputs"),
    "plot missing label": (lambda s: __import__("spectral.plot").plot.before_after(s.probe.history, "x", "y"),
                           ValueError, "before"),
})

class IntegerParameter(torch.nn.Module):
    """A module whose parameter no float factor can scale in place."""

    def __init__(self, dtype=torch.int64):
        super().__init__()
        self.counts = torch.nn.Parameter(torch.ones(2).to(dtype), requires_grad=False)


NAN = float("nan")

# Issue 10: refusals that used to crash, hang, poison state or pass silently.
CASES.update({
    "probe step beyond int64": (lambda s: s.probe.update(s.net, 2**70), ValueError, "step"),
    "probe snapshot step beyond int64": (lambda s: s.probe.snapshot(s.net, "x", step=-(2**70)), ValueError, "step"),
    "batch probe step beyond int64": (lambda s: BatchSpectrumProbe([1]).update([0.5], [1.0], [1.0], 2**70),
                                      ValueError, "step"),
    "filter probe step beyond int64": (lambda s: FilterProbe(np.linspace(0, 1, 8), np.zeros(8), [0.1]).update(
        lambda p: np.zeros(len(p)), 2**70), ValueError, "step"),
    "projection probe step beyond int64": (lambda s: ProjectionProbe(np.linspace(0, 1, 8), np.zeros(8), [1],
                                                                     directions=[1.0]).update(
        lambda p: np.zeros(len(p)), 2**70), ValueError, "step"),
    "batch probe NaN position": (lambda s: BatchSpectrumProbe([1]).update([0.1, NAN], [1.0, 2.0], [1.0, 2.0], 0),
                                 ValueError, "x"),
    "probe float64 callable given to a float32 net": (lambda s: s.probe.update(lambda p: s.net(p), 1), TypeError,
                                                     "float64 numpy"),
    "probe meta-device model": (lambda s: s.probe.update(mlp(1, width=8, depth=2).to("meta"), 1), TypeError, "meta"),
    "probe callable returning meta": (lambda s: s.probe.update(lambda p: torch.empty(len(p), device="meta"), 1),
                                      TypeError, "meta"),
    "probe window kaiser nan": (lambda s: SpectrumProbe(Grid.uniform(8), window=("kaiser", NAN)), ValueError, "window"),
    "spectrum meta tensor": (lambda s: spectrum(torch.ones(8, device="meta")), TypeError, "values"),
    "spectrum bool array": (lambda s: spectrum(np.ones(8, dtype=bool)), TypeError, "values"),
    "spectrum window kaiser nan": (lambda s: spectrum(np.ones(8), window=("kaiser", NAN)), ValueError, "window"),
    "spectrum zero-gain window": (lambda s: spectrum(np.ones(8), window=("general_hamming", 0.0)), ValueError, "window"),
    "nudft NaN position": (lambda s: nudft([0.1, NAN], [1.0, 1.0], [1]), ValueError, "x"),
    "nudft inf position": (lambda s: nudft([[0.1, float("inf")]], [1.0], [[1, 1]]), ValueError, "x"),
    "nudft frequency 1e300": (lambda s: nudft([0.1], [1.0], [1e300]), ValueError, "freqs"),
    "nudft frequency 2**63": (lambda s: nudft([0.1], [1.0], np.array([2**63], dtype=np.uint64)), ValueError, "freqs"),
    "shrink integer parameter": (lambda s: shrink_(torch.nn.Sequential(s.net, IntegerParameter()), 0.5), TypeError,
                                 "parameter '1.counts'"),
    "shrink float8 parameter": (lambda s: shrink_(torch.nn.Sequential(s.net, IntegerParameter(torch.float8_e4m3fn)),
                                                  0.5), TypeError, "float8"),
    "shrink seed beyond 2**64": (lambda s: shrink_(s.net, 0.5, perturb=0.1, seed=2**70), ValueError, "seed"),
})


# Issue 13: batch axes, scaling, per-axis extents and the one probe protocol.
CASES.update({
    "spectrum ndim 3": (lambda s: spectrum(np.ones((2, 2, 2)), ndim=3), ValueError, "ndim"),
    "spectrum ndim float": (lambda s: spectrum(np.ones((2, 8)), ndim=1.0), TypeError, "ndim"),
    "spectrum ndim above values' axes": (lambda s: spectrum(np.ones(8), ndim=2), ValueError, "ndim"),
    "spectrum scaling unknown": (lambda s: spectrum(np.ones(8), scaling="density"), ValueError, "scaling"),
    "spectrum extent per axis too many": (lambda s: spectrum(np.ones((4, 4)), extent=(1.0, 2.0, 3.0)), ValueError,
                                          "extent"),
    "spectrum extent per axis negative": (lambda s: spectrum(np.ones((4, 4)), extent=(1.0, -2.0)), ValueError,
                                          "extent"),
    "batch probe snapshot empty label": (lambda s: BatchSpectrumProbe([1]).snapshot([0.5], [1.0], [1.0], ""),
                                         TypeError, "label"),
    "filter probe snapshot step beyond int64": (lambda s: FilterProbe(np.linspace(0, 1, 8), np.zeros(8), [0.1]).snapshot(
        lambda p: np.zeros(len(p)), "x", step=2**63), ValueError, "step"),
    "lost update probe update without before_step": (lambda s: LostUpdateProbe(s.net).update(), RuntimeError,
                                                     "before_step"),
    "lost update probe snapshot label": (lambda s: LostUpdateProbe(s.net).snapshot(3), TypeError, "label"),
})

@pytest.mark.parametrize("name", sorted(CASES))
def test_refused_and_nothing_changed(name, tmp_path):
    call, error, parameter = CASES[name]
    state = State(tmp_path)
    with pytest.raises(error, match=parameter):
        call(state)
    state.unchanged()


def test_corrupt_history_file_is_refused_and_kept(tmp_path):
    state = State(tmp_path)
    state.history_file.write_bytes(state.file_bytes[:100])
    with pytest.raises(ValueError, match="path"):
        SpectrumHistory.load(state.history_file)
    assert state.history_file.read_bytes() == state.file_bytes[:100]


CLI_CASES = [
    ["run", "--seeds", "0"],
    ["run", "--seeds", "-3"],
    ["run", "--seeds", "eight"],
    ["run", "--config", "missing.toml"],
    ["run", "--unknown"],
    ["plot", "missing.npz", "--out", "f.png"],
    ["plot", "history.npz"],
    ["explode"],
    ["run", "--x\ny"],
    ["run", "--out", "history.npz"],
    ["sweep", "history.npz", "--out", "history.npz"],
    ["plot", "history.npz", "--out", "figure.jpg"],
]


@pytest.mark.parametrize("argv", CLI_CASES, ids=" ".join)
def test_cli_refuses_with_one_line(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state = State(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("spectral: error:")
    state.unchanged()


def test_catalogue_is_large_enough():
    assert len(CASES) + len(CLI_CASES) >= 30


def test_refused_update_does_not_move_the_snapshot_step(tmp_path):
    state = State(tmp_path)
    with pytest.raises(ValueError):
        state.probe.update(lambda p: np.ones(3), 7)
    state.probe.snapshot(state.net, "after")
    assert state.probe.history.steps[-1] == 0

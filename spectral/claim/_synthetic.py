"""The synthetic case kind: a 1D sum of sinusoids or a 2D sum of plane waves, measured on a uniform grid.

Each seed draws its own noisy samples of the signal (training and
validation); the test error is measured against the clean signal on the
grid, and the spectral numbers come from the windowed DFT of every member's
function there, under two windows (the measurement choice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from .._grid import Grid
from .._history import SpectrumHistory
from .._probe import SpectrumProbe
from .._spectrum import frequency_magnitude, spectrum
from ..ensemble import MLPEnsemble
from ..signals import PlaneWaveSum, SineSum
from ._arms import Verdicts, generalisation_verdicts, spectral_verdicts
from ._config import SignalConfig
from ._format import number
from ._kinds import CaseKind
from ._training import evaluate64

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ._check import Case

#: The two measurement choices every spectral number is taken under, and their config keys.
WINDOW_KEYS = {"primary": "window", "alternate": "alternate_window"}


def make_signal(spec: SignalConfig) -> SineSum | PlaneWaveSum:
    """The signal a config's ``signals.<name>`` table describes."""
    kind = SineSum if spec.dims == 1 else PlaneWaveSum
    return kind(spec.frequencies, spec.amplitudes, spec.phases)


@dataclass
class Measure:
    """Test error and spectral band powers of every member of an ensemble, in one batched pass.

    The mean of each member's function is removed before windowing (an offset
    would otherwise leak into the lowest bins), and every spectral number is
    taken under two windows, so that a verdict can be checked for window
    dependence.
    """

    grid: Grid
    clean: torch.Tensor  # (N,) clean signal on the grid
    windows: dict[str, Any]  # "primary", "alternate": window specifications (scipy names, None for none)
    cutoff: float

    def __post_init__(self) -> None:
        self.points = torch.as_tensor(self.grid.points, dtype=torch.float64)
        magnitude = torch.as_tensor(frequency_magnitude(self.grid.shape, self.grid.extent))
        self.high = magnitude > self.cutoff
        self.low = (magnitude > 0) & ~self.high

    def outputs(self, ensemble: MLPEnsemble) -> torch.Tensor:
        """Every member's function on the grid, evaluated in float64 from its (float32) weights."""
        return evaluate64(ensemble, self.points)

    def bands(self, values: torch.Tensor, window: str = "primary") -> tuple[np.ndarray, np.ndarray]:
        """Power at ``0 < |f| <= cutoff`` and at ``|f| > cutoff``, per row, after removing each row's mean.

        Power as :func:`spectral.spectrum` gives it with ``scaling="power"``
        (Parseval: the bins sum to the mean square), under ``windows[window]``.
        """
        centred = values - values.mean(dim=1, keepdim=True)
        power = torch.as_tensor(spectrum(centred.reshape(-1, *self.grid.shape), extent=self.grid.extent,
                                         window=self.windows[window], ndim=self.grid.ndim, scaling="power").power)
        axes = tuple(range(1, power.ndim))
        return (torch.where(self.low, power, 0.0).sum(dim=axes).numpy(),
                torch.where(self.high, power, 0.0).sum(dim=axes).numpy())

    def test(self, ensemble: MLPEnsemble) -> dict[str, np.ndarray]:
        """The test MSE alone (what a comparison at matched fit reads), NaN for a non-finite member."""
        values = self.outputs(ensemble)
        with np.errstate(invalid="ignore", over="ignore"):
            return {"test_mse": (values - self.clean).pow(2).mean(dim=1).numpy()}

    def __call__(self, ensemble: MLPEnsemble) -> dict[str, np.ndarray]:
        values = self.outputs(ensemble)
        finite = torch.isfinite(values).all(dim=1).numpy()
        values = torch.where(torch.isfinite(values), values, 0.0)
        result = {"test_mse": (values - self.clean).pow(2).mean(dim=1).numpy(),
                  "rms": values.pow(2).mean(dim=1).sqrt().numpy()}
        for name in self.windows:
            low, high = self.bands(values, name)
            total = low + high
            with np.errstate(invalid="ignore", divide="ignore"):
                result[f"hf_fraction:{name}"] = np.where(total > 0, high / np.where(total > 0, total, 1.0), np.nan)
            result[f"low_power:{name}"], result[f"high_power:{name}"] = low, high
        return {name: np.where(finite, value, np.nan) for name, value in result.items()}


class SyntheticKind(CaseKind):
    """Cases on the synthetic signals ``1d`` and ``2d`` (:class:`~spectral.signals.SineSum`, ``PlaneWaveSum``)."""

    signals = ("1d", "2d")
    choice = "window"
    measurement_numbers = ("cutoff", "signal_max_frequency")
    curve_names = ("test_mse", "hf_fraction:primary", "train_mse", "validation_mse")
    history_type = SpectrumHistory
    verdicts: ClassVar[Verdicts] = {**spectral_verdicts(), **generalisation_verdicts()}

    def setup(self, case: Case) -> None:
        spec = case.spec
        case.signal = make_signal(spec)
        case.in_features, case.out_features = spec.dims, 1
        case.grid = Grid.uniform(spec.grid if spec.dims == 1 else (spec.grid, spec.grid))
        case.cutoff = case.signal.max_frequency + spec.cutoff_margin
        fitted = case.train_points
        samples = [case.signal.sample(fitted + spec.validation_points, noise=spec.noise, seed=s) for s in case.seeds]
        x = torch.tensor(np.stack([x for x, _ in samples]), dtype=torch.float32, device=case.device)
        y = torch.tensor(np.stack([y for _, y in samples]), dtype=torch.float32, device=case.device)
        case.x, case.y = x[:, :fitted], y[:, :fitted]
        case.x_validation, case.y_validation = x[:, fitted:], y[:, fitted:]
        windows = {name: getattr(case.config, key) for name, key in WINDOW_KEYS.items()}
        case.measure = Measure(case.grid, torch.as_tensor(case.signal(case.grid.points)), windows, case.cutoff)
        case.probe = SpectrumProbe(case.grid, target=case.signal, window=case.config.window)

    def measurement(self, case: Case) -> dict[str, Any]:
        return {"cutoff": case.cutoff, "signal_max_frequency": case.signal.max_frequency,
                "noise_variance": case.noise_variance,
                "windows": {name: case.config.to_dict()[key] for name, key in WINDOW_KEYS.items()}}

    def describe(self, result: dict[str, Any]) -> str:
        return (f"High-frequency fraction: power above {number(result['cutoff'])} cycles (the signal's highest is "
                f"{number(result['signal_max_frequency'])}) over non-DC power, each function's mean removed before "
                "windowing.")

    def history_figures(self, result: dict[str, Any], history: SpectrumHistory) -> dict[str, Figure]:
        from .. import plot
        from ._figures import spectra_figure

        return {"spectra": spectra_figure(result, history),
                "heatmap": plot.error_heatmap(history, title=f"{result['id']}, seed {result['seeds'][0]}")}

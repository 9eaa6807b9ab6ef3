"""``f-principle``: Xu et al.'s 1D fit, the DFT peaks of the target converge in order of frequency."""

from __future__ import annotations

import numpy as np
import torch

from .._grid import Grid
from .._plotting import figure_axes
from ._common import Outcome, Reproduction, Setting, network
from ._convergence import (
    CONVERGED,
    columns,
    first_step_below,
    rank_correlation,
    spectral_training,
)

XU = ("Xu, Zhang, Luo, Xiao, Ma, \"Frequency Principle: Fourier Analysis Sheds Light on Deep Neural Networks\", "
      "Commun. Comput. Phys. 28 (2020); code: github.com/xuzhiqin1990/F-Principle")
XU_SHORT = "Xu et al., CiCP 2020"


def peak_bins(amplitude: np.ndarray, count: int) -> np.ndarray:
    """Bins of the ``count`` largest local maxima of a 1D amplitude spectrum, in increasing frequency.

    Examples
    --------
    >>> peak_bins(np.array([0.0, 2.0, 0.0, 1.0, 0.0, 3.0, 0.0]), 2).tolist()
    [1, 5]
    """
    inner = np.flatnonzero((amplitude[1:-1] > amplitude[:-2]) & (amplitude[1:-1] > amplitude[2:])) + 1
    return np.sort(inner[np.argsort(amplitude[inner])[::-1][:count]])


def _target(points: np.ndarray) -> np.ndarray:
    x = points[:, 0]
    return np.sin(x) + 2 * np.sin(3 * x) + 3 * np.sin(5 * x)


def run(setting: Setting) -> Outcome:
    steps = (20 if setting.quick else 1500) if setting.steps is None else setting.steps
    # linspace(-5, 5, 101) as published: 101 points 0.1 apart, i.e. [-5, 5.1) without its end.
    grid = Grid.uniform(101, bounds=(-5.0, 5.1))
    net = network([1, 200, 200, 200, 100, 1], torch.nn.Tanh, setting.seed)
    probe = spectral_training(grid, _target, net, steps=steps, lr=2e-4, every=10, device=setting.device,
                              quiet=setting.quiet, description="f-principle")
    history = probe.history
    peaks = peak_bins(np.abs(np.fft.rfft(_target(grid.points))), 3)
    frequencies = history.freqs[peaks]
    errors = history.relative_error()[:, columns(history.target_freqs, frequencies)]
    converged = first_step_below(errors, history.steps)
    correlation = rank_correlation(frequencies, converged)
    fig, ax = figure_axes(None, figsize=(7, 3.5))
    image = ax.pcolormesh(history.steps, np.arange(len(peaks)), errors.T, cmap="RdBu", vmin=CONVERGED, vmax=1,
                          shading="nearest")
    ax.set_yticks(np.arange(len(peaks)), [f"{2 * np.pi * f:.2f} rad ({f:.3f} cyc)" for f in frequencies])
    ax.set_xlabel("step")
    ax.set_title("F-Principle: relative error at the peaks of the target's DFT")
    fig.colorbar(image, ax=ax, label="relative error")
    ours = {"peak_frequencies_cycles_per_unit": frequencies.tolist(),
            "peak_frequencies_rad_per_unit": (2 * np.pi * frequencies).tolist(),
            "step_error_below_0.1": converged, "rank_correlation": correlation,
            "final_relative_error": errors[-1].tolist()}
    setup = {"inputs": "101 points linspace(-5, 5)", "target": "sin x + 2 sin 3x + 3 sin 5x",
             "network": "1-200-200-200-100-1 tanh (PyTorch default init; the paper used Keras' Glorot)",
             "optimizer": "Adam lr 2e-4, full batch, MSE", "steps": steps, "record_every": 10, "seed": setting.seed}
    agrees = all(step is not None for step in converged) and correlation == 1.0
    return Outcome(ours, setup, agrees, f"convergence steps {converged}, rank correlation {correlation:.3g}", fig)


F_PRINCIPLE = Reproduction(
    name="f-principle", paper=XU_SHORT, reference=XU,
    claim="a network captures the low frequencies of its target first",
    published=("The relative error at the DFT peaks of y = sin x + 2 sin 3x + 3 sin 5x falls below 0.1 first at "
               "the lowest frequency, then in order of frequency: the network captures low frequencies first "
               "(Fig. 1; heat map floor 0.1). The paper states the order, not step counts."),
    published_numbers={"rank_correlation_of_convergence_step_with_frequency": 1.0},
    tolerance="every peak converges and the Spearman correlation of convergence step with frequency is 1",
    run=run)

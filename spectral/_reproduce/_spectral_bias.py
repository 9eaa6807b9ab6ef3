"""``spectral-bias``: Rahaman et al.'s equal-amplitude sinusoids, the lower frequencies learned first."""

from __future__ import annotations

import numpy as np
import torch

from .._grid import Grid
from .._plotting import figure_axes
from ._common import Outcome, Reproduction, Setting, network
from ._convergence import columns, first_step_below, rank_correlation, spectral_training

#: A frequency is "half learned" once its relative error first falls below this: the spectral-bias
#: verdict's threshold, since the default trains 6,000 steps where Rahaman et al. trained 80,000.
HALF_LEARNED = 0.5
RAHAMAN = ("Rahaman, Baratin, Arpit, Draxler, Lin, Hamprecht, Bengio, Courville, \"On the Spectral Bias of "
           "Neural Networks\", ICML 2019")


def run(setting: Setting) -> Outcome:
    steps = (25 if setting.quick else 6000) if setting.steps is None else setting.steps
    cycles = np.arange(5, 55, 5)
    phases = np.random.default_rng(setting.seed).uniform(0, 2 * np.pi, size=len(cycles))
    grid = Grid.uniform(200)

    def target(points: np.ndarray) -> np.ndarray:
        return np.sin(2 * np.pi * cycles * points[:, :1] + phases).sum(1)

    net = network([1] + [256] * 6 + [1], torch.nn.ReLU, setting.seed)
    probe = spectral_training(grid, target, net, steps=steps, lr=1e-3, every=25, device=setting.device,
                              quiet=setting.quiet, description="spectral-bias")
    history = probe.history
    errors = history.relative_error()[:, columns(history.target_freqs, cycles)]
    learned = history.amplitude[:, cycles]  # amplitude 1 each: the learned amplitude is already normalised
    converged = first_step_below(errors, history.steps)
    half_learned = first_step_below(errors, history.steps, HALF_LEARNED)
    correlation = rank_correlation(cycles, half_learned)
    fig, ax = figure_axes(None, figsize=(7, 3.5))
    image = ax.pcolormesh(history.steps, cycles, learned.T, cmap="viridis", vmin=0, vmax=1, shading="nearest")
    ax.set_xlabel("step")
    ax.set_ylabel("frequency (cycles on [0, 1))")
    ax.set_title("Spectral bias: learned amplitude per frequency (target amplitude 1)")
    fig.colorbar(image, ax=ax, label="|learned amplitude| / target amplitude")
    ours = {"frequencies": cycles.tolist(), "step_error_below_0.5": half_learned,
            "rank_correlation": correlation, "step_error_below_0.1": converged,
            "rank_correlation_error_below_0.1": rank_correlation(cycles, converged),
            "final_learned_amplitude": learned[-1].tolist()}
    setup = {"inputs": "200 points on [0, 1)", "target": "sum of sin(2 pi k z + phi_k), k = 5, 10, ..., 50",
             "network": "1-256x6-1 ReLU (PyTorch default init)", "optimizer": "Adam lr 1e-3, full batch, MSE",
             "steps": steps, "record_every": 25, "seed": setting.seed}
    return Outcome(ours, setup, bool(correlation >= 0.9), f"rank correlation {correlation:.3g} (half learned)", fig)


SPECTRAL_BIAS = Reproduction(
    name="spectral-bias", paper="Rahaman et al., ICML 2019", reference=RAHAMAN,
    claim="a ReLU network learns equal-amplitude sinusoids in order of frequency",
    published=("Fitting a sum of sinusoids of equal amplitude at 5, 10, ..., 50 cycles (random phases) with "
               "a 6-layer ReLU network, the learned amplitude of lower frequencies reaches the target first "
               "(Fig. 1 heat map, 80,000 full-batch iterations). Criterion of issue 14: Spearman correlation "
               "of convergence step with frequency >= 0.9."),
    published_numbers={"rank_correlation_of_convergence_step_with_frequency": ">= 0.9 (order shown, "
                                                                             "no number published)"},
    tolerance=("Spearman correlation with frequency of the step at which each frequency's relative error "
               "first falls below 0.5 (half learned) >= 0.9; the stricter 0.1 is reported beside it, "
               "but 6,000 steps (80,000 published) leave the highest frequencies short of it"),
    run=run)

"""When a frequency is learned: the first step under an error threshold, and its rank order with frequency."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .._grid import Grid
from .._probe import SpectrumProbe
from ._common import train

#: A frequency has "converged" once its relative error first falls below this (Xu et al.'s heat-map floor).
CONVERGED = 0.1


def first_step_below(errors: np.ndarray, steps: np.ndarray, threshold: float = CONVERGED) -> list[int | None]:
    """Per column of ``(R, K)`` ``errors``: the first recorded step with error below ``threshold``, or None.

    Examples
    --------
    >>> first_step_below(np.array([[1.0, 1.0], [0.05, 0.5]]), np.array([0, 10]))
    [10, None]
    """
    below = errors < threshold
    return [int(steps[np.argmax(column)]) if column.any() else None for column in below.T]


def rank_correlation(frequencies: np.ndarray, converged: list[int | None]) -> float:
    """Spearman correlation of convergence step with frequency; never-converged counts as after every step."""
    ranked = np.array([np.inf if step is None else step for step in converged], dtype=np.float64)
    if np.unique(ranked).size < 2:
        return float("nan")
    from scipy.stats import (
        spearmanr,  # here: scipy.stats is slow to import, and only a finished run needs it
    )

    return float(spearmanr(frequencies, ranked).statistic)


def spectral_training(grid: Grid, target: Callable[[np.ndarray], np.ndarray], net: torch.nn.Module, *,
                      steps: int, lr: float, every: int, device: torch.device, quiet: bool,
                      description: str) -> SpectrumProbe:
    """Fit ``net`` to ``target`` at the grid points (full batch, MSE) under a spectrum probe with the target."""
    probe = SpectrumProbe(grid, every=every, target=target)
    points = torch.as_tensor(grid.points, dtype=torch.float32, device=device)
    values = torch.as_tensor(target(grid.points), dtype=torch.float32, device=device)[:, None]
    train(net.to(device), points, values, steps=steps, lr=lr, every=every, loss=torch.nn.functional.mse_loss,
          record=lambda step: probe.update(net, step), quiet=quiet, description=description)
    return probe


def columns(history_freqs: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Columns of ``relative_error()`` (one per target frequency) at the ``wanted`` frequencies."""
    return np.array([int(np.flatnonzero(np.isclose(history_freqs, f))[0]) for f in wanted])

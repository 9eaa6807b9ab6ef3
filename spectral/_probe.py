"""SpectrumProbe: records the spectrum of a model's function during training."""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np
import torch

from ._evaluate import DEFAULT_BATCH_SIZE, PointEvaluator
from ._grid import Grid
from ._history import SpectrumHistory
from ._protocol import Probe
from ._spectrum import (
    amplitude_weights,
    check_grid_values,
    fourier,
    frequency_axes,
    window_array,
)

#: A target bin "has power" when its amplitude exceeds this fraction of the largest.
TARGET_POWER_THRESHOLD = 1e-6


class SpectrumProbe(Probe):
    """Records the Fourier spectrum of a model's function on a grid.

    A :class:`~spectral._protocol.Probe`: :meth:`update` on every training
    step, :meth:`snapshot` for labelled records, :meth:`reset`, ``history``.

    Parameters
    ----------
    grid : Grid
        Where the model is evaluated (1D or 2D, any bounds per axis:
        frequencies are in cycles per unit length on each axis).
    every : int, default 1
        :meth:`update` records when ``step % every == 0``.
    target : callable or array_like, optional
        The function being learned, as a callable on ``(N, d)`` points or its
        values on the grid (shape ``grid.shape`` or ``(N,)``). Enables the
        per-frequency relative error :meth:`SpectrumHistory.relative_error`
        at the frequencies where the target has power (read without the
        window, so one line is not smeared over its neighbours).
    window : str or tuple, optional
        Window applied before the transform (see :func:`spectrum`): the
        history's ``amplitude`` is coherent-gain normalised, its ``power``
        Parseval normalised (see :class:`SpectrumHistory`).
    batch_size : int, default 16384
        Points per forward pass, bounding activation memory.

    Notes
    -----
    ``model`` may be a ``torch.nn.Module`` (run under ``no_grad`` in eval mode
    on its own device and dtype; every submodule's training flag is restored)
    or any callable mapping ``(N, d)`` points to ``(N,)`` or ``(N, 1)`` values.
    Non-torch callables receive a float64 numpy array, so a Keras or JAX model
    works through ``lambda x: np.asarray(keras_model(x))``.

    A model that returns NaN or inf, or values so large that their spectrum
    overflows (float32 outputs near ``3e38``, float64 near ``1e154``), is
    recorded with NaN spectra and ``history.finite`` False; the probe never
    raises for it, and a record with ``finite`` True is finite throughout.

    Models and targets get their own copy of the grid's points on every
    call, so one that changes its input in place cannot move them.

    Examples
    --------
    >>> import torch
    >>> from spectral import Grid, SpectrumProbe
    >>> from spectral.models import mlp
    >>> net = mlp(1, width=16, depth=2, activation="tanh", seed=0)
    >>> probe = SpectrumProbe(Grid.uniform(64), every=10)
    >>> for step in range(30):
    ...     _ = probe.update(net, step)  # inside your training loop; True when it recorded
    >>> probe.history.steps
    array([ 0, 10, 20])
    >>> probe.snapshot(net, "end")  # always recorded, at the last step given to update
    >>> int(probe.history.steps[-1]), probe.history.labels[-1]
    (29, 'end')
    >>> probe.reset()  # a new, empty history; grid, window and target kept
    >>> len(probe.history)
    0
    """

    def __init__(self, grid: Grid, *, every: int = 1, target: Any = None, window: Any = None,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if not isinstance(grid, Grid):
            raise TypeError(f"grid must be a spectral.Grid, got {type(grid).__name__}")
        self.grid = grid
        self.window = window
        self._window_np = window_array(window, grid.shape)
        self._window_tensors: dict[tuple[torch.device, torch.dtype], torch.Tensor | None] = {}
        self._evaluator = PointEvaluator(grid.points, batch_size)
        self._weights = amplitude_weights(grid.shape)
        self._target_mask = None
        self._target_coefficients = None
        target_freqs = None if target is None else self._set_target(target)
        super().__init__(SpectrumHistory(grid.shape, grid.extent, window, target_freqs), every)

    def _set_target(self, target: Any) -> np.ndarray:
        if callable(target):
            values = self._evaluator(target).to(torch.float64)
        else:
            values = check_grid_values(target, "target").to(torch.float64).cpu()
            if values.numel() != self.grid.size or values.shape not in ((self.grid.size,), self.grid.shape):
                raise ValueError(f"target must have shape {self.grid.shape} to match the grid, got {tuple(values.shape)}")
        if not torch.isfinite(values).all():
            raise ValueError("target has NaN or inf values")
        values = values.reshape(self.grid.shape)
        # Where the target has power is read without the window, which would smear each line over
        # neighbouring bins; the errors then compare windowed coefficients of model and target there.
        amplitude = fourier(values, self.grid.ndim, None)[0].abs().cpu().numpy()
        if amplitude.max() == 0:
            raise ValueError("target has no power: it is zero on the grid")
        coefficients = self._transform(values)[0].cpu().numpy()
        self._target_mask = amplitude > TARGET_POWER_THRESHOLD * amplitude.max()
        self._target_coefficients = coefficients[self._target_mask]
        axes = frequency_axes(self.grid.shape, self.grid.extent)
        if len(axes) == 1:
            return axes[0][self._target_mask]
        fy, fx = np.meshgrid(*axes, indexing="ij")
        return np.stack([fy[self._target_mask], fx[self._target_mask]], axis=1)

    def _transform(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (values.device, values.dtype)
        if key not in self._window_tensors:
            self._window_tensors[key] = (None if self._window_np is None
                                         else torch.as_tensor(self._window_np, dtype=values.dtype, device=values.device))
        return fourier(values, self.grid.ndim, self._window_tensors[key])

    def update(self, model: Callable[..., Any], step: int) -> bool:
        """Record the model's spectrum if ``step % every == 0``; return whether it did.

        ``step`` is an integer in the int64 range (a ``ValueError`` names it otherwise).
        """
        return self._update(step, functools.partial(self._record, model))

    def snapshot(self, model: Callable[..., Any], label: str, step: int | None = None) -> None:
        """Always record, with a ``label`` such as ``"before shrink"``.

        ``step`` defaults to the last step passed to :meth:`update` (0 before any).
        """
        self._snapshot(label, step, functools.partial(self._record, model))

    def log(self, writer: Any, step: int | None = None, **kwargs: Any) -> None:
        """Write the history to a TensorBoard ``SummaryWriter``.

        Scalars (high-frequency fraction, band powers) for every record, or
        only the record(s) at ``step``, and a spectrum figure. Keyword
        arguments go to :func:`spectral._tensorboard.log_history` (``cutoff``,
        ``bands``, ``tag``). Needs the ``tensorboard`` extra.
        """
        from ._tensorboard import log_history

        log_history(self.history, writer, step=step, **kwargs)

    def _record(self, model: Callable[..., Any], step: int, label: str) -> None:
        # No separate check of the values: NaN or inf anywhere makes the DC bin, so the spectra, non-finite.
        spectra = self._spectra(self._evaluator(model))
        if spectra is None:
            self.history.append_filled(step, label, False, np.nan)
        else:
            self.history.append(step, label, True, **spectra)

    def _spectra(self, values: torch.Tensor) -> dict[str, np.ndarray] | None:
        """Amplitude, power and (with a target) relative errors of finite values; None when any of them overflows."""
        coefficients, power = self._transform(values.reshape(self.grid.shape))
        coefficients = coefficients.cpu().numpy()
        power = power.cpu().numpy().astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):  # huge outputs: caught just below
            amplitude = self._weights * np.abs(coefficients)
            errors = None
            if self._target_mask is not None:
                errors = (np.abs(coefficients[self._target_mask] - self._target_coefficients)
                          / np.abs(self._target_coefficients))
        parts = {"amplitude": amplitude, "power": power}
        if errors is not None:
            parts["relative_error"] = errors
        return parts if all(np.isfinite(part).all() for part in parts.values()) else None

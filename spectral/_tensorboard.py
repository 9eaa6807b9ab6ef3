"""Writing a spectrum history to TensorBoard."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ._history import SpectrumHistory
from ._plotting import check_history, figure_axes, flag_nonfinite, log_curves
from ._spectrum import frequency_magnitude, radial_profile
from ._validation import int64, non_negative_finite

INSTALL_HINT = 'pip install "spectral-probes[tensorboard]"'

#: Number of equal-width bands of ``|f|`` logged by default.
DEFAULT_BANDS = 4


def _open_writer(writer: Any) -> tuple[Any, bool]:
    """``(writer, owned)``: a log directory becomes a new ``SummaryWriter`` we must close."""
    if isinstance(writer, (str, os.PathLike)):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ImportError(f"logging to TensorBoard needs tensorboard: {INSTALL_HINT}") from None
        return SummaryWriter(log_dir=os.fspath(writer)), True
    if not all(callable(getattr(writer, name, None)) for name in ("add_scalar", "add_figure", "flush")):
        raise TypeError(f"writer must be a SummaryWriter or a log directory, got {type(writer).__name__}")
    return writer, False


def _band_edges(bands: Any, top: float) -> np.ndarray:
    if bands is None:
        return np.linspace(0.0, top, DEFAULT_BANDS + 1)
    try:
        edges = np.asarray(bands, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"bands must be a sequence of frequencies, got {bands!r}") from None
    increasing = edges.ndim == 1 and len(edges) >= 2 and np.all(np.diff(edges) > 0)
    if not increasing or not np.all(np.isfinite(edges)) or edges[0] < 0:
        raise ValueError(f"bands must be at least two finite, non-negative, increasing band edges, got {bands!r}")
    return edges


def _rows(history: SpectrumHistory, step: Any) -> np.ndarray:
    if step is None:
        return np.arange(len(history))
    step = int64(step, "step")
    rows = np.flatnonzero(history.steps == step)
    if not len(rows):
        steps = history.steps
        raise ValueError(f"step={step} was not recorded; recorded steps run from {steps.min()} to {steps.max()}")
    return rows


def _target_magnitudes(history: SpectrumHistory) -> np.ndarray:
    """``|f|`` of the target frequencies; empty without a target."""
    targets = np.empty(0) if history.target_freqs is None else np.asarray(history.target_freqs)
    return np.abs(targets) if targets.ndim == 1 else np.hypot(targets[:, 0], targets[:, 1])


def spectrum_figure(history: SpectrumHistory, row: int) -> Any:
    """Log-scale spectrum of one record: amplitude in 1D, radial power in 2D."""
    fig, ax = figure_axes(None, figsize=(6, 4))
    if len(history.shape) == 1:
        freqs, values = history.freqs, history.amplitude[row]
        ax.set_xlabel("frequency (cycles per unit length)")
        ax.set_ylabel("amplitude")
    else:
        freqs, values = radial_profile(history.power[row], history.extent)
        ax.set_xlabel("radius |f| (cycles per unit length)")
        ax.set_ylabel("power in ring")
    log_curves(ax, freqs, [values], [""])
    for k in np.unique(_target_magnitudes(history)):
        ax.axvline(k, color="grey", linestyle=":", linewidth=1)
    ax.set_title(history.labels[row] or f"step {history.steps[row]}")
    flag_nonfinite(ax, history, [row])
    return fig


def log_history(history: SpectrumHistory, writer: Any, *, step: int | None = None, cutoff: float | None = None,
                bands: Any = None, tag: str = "spectrum") -> None:
    """Write a spectrum history to TensorBoard: scalars per record and one figure.

    Parameters
    ----------
    history : SpectrumHistory
        The records, e.g. ``probe.history``.
    writer : SummaryWriter or str or os.PathLike
        A ``torch.utils.tensorboard.SummaryWriter`` (or anything with its
        ``add_scalar``, ``add_figure`` and ``flush``, such as a Lightning
        ``TensorBoardLogger.experiment``), or a log directory for a new writer
        that is closed afterwards.
    step : int, optional
        Log only the records taken at this step; all records when None.
    cutoff : float, optional
        Cycles per unit length above which power counts as high frequency.
        Defaults to the largest target frequency ``|f|`` when the probe had a
        target, else a quarter of the largest ``|f|`` on the grid.
    bands : sequence of float, optional
        Increasing band edges in cycles per unit length; band ``j`` holds the
        bins with ``bands[j] <= |f| < bands[j + 1]`` (the last band includes its
        upper edge). Defaults to 4 equal-width bands from 0 to the largest
        ``|f|`` on the grid, so the band powers sum to the total power.
    tag : str, default "spectrum"
        Prefix of every tag.

    Notes
    -----
    For every selected record, at ``global_step = history.steps[i]``:

    * ``{tag}/finite``: 1, or 0 where the model produced NaN or inf;
    * ``{tag}/high_frequency_fraction``: ``history.high_frequency_fraction(cutoff)``;
    * ``{tag}/band_power/{lo:g}-{hi:g}``: power summed over each band.

    Non-finite values (a non-finite record, or the fraction of a record
    without power outside DC) are not written. One figure, ``{tag}/figure``,
    shows the last selected record: amplitude against frequency in 1D, power
    per ring against radius in 2D.

    Raises
    ------
    ImportError
        If ``writer`` is a directory and tensorboard is not installed.
    TypeError, ValueError
        For a bad ``history``, ``writer``, ``step``, ``cutoff``, ``bands`` or
        ``tag``, an empty history, or a ``step`` with no record.

    Examples
    --------
    Any object with ``add_scalar``, ``add_figure`` and ``flush`` is a writer:

    >>> from spectral import Grid, SpectrumProbe
    >>> from spectral._tensorboard import log_history
    >>> from spectral.models import mlp
    >>> net = mlp(1, width=16, depth=2, activation="tanh", seed=0)
    >>> probe = SpectrumProbe(Grid.uniform(64), every=10)
    >>> for step in range(30):
    ...     recorded = probe.update(net, step)
    >>> class Printer:
    ...     def add_scalar(self, tag, value, step):
    ...         print(step, tag)
    ...     def add_figure(self, tag, figure, step):
    ...         print(step, tag)
    ...     def flush(self):
    ...         pass
    >>> log_history(probe.history, Printer(), step=20, bands=[0, 8, 32])
    20 spectrum/finite
    20 spectrum/high_frequency_fraction
    20 spectrum/band_power/0-8
    20 spectrum/band_power/8-32
    20 spectrum/figure

    A log directory gets a new ``SummaryWriter`` (this needs the tensorboard extra):

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as logdir:  # doctest: +SKIP
    ...     log_history(probe.history, logdir)
    """
    history = check_history(history, SpectrumHistory)
    if not isinstance(tag, str) or not tag:
        raise TypeError(f"tag must be a non-empty str, got {tag!r}")
    rows = _rows(history, step)
    magnitude = frequency_magnitude(history.shape, history.extent)
    if cutoff is None:
        targets = _target_magnitudes(history)
        cutoff = targets.max() if len(targets) else magnitude.max() / 4
    fraction = history.high_frequency_fraction(non_negative_finite(cutoff, "cutoff"))
    edges = _band_edges(bands, magnitude.max())
    band_powers = {}
    for j, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        inside = (magnitude >= lo) & ((magnitude <= hi) if j == len(edges) - 2 else (magnitude < hi))
        band_powers[f"{tag}/band_power/{lo:g}-{hi:g}"] = history.power[:, inside].sum(axis=1)
    writer, owned = _open_writer(writer)
    try:
        for i in rows:
            global_step = int(history.steps[i])
            writer.add_scalar(f"{tag}/finite", float(history.finite[i]), global_step)
            for name, values in {f"{tag}/high_frequency_fraction": fraction, **band_powers}.items():
                if np.isfinite(values[i]):
                    writer.add_scalar(name, float(values[i]), global_step)
        writer.add_figure(f"{tag}/figure", spectrum_figure(history, rows[-1]), int(history.steps[rows[-1]]))
    finally:
        if owned:
            writer.close()
        else:
            writer.flush()

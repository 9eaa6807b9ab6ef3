"""Figures of spectra over training and before/after a shrink.

Every function takes ``ax=None`` (or ``fig=None``), returns the figure, and
never calls ``plt.show()``; they work under the Agg backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._history import SpectrumHistory

__all__ = ["before_after", "error_heatmap", "spectra_2d"]

DYNAMIC_RANGE = 1e-15  # log axes show at most this ratio below the peak (float64 round-off)


def _axes(ax: Any, **figure_kwargs: Any) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(layout="constrained", **figure_kwargs)
    return fig, fig.add_subplot()


def _log_curves(ax: Any, x: np.ndarray, curves: list[np.ndarray], labels: list[str]) -> None:
    """Semilog curves; bins at zero (or below the plot's dynamic range) are left out."""
    peak = max((np.nanmax(c) for c in curves if np.isfinite(c).any()), default=1.0)
    for curve, label in zip(curves, labels):
        shown = np.where(curve > peak * DYNAMIC_RANGE, curve, np.nan)
        ax.semilogy(x, shown, marker=".", label=label)


def _check_history(history: Any) -> SpectrumHistory:
    if not isinstance(history, SpectrumHistory):
        raise TypeError(f"history must be a SpectrumHistory, got {type(history).__name__}")
    if len(history) == 0:
        raise ValueError("history is empty: nothing was recorded")
    return history


def _rows(history: SpectrumHistory, before: str, after: str) -> list[int]:
    rows = []
    for name, label in (("before", before), ("after", after)):
        try:
            rows.append(history.index(label))
        except KeyError:
            raise ValueError(f"{name}={label!r} labels no record; labels are {sorted(set(history.labels) - {''})}") from None
    return rows


def _flag_nonfinite(ax: Any, history: SpectrumHistory, rows: list[int]) -> None:
    bad = [history.labels[i] or f"step {history.steps[i]}" for i in rows if not history.finite[i]]
    if bad:
        ax.text(0.5, 0.5, "non-finite model output: " + ", ".join(bad), transform=ax.transAxes,
                ha="center", va="center", color="red")


def before_after(history: SpectrumHistory, before: str = "before shrink", after: str = "after shrink", *,
                 ax: Any = None, normalise: bool = False) -> Any:
    """Log amplitude against frequency for two labelled records (1D).

    Parameters
    ----------
    history : SpectrumHistory
        A 1D history with records labelled ``before`` and ``after``.
    before, after : str
        Labels of the two records (the last record with each label is used).
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when None.
    normalise : bool, default False
        Divide each spectrum by its total amplitude, to compare shapes.

    Returns
    -------
    matplotlib.figure.Figure
        Target frequencies (when the probe had a target) are marked by
        vertical dotted lines.
    """
    history = _check_history(history)
    if len(history.shape) != 1:
        raise ValueError("before_after() draws 1D histories; use spectra_2d() for 2D")
    rows = _rows(history, before, after)
    fig, ax = _axes(ax, figsize=(6, 4))
    curves = [history.amplitude[row] for row in rows]
    if normalise:
        curves = [curve / np.nansum(curve) for curve in curves]
    _log_curves(ax, history.freqs, curves, [f"{label} (step {history.steps[row]})" for row, label in zip(rows, (before, after))])
    if history.target_freqs is not None:
        for k in history.target_freqs:
            ax.axvline(k, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("frequency (cycles per unit length)")
    ax.set_ylabel("normalised amplitude" if normalise else "amplitude")
    ax.legend()
    _flag_nonfinite(ax, history, rows)
    return fig


def error_heatmap(history: SpectrumHistory, *, ax: Any = None) -> Any:
    """Heat map of the relative error per target frequency over training steps.

    Needs a probe built with ``target=``. Non-finite records show as blank
    columns and are listed in the title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.colors import LogNorm

    history = _check_history(history)
    errors = history.relative_error()
    fig, ax = _axes(ax, figsize=(7, 4))
    freqs = history.target_freqs
    names = [f"{k:g}" for k in freqs] if freqs.ndim == 1 else [f"({ky:g},{kx:g})" for ky, kx in freqs]
    finite = errors[np.isfinite(errors) & (errors > 0)]
    norm = LogNorm(vmin=finite.min(), vmax=finite.max()) if finite.size else None
    image = ax.imshow(errors.T, aspect="auto", origin="lower", norm=norm, interpolation="nearest", cmap="viridis")
    ax.set_yticks(range(len(names)), names)
    ticks = np.linspace(0, len(history) - 1, min(len(history), 8)).round().astype(int)
    ax.set_xticks(ticks, [str(history.steps[i]) for i in ticks])
    ax.set_xlabel("step")
    ax.set_ylabel("target frequency")
    fig.colorbar(image, ax=ax, label="|F[h](k) - F[f](k)| / |F[f](k)|")
    bad = history.steps[~history.finite]
    ax.set_title("relative error per frequency" + (f" (non-finite at steps {list(bad)})" if len(bad) else ""))
    return fig


def spectra_2d(history: SpectrumHistory, before: str = "before shrink", after: str = "after shrink", *,
               ax: Any = None) -> Any:
    """2D power spectra of two labelled records side by side, with radial profiles.

    Parameters
    ----------
    history : SpectrumHistory
        A 2D history with records labelled ``before`` and ``after``.
    before, after : str
        Labels of the two records.
    ax : sequence of three matplotlib Axes, optional
        Where to draw (before, after, radial profiles); a new figure when None.

    Returns
    -------
    matplotlib.figure.Figure
        Three panels: log power before, log power after (zero frequency at the
        centre), and the radial profiles of both.
    """
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    history = _check_history(history)
    if len(history.shape) != 2:
        raise ValueError("spectra_2d() draws 2D histories; use before_after() for 1D")
    rows = _rows(history, before, after)
    if ax is None:
        fig = Figure(figsize=(13, 4), layout="constrained")
        axes = fig.subplots(1, 3)
    elif len(ax) != 3:
        raise ValueError(f"ax must hold three Axes (before, after, radial profiles), got {len(ax)}")
    else:
        axes, fig = list(ax), ax[0].figure
    fy, fx = (np.fft.fftshift(f) for f in history.freqs)
    powers = [np.fft.fftshift(history.power[row]) for row in rows]
    positive = np.concatenate([p[np.isfinite(p) & (p > 0)] for p in powers])
    norm = LogNorm(vmin=max(positive.min(), positive.max() * 1e-12), vmax=positive.max()) if positive.size else None
    floor = norm.vmin if norm is not None else 1.0
    extent = (fx[0], fx[-1], fy[0], fy[-1])
    for ax, power, label in zip(axes[:2], powers, (before, after)):
        image = ax.imshow(np.maximum(power, floor), origin="lower", extent=extent, norm=norm, cmap="magma")
        ax.set_title(label)
        ax.set_xlabel("f_x (cycles per unit length)")
        ax.set_ylabel("f_y")
    fig.colorbar(image, ax=list(axes[:2]), label="power")
    radii, radial = history.radial()
    _log_curves(axes[2], radii, [radial[row] for row in rows], [before, after])
    axes[2].set_xlabel("radius |f| (cycles per unit length)")
    axes[2].set_ylabel("power in ring")
    axes[2].legend()
    _flag_nonfinite(axes[2], history, rows)
    return fig

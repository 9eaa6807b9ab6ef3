"""Drawing helpers every figure of a history shares (:mod:`spectral.plot`, TensorBoard, the probes' plots).

Matplotlib is imported only when a figure is made: importing this module stays cheap.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Log axes show at most this ratio below the peak (float64 round-off).
DYNAMIC_RANGE = 1e-15


def subplots(ax: Any, count: int, name: str, **figure_kwargs: Any) -> tuple[Any, list[Any]]:
    """``count`` Axes: a new constrained-layout figure when ``ax`` is None (no pyplot state), else ``ax`` checked.

    ``ax`` may be one Axes (for ``count == 1``) or a sequence of ``count``;
    ``name`` says what they are for in the ``ValueError`` of a wrong count.
    """
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(layout="constrained", **figure_kwargs)
        axes = fig.subplots(*((1, count) if count <= 3 else (2, count // 2)), squeeze=False)
        return fig, list(axes.ravel())
    axes = [ax] if hasattr(ax, "plot") else list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axes) != count:
        raise ValueError(f"ax must hold {count} Axes ({name}), got {len(axes)}")
    return axes[0].figure, axes


def figure_axes(ax: Any, **figure_kwargs: Any) -> tuple[Any, Any]:
    """``(fig, ax)`` for a one-panel figure: a new one when ``ax`` is None, else ``ax`` and its figure."""
    fig, (axes,) = subplots(ax, 1, "one panel", **figure_kwargs)
    return fig, axes


def check_history(history: Any, kind: type, ndim: int | None = None, other: str = "") -> Any:
    """``history`` itself, refusing another type, an empty history, or (given ``ndim``) another dimension.

    ``other`` names the function that draws the other dimension.
    """
    if not isinstance(history, kind):
        raise TypeError(f"history must be a {kind.__name__}, got {type(history).__name__}")
    if not len(history):
        raise ValueError("history is empty: nothing was recorded")
    if ndim is not None and len(history.shape) != ndim:
        raise ValueError(f"this function draws {ndim}D histories; use {other}() for {len(history.shape)}D")
    return history


def log_curves(ax: Any, x: np.ndarray, curves: list[np.ndarray], labels: list[str]) -> None:
    """Semilog curves; values below ``peak * DYNAMIC_RANGE`` (zero included) are drawn on that floor, marked."""
    peak = max((np.nanmax(c) for c in curves if np.isfinite(c).any()), default=1.0)
    floor = peak * DYNAMIC_RANGE if peak > 0 else DYNAMIC_RANGE
    clipped = False
    for i, (curve, label) in enumerate(zip(curves, labels)):
        below = curve <= floor
        clipped |= bool(below.any())
        # Later curves dashed, so a curve hidden under an identical one (a homogeneous net's shape) still shows.
        ax.semilogy(x, np.where(below, floor, curve), marker=".", linestyle="-" if i == 0 else "--", label=label)
    if clipped:
        ax.axhline(floor, color="grey", linestyle="-.", linewidth=0.8,
                   label=f"display floor: peak x {DYNAMIC_RANGE:g} (values below drawn on it)")


def flag_nonfinite(ax: Any, history: Any, rows: list[int]) -> None:
    """Write across ``ax`` which of the records ``rows`` of ``history`` were not finite, if any."""
    bad = [history.labels[i] or f"step {history.steps[i]}" for i in rows if not history.finite[i]]
    if bad:
        ax.text(0.5, 0.5, "non-finite model output: " + ", ".join(bad), transform=ax.transAxes,
                ha="center", va="center", color="red")

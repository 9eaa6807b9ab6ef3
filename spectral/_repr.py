"""How a history shows itself in Jupyter: a small summary table and a thumbnail, as HTML.

:class:`HistoryRepr` is mixed into :class:`spectral._protocol.History`, so every history
(``SpectrumHistory``, ``BatchSpectrumHistory``, ``FilterHistory``, ``ProjectionHistory``,
``LostUpdateHistory``) has ``_repr_html_``. The thumbnail is drawn with matplotlib's Agg canvas (no
pyplot, no display needed) and embedded as a base64 PNG; every string (labels, configuration) is escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any

import numpy as np

#: Labels listed in the summary before "and N more".
SHOWN_LABELS = 8
#: Characters of a configuration value shown before it is cut with "...".
SHOWN_CHARACTERS = 80
#: Per-record arrays drawn in the generic thumbnail.
DRAWN_ARRAYS = 3
#: Thumbnail size in inches, at :data:`THUMBNAIL_DPI`.
THUMBNAIL_SIZE = (3.6, 2.0)
THUMBNAIL_DPI = 72


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS - 3] + "..."


def summary_rows(history: Any) -> list[tuple[str, str]]:
    """``(field, value)`` rows describing ``history``: records, steps, labels, configuration, arrays."""
    steps, finite = history.steps, history.finite
    labels = [label for label in history.labels if label]
    rows = [("records", f"{len(history)} ({int(finite.sum())} finite)"),
            ("steps", f"{steps[0]} to {steps[-1]}" if len(steps) else "none")]
    if labels:
        more = f" and {len(labels) - SHOWN_LABELS} more" if len(labels) > SHOWN_LABELS else ""
        rows.append(("labels", ", ".join(labels[:SHOWN_LABELS]) + more))
    metadata, arrays = history._configuration()
    rows += [(key, _short(value)) for key, value in metadata.items()]
    rows += [(key, f"array, shape {tuple(np.shape(value))}") for key, value in arrays.items()]
    rows += [(key, f"per record, shape {shape}") for key, (shape, _) in history._layout().items()]
    return rows


def _draw_spectrum(history: Any, ax: Any) -> bool:
    """The spectrum of the first and the last finite record (1D amplitude, 2D radial power); False if none."""
    rows = np.flatnonzero(history.finite)
    if not rows.size:
        return False
    for row, style in ((rows[0], ":"), (rows[-1], "-")):
        label = history.labels[row] or f"step {history.steps[row]}"
        if len(history.shape) == 1:
            ax.semilogy(history.freqs[1:], np.maximum(history.amplitude[row][1:], 1e-300), style, label=label)
        else:
            radii, power = history.radial()
            ax.semilogy(radii[1:], np.maximum(power[row][1:], 1e-300), style, label=label)
    ax.set_xlabel("cycles per unit length", fontsize=7)
    ax.legend(fontsize=6)
    return True


def _draw_records(history: Any, ax: Any) -> bool:
    """The root mean square of each per-record array against the step; False if nothing is finite."""
    drawn = False
    for key in list(history._layout())[:DRAWN_ARRAYS]:
        values = history._array(key).reshape(len(history), -1).astype(np.float64)
        finite = np.isfinite(values)
        counts = finite.sum(axis=1)
        squares = np.where(finite, values, 0.0) ** 2
        rms = np.sqrt(squares.sum(axis=1) / np.where(counts > 0, counts, 1))
        rms[counts == 0] = np.nan
        if np.isfinite(rms).any():
            ax.plot(history.steps, rms, ".-", markersize=3, label=f"rms {key}")
            drawn = True
    if drawn:
        ax.set_xlabel("step", fontsize=7)
        ax.legend(fontsize=6)
    return drawn


def thumbnail_png(history: Any) -> bytes | None:
    """A small PNG of ``history`` drawn on matplotlib's Agg canvas, or None when there is nothing to draw."""
    if not len(history):
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ._history import SpectrumHistory

    figure = Figure(figsize=THUMBNAIL_SIZE, dpi=THUMBNAIL_DPI)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.tick_params(labelsize=6)
    with np.errstate(all="ignore"):
        drawn = _draw_spectrum(history, ax) if isinstance(history, SpectrumHistory) else _draw_records(history, ax)
    if not drawn:
        return None
    figure.tight_layout(pad=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def history_html(history: Any) -> str:
    """The HTML a notebook shows for ``history``: its type, a summary table and a thumbnail.

    Examples
    --------
    >>> from spectral import FilterHistory
    >>> history = FilterHistory([0.5])
    >>> history.append(0, "start <1>", True, residual_low=[0.5], residual_high=[0.25])
    >>> page = history_html(history)
    >>> "FilterHistory" in page and "start &lt;1&gt;" in page and "data:image/png;base64," in page
    True
    """
    rows = "".join(f'<tr><th style="text-align:left">{html.escape(key)}</th><td style="text-align:left">'
                   f"{html.escape(value)}</td></tr>" for key, value in summary_rows(history))
    png = thumbnail_png(history)
    image = (f'<img alt="thumbnail" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'
             if png else "")
    return (f'<div class="spectral-history"><strong>{html.escape(type(history).__name__)}</strong>'
            f'<div style="display:flex;gap:12px;align-items:flex-start"><table>{rows}</table>{image}</div></div>')


class HistoryRepr:
    """Gives a history ``_repr_html_``: Jupyter shows its summary table and thumbnail."""

    def _repr_html_(self) -> str:
        return history_html(self)

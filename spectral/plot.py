"""Figures of spectra over training and before/after a shrink.

Every function takes ``ax=None``, returns the figure, and never calls
``plt.show()``; they work under the Agg backend. The figures are drawn so that
they cannot be misread: a comparison across a shrink shows normalised spectra
next to the raw ones (a uniform drop in level is not a change of shape), the
high-frequency cutoff is drawn and labelled when given, every marker is in a
legend, and titles name the step of every record drawn (pass ``title=`` to name
the case and seed as well).
"""

from __future__ import annotations

from typing import Any, Union

import numpy as np

from ._grid import per_axis
from ._history import SpectrumHistory
from ._plotting import check_history, flag_nonfinite, log_curves, subplots
from ._spectrum import magnitude_of

__all__ = ["before_after", "error_heatmap", "spectra_2d"]

#: ``normalise`` values: raw only, normalised only, or both side by side.
Normalise = Union[bool, str]
RAW_LABEL = {1: "amplitude", 2: "power"}
SHARE_LABEL = "share of non-DC power"
CUTOFF_STYLE = {"color": "tab:red", "linestyle": "--", "linewidth": 1.2}


def _check_normalise(normalise: Any) -> tuple[bool, ...]:
    """The panels to draw, ``(False,)`` raw, ``(True,)`` normalised, ``(False, True)`` both."""
    if normalise == "both":
        return (False, True)
    if isinstance(normalise, (bool, np.bool_)):
        return (bool(normalise),)
    raise ValueError(f"{normalise=} is not True, False or 'both'")


def _check_cutoff(cutoff: Any) -> float | None:
    if cutoff is None:
        return None
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float, np.number)) or not np.isfinite(cutoff) \
            or cutoff < 0:
        raise ValueError(f"cutoff must be a finite number >= 0 (cycles per unit length) or None, got {cutoff!r}")
    return float(cutoff)


def _rows(history: SpectrumHistory, before: str, after: str) -> list[int]:
    rows = []
    for name, label in (("before", before), ("after", after)):
        try:
            rows.append(history.index(label))
        except KeyError:
            raise ValueError(f"{name}={label!r} labels no record; labels are {sorted(set(history.labels) - {''})}") from None
    return rows


def _record_name(history: SpectrumHistory, row: int) -> str:
    label = history.labels[row]
    return f"{label} (step {history.steps[row]})" if label else f"step {history.steps[row]}"


def _share(values: np.ndarray, magnitude: np.ndarray) -> np.ndarray:
    """``values`` over their sum outside DC (the normalisation of the high-frequency fraction)."""
    total = np.nansum(np.where(magnitude > 0, values, 0.0))
    return values / total if total > 0 else np.full_like(values, np.nan)


def _cutoff_line(ax: Any, cutoff: float | None) -> None:
    if cutoff is not None:
        ax.axvline(cutoff, **CUTOFF_STYLE, label=f"HF cutoff {cutoff:g} (above: high frequency)")


def _target_lines(ax: Any, history: SpectrumHistory) -> None:
    if history.target_freqs is not None:
        for i, k in enumerate(np.unique(history.target_freqs)):
            ax.axvline(k, color="grey", linestyle=":", linewidth=1, label="target frequencies" if i == 0 else None)


def _suptitle(fig: Any, title: str | None, what: str, own_figure: bool) -> None:
    """Title the figure, unless it is the caller's and they gave no ``title`` (their figure, their title)."""
    if own_figure or title:
        fig.suptitle(f"{title}: {what}" if title else what)


def before_after(history: SpectrumHistory, before: str = "before shrink", after: str = "after shrink", *,
                 ax: Any = None, normalise: Normalise = "both", cutoff: float | None = None,
                 title: str | None = None) -> Any:
    """Spectra of two labelled records (1D): raw amplitude and share of power, side by side.

    Parameters
    ----------
    history : SpectrumHistory
        A 1D history with records labelled ``before`` and ``after``.
    before, after : str
        Labels of the two records (the last record with each label is used).
    ax : matplotlib Axes, or a sequence of two Axes when ``normalise="both"``
        Where to draw; a new figure is made when None.
    normalise : True, False or "both", default "both"
        False draws the amplitudes; True draws each record's power as a share
        of its non-DC power (the normalisation of the high-frequency fraction,
        so a uniform change of level, such as a homogeneous net's shrink,
        leaves it unchanged); "both" draws the two panels side by side.
    cutoff : float, optional
        High-frequency cutoff (cycles per unit length), drawn as a dashed line.
    title : str, optional
        What the figure shows, e.g. ``"1d-tanh, seed 0"``; the figure's title
        starts with it.

    Returns
    -------
    matplotlib.figure.Figure
        Target frequencies (when the probe had a target) are dotted vertical
        lines; every line is in the legend; the step of each record is in the
        legend and the title.

    Raises
    ------
    TypeError
        If ``history`` is not a SpectrumHistory.
    ValueError
        If ``history`` is empty or 2D, a label names no record, ``ax`` holds the
        wrong number of Axes, or ``normalise`` or ``cutoff`` is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> from spectral import Grid, SpectrumProbe, plot
    >>> probe = SpectrumProbe(Grid.uniform(64), window="hann")
    >>> probe.snapshot(lambda x: np.sin(2 * np.pi * 3 * x[:, 0]) + 0.1 * np.sin(2 * np.pi * 20 * x[:, 0]), "before shrink")
    >>> probe.snapshot(lambda x: 0.2 * np.sin(2 * np.pi * 3 * x[:, 0]), "after shrink")
    >>> fig = plot.before_after(probe.history, cutoff=8, title="demo, seed 0")
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['amplitude', 'share of non-DC power']
    """
    history = check_history(history, SpectrumHistory, 1, "spectra_2d")
    panels = _check_normalise(normalise)
    cutoff = _check_cutoff(cutoff)
    rows = _rows(history, before, after)
    fig, axes = subplots(ax, len(panels), "raw, normalised", figsize=(6 * len(panels), 4))
    magnitude = np.abs(history.freqs)
    names = [_record_name(history, row) for row in rows]
    for panel, normalised in zip(axes, panels):
        curves = [_share(history.power[row], magnitude) if normalised else history.amplitude[row] for row in rows]
        log_curves(panel, history.freqs, curves, names)
        _target_lines(panel, history)
        _cutoff_line(panel, cutoff)
        panel.set_xlabel("frequency (cycles per unit length)")
        panel.set_ylabel(SHARE_LABEL if normalised else RAW_LABEL[1])
        panel.set_title("normalised: shape only" if normalised else "raw: level and shape")
        panel.legend(fontsize="small")
        flag_nonfinite(panel, history, rows)
    _suptitle(fig, title, " vs ".join(names) + _window_note(history), ax is None)
    return fig


def _window_note(history: SpectrumHistory) -> str:
    return f", {history.window} window" if history.window is not None else ", no window"


def _half_plane(freqs: np.ndarray) -> np.ndarray:
    """Indices of the 2D frequencies to keep: of each ``+k``/``-k`` pair (equal for a real function), the one
    with ``f_y > 0``, or ``f_y == 0`` and ``f_x > 0``."""
    present = {tuple(k) for k in freqs}
    return np.array([i for i, (ky, kx) in enumerate(freqs)
                     if (-ky, -kx) not in present or ky > 0 or (ky == 0 and kx >= 0)], dtype=int)


def _segments(history: SpectrumHistory, after: str | None) -> list[np.ndarray]:
    """Record indices before the shrink and from ``after`` on, each sorted by step, one record per step."""
    order = np.arange(len(history))
    if after is not None and after in set(history.labels):
        first_after = int(np.flatnonzero(history.labels == after)[0])
        parts = [order[:first_after], order[first_after:]]
    else:
        parts = [order]
    segments = []
    for part in parts:
        if not len(part):
            continue
        steps = history.steps[part]
        # Records at the same step within one segment (a labelled snapshot of the last update) show the last one.
        keep = [part[np.flatnonzero(steps == step)[-1]] for step in np.unique(steps)]
        segments.append(np.array(keep, dtype=int))
    return segments


def _cell_edges(steps: np.ndarray, closed_left: bool, closed_right: bool, half_width: float) -> np.ndarray:
    """Edges of cells centred on ``steps`` (midpoints between records); a closed side ends at the step itself.

    The outer cells reach as far out as they reach in (``half_width`` for a lone record).
    """
    steps = steps.astype(float)
    middle = (steps[1:] + steps[:-1]) / 2
    reach_left = middle[0] - steps[0] if len(middle) else half_width
    reach_right = steps[-1] - middle[-1] if len(middle) else half_width
    return np.concatenate([[steps[0] - (0 if closed_left else reach_left)], middle,
                           [steps[-1] + (0 if closed_right else reach_right)]])


def error_heatmap(history: SpectrumHistory, *, ax: Any = None, after: str | None = "after shrink",
                  title: str | None = None) -> Any:
    """Heat map of the relative error per target frequency against the training step.

    Needs a probe built with ``target=``. The x-axis is the training step
    (each record is a cell centred on its step); the shrink, when the history
    has a record labelled ``after``, is a vertical line: cells left of it show
    the net before the shrink, cells right of it after. Non-finite records are
    blank cells, listed in the title. In 2D only one of each ``+k``/``-k``
    pair is drawn (a real function's errors at the two are equal).

    Parameters
    ----------
    history : SpectrumHistory
        A history recorded with a target.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when None.
    after : str or None, default "after shrink"
        Label of the first record after the shrink; None draws no shrink.
    title : str, optional
        What the figure shows, e.g. ``"1d-tanh, seed 0"``; the title starts with it.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    TypeError
        If ``history`` is not a SpectrumHistory.
    ValueError
        If it is empty or was recorded without a target.

    Notes
    -----
    The colour is ``|h(k) - f(k)| / |f(k)|``, with ``h(k)`` the network's and
    ``f(k)`` the target's (windowed) Fourier coefficient at frequency ``k``:
    0 is a perfect fit at that frequency, 1 is an error as large as the
    target's own amplitude (a net that outputs nothing there).

    Examples
    --------
    >>> import numpy as np
    >>> from spectral import Grid, SpectrumProbe, plot
    >>> target = lambda x: np.sin(2 * np.pi * 3 * x[:, 0])
    >>> probe = SpectrumProbe(Grid.uniform(64), target=target)
    >>> for step in range(0, 300, 100):
    ...     _ = probe.update(lambda x, s=step: target(x) * (1 - np.exp(-s / 100)) + 1e-3, step)
    >>> probe.snapshot(lambda x: target(x) + 1e-3, "before shrink")
    >>> probe.snapshot(lambda x: 0.2 * target(x), "after shrink")
    >>> fig = plot.error_heatmap(probe.history, title="demo, seed 0")
    >>> fig.axes[0].get_xlabel()
    'training step'
    """
    from matplotlib.colors import LogNorm

    history = check_history(history, SpectrumHistory)
    errors = history.relative_error()
    freqs = history.target_freqs
    kept = np.arange(len(freqs)) if freqs.ndim == 1 else _half_plane(freqs)
    names = [f"{k:g}" for k in freqs] if freqs.ndim == 1 else [f"({freqs[i, 0]:g}, {freqs[i, 1]:g})" for i in kept]
    fig, (heat,) = subplots(ax, 1, "heat map", figsize=(8, 4))
    shown = errors[:, kept]
    positive = shown[np.isfinite(shown) & (shown > 0)]
    norm = LogNorm(vmin=positive.min(), vmax=positive.max()) if positive.size and positive.min() < positive.max() else None
    segments = _segments(history, after)
    rows = np.arange(len(kept) + 1) - 0.5
    gaps = np.diff(np.unique(history.steps))
    half_width = float(np.median(gaps)) / 2 if len(gaps) else 0.5
    for i, segment in enumerate(segments):
        edges = _cell_edges(history.steps[segment], i > 0, i < len(segments) - 1, half_width)
        image = heat.pcolormesh(edges, rows, shown[segment].T, norm=norm, cmap="viridis", shading="flat")
    if len(segments) > 1:
        heat.axvline(history.steps[segments[1][0]], color="white", linewidth=2.5)
        heat.axvline(history.steps[segments[1][0]], color="tab:red", linewidth=1.2, linestyle="--",
                   label=f"shrink (step {history.steps[segments[1][0]]})")
        heat.legend(loc="upper left", fontsize="small", framealpha=0.9)
    heat.set_yticks(range(len(names)), names)
    heat.set_xlabel("training step")
    heat.set_ylabel("target frequency (cycles per unit length)" if freqs.ndim == 1 else "target frequency (f_y, f_x)")
    fig.colorbar(image, ax=heat, label="relative error |net - target| / |target|\nof the Fourier coefficient at k")
    bad = sorted(set(history.steps[~history.finite].tolist()))
    what = "relative error of the net's spectrum at each target frequency"
    _suptitle(fig, title, what + (f" (non-finite at steps {bad})" if bad else ""), ax is None)
    return fig


def _map_extent(fy: np.ndarray, fx: np.ndarray) -> tuple[float, float, float, float]:
    """imshow extent whose pixel centres sit on the (shifted) frequencies."""
    dy, dx = fy[1] - fy[0], fx[1] - fx[0]
    return fx[0] - dx / 2, fx[-1] + dx / 2, fy[0] - dy / 2, fy[-1] + dy / 2


def spectra_2d(history: SpectrumHistory, before: str = "before shrink", after: str = "after shrink", *,
               ax: Any = None, normalise: Normalise = "both", cutoff: float | None = None,
               title: str | None = None) -> Any:
    """2D power spectra of two labelled records side by side, with radial profiles.

    Parameters
    ----------
    history : SpectrumHistory
        A 2D history with records labelled ``before`` and ``after``.
    before, after : str
        Labels of the two records.
    ax : sequence of Axes, optional
        Where to draw: three Axes (before, after, radial profiles) for
        ``normalise=True`` or False, six (raw row, then normalised row) for
        "both"; a new figure when None.
    normalise : True, False or "both", default "both"
        False draws power; True draws each record's power as a share of its
        non-DC power (unchanged by a uniform change of level); "both" draws a
        raw row above a normalised row.
    cutoff : float, optional
        High-frequency cutoff (cycles per unit length): a dashed circle on the
        maps and a dashed line on the radial profiles.
    title : str, optional
        What the figure shows, e.g. ``"2d-tanh, seed 0"``; the title starts with it.

    Returns
    -------
    matplotlib.figure.Figure
        Per row: log power before, log power after (zero frequency at the
        centre, one colour scale), and the radial profiles of both.

    Raises
    ------
    TypeError
        If ``history`` is not a SpectrumHistory.
    ValueError
        If ``history`` is empty or 1D, a label names no record, ``ax`` holds
        the wrong number of Axes, or ``normalise`` or ``cutoff`` is invalid.

    Notes
    -----
    Radial profiles sum the power over rings of ``|f|`` (see
    :meth:`SpectrumHistory.radial`; integer radii on a unit square). Rings
    beyond the smallest Nyquist frequency of the two axes only hold the
    grid's corners (a 32 x 32 grid has rings up to 23 but complete rings only
    up to 16): that region is shaded. On a rectangle the maps are stretched
    to fill their panels, each axis in cycles per unit length.
    Values below the display floor (the peak times ``1e-15``) are
    drawn on the floor, a labelled line, so no curve ends unexplained.

    With a separable window (the outer product of 1D windows, as
    :func:`spectral.spectrum` uses), a smooth non-periodic trend, such as the
    near-linear function of a shrunk net, leaks along the axes only: a "+"
    through the centre, a few bins wide. The figure says so under the maps.
    The maps show what the high-frequency fraction measured (same window); a
    radial window would draw a different spectrum than the one tested.

    Examples
    --------
    >>> import numpy as np
    >>> from spectral import Grid, SpectrumProbe, plot
    >>> wave = lambda x: np.sin(2 * np.pi * (3 * x[:, 0] + 2 * x[:, 1]))
    >>> probe = SpectrumProbe(Grid.uniform((16, 16)), window="hann")
    >>> probe.snapshot(lambda x: wave(x) + 0.1 * np.sin(2 * np.pi * 7 * x[:, 1]), "before shrink")
    >>> probe.snapshot(lambda x: 0.2 * wave(x) + 0.3 * x[:, 0], "after shrink")
    >>> fig = plot.spectra_2d(probe.history, cutoff=5, title="demo, seed 0")
    >>> len(fig.axes)  # two rows of three panels, and a colour bar per row
    8
    """
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Circle

    history = check_history(history, SpectrumHistory, 2, "before_after")
    panels = _check_normalise(normalise)
    cutoff = _check_cutoff(cutoff)
    rows = _rows(history, before, after)
    fig, axes = subplots(ax, 3 * len(panels), "before, after, radial profiles" + (" per row: raw, normalised"
                                                                                  if len(panels) == 2 else ""),
                      figsize=(14, 4.2 * len(panels)))
    magnitude = magnitude_of(history.freqs)
    fy, fx = (np.fft.fftshift(f) for f in history.freqs)
    extent = _map_extent(fy, fx)
    radii, radial = history.radial()
    names = [_record_name(history, row) for row in rows]
    lengths = per_axis(history.extent, 2)
    nyquist = min(n // 2 / length for n, length in zip(history.shape, lengths))  # rings complete up to here
    for p, normalised in enumerate(panels):
        maps, profiles = axes[3 * p:3 * p + 2], axes[3 * p + 2]
        quantity = SHARE_LABEL if normalised else RAW_LABEL[2]
        powers = [_share(history.power[row], magnitude) if normalised else history.power[row] for row in rows]
        shifted = [np.fft.fftshift(power) for power in powers]
        positive = np.concatenate([s[np.isfinite(s) & (s > 0)] for s in shifted])
        norm = LogNorm(vmin=max(positive.min(), positive.max() * 1e-12), vmax=positive.max()) if positive.size else None
        floor = norm.vmin if norm is not None else 1.0
        for map_ax, power, name in zip(maps, shifted, names):
            image = map_ax.imshow(np.maximum(power, floor), origin="lower", extent=extent, norm=norm, cmap="magma",
                                  aspect="equal" if lengths[0] == lengths[1] else "auto")
            map_ax.set_title(f"{name}, {'normalised' if normalised else 'raw'}")
            map_ax.set_xlabel("f_x (cycles per unit length)")
            map_ax.set_ylabel("f_y (cycles per unit length)")
            if cutoff is not None:
                map_ax.add_patch(Circle((0, 0), cutoff, fill=False, **CUTOFF_STYLE, label=f"HF cutoff |f| = {cutoff:g}"))
                map_ax.legend(loc="upper right", fontsize="x-small")
        fig.colorbar(image, ax=list(maps), label=quantity + " per bin (floor: peak x 1e-12)")
        ring_values = [_share(radial[row], radii) if normalised else radial[row] for row in rows]
        log_curves(profiles, radii, ring_values, names)
        _cutoff_line(profiles, cutoff)
        if radii[-1] > nyquist:
            profiles.axvspan(nyquist, radii[-1], color="grey", alpha=0.15,
                             label=f"|f| > Nyquist {nyquist:g}: incomplete rings (grid corners)")
        profiles.set_xlabel("radius |f| (cycles per unit length)")
        profiles.set_ylabel(f"{quantity} in ring")
        profiles.set_title("radial profile, " + ("normalised" if normalised else "raw"))
        profiles.legend(fontsize="x-small")
        flag_nonfinite(profiles, history, rows)
    note = "" if history.window is None else (
        f"\nseparable {history.window} window: a smooth non-periodic trend (such as a near-linear net after a shrink)"
        "\nleaks along the axes as a '+' through the centre; that cross is leakage, not learned structure")
    _suptitle(fig, title, " vs ".join(names) + _window_note(history) + note, ax is None)
    return fig


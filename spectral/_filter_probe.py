"""FilterProbe: the F-Principle's filtering method, low- and high-frequency errors at the training inputs."""

from __future__ import annotations

import functools
import numbers
import warnings
from typing import Any, Callable, NamedTuple

import numpy as np
import torch

from ._evaluate import DEFAULT_BATCH_SIZE
from ._plotting import check_history, figure_axes
from ._protocol import Probe, ratio
from ._samples import (
    SampleEvaluator,
    SampleHistory,
    as_columns,
    as_inputs,
    as_target,
    renamed_keywords,
    root_mean_square,
    supports_float64,
)
from ._validation import positive_finite, positive_int

#: Filter widths accepted, in input units: beyond them ``delta**2`` or ``1 / delta**2`` leaves float32's range
#: (rescale the inputs to filter at other widths).
WIDTH_RANGE = (1e-15, 1e15)
#: Largest ``(rows, N)`` kernel block formed at once when ``chunk_elements`` is not given.
DEFAULT_CHUNK_ELEMENTS = 1 << 24
#: A part of the target whose RMS is at most this many machine epsilons (of the filter's precision) times the
#: target's RMS is round-off (measured: about one epsilon for a constant target): its error is undefined.
ROUND_OFF_EPSILONS = 64


def check_widths(widths: Any, name: str = "widths") -> tuple[float, ...]:
    """Filter widths as floats: one positive number or a non-empty sequence of them, each in :data:`WIDTH_RANGE`.

    Examples
    --------
    >>> from spectral._filter_probe import check_widths
    >>> check_widths([0.5, 2])
    (0.5, 2.0)
    """
    if isinstance(widths, numbers.Real) and not isinstance(widths, bool):
        widths = [widths]
    try:
        values = list(widths)
    except TypeError:
        raise TypeError(f"{name} must be a positive number or a sequence of them, got {widths!r}") from None
    if not values:
        raise ValueError(f"{name} is empty")
    checked = tuple(positive_finite(w, name) for w in values)
    low, high = WIDTH_RANGE
    outside = [w for w in checked if not low <= w <= high]
    if outside:
        raise ValueError(f"{name} must lie in [{low:g}, {high:g}] (input units), got {outside}; beyond that the "
                         "Gaussian's exponent leaves float32's range: rescale the inputs instead")
    return checked


def _rows_per_block(count: int, chunk_elements: int | None) -> int:
    """Kernel rows per block: ``chunk_elements // count``, at least one, at most ``count``."""
    elements = DEFAULT_CHUNK_ELEMENTS if chunk_elements is None else positive_int(chunk_elements, "chunk_elements")
    return max(1, min(count, elements // count))


def _filter_dtype(dtype: torch.dtype, device: torch.device) -> torch.dtype:
    """float64 for float64 inputs on a device that has it, else float32 (never half precision)."""
    return torch.float64 if dtype == torch.float64 and supports_float64(device) else torch.float32


def _centred(points: torch.Tensor) -> torch.Tensor:
    """``points`` minus their mean (small coordinates keep ``|a|^2 + |b|^2 - 2ab`` accurate), in their precision.

    Refuses points whose squared distances would overflow that precision.
    """
    centred = points - points.to(torch.float64).mean(0).to(points.dtype)
    if not torch.isfinite(4 * centred.square().sum(1).max()):
        raise ValueError(f"inputs are too large: their squared distances overflow {points.dtype}; rescale them "
                         "(the widths scale with them)")
    return centred


def _smooth(points: torch.Tensor, values: torch.Tensor, widths: tuple[float, ...], rows: int) -> torch.Tensor:
    """``(W, N, B)`` Gaussian-weighted means of the ``B`` columns of ``values`` around every point.

    The ``(rows, N)`` block of squared distances is formed once per block and
    reused for every width, so memory stays ``O(rows * N)``.
    """
    count = points.shape[0]
    squares = points.square().sum(1)
    low = values.new_empty(len(widths), count, values.shape[1])
    for start in range(0, count, rows):
        stop = min(start + rows, count)
        block = torch.addmm(squares[None, :], points[start:stop], points.T, alpha=-2.0)
        block.add_(squares[start:stop, None]).clamp_min_(0.0)
        # Each point is at distance exactly 0 from itself: keeps the normaliser >= 1 for any width.
        diagonal = torch.arange(stop - start, device=points.device)
        block[diagonal, diagonal + start] = 0.0
        kernel = torch.empty_like(block)
        for w, width in enumerate(widths):
            torch.mul(block, -0.5 / width**2, out=kernel).exp_()
            low[w, start:stop] = (kernel @ values) / kernel.sum(1, keepdim=True)
    return low


def _split(points: torch.Tensor, outputs: torch.Tensor, target: torch.Tensor, widths: tuple[float, ...],
           rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W, N, C)`` low-pass parts of the residual ``outputs - target`` and of the target, in one pass."""
    low = _smooth(points, torch.cat([outputs, target], dim=1), widths, rows)
    low_target = low[..., target.shape[1]:]
    return low[..., :target.shape[1]] - low_target, low_target


def _target_parts(target: torch.Tensor, low_target: torch.Tensor, widths: tuple[float, ...],
                  stacklevel: int) -> tuple[np.ndarray, np.ndarray]:
    """RMS of the target's low- and high-pass parts per width; 0 (with a warning) where a part is round-off.

    ``stacklevel`` counts from this function to the user's call, for the warning.
    """
    floor = ROUND_OFF_EPSILONS * torch.finfo(target.dtype).eps * root_mean_square(target[None])[0]
    parts = {"low": root_mean_square(low_target), "high": root_mean_square(target - low_target)}
    for name, part in parts.items():
        lost = part <= floor
        if lost.any():
            warnings.warn(f"the target has no {name}-pass part beyond round-off at widths "
                          f"{np.asarray(widths)[lost].tolist()}: its {name}-frequency error is undefined (NaN)",
                          UserWarning, stacklevel=stacklevel)
        parts[name] = np.where(lost, 0.0, part)
    return parts["low"], parts["high"]


def low_pass(inputs: Any, values: Any, widths: Any, *, chunk_elements: int | None = None) -> Any:
    """Gaussian low-pass part of a function known at scattered samples.

    ``low(x_i) = sum_j G(x_i - x_j) g(x_j) / sum_j G(x_i - x_j)`` with
    ``G(x) = exp(-|x|^2 / (2 delta^2))``; the high-pass part is ``g - low``.

    Parameters
    ----------
    inputs : array_like or torch.Tensor, shape (N,) or (N, d)
        Sample positions, any dimension ``d``.
    values : array_like or torch.Tensor, shape (N,) or (N, C)
        The function at the samples.
    widths : float or sequence of float
        Filter widths ``delta``, in the units of ``inputs``: the Gaussian's
        standard deviation (Xu et al.'s ``delta`` is its variance, the square
        of ours), each in ``WIDTH_RANGE`` (``1e-15`` to ``1e15``).
    chunk_elements : int, optional
        Largest ``(rows, N)`` block of the kernel formed at once; memory is
        ``O(chunk_elements)``, at least one row. Default ``2**24``.

    Returns
    -------
    ndarray or torch.Tensor, shape (W, N) or (W, N, C)
        One low-pass part per width, in the precision of ``inputs`` (float32
        for float32 or half-precision inputs, float64 for float64 ones; float32
        on a device without float64, such as MPS), on ``values``' device when
        it is a tensor (then a tensor).

    Raises
    ------
    TypeError, ValueError
        Naming the parameter: shapes that disagree, NaN or inf, widths that are
        not positive or lie outside ``WIDTH_RANGE``, inputs whose squared
        distances overflow their precision.

    Notes
    -----
    On dense uniform 1D samples away from the ends of the domain, the
    low-pass part of ``sin(2 pi k x)`` is ``exp(-2 pi^2 delta^2 k^2)`` times
    the sinusoid: the Fourier transform of the normalised Gaussian. The
    filter is linear and keeps constants, but it is not a projection:
    ``low(low(g)) != low(g)``, and ``|low(g)|^2 + |g - low(g)|^2`` is not
    ``|g|^2`` in general.

    Examples
    --------
    >>> import numpy as np
    >>> from spectral import low_pass
    >>> x = np.arange(4000) / 1000.0                  # [0, 4), 1000 samples per unit length
    >>> low = low_pass(x, np.sin(2 * np.pi * 2 * x), 0.05)[0]
    >>> middle = slice(1000, 3000)                    # one unit length from either end
    >>> wave = np.sin(2 * np.pi * 2 * x[middle])
    >>> kept = low[middle] @ wave / (wave @ wave)
    >>> round(float(kept), 4), round(float(np.exp(-2 * np.pi**2 * 0.05**2 * 2**2)), 4)
    (0.8209, 0.8209)
    """
    tensor = isinstance(values, torch.Tensor)
    device = values.device if tensor else torch.device("cpu")
    points = as_inputs(inputs)
    columns = as_columns(values, points.shape[0], "values")
    if not torch.isfinite(columns).all():
        raise ValueError("values has NaN or inf values")
    dtype = _filter_dtype(points.dtype, device)
    points = _centred(points.to(dtype)).to(device)
    low = _smooth(points, columns.to(device=device, dtype=dtype), check_widths(widths),
                  _rows_per_block(points.shape[0], chunk_elements))
    low = low[..., 0] if (values.ndim if tensor else np.ndim(values)) == 1 else low
    return low if tensor else low.cpu().numpy()


class FilterErrors(NamedTuple):
    """The filtering method's relative errors per width, returned by :func:`filter_error`."""

    #: ``(W,)`` ``|low(h) - low(y)| / |low(y)|``.
    low: np.ndarray
    #: ``(W,)`` ``|high(h) - high(y)| / |high(y)|``.
    high: np.ndarray


def filter_error(inputs: Any, outputs: Any, target: Any, widths: Any, *,
                 chunk_elements: int | None = None) -> FilterErrors:
    """The filtering method's low- and high-frequency relative errors of a fit at its inputs.

    Splits the target ``y``, the fit ``h`` and the residual ``h - y`` with the
    Gaussian low-pass :func:`low_pass` (``high = g - low(g)``) and compares the
    parts: ``e_low = |low(h) - low(y)| / |low(y)|`` and
    ``e_high = |high(h) - high(y)| / |high(y)|``, norms over every sample and
    output. :class:`FilterProbe` records the same numbers over training.

    Parameters
    ----------
    inputs : array_like or torch.Tensor, shape (N,) or (N, d)
        Sample positions (images flattened); their precision is the filter's,
        as in :func:`low_pass`.
    outputs : array_like or torch.Tensor, shape (N,) or (N, C)
        The fit ``h`` at the inputs, the shape of ``target``.
    target : array_like or torch.Tensor, shape (N,) or (N, C)
        The target ``y`` at the inputs, e.g. one-hot labels.
    widths : float or sequence of float
        Filter widths ``delta``: the Gaussian's standard deviation in input
        units (Xu et al.'s ``delta`` is its variance), as in :func:`low_pass`.
    chunk_elements : int, optional
        Largest kernel block formed at once, as in :func:`low_pass`.

    Returns
    -------
    FilterErrors
        ``(low, high)``, each ``(W,)`` float64. NaN where the outputs hold NaN
        or inf, and where the target's part is undefined: zero, or no larger
        than round-off (``ROUND_OFF_EPSILONS`` epsilons of the filter's
        precision times the target's RMS), e.g. the high part of a constant
        target; a ``UserWarning`` says which.

    Raises
    ------
    TypeError, ValueError
        As :func:`low_pass`, and for outputs of another shape than ``target``.

    Notes
    -----
    Computed on the CPU; :class:`FilterProbe` computes the same numbers on
    the model's device.

    Examples
    --------
    >>> import numpy as np
    >>> from spectral import filter_error
    >>> x = np.linspace(0, 1, 200)
    >>> y = np.sin(2 * np.pi * x) + 0.2 * np.sin(2 * np.pi * 20 * x)
    >>> errors = filter_error(x, np.sin(2 * np.pi * x), y, 0.05)   # learned the slow part only
    >>> bool(errors.low[0] < 0.1 < 0.9 < errors.high[0])
    True
    """
    points = as_inputs(inputs)
    values = as_target(target, points.shape[0])
    fit = as_columns(outputs, points.shape[0], "outputs")
    if fit.shape != values.shape:
        raise ValueError(f"outputs must have the shape of target, {tuple(values.shape)}, got {tuple(fit.shape)}")
    widths = check_widths(widths)
    rows = _rows_per_block(points.shape[0], chunk_elements)
    if not torch.isfinite(fit).all():
        return FilterErrors(np.full(len(widths), np.nan), np.full(len(widths), np.nan))
    dtype = _filter_dtype(points.dtype, points.device)
    values, fit = values.to(dtype), fit.to(dtype)
    residual_low, low_target = _split(_centred(points.to(dtype)), fit, values, widths, rows)
    target_low, target_high = _target_parts(values, low_target, widths, stacklevel=3)
    return FilterErrors(ratio(root_mean_square(residual_low), target_low),
                        ratio(root_mean_square((fit - values) - residual_low), target_high))


def _target_part(values: Any, widths: tuple[float, ...], name: str) -> np.ndarray:
    """A target part's ``(W,)`` RMS values: all NaN (nothing recorded yet) or finite and >= 0 (0: undefined)."""
    array = np.asarray(values)
    if array.dtype.kind != "f" or array.shape != (len(widths),):
        raise ValueError(f"{name} must be {len(widths)} floats, got shape {array.shape} and dtype {array.dtype}")
    if not (np.isnan(array).all() or (np.isfinite(array).all() and (array >= 0).all())):
        raise ValueError(f"{name} must be RMS values (finite and >= 0) or all NaN, got {array.tolist()}")
    return array.astype(np.float64)


class FilterHistory(SampleHistory):
    """Low- and high-frequency errors over training, one row per record, one column per width.

    Built by :class:`FilterProbe`; read back with :meth:`load`, which checks a
    file with the probe's rules (widths, RMS values).

    Parameters
    ----------
    widths : float or sequence of float
        Filter widths ``delta`` (standard deviations, input units).

    Attributes
    ----------
    widths : ndarray
        ``(W,)`` filter widths ``delta``.
    target_low, target_high : ndarray
        ``(W,)`` RMS of the low- and high-pass parts of the target: NaN before
        the first record, 0 where the part is zero or round-off (then its
        error is undefined: NaN).
    """

    FORMAT = "spectral.FilterHistory"
    SCHEMA_VERSION = 2  # version 2: labels
    READS_SCHEMA_VERSIONS = (2,)

    def __init__(self, widths: Any) -> None:
        self.widths = np.asarray(check_widths(widths), dtype=np.float64)
        self.target_low = np.full(len(self.widths), np.nan)
        self.target_high = np.full(len(self.widths), np.nan)
        super().__init__()

    def _set_target_parts(self, low: Any, high: Any) -> None:
        """Set :attr:`target_low` and :attr:`target_high`, checked (by the probe and by :meth:`load`)."""
        widths = tuple(self.widths)
        self.target_low = _target_part(low, widths, "target_low")
        self.target_high = _target_part(high, widths, "target_high")

    def _layout(self) -> dict[str, tuple[tuple[int, ...], type]]:
        return {key: ((len(self.widths),), np.float64) for key in ("residual_low", "residual_high")}

    def _configuration(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {"widths": self.widths, "target_low": self.target_low, "target_high": self.target_high}

    @classmethod
    def _from_configuration(cls, metadata: dict[str, Any], arrays: dict[str, np.ndarray]) -> FilterHistory:
        history = cls(arrays["widths"])
        history._set_target_parts(arrays["target_low"], arrays["target_high"])
        return history

    def _check_loaded(self, records: int) -> None:
        if records and np.isnan(self.target_low).any():
            raise ValueError("a history with records must have the target's parts (target_low, target_high)")

    @property
    def residual_low(self) -> np.ndarray:
        """``(R, W)`` RMS of the low-pass part of the residual ``outputs - target``."""
        return self._array("residual_low")

    @property
    def residual_high(self) -> np.ndarray:
        """``(R, W)`` RMS of the high-pass part of the residual."""
        return self._array("residual_high")

    def low_error(self) -> np.ndarray:
        """``(R, W)`` relative error of the low-pass part: ``|low(h) - low(y)| / |low(y)|`` (NaN where undefined)."""
        return ratio(self.residual_low, self.target_low)

    def high_error(self) -> np.ndarray:
        """``(R, W)`` relative error of the high-pass part: ``|high(h) - high(y)| / |high(y)|`` (NaN where undefined).

        Undefined where the target's high-pass part is zero or round-off, e.g.
        for a constant target (``target_high`` is 0 there).
        """
        return ratio(self.residual_high, self.target_high)


class FilterProbe(Probe):
    """Records the F-Principle's low- and high-frequency errors of a model at its training inputs.

    The filtering method of Xu et al.: a Gaussian low-pass over the inputs
    (:func:`low_pass`) splits the target ``y``, the outputs ``h`` and the
    residual ``h - y`` into low- and high-frequency parts, and the relative
    errors ``e_low = |low(h) - low(y)| / |low(y)|`` and
    ``e_high = |high(h) - high(y)| / |high(y)|`` (norms over every sample and
    output; :func:`filter_error` for one fit) say which part the model has
    learned. Works for any input dimension; the ``N x N`` kernel is never
    held, only ``chunk_elements`` entries of it. A
    :class:`~spectral._protocol.Probe`: :meth:`update`, :meth:`snapshot`,
    :meth:`reset`, ``history``.

    Parameters
    ----------
    inputs : array_like or torch.Tensor, shape (N,) or (N, d)
        Training inputs (images flattened). Their precision is the filter's:
        float64 for float64 inputs, else float32 (half precision is filtered
        in float32); float32 on a device without float64 (MPS).
    target : array_like or torch.Tensor, shape (N,) or (N, C)
        Training targets, e.g. one-hot labels; the model must return ``(N,)``
        values for one column or ``(N, C)``. (Called ``targets`` before.)
    widths : float or sequence of float
        Filter widths ``delta`` of ``G(x) = exp(-|x|^2 / (2 delta^2))``: the
        Gaussian's standard deviation, in input units, each in
        ``WIDTH_RANGE`` (``1e-15`` to ``1e15``). A wider filter keeps fewer
        frequencies in the low part.
    every : int, default 1
        :meth:`update` records when ``step % every == 0``. Keyword-only.
    chunk_elements : int, optional
        Largest ``(rows, N)`` block of the kernel formed at once (memory
        ``O(chunk_elements)``, at least one row). Default ``2**24``.
    batch_size : int, default 16384
        Inputs per forward pass.

    Notes
    -----
    Each record costs one ``N x N x d`` product (the distances, recomputed
    in blocks) plus ``W`` kernel passes, on the model's device: the inputs
    are moved there once. Xu et al. write the kernel as
    ``exp(-|x|^2 / (2 delta))``; their ``delta`` is the square of ours.
    Models are evaluated as in :class:`SpectrumProbe`; ``C`` outputs take
    ``C`` evaluations. Outputs with NaN or inf are recorded as NaN with
    ``history.finite`` False. Where the target's low- or high-pass part is
    zero or round-off (a constant target has no high-pass part), that error
    is undefined: the history's ``target_low`` / ``target_high`` is 0 there,
    the error NaN, and the first record warns (``UserWarning``).

    References
    ----------
    Xu, Zhang, Luo, Xiao, Ma, "Frequency Principle: Fourier Analysis Sheds
    Light on Deep Neural Networks", Commun. Comput. Phys. 28 (2020).

    Examples
    --------
    >>> import numpy as np
    >>> from spectral import FilterProbe
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(500, 10))
    >>> y = np.sin(x[:, 0]) + 0.1 * np.sin(8 * x[:, 1])
    >>> probe = FilterProbe(x, y, widths=[0.5, 1.0, 2.0], every=10)
    >>> probe.update(lambda p: np.sin(p[:, 0]), step=0)   # learned the slow part only
    True
    >>> bool(np.all(probe.history.low_error() < probe.history.high_error()))
    True
    """

    @renamed_keywords(targets="target", chunk_size="chunk_elements")
    def __init__(self, inputs: Any, target: Any, widths: Any, *, every: int = 1, chunk_elements: int | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.inputs = as_inputs(inputs)
        self.target = as_target(target, self.inputs.shape[0])
        self.widths = check_widths(widths)
        self._rows = _rows_per_block(self.inputs.shape[0], chunk_elements)
        self.chunk_elements = self._rows * self.inputs.shape[0]
        self._evaluator = SampleEvaluator(self.inputs, self.target.shape[1], batch_size)
        self._centred = _centred(self.inputs)  # once: distances do not change
        self._on_device: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        super().__init__(FilterHistory(self.widths), every)

    def update(self, model: Callable[..., Any], step: int) -> bool:
        """Record the errors if ``step % every == 0``; return whether it did."""
        return self._update(step, functools.partial(self._record, model))

    def snapshot(self, model: Callable[..., Any], label: str, step: int | None = None) -> None:
        """Always record, with a ``label``; ``step`` defaults to the last step passed to :meth:`update` (0 before any)."""
        self._snapshot(label, step, functools.partial(self._record, model))

    def _placed(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._on_device:
            dtype = _filter_dtype(self._centred.dtype, device)
            self._on_device[device] = (self._centred.to(device=device, dtype=dtype),
                                       self.target.to(device=device, dtype=dtype))
        return self._on_device[device]

    def _record(self, model: Callable[..., Any], step: int, label: str) -> None:
        outputs = self._evaluator(model)
        points, target = self._placed(outputs.device)
        finite = bool(torch.isfinite(outputs).all())
        outputs = outputs.to(points.dtype) if finite else torch.zeros_like(target)
        residual_low, low_target = _split(points, outputs, target, self.widths, self._rows)
        if np.isnan(self.history.target_low).all():
            # Warned at the caller of update or snapshot: _record <- Probe._update/_snapshot <- update/snapshot.
            self.history._set_target_parts(*_target_parts(target, low_target, self.widths, stacklevel=5))
        if finite:
            self.history.append(step, label, True, residual_low=root_mean_square(residual_low),
                                residual_high=root_mean_square((outputs - target) - residual_low))
        else:
            self.history.append_filled(step, label, False, np.nan)


def plot_filter_history(history: FilterHistory, *, ax: Any = None) -> tuple[Any, Any]:
    """Low- (solid) and high-frequency (dashed) relative errors against step, one colour per width.

    Parameters
    ----------
    history : FilterHistory
        A non-empty history.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when None.

    Returns
    -------
    (matplotlib.figure.Figure, matplotlib.axes.Axes)

    Examples
    --------
    >>> import numpy as np
    >>> from spectral import FilterProbe
    >>> from spectral._filter_probe import plot_filter_history
    >>> x = np.linspace(-1, 1, 200)
    >>> probe = FilterProbe(x, np.sin(6 * x), widths=[0.05, 0.2])
    >>> for step in range(3):
    ...     _ = probe.update(lambda p, s=step: s / 2 * np.sin(6 * p[:, 0]), step)
    >>> fig, ax = plot_filter_history(probe.history)
    """
    check_history(history, FilterHistory)
    fig, ax = figure_axes(ax, figsize=(6, 4))
    colours = [f"C{i % 10}" for i in range(len(history.widths))]
    low, high = history.low_error(), history.high_error()
    for w, (width, colour) in enumerate(zip(history.widths, colours)):
        ax.plot(history.steps, low[:, w], color=colour, label=f"low, delta={width:.3g}")
        ax.plot(history.steps, high[:, w], color=colour, linestyle="--", label=f"high, delta={width:.3g}")
    ax.set_xlabel("step")
    ax.set_ylabel("relative error")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small")
    return fig, ax



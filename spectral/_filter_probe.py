"""FilterProbe: the F-Principle's filtering method, low- and high-frequency errors at the training inputs."""

from __future__ import annotations

import functools
import numbers
from typing import Any, Callable

import numpy as np
import torch

from ._evaluate import DEFAULT_BATCH_SIZE
from ._plotting import check_history, figure_axes
from ._protocol import History, Probe, ratio
from ._samples import SampleEvaluator, as_inputs, as_targets, root_mean_square
from ._validation import positive_finite, positive_int

#: Largest ``(rows, N)`` kernel block formed at once when ``chunk_size`` is not given (elements).
DEFAULT_BLOCK_ELEMENTS = 1 << 24


def _widths(widths: Any) -> tuple[float, ...]:
    if isinstance(widths, numbers.Real) and not isinstance(widths, bool):
        widths = [widths]
    try:
        values = list(widths)
    except TypeError:
        raise TypeError(f"widths must be a positive number or a sequence of them, got {widths!r}") from None
    if not values:
        raise ValueError("widths is empty")
    return tuple(positive_finite(w, "widths") for w in values)


def _rows_per_block(count: int, chunk_size: int | None) -> int:
    if chunk_size is not None:
        return min(count, positive_int(chunk_size, "chunk_size"))
    return max(1, min(count, DEFAULT_BLOCK_ELEMENTS // count))


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


def low_pass(inputs: Any, values: Any, widths: Any, *, chunk_size: int | None = None) -> Any:
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
        Filter widths ``delta``, in the units of ``inputs``.
    chunk_size : int, optional
        Rows of the ``(N, N)`` kernel formed at once; memory is
        ``O(chunk_size * N)``. Default: ``2**24 // N`` rows.

    Returns
    -------
    ndarray or torch.Tensor, shape (W, N) or (W, N, C)
        One low-pass part per width, in the precision of ``inputs`` (float32
        or float64), on ``values``' device when it is a tensor (then a tensor).

    Notes
    -----
    On dense uniform 1D samples away from the ends of the domain, the
    low-pass part of ``sin(2 pi k x)`` is ``exp(-2 pi^2 delta^2 k^2)`` times
    the sinusoid: the Fourier transform of the normalised Gaussian.

    Examples
    --------
    >>> import numpy as np
    >>> from spectral._filter_probe import low_pass
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
    columns = as_targets(values, points.shape[0]).to(device=device, dtype=points.dtype)
    points = points.to(device)
    low = _smooth(points - points.mean(0), columns, _widths(widths), _rows_per_block(points.shape[0], chunk_size))
    low = low[..., 0] if (values.ndim if tensor else np.ndim(values)) == 1 else low
    return low if tensor else low.cpu().numpy()


class FilterHistory(History):
    """Low- and high-frequency errors over training, one row per record, one column per width.

    Built by :class:`FilterProbe`; read back with :meth:`load`.

    Attributes
    ----------
    widths : ndarray
        ``(W,)`` filter widths ``delta``.
    target_low, target_high : ndarray
        ``(W,)`` RMS of the low- and high-pass parts of the targets (NaN
        before the first record).
    """

    FORMAT = "spectral.FilterHistory"
    SCHEMA_VERSION = 2  # version 2: labels
    READS_SCHEMA_VERSIONS = (2,)

    def __init__(self, widths: Any) -> None:
        self.widths = np.asarray(_widths(list(np.asarray(widths, dtype=np.float64))), dtype=np.float64)
        self.target_low = np.full(len(self.widths), np.nan)
        self.target_high = np.full(len(self.widths), np.nan)
        super().__init__()

    def _layout(self) -> dict[str, tuple[tuple[int, ...], type]]:
        return {key: ((len(self.widths),), np.float64) for key in ("residual_low", "residual_high")}

    def _configuration(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {"widths": self.widths, "target_low": self.target_low, "target_high": self.target_high}

    @classmethod
    def _from_configuration(cls, metadata: dict[str, Any], arrays: dict[str, np.ndarray]) -> FilterHistory:
        history = cls(arrays["widths"])
        for key in ("target_low", "target_high"):
            if arrays[key].shape != history.widths.shape or arrays[key].dtype.kind != "f":
                raise ValueError(f"array {key!r} has shape {arrays[key].shape}, expected {history.widths.shape}")
            setattr(history, key, arrays[key])
        return history

    @property
    def residual_low(self) -> np.ndarray:
        """``(R, W)`` RMS of the low-pass part of the residual ``outputs - targets``."""
        return self._array("residual_low")

    @property
    def residual_high(self) -> np.ndarray:
        """``(R, W)`` RMS of the high-pass part of the residual."""
        return self._array("residual_high")

    @property
    def low_error(self) -> np.ndarray:
        """``(R, W)`` relative error of the low-pass part: ``|low(h) - low(y)| / |low(y)|``."""
        return ratio(self.residual_low, self.target_low)

    @property
    def high_error(self) -> np.ndarray:
        """``(R, W)`` relative error of the high-pass part: ``|high(h) - high(y)| / |high(y)|`` (NaN if high(y) = 0)."""
        return ratio(self.residual_high, self.target_high)


class FilterProbe(Probe):
    """Records the F-Principle's low- and high-frequency errors of a model at its training inputs.

    The filtering method of Xu et al.: a Gaussian low-pass over the inputs
    splits the targets ``y``, the outputs ``h`` and the residual ``h - y``
    into low- and high-frequency parts, and the relative errors
    ``e_low = |low(h) - low(y)| / |low(y)|`` and
    ``e_high = |high(h) - high(y)| / |high(y)|`` (norms over every sample and
    output) say which part the model has learned. Works for any input
    dimension; the ``N x N`` kernel is never held, only ``chunk_size`` rows of it.
    A :class:`~spectral._protocol.Probe`: :meth:`update`, :meth:`snapshot`,
    :meth:`reset`, ``history``.

    Parameters
    ----------
    inputs : array_like or torch.Tensor, shape (N,) or (N, d)
        Training inputs (images flattened). Their precision (float32 or
        float64) is the precision of the filter.
    targets : array_like or torch.Tensor, shape (N,) or (N, C)
        Training targets, e.g. one-hot labels; the model must return ``(N,)``
        values for one column or ``(N, C)``.
    widths : float or sequence of float
        Filter widths ``delta`` of ``G(x) = exp(-|x|^2 / (2 delta^2))``, in
        input units. A wider filter keeps fewer frequencies in the low part.
    every : int, default 1
        :meth:`update` records when ``step % every == 0``.
    chunk_size : int, optional
        Kernel rows formed at once (memory ``O(chunk_size * N)``). Default
        ``2**24 // N``.
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
    ``history.finite`` False.

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
    >>> bool(np.all(probe.history.low_error < probe.history.high_error))
    True
    """

    def __init__(self, inputs: Any, targets: Any, widths: Any, every: int = 1, *, chunk_size: int | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.inputs = as_inputs(inputs)
        self.targets = as_targets(targets, self.inputs.shape[0])
        self.widths = _widths(widths)
        self._rows = _rows_per_block(self.inputs.shape[0], chunk_size)
        self._evaluator = SampleEvaluator(self.inputs, self.targets.shape[1], batch_size)
        # Centred once: distances do not change, and small coordinates keep |a|^2 + |b|^2 - 2ab accurate.
        self._centred = self.inputs - self.inputs.to(torch.float64).mean(0).to(self.inputs.dtype)
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
            self._on_device[device] = (self._centred.to(device),
                                       self.targets.to(device=device, dtype=self._centred.dtype))
        return self._on_device[device]

    def _record(self, model: Callable[..., Any], step: int, label: str) -> None:
        outputs = self._evaluator(model)
        points, targets = self._placed(outputs.device)
        finite = bool(torch.isfinite(outputs).all())
        outputs = outputs.to(points.dtype) if finite else torch.zeros_like(targets)
        low = _smooth(points, torch.cat([outputs, targets], dim=1), self.widths, self._rows)
        columns = targets.shape[1]
        low_outputs, low_targets = low[..., :columns], low[..., columns:]
        residual_low = low_outputs - low_targets
        residual_high = (outputs - targets) - residual_low
        if np.isnan(self.history.target_low).all():
            self.history.target_low = root_mean_square(low_targets)
            self.history.target_high = root_mean_square(targets - low_targets)
        if finite:
            self.history.append(step, label, True, residual_low=root_mean_square(residual_low),
                                residual_high=root_mean_square(residual_high))
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
    for w, (width, colour) in enumerate(zip(history.widths, colours)):
        ax.plot(history.steps, history.low_error[:, w], color=colour, label=f"low, delta={width:.3g}")
        ax.plot(history.steps, history.high_error[:, w], color=colour, linestyle="--", label=f"high, delta={width:.3g}")
    ax.set_xlabel("step")
    ax.set_ylabel("relative error")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small")
    return fig, ax



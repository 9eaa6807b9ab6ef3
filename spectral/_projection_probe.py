"""ProjectionProbe: the F-Principle's projection method, a non-uniform DFT along directions of the inputs."""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np
import torch

from ._evaluate import DEFAULT_BATCH_SIZE
from ._plotting import check_history, figure_axes
from ._protocol import Probe, ratio
from ._samples import (
    SampleEvaluator,
    SampleHistory,
    as_float64,
    as_inputs,
    as_target,
    renamed_keywords,
)
from ._validation import integer, positive_int

#: Largest deviation of a given direction's norm from 1.
UNIT_TOLERANCE = 1e-6
#: Elements of the ``(rows, K)`` phase block formed at once when ``chunk_elements`` is not given.
DEFAULT_CHUNK_ELEMENTS = 1 << 20
#: Largest ``|k p|`` (turns) accepted: float64 phases keep about ``1e-16 |k p|`` turns of accuracy, none beyond.
MAX_TURNS = 2.0**52


def fourier_coefficients(positions: torch.Tensor, values: torch.Tensor, freqs: torch.Tensor,
                         chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> torch.Tensor:
    """``(B, K)`` complex128 ``(1/N) sum_j values[j, b] exp(-2 pi i k p_j)`` for real ``k``, block by block.

    ``positions`` ``(N,)``, ``values`` ``(N, B)`` and ``freqs`` ``(K,)``, float64 on one device. Unlike
    :func:`spectral.nudft` the frequencies need not be integers; phases are ``k p`` formed in float64
    and reduced modulo 1 before the ``2 pi``, accurate to about ``1e-16 |k p|`` turns. Blocks of
    ``(rows, K)`` phases hold at most ``chunk_elements`` entries (at least one row).
    """
    rows = max(1, chunk_elements // len(freqs))
    real = values.new_zeros(values.shape[1], len(freqs))
    imag = torch.zeros_like(real)
    for start in range(0, len(positions), rows):
        turns = torch.outer(positions[start : start + rows], freqs)
        phase = turns.sub_(turns.round()).mul_(2 * np.pi)
        weights = values[start : start + rows].T
        real += weights @ torch.cos(phase)
        imag -= weights @ phase.sin_()
    return torch.complex(real, imag) / len(positions)


def _frequencies(freqs: Any) -> np.ndarray:
    try:
        array = np.asarray(freqs)
    except (TypeError, ValueError):  # ragged sequences
        array = np.asarray(None)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"freqs must be real numbers (cycles per unit length), got {freqs!r}")
    array = np.atleast_1d(array.astype(np.float64))
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"freqs must be a non-empty sequence of numbers, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("freqs must be finite")
    return array


def principal_directions(inputs: torch.Tensor, components: int) -> np.ndarray:
    """``(components, d)`` leading principal directions of ``inputs``, each signed so its largest entry is positive.

    Computed in float64 on the CPU from the inputs divided by their largest
    centred coordinate: the directions do not depend on the scale, and the
    covariance cannot overflow (inputs of size ``1e160`` work).
    """
    points = inputs.detach().cpu().to(torch.float64)
    centred = points - points.mean(0)
    if not torch.isfinite(centred).all():  # the mean's sum overflowed: centre the scaled points instead
        points = points / points.abs().max()
        centred = points - points.mean(0)
    largest = centred.abs().max()
    centred = centred / largest if largest > 0 else centred
    eigenvalues, eigenvectors = torch.linalg.eigh(centred.T @ centred)
    leading = eigenvectors[:, torch.argsort(eigenvalues, descending=True)[:components]].T.numpy()
    signs = np.sign(leading[np.arange(components), np.abs(leading).argmax(1)])
    return leading * signs[:, None]


def _directions(directions: Any, inputs: torch.Tensor, components: int) -> np.ndarray:
    dimension = inputs.shape[1]
    if isinstance(directions, str):
        if directions != "pca":
            raise ValueError(f"directions={directions!r} is not known; give 'pca' or unit vectors of shape (m, d)")
        if components > dimension:
            raise ValueError(f"components={components} exceeds the input dimension {dimension}")
        return principal_directions(inputs, components)
    try:
        array = np.asarray(directions, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"directions must be 'pca' or an array of unit vectors, got {directions!r}") from None
    return unit_vectors(array[None, :] if array.ndim == 1 else array, dimension)


def unit_vectors(array: np.ndarray, dimension: int | None = None) -> np.ndarray:
    """``array`` itself if it is ``(m, d)`` finite float unit vectors (``d = dimension`` when given); raises otherwise."""
    if array.dtype.kind != "f" or array.ndim != 2 or array.shape[0] == 0 or \
            (dimension is not None and array.shape[1] != dimension):
        raise ValueError(f"directions must have shape (d,) or (m, d) with d = {dimension or 'the input dimension'} "
                         f"and hold floats, got shape {array.shape} and dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError("directions must be finite")
    norms = np.linalg.norm(array, axis=1)
    if np.any(np.abs(norms - 1) > UNIT_TOLERANCE):
        raise ValueError(f"directions must be unit vectors; their norms are {np.round(norms, 8).tolist()}")
    return array.astype(np.float64)


def amplitudes(values: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``values`` as float64 if they have ``shape`` and are finite and >= 0 (amplitudes); raises otherwise."""
    array = np.asarray(values)
    if array.dtype.kind != "f" or array.shape != shape:
        raise ValueError(f"{name} must be floats of shape {shape}, got shape {array.shape} and dtype {array.dtype}")
    if not (np.isfinite(array).all() and (array >= 0).all()):
        raise ValueError(f"{name} must be finite and >= 0 (amplitudes)")
    return array.astype(np.float64)


def _positions(points: torch.Tensor, directions: np.ndarray, freqs: np.ndarray) -> torch.Tensor:
    """``(m, N)`` float64 positions along each direction; refuses phases ``k p`` beyond :data:`MAX_TURNS`."""
    positions = (points.to(torch.float64) @ torch.from_numpy(directions).T).T.contiguous()
    if not torch.isfinite(positions).all():
        raise ValueError("inputs are too large: their positions along the directions overflow float64; rescale them")
    turns = float(positions.abs().max()) * float(np.abs(freqs).max())
    if turns > MAX_TURNS:
        raise ValueError(f"freqs times the inputs' positions reach {turns:.3g} turns; float64 phases are lost beyond "
                         f"{MAX_TURNS:.3g} (2**52): give freqs in cycles per unit length of the inputs' scale, or "
                         "rescale the inputs")
    return positions


class ProjectionHistory(SampleHistory):
    """Amplitudes of the fit and the residual along each direction, one row per record.

    Built by :class:`ProjectionProbe`; read back with :meth:`load`, which checks
    a file with the probe's rules (finite frequencies, finite unit directions,
    amplitudes finite and >= 0).

    Parameters
    ----------
    freqs : array_like, shape (K,)
        Frequencies, cycles per unit length.
    directions : ndarray, shape (m, d)
        Unit directions.
    target_amplitude : ndarray, shape (m, K)
        Amplitudes of the target.

    Attributes
    ----------
    freqs : ndarray
        ``(K,)`` frequencies, cycles per unit length along each direction.
    directions : ndarray
        ``(m, d)`` unit directions.
    target_amplitude : ndarray
        ``(m, K)`` amplitudes of the target.
    """

    FORMAT = "spectral.ProjectionHistory"
    SCHEMA_VERSION = 2  # version 2: labels
    READS_SCHEMA_VERSIONS = (2,)

    def __init__(self, freqs: Any, directions: np.ndarray, target_amplitude: np.ndarray) -> None:
        self.freqs = _frequencies(freqs)
        self.directions = unit_vectors(np.asarray(directions))
        self.target_amplitude = amplitudes(target_amplitude, (len(self.directions), len(self.freqs)),
                                           "target_amplitude")
        super().__init__()

    def _layout(self) -> dict[str, tuple[tuple[int, ...], type]]:
        return {key: (self.target_amplitude.shape, np.float64) for key in ("fit_amplitude", "residual_amplitude")}

    def _configuration(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {"freqs": self.freqs, "directions": self.directions, "target_amplitude": self.target_amplitude}

    @classmethod
    def _from_configuration(cls, metadata: dict[str, Any], arrays: dict[str, np.ndarray]) -> ProjectionHistory:
        if arrays["freqs"].dtype.kind != "f" or arrays["freqs"].ndim != 1:
            raise ValueError(f"array 'freqs' has shape {arrays['freqs'].shape} and dtype {arrays['freqs'].dtype}, "
                             "expected (K,) floats")
        return cls(arrays["freqs"], arrays["directions"], arrays["target_amplitude"])

    @property
    def fit_amplitude(self) -> np.ndarray:
        """``(R, m, K)`` amplitudes of the model's outputs."""
        return self._array("fit_amplitude")

    @property
    def residual_amplitude(self) -> np.ndarray:
        """``(R, m, K)`` amplitudes of ``outputs - target``."""
        return self._array("residual_amplitude")

    def relative_error(self) -> np.ndarray:
        """``(R, m, K)`` ``|F[h - y](k)| / |F[y](k)|`` (NaN where the target has no amplitude)."""
        return ratio(self.residual_amplitude, self.target_amplitude)


class ProjectionProbe(Probe):
    """Records the Fourier transform of a model's fit along directions of its inputs.

    The projection method of Xu et al.: project the training inputs onto a
    unit direction ``v`` (``p_j = x_j . v``), take the non-uniform DFT of the
    fit ``h``, the targets ``y`` and the residual ``h - y`` at the projected
    points, and compare them frequency by frequency. Works for any input
    dimension and any number of outputs. A :class:`~spectral._protocol.Probe`:
    :meth:`update`, :meth:`snapshot`, :meth:`reset`, ``history``.

    Parameters
    ----------
    inputs : array_like or torch.Tensor, shape (N,) or (N, d)
        Training inputs, of any scale (the principal directions are computed
        from the inputs divided by their largest coordinate).
    target : array_like or torch.Tensor, shape (N,) or (N, C)
        Training targets; the model must return ``(N,)`` values for one
        column or ``(N, C)``. (Called ``targets`` before.)
    freqs : array_like of float, shape (K,)
        Frequencies in cycles per unit length along each direction (any real
        values, not only integers). ``|k p|`` must stay below ``2**52`` turns
        for every position ``p`` along a direction: float64 phases carry
        nothing beyond.
    directions : "pca" or array_like, shape (d,) or (m, d), default "pca"
        Unit vectors, or ``"pca"``: the first ``components`` principal
        directions of the inputs (centred), each signed so its largest entry
        is positive.
    every : int, default 1
        :meth:`update` records when ``step % every == 0``. Keyword-only.
    components : int, default 1
        Principal directions used when ``directions="pca"``.
    chunk_elements : int, optional
        Largest ``(rows, K)`` block of phases formed at once (memory
        ``O(chunk_elements)``, at least one row). Default ``2**20``.
    batch_size : int, default 16384
        Inputs per forward pass.

    Notes
    -----
    ``c(k) = (1/N) sum_j g_j exp(-2 pi i k p_j)``, the convention of
    :func:`spectral.nudft`, summed in float64 at the projected points for
    any real ``k``. Amplitudes are ``2 |c(k)|`` (``|c(0)|`` at ``k = 0``), the
    amplitude of a sinusoid of frequency ``k`` along ``v``; with ``C``
    outputs, the root sum of squares over outputs. The relative error is
    ``|c_{h-y}(k)| / |c_y(k)|``. The transform runs in float64 on the model's
    device, or on the CPU for a device without float64 (MPS). Outputs with
    NaN or inf, or so large that their amplitudes overflow, are recorded as
    NaN with ``history.finite`` False.

    References
    ----------
    Xu, Zhang, Luo, Xiao, Ma, "Frequency Principle: Fourier Analysis Sheds
    Light on Deep Neural Networks", Commun. Comput. Phys. 28 (2020).

    Examples
    --------
    >>> import numpy as np
    >>> from spectral import ProjectionProbe
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2000, 5)) * [3, 1, 1, 1, 1]     # the first axis varies most
    >>> y = np.sin(2 * np.pi * 0.2 * x[:, 0])
    >>> probe = ProjectionProbe(x, y, freqs=[0.2, 0.6])
    >>> np.round(np.abs(probe.history.directions[0]), 1)
    array([1., 0., 0., 0., 0.])
    >>> probe.update(lambda p: np.zeros(len(p)), step=0)   # nothing learned: relative error 1
    True
    >>> probe.history.relative_error()[0, 0]
    array([1., 1.])
    """

    @renamed_keywords(targets="target")
    def __init__(self, inputs: Any, target: Any, freqs: Any, directions: Any = "pca", *, every: int = 1,
                 components: int = 1, chunk_elements: int | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        points = as_inputs(inputs)
        self.target = as_target(target, points.shape[0])
        self.freqs = _frequencies(freqs)
        self.directions = _directions(directions, points, positive_int(components, "components"))
        self.chunk_elements = (DEFAULT_CHUNK_ELEMENTS if chunk_elements is None
                               else positive_int(chunk_elements, "chunk_elements"))
        # (m, N) positions along each direction, float64: the phases need the precision.
        self._positions = _positions(points, self.directions, self.freqs)
        self._k = torch.from_numpy(self.freqs)
        self._placed: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self._weights = np.where(self.freqs == 0, 1.0, 2.0)
        self._evaluator = SampleEvaluator(points, self.target.shape[1], batch_size)
        self._target = self._coefficients(self.target)
        target_amplitude = self._amplitude(self._target)
        if not np.isfinite(target_amplitude).all():
            raise ValueError("target is too large: its amplitudes overflow float64; rescale it")
        super().__init__(ProjectionHistory(self.freqs, self.directions, target_amplitude), every)

    def _coefficients(self, values: torch.Tensor) -> torch.Tensor:
        """``(m, C, K)`` coefficients of the float64 ``C`` columns of ``values`` along every direction, on their device."""
        if values.device not in self._placed:
            self._placed[values.device] = (self._positions.to(values.device), self._k.to(values.device))
        positions, k = self._placed[values.device]
        return torch.stack([fourier_coefficients(p, values, k, self.chunk_elements) for p in positions])

    def _amplitude(self, coefficients: torch.Tensor) -> np.ndarray:
        """``(m, K)`` weighted root sum of squares of ``|c|`` over the outputs, scaled so it cannot overflow early."""
        moduli = coefficients.abs()
        scale = moduli.amax(1, keepdim=True)
        scaled = torch.where(scale > 0, moduli / torch.where(scale > 0, scale, 1.0), 0.0)
        with np.errstate(over="ignore", invalid="ignore"):  # inf from huge outputs: flagged by the caller
            return self._weights * (scale[:, 0] * scaled.square().sum(1).sqrt()).cpu().numpy()

    def update(self, model: Callable[..., Any], step: int) -> bool:
        """Record the transforms if ``step % every == 0``; return whether it did."""
        return self._update(step, functools.partial(self._record, model))

    def snapshot(self, model: Callable[..., Any], label: str, step: int | None = None) -> None:
        """Always record, with a ``label``; ``step`` defaults to the last step passed to :meth:`update` (0 before any)."""
        self._snapshot(label, step, functools.partial(self._record, model))

    def _record(self, model: Callable[..., Any], step: int, label: str) -> None:
        outputs = as_float64(self._evaluator(model))  # on the CPU for a device without float64
        amplitude = None
        if bool(torch.isfinite(outputs).all()):
            fit = self._coefficients(outputs)
            amplitude = {"fit_amplitude": self._amplitude(fit),
                         "residual_amplitude": self._amplitude(fit - self._target.to(fit.device))}
        if amplitude is None or not all(np.isfinite(part).all() for part in amplitude.values()):
            self.history.append_filled(step, label, False, np.nan)
        else:
            self.history.append(step, label, True, **amplitude)


def plot_projection_history(history: ProjectionHistory, *, direction: int = 0, ax: Any = None) -> tuple[Any, Any]:
    """Heat map of the relative error per frequency (rows) over the records (columns) along one direction.

    Parameters
    ----------
    history : ProjectionHistory
        A non-empty history.
    direction : int, default 0
        Which direction's errors to draw.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when None.

    Returns
    -------
    (matplotlib.figure.Figure, matplotlib.axes.Axes)

    Examples
    --------
    >>> import numpy as np
    >>> from spectral import ProjectionProbe
    >>> from spectral._projection_probe import plot_projection_history
    >>> x = np.linspace(0, 1, 100, endpoint=False)
    >>> probe = ProjectionProbe(x, np.sin(2 * np.pi * 3 * x), freqs=[1, 2, 3], directions=[1.0])
    >>> _ = probe.update(lambda p: np.zeros(len(p)), 0)
    >>> fig, ax = plot_projection_history(probe.history)
    """
    check_history(history, ProjectionHistory)
    index = integer(direction, "direction")
    if not 0 <= index < len(history.directions):
        raise ValueError(f"direction={direction} is out of range for {len(history.directions)} directions")
    fig, ax = figure_axes(ax, figsize=(7, 4))
    errors = history.relative_error()[:, index, :].T
    image = ax.pcolormesh(np.arange(len(history)), np.arange(len(history.freqs)), errors, cmap="RdBu",
                          vmin=0, vmax=1, shading="nearest")
    ax.set_yticks(np.arange(len(history.freqs)), [f"{k:.3g}" for k in history.freqs])
    ax.set_xlabel(f"record (steps {history.steps[0]} to {history.steps[-1]})")
    ax.set_ylabel("frequency (cycles per unit length)")
    fig.colorbar(image, ax=ax, label="relative error")
    return fig, ax

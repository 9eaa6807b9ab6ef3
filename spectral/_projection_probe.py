"""ProjectionProbe: the F-Principle's projection method, a non-uniform DFT along directions of the inputs."""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np
import torch

from ._evaluate import DEFAULT_BATCH_SIZE
from ._plotting import check_history, figure_axes
from ._protocol import History, Probe, ratio
from ._samples import SampleEvaluator, as_inputs, as_targets
from ._validation import integer, positive_int

#: Largest deviation of a given direction's norm from 1.
UNIT_TOLERANCE = 1e-6
#: Elements of the ``(rows, K)`` phase block formed at once.
BLOCK_ELEMENTS = 1 << 20


def fourier_coefficients(positions: torch.Tensor, values: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """``(B, K)`` complex128 ``(1/N) sum_j values[j, b] exp(-2 pi i k p_j)`` for real ``k``, block by block.

    ``positions`` ``(N,)``, ``values`` ``(N, B)`` and ``freqs`` ``(K,)``, float64 on one device. Unlike
    :func:`spectral.nudft` the frequencies need not be integers; phases are ``k p`` formed in float64
    and reduced modulo 1 before the ``2 pi``, accurate to about ``1e-16 |k p|`` turns.
    """
    rows = max(1, BLOCK_ELEMENTS // len(freqs))
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
        array = np.asarray(freqs, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"freqs must be real numbers (cycles per unit length), got {freqs!r}") from None
    array = np.atleast_1d(array)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"freqs must be a non-empty sequence of numbers, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("freqs must be finite")
    return array


def principal_directions(inputs: torch.Tensor, components: int) -> np.ndarray:
    """``(components, d)`` leading principal directions of ``inputs``, each signed so its largest entry is positive."""
    centred = inputs.to(torch.float64) - inputs.to(torch.float64).mean(0)
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
    array = array[None, :] if array.ndim == 1 else array
    if array.ndim != 2 or array.shape[1] != dimension or array.shape[0] == 0:
        raise ValueError(f"directions must have shape (d,) or (m, d) with d = {dimension}, got {np.shape(directions)}")
    norms = np.linalg.norm(array, axis=1)
    if not np.all(np.isfinite(array)) or np.any(np.abs(norms - 1) > UNIT_TOLERANCE):
        raise ValueError(f"directions must be unit vectors; their norms are {np.round(norms, 8).tolist()}")
    return array


class ProjectionHistory(History):
    """Amplitudes of the fit and the residual along each direction, one row per record.

    Built by :class:`ProjectionProbe`; read back with :meth:`load`.

    Attributes
    ----------
    freqs : ndarray
        ``(K,)`` frequencies, cycles per unit length along each direction.
    directions : ndarray
        ``(m, d)`` unit directions.
    target_amplitude : ndarray
        ``(m, K)`` amplitudes of the targets.
    """

    FORMAT = "spectral.ProjectionHistory"
    SCHEMA_VERSION = 2  # version 2: labels
    READS_SCHEMA_VERSIONS = (2,)

    def __init__(self, freqs: np.ndarray, directions: np.ndarray, target_amplitude: np.ndarray) -> None:
        self.freqs, self.directions, self.target_amplitude = freqs, directions, target_amplitude
        super().__init__()

    def _layout(self) -> dict[str, tuple[tuple[int, ...], type]]:
        return {key: (self.target_amplitude.shape, np.float64) for key in ("fit_amplitude", "residual_amplitude")}

    def _configuration(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {"freqs": self.freqs, "directions": self.directions, "target_amplitude": self.target_amplitude}

    @classmethod
    def _from_configuration(cls, metadata: dict[str, Any], arrays: dict[str, np.ndarray]) -> ProjectionHistory:
        freqs, directions, target = (arrays[key] for key in ("freqs", "directions", "target_amplitude"))
        if any(array.dtype.kind != "f" for array in (freqs, directions, target)) or freqs.ndim != 1 \
                or directions.ndim != 2 or target.shape != (len(directions), len(freqs)):
            raise ValueError(f"freqs {freqs.shape}, directions {directions.shape} and target_amplitude "
                             f"{target.shape} do not agree")
        return cls(freqs, directions, target)

    @property
    def fit_amplitude(self) -> np.ndarray:
        """``(R, m, K)`` amplitudes of the model's outputs."""
        return self._array("fit_amplitude")

    @property
    def residual_amplitude(self) -> np.ndarray:
        """``(R, m, K)`` amplitudes of ``outputs - targets``."""
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
        Training inputs.
    targets : array_like or torch.Tensor, shape (N,) or (N, C)
        Training targets; the model must return ``(N,)`` values for one
        column or ``(N, C)``.
    freqs : array_like of float, shape (K,)
        Frequencies in cycles per unit length along each direction (any real
        values, not only integers).
    directions : "pca" or array_like, shape (d,) or (m, d), default "pca"
        Unit vectors, or ``"pca"``: the first ``components`` principal
        directions of the inputs (centred), each signed so its largest entry
        is positive.
    every : int, default 1
        :meth:`update` records when ``step % every == 0``.
    components : int, default 1
        Principal directions used when ``directions="pca"``.
    batch_size : int, default 16384
        Inputs per forward pass.

    Notes
    -----
    ``c(k) = (1/N) sum_j g_j exp(-2 pi i k p_j)``, the convention of
    :func:`spectral.nudft`, summed in float64 at the projected points for
    any real ``k``. Amplitudes are ``2 |c(k)|`` (``|c(0)|`` at ``k = 0``), the
    amplitude of a sinusoid of frequency ``k`` along ``v``; with ``C``
    outputs, the root sum of squares over outputs. The relative error is
    ``|c_{h-y}(k)| / |c_y(k)|``. The transform runs on the model's device.

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

    def __init__(self, inputs: Any, targets: Any, freqs: Any, directions: Any = "pca", every: int = 1, *,
                 components: int = 1, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        points = as_inputs(inputs)
        self.targets = as_targets(targets, points.shape[0])
        self.freqs = _frequencies(freqs)
        self.directions = _directions(directions, points, positive_int(components, "components"))
        # (m, N) positions along each direction, float64: the phases need the precision.
        self._positions = (points.to(torch.float64) @ torch.from_numpy(self.directions).T).T.contiguous()
        self._k = torch.from_numpy(self.freqs)
        self._placed: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self._weights = np.where(self.freqs == 0, 1.0, 2.0)
        self._evaluator = SampleEvaluator(points, self.targets.shape[1], batch_size)
        self._target = self._coefficients(self.targets)
        super().__init__(ProjectionHistory(self.freqs, self.directions, self._amplitude(self._target)), every)

    def _coefficients(self, values: torch.Tensor) -> torch.Tensor:
        """``(m, C, K)`` coefficients of the ``C`` columns of ``values`` along every direction, on their device."""
        if values.device not in self._placed:
            self._placed[values.device] = (self._positions.to(values.device), self._k.to(values.device))
        positions, k = self._placed[values.device]
        return torch.stack([fourier_coefficients(p, values, k) for p in positions])

    def _amplitude(self, coefficients: torch.Tensor) -> np.ndarray:
        return self._weights * coefficients.abs().square().sum(1).sqrt().cpu().numpy()

    def update(self, model: Callable[..., Any], step: int) -> bool:
        """Record the transforms if ``step % every == 0``; return whether it did."""
        return self._update(step, functools.partial(self._record, model))

    def snapshot(self, model: Callable[..., Any], label: str, step: int | None = None) -> None:
        """Always record, with a ``label``; ``step`` defaults to the last step passed to :meth:`update` (0 before any)."""
        self._snapshot(label, step, functools.partial(self._record, model))

    def _record(self, model: Callable[..., Any], step: int, label: str) -> None:
        outputs = self._evaluator(model).to(torch.float64)
        if not bool(torch.isfinite(outputs).all()):
            self.history.append_filled(step, label, False, np.nan)
            return
        fit = self._coefficients(outputs)
        self.history.append(step, label, True, fit_amplitude=self._amplitude(fit),
                            residual_amplitude=self._amplitude(fit - self._target.to(fit.device)))


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

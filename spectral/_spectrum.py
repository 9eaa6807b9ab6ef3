"""Fourier spectra of functions sampled on a uniform periodic grid."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch

from ._grid import Grid, per_axis
from ._validation import integer, non_negative_finite, real_tensor

Window = Any  # a name or (name, parameter) tuple that scipy.signal.get_window knows


#: Smallest coherent gain ``sum(w)`` accepted, relative to ``sum(|w|)``: a window whose weights
#: nearly cancel would divide every amplitude by almost zero.
MIN_RELATIVE_GAIN = float(np.sqrt(np.finfo(np.float64).eps))


@functools.lru_cache(maxsize=32)
def _window_1d(window: Window, n: int) -> np.ndarray:
    import scipy.signal  # here, not at the top: it is slow to import and only windows need it

    try:
        with np.errstate(all="ignore"):  # NaN or inf weights are refused just below, with the window named
            values = scipy.signal.get_window(window, n, fftbins=True)
    except (ValueError, TypeError, IndexError, KeyError) as error:  # scipy raises IndexError for an empty tuple
        raise ValueError(
            f"window={window!r} is not a window scipy.signal.get_window knows: {error}"
        ) from None
    if not np.isfinite(values).all():
        raise ValueError(f"window={window!r} has NaN or inf weights for {n} points")
    if not values.sum() > MIN_RELATIVE_GAIN * np.abs(values).sum():
        raise ValueError(f"window={window!r} has weights summing to {values.sum():.3g} for {n} points; "
                         "expected a positive coherent gain")
    return values


def window_array(window: Window, shape: tuple[int, ...]) -> np.ndarray | None:
    """Periodic window for ``shape`` (outer product in 2D), or None for no window.

    Raises ``ValueError`` for a window scipy does not know, one with NaN or
    inf weights, or one whose weights sum to nearly zero (at most
    ``MIN_RELATIVE_GAIN * sum(|w|)``), which would blow amplitudes up.
    """
    if window is None:
        return None
    if isinstance(window, list):
        window = tuple(window)
    try:
        hash(window)
    except TypeError:
        raise TypeError(f"window must be None, a name or a (name, parameter) tuple, got {window!r}") from None
    arrays = [_window_1d(window, n) for n in shape]
    return arrays[0] if len(arrays) == 1 else np.outer(arrays[0], arrays[1])


def _self_conjugate(n: int, bins: int) -> np.ndarray:
    """Mask of the bins among the first ``bins`` that equal their own mirror (DC, Nyquist)."""
    k = np.arange(bins)
    return (k == 0) | (2 * k == n)


@functools.lru_cache(maxsize=32)
def amplitude_weights(shape: tuple[int, ...]) -> np.ndarray:
    """1 on self-conjugate bins, 2 elsewhere: turns ``|c_k|`` into a sinusoid's amplitude (read-only)."""
    if len(shape) == 1:
        weights = np.where(_self_conjugate(shape[0], shape[0] // 2 + 1), 1.0, 2.0)
    else:
        rows, cols = (_self_conjugate(n, n) for n in shape)
        weights = np.where(np.outer(rows, cols), 1.0, 2.0)
    weights.setflags(write=False)
    return weights


Extent = Union[float, tuple[float, ...]]  # one length for every axis, or one per axis

SCALINGS = ("amplitude", "power")


def frequency_axes(shape: tuple[int, ...], extent: Extent) -> list[np.ndarray]:
    """Frequencies in cycles per unit length, axis ``i`` in steps of ``1 / extent_i``: one-sided in 1D, FFT order in 2D."""
    lengths = per_axis(extent, len(shape))
    if len(shape) == 1:
        return [np.arange(shape[0] // 2 + 1) / lengths[0]]
    return [np.fft.fftfreq(n, d=length / n) for n, length in zip(shape, lengths)]


def spectrum_freqs(shape: tuple[int, ...], extent: Extent) -> Any:
    """The frequency axes as :attr:`Spectrum.freqs` holds them: one array in 1D, a tuple ``(f_y, f_x)`` in 2D."""
    axes = frequency_axes(shape, extent)
    return axes[0] if len(axes) == 1 else tuple(axes)


def magnitude_of(axes: Any) -> np.ndarray:
    """``|f|`` for every bin from frequency axes (one array, or a sequence of one array per axis)."""
    if isinstance(axes, np.ndarray):
        return axes
    if len(axes) == 1:
        return axes[0]
    fy, fx = np.meshgrid(*axes, indexing="ij")
    return np.hypot(fy, fx)


def frequency_magnitude(shape: tuple[int, ...], extent: Extent) -> np.ndarray:
    """``|f|`` for every bin, with the shape of the spectrum."""
    return magnitude_of(frequency_axes(shape, extent))


def _windowed_dft(values: torch.Tensor, ndim: int, window: torch.Tensor | None) -> tuple[torch.Tensor, float, float]:
    """DFT ``X`` of ``values * window`` over the trailing ``ndim`` axes, the coherent gain ``sum(w)`` and ``N sum(w^2)``.

    Without a window ``w = 1``: the gain is ``N`` and ``N sum(w^2) = N^2``.
    """
    size = int(np.prod(tuple(values.shape[-ndim:])))
    if window is None:
        gain, energy = float(size), float(size)
    else:
        values = values * window
        gain, energy = float(window.sum()), float((window * window).sum())
    if ndim == 1:
        transform = torch.fft.rfft(values, dim=-1)
    else:
        transform = torch.fft.fft2(values, dim=(-2, -1))
    return transform, gain, size * energy


def _power(transform: torch.Tensor, shape: tuple[int, ...], denominator: float) -> torch.Tensor:
    """``|X|^2 / denominator``, one-sided in 1D (bins other than DC and Nyquist doubled)."""
    power = transform.real.square() + transform.imag.square()
    power = power / denominator
    if len(shape) == 1:
        power = power * _one_sided_weights(shape[0], power.dtype, power.device)
    return power


@functools.lru_cache(maxsize=32)
def _one_sided_weights(size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """:func:`amplitude_weights` of a 1D grid as a tensor, made once per size, dtype and device (never written to)."""
    return torch.tensor(amplitude_weights((size,)), dtype=dtype, device=device)


def fourier(values: torch.Tensor, ndim: int, window: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched transform over the trailing ``ndim`` axes, in the convention of :class:`SpectrumHistory`.

    Returns ``(coefficients, power)`` as tensors: ``coefficients`` is the DFT
    divided by the window's sum (``n`` without a window), so a unit cosine reads
    ``1/2`` at ``+-k`` (``scaling="amplitude"``); ``power`` is
    ``|X|^2 / (N * sum(w^2))``, one-sided in 1D (non-self-conjugate bins
    doubled), two-sided in 2D, so it sums to the mean square of the windowed,
    renormalised values (``scaling="power"``).
    """
    shape = tuple(values.shape[-ndim:])
    transform, gain, incoherent = _windowed_dft(values, ndim, window)
    return transform / gain, _power(transform, shape, incoherent)


def _scaled(values: torch.Tensor, ndim: int, window: torch.Tensor | None,
            scaling: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(coefficients, power)`` both normalised by ``sum(w)`` (amplitude scaling) or ``sqrt(N sum(w^2))`` (power)."""
    shape = tuple(values.shape[-ndim:])
    transform, gain, incoherent = _windowed_dft(values, ndim, window)
    if scaling == "amplitude":
        return transform / gain, _power(transform, shape, gain * gain)
    return transform / math.sqrt(incoherent), _power(transform, shape, incoherent)


def radial_profile(power: np.ndarray, extent: Extent) -> tuple[np.ndarray, np.ndarray]:
    """Ring sums over the last two axes of ``power`` (FFT order), rings ``1 / max(extent)`` wide.

    Bin ``(k_y, k_x)`` falls in ring ``round(|f| * L)``, ``|f|`` its frequency in
    cycles per unit length and ``L`` the longest side; ring ``r`` has radius ``r / L``.
    """
    shape = power.shape[-2:]
    lengths = per_axis(extent, 2)
    longest = max(lengths)
    # Frequencies in units of 1 / longest: on a square domain exactly the integer wavevectors' |k|.
    rings = np.rint(frequency_magnitude(shape, tuple(length / longest for length in lengths)))
    rings = rings.astype(np.int64).ravel()
    count = rings.max() + 1
    flat = power.reshape(-1, rings.size)
    sums = np.stack([np.bincount(rings, weights=row, minlength=count) for row in flat])
    return np.arange(count) / longest, sums.reshape(power.shape[:-2] + (count,))


def high_frequency_fraction(power: np.ndarray, magnitude: np.ndarray, cutoff: float) -> np.ndarray:
    """Row-wise fraction of non-DC power at ``|f| > cutoff``; ``power[..., *magnitude.shape]``."""
    cutoff = non_negative_finite(cutoff, "cutoff")
    axes = tuple(range(-magnitude.ndim, 0))
    high = np.where(magnitude > cutoff, power, 0.0).sum(axis=axes)
    alternating = np.where(magnitude > 0, power, 0.0).sum(axis=axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(alternating > 0, high / np.where(alternating > 0, alternating, 1.0), np.nan)


@dataclass(frozen=True)
class Spectrum:
    """Fourier spectrum of real samples on a uniform periodic grid (any leading batch axes).

    Built by :func:`spectrum`. Every array has shape ``(*batch, *bins)``:
    ``bins`` is ``(n // 2 + 1,)`` in 1D (one-sided) and ``(h, w)`` in 2D.

    Attributes
    ----------
    freqs : ndarray, or tuple of two ndarrays in 2D
        Cycles per unit length. 1D: ``k / extent`` for ``k = 0 .. n//2``.
        2D: ``(freqs_y, freqs_x)`` in FFT order (``numpy.fft.fftfreq``), axis
        ``i`` in steps of ``1 / extent_i``, so ``power[..., ky, kx]`` with
        negative indices wrapping is the bin ``(ky, kx)``.
    amplitude : ndarray
        ``2 |coefficients|`` (``|coefficients|`` on the self-conjugate bins,
        DC and Nyquist): with ``scaling="amplitude"`` the amplitude of the
        real sinusoid (1D) or plane wave (2D) on a bin,
        ``a*sin(2*pi*k*x + phi)`` reading ``a`` at ``k`` (in 2D at both ``+k``
        and ``-k``), with or without a window.
    power : ndarray
        ``|coefficients|^2``, one-sided in 1D (bins other than DC and Nyquist
        doubled, so ``power == amplitude**2 / 2`` there), two-sided in 2D. With
        ``scaling="power"``, ``power.sum()`` is the mean square of the
        windowed, renormalised values (Parseval), with or without a window.
    coefficients : ndarray of complex
        The DFT ``X`` of ``values * w`` divided by the normaliser of
        ``scaling``: ``sum(w)`` for ``"amplitude"``, ``sqrt(N sum(w**2))`` for
        ``"power"`` (``N`` either way without a window), same layout as
        ``amplitude``.
    extent : float or tuple of float
        Domain length, one for every axis or one per axis.
    window : str, tuple or None
        The window used.
    scaling : {"amplitude", "power"}
        The normalisation of every array (see :func:`spectrum`).
    """

    freqs: Any
    amplitude: np.ndarray
    power: np.ndarray
    coefficients: np.ndarray
    extent: Extent
    window: Window = None
    scaling: str = "amplitude"

    @property
    def ndim(self) -> int:
        """Number of grid axes, 1 or 2 (batch axes not counted)."""
        return len(self.freqs) if isinstance(self.freqs, tuple) else 1

    @property
    def frequency_magnitude(self) -> np.ndarray:
        """``|f|`` in cycles per unit length, with the shape of one spectrum's bins."""
        return magnitude_of(self.freqs)

    def high_frequency_fraction(self, cutoff: float) -> Any:
        """Power above ``cutoff`` (in 2D, above radius ``cutoff``) over all non-DC power.

        Parameters
        ----------
        cutoff : float
            Cycles per unit length; bins with ``|f| > cutoff`` count as high.

        Returns
        -------
        float, or ndarray of the batch shape
            In ``[0, 1]``; NaN when there is no power outside DC. The same
            under either scaling (a ratio of powers).
        """
        fraction = high_frequency_fraction(self.power, self.frequency_magnitude, cutoff)
        return float(fraction) if fraction.ndim == 0 else fraction

    def radial(self) -> tuple[np.ndarray, np.ndarray]:
        """Power summed over rings of ``|f|`` (2D only).

        Returns
        -------
        radii : ndarray
            Ring radii ``r / L`` in cycles per unit length, ``r = 0, 1, ...``,
            ``L`` the longest side of the domain (``extent`` on a square one).
        power : ndarray, shape (*batch, rings)
            Sum of ``power`` over the bins with ``round(|f| * L) == r``; the
            rings add up to ``power.sum()``. Without a window a plane wave
            ``a*sin(2*pi*f.x)`` on a bin (``f_i * L_i`` integers) reads
            ``sqrt(2 * power) == a`` in its ring, under either scaling. A
            window spreads the wave over neighbouring bins, some in the
            neighbouring rings: with ``scaling="power"`` the wave's ``a**2 / 2``
            is spread over those rings (all rings still sum to the windowed
            mean square); with ``scaling="amplitude"`` the peak bins read
            ``a**2 / 4`` each, and sums over bins count the window's
            equivalent noise bandwidth (ENBW, 1.5 bins per axis for Hann) in
            excess.
        """
        if self.ndim != 2:
            raise ValueError("radial() needs a 2D spectrum; this one is 1D")
        return radial_profile(self.power, self.extent)


def check_grid_values(values: Any, name: str = "values") -> torch.Tensor:
    """Validate samples on a 1D or 2D grid and return them as a real tensor."""
    tensor = real_tensor(values, name)
    if tensor.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (n,) or (h, w), got shape {tuple(tensor.shape)}")
    return tensor


def _grid_axes(ndim: Any, tensor: torch.Tensor) -> int:
    """The number of trailing grid axes: ``ndim`` (1 or 2) checked against ``tensor``, or all of its axes."""
    if ndim is None:
        if tensor.ndim not in (1, 2):
            raise ValueError(f"values must have shape (n,) or (h, w), got shape {tuple(tensor.shape)}; "
                             "give ndim=1 or 2 to treat leading axes as a batch")
        return tensor.ndim
    ndim = integer(ndim, "ndim")
    if ndim not in (1, 2):
        raise ValueError(f"ndim must be 1 or 2 (the grid axes), got {ndim}")
    if tensor.ndim < ndim:
        raise ValueError(f"values has {tensor.ndim} axes, fewer than ndim={ndim}")
    return ndim


def spectrum(values: Any, *, extent: Extent = 1.0, window: Window = None, ndim: int | None = None,
             scaling: str = "amplitude") -> Spectrum:
    """Fourier spectrum of samples on a uniform periodic grid, for one function or a batch.

    Parameters
    ----------
    values : array_like or torch.Tensor, shape (*batch, n) or (*batch, h, w)
        Real samples on ``Grid.uniform(grid_shape, extent=extent)``: the last
        ``ndim`` axes are the grid, any axes before them are batch axes, each
        entry of the batch transformed alone. Tensors are transformed with
        ``torch.fft`` on their own device.
    extent : float or tuple of float, default 1.0
        Domain length, one for every axis or one per grid axis (a
        rectangle); frequencies on axis ``i`` are ``k / extent_i`` cycles per
        unit length.
    window : str or tuple, optional
        Any window ``scipy.signal.get_window`` knows (periodic form), e.g.
        ``"hann"``; the outer product of 1D windows in 2D. Reduces leakage
        from functions that are not periodic on the domain.
    ndim : {1, 2}, optional
        How many trailing axes of ``values`` are grid axes. Default
        ``values.ndim``, so ``values`` of shape ``(n,)`` or ``(h, w)`` hold one
        function; ``ndim=1`` reads ``(3, 4, 64)`` as 3 x 4 functions on 64
        points.
    scaling : {"amplitude", "power"}, default "amplitude"
        The normaliser of the DFT ``X`` of ``values * w``, and so of every
        array. ``"amplitude"``: the coherent gain ``sum(w)``, so a sinusoid
        on a bin reads its amplitude there (scipy.signal's
        ``scaling="spectrum"``). ``"power"``: ``sqrt(N sum(w**2))``, the
        incoherent (equivalent-noise-bandwidth) normalisation, so
        ``power.sum()`` is the mean square of ``values * w / rms(w)``
        (Parseval; scipy.signal's ``scaling="density"`` times the bin width).
        Without a window the two are the same.

    Returns
    -------
    Spectrum
        Numpy arrays: ``freqs``, ``amplitude``, ``power``, ``coefficients``.

    Raises
    ------
    TypeError
        If ``values`` is complex or not numeric, or ``ndim`` is not an integer.
    ValueError
        If ``values`` is empty, has no 1D/2D grid (more than two axes need
        ``ndim``), ``ndim`` is not 1 or 2, ``extent`` is not positive and
        finite (one value or one per grid axis) or so small that the grid's
        points coincide or its frequencies overflow, ``window`` is unknown, or
        ``scaling`` is neither ``"amplitude"`` nor ``"power"``.

    Notes
    -----
    With ``X_k`` the DFT of ``values * w`` (``w = 1`` without a window), ``N``
    the number of grid points and ``G`` the normaliser (``sum(w)`` or
    ``sqrt(N sum(w^2))``): ``coefficients = X / G``,
    ``amplitude = 2|X_k| / G`` (``|X_k| / G`` at DC and Nyquist),
    ``power = |X_k|^2 / G^2`` (doubled on one-sided 1D bins other than DC and
    Nyquist).

    Examples
    --------
    >>> import numpy as np
    >>> from spectral import Grid, spectrum
    >>> x = Grid.uniform(64).points[:, 0]
    >>> s = spectrum(3 * np.sin(2 * np.pi * 5 * x))
    >>> round(float(s.amplitude[5]), 6)
    3.0
    >>> bool(np.isclose(s.power.sum(), np.mean((3 * np.sin(2 * np.pi * 5 * x)) ** 2)))
    True

    Under a window, ``scaling`` picks which of the two stays exact:

    >>> wave = np.sin(2 * np.pi * 5 * x)
    >>> round(float(spectrum(wave, window="hann").amplitude[5]), 6)
    1.0
    >>> round(float(spectrum(wave, window="hann", scaling="power").power.sum()), 6)
    0.5

    Leading axes are a batch; on ``[-5, 5)`` frequencies are in cycles per unit length:

    >>> x = Grid.uniform(100, bounds=(-5, 5)).points[:, 0]
    >>> batch = np.stack([np.sin(2 * np.pi * f * x) for f in (0.3, 0.7)])
    >>> s = spectrum(batch, extent=10.0, ndim=1)
    >>> s.amplitude.shape, s.freqs[s.amplitude.argmax(axis=1)]
    ((2, 51), array([0.3, 0.7]))
    """
    tensor = real_tensor(values, "values")
    ndim = _grid_axes(ndim, tensor)
    shape = tuple(tensor.shape[-ndim:])
    extent = Grid(shape=shape, extent=extent).extent  # checked, and one float when every axis agrees
    if scaling not in SCALINGS:
        raise ValueError(f"scaling={scaling!r} is not known; expected one of {SCALINGS}")
    window_np = window_array(window, shape)
    window_t = None if window_np is None else torch.as_tensor(window_np, dtype=tensor.dtype, device=tensor.device)
    coefficients, power = _scaled(tensor, ndim, window_t, scaling)
    coefficients = coefficients.cpu().numpy()
    return Spectrum(
        freqs=spectrum_freqs(shape, extent),
        amplitude=amplitude_weights(shape) * np.abs(coefficients),
        power=power.cpu().numpy(),
        coefficients=coefficients,
        extent=extent,
        window=window,
        scaling=scaling,
    )

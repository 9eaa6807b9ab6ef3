"""Fourier spectra of functions sampled on a uniform periodic grid."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ._validation import non_negative_finite, positive_finite, real_tensor

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


def frequency_axes(shape: tuple[int, ...], extent: float) -> list[np.ndarray]:
    """Frequencies in cycles per unit length: one-sided in 1D, FFT order in 2D."""
    if len(shape) == 1:
        return [np.arange(shape[0] // 2 + 1) / extent]
    return [np.fft.fftfreq(n, d=extent / n) for n in shape]


def frequency_magnitude(shape: tuple[int, ...], extent: float) -> np.ndarray:
    """``|f|`` for every bin, with the shape of the spectrum."""
    axes = frequency_axes(shape, extent)
    if len(axes) == 1:
        return axes[0]
    fy, fx = np.meshgrid(*axes, indexing="ij")
    return np.hypot(fy, fx)


def fourier(values: torch.Tensor, ndim: int, window: torch.Tensor | None):
    """Batched transform over the trailing ``ndim`` axes.

    Returns ``(coefficients, power)`` as tensors: ``coefficients`` is the DFT
    divided by the window's sum (``n`` without a window), so a unit cosine reads
    ``1/2`` at ``+-k``; ``power`` is ``|X|^2 / (N * sum(w^2))``, one-sided in 1D
    (non-self-conjugate bins doubled), two-sided in 2D, so without a window it
    sums to ``mean(values**2)``.
    """
    shape = tuple(values.shape[-ndim:])
    size = int(np.prod(shape))
    if window is None:
        norm, energy = float(size), float(size)
    else:
        values = values * window
        norm, energy = float(window.sum()), float((window * window).sum())
    if ndim == 1:
        transform = torch.fft.rfft(values, dim=-1)
    else:
        transform = torch.fft.fft2(values, dim=(-2, -1))
    power = transform.real.square() + transform.imag.square()
    power = power / (size * energy)
    if ndim == 1:
        power = power * torch.tensor(amplitude_weights(shape), dtype=power.dtype, device=power.device)
    return transform / norm, power


@dataclass(frozen=True)
class Spectrum:
    """Fourier spectrum of real samples on a uniform periodic grid.

    Attributes
    ----------
    freqs : ndarray, or tuple of two ndarrays in 2D
        Cycles per unit length. 1D: ``k / extent`` for ``k = 0 .. n//2``.
        2D: ``(freqs_y, freqs_x)`` in FFT order (``numpy.fft.fftfreq``), so
        ``power[ky, kx]`` with negative indices wrapping is the bin ``(ky, kx)``.
    amplitude : ndarray
        Amplitude of the real sinusoid (1D) or plane wave (2D) at each bin:
        ``a*sin(2*pi*k*x + phi)`` reads ``a`` at ``k`` (in 2D at both ``+k`` and
        ``-k``). Self-conjugate bins (DC, Nyquist) read ``|c_k|``. With a window,
        corrected by the window's coherent gain.
    power : ndarray
        Mean square per bin; one-sided in 1D, two-sided in 2D. Without a window
        ``power.sum() == mean(values**2)`` (Parseval). With a window the
        normalisation is ``|X|^2 / (N * sum(w**2))``.
    coefficients : ndarray of complex
        ``DFT / sum(window)`` (``DFT / N`` without a window), same layout as
        ``amplitude``.
    extent : float
        Domain length.
    window : str, tuple or None
        The window used.
    """

    freqs: Any
    amplitude: np.ndarray
    power: np.ndarray
    coefficients: np.ndarray
    extent: float
    window: Window = None

    @property
    def ndim(self) -> int:
        """1 or 2."""
        return self.amplitude.ndim

    @property
    def frequency_magnitude(self) -> np.ndarray:
        """``|f|`` in cycles per unit length, with the shape of ``power``."""
        if self.ndim == 1:
            return np.asarray(self.freqs)
        fy, fx = np.meshgrid(*self.freqs, indexing="ij")
        return np.hypot(fy, fx)

    def high_frequency_fraction(self, cutoff: float) -> float:
        """Power above ``cutoff`` (in 2D, above radius ``cutoff``) over all non-DC power.

        Parameters
        ----------
        cutoff : float
            Cycles per unit length; bins with ``|f| > cutoff`` count as high.

        Returns
        -------
        float
            In ``[0, 1]``; NaN when there is no power outside DC.
        """
        return float(high_frequency_fraction(self.power, self.frequency_magnitude, cutoff))

    def radial(self) -> tuple[np.ndarray, np.ndarray]:
        """Power summed over rings of integer radius (2D only).

        Returns
        -------
        radii : ndarray
            Ring radii ``r / extent`` in cycles per unit length, ``r = 0, 1, ...``.
        power : ndarray
            Sum of ``power`` over the bins with ``round(|k|) == r``, ``k`` the
            integer wavevector. A plane wave ``a*sin(2*pi*k.x)`` with integer
            ``|k|`` reads ``sqrt(2*power) == a`` in its ring.
        """
        if self.ndim != 2:
            raise ValueError("radial() needs a 2D spectrum; this one is 1D")
        return radial_profile(self.power, self.extent)


def radial_profile(power: np.ndarray, extent: float) -> tuple[np.ndarray, np.ndarray]:
    """Ring sums over the last two axes of ``power`` (FFT order)."""
    shape = power.shape[-2:]
    rings = np.rint(frequency_magnitude(shape, 1.0)).astype(np.int64).ravel()
    count = rings.max() + 1
    flat = power.reshape(-1, rings.size)
    sums = np.stack([np.bincount(rings, weights=row, minlength=count) for row in flat])
    return np.arange(count) / extent, sums.reshape(power.shape[:-2] + (count,))


def high_frequency_fraction(power: np.ndarray, magnitude: np.ndarray, cutoff: float) -> np.ndarray:
    """Row-wise fraction of non-DC power at ``|f| > cutoff``; ``power[..., *magnitude.shape]``."""
    cutoff = non_negative_finite(cutoff, "cutoff")
    axes = tuple(range(-magnitude.ndim, 0))
    high = np.where(magnitude > cutoff, power, 0.0).sum(axis=axes)
    alternating = np.where(magnitude > 0, power, 0.0).sum(axis=axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(alternating > 0, high / np.where(alternating > 0, alternating, 1.0), np.nan)


def check_grid_values(values: Any, name: str = "values") -> torch.Tensor:
    """Validate samples on a 1D or 2D grid and return them as a real tensor."""
    tensor = real_tensor(values, name)
    if tensor.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (n,) or (h, w), got shape {tuple(tensor.shape)}")
    return tensor


def spectrum(values: Any, *, extent: float = 1.0, window: Window = None) -> Spectrum:
    """Fourier spectrum of samples on a uniform periodic grid.

    Parameters
    ----------
    values : array_like or torch.Tensor, shape (n,) or (h, w)
        Real samples on ``Grid.uniform(values.shape, extent=extent)``. Tensors
        are transformed with ``torch.fft`` on their own device.
    extent : float, default 1.0
        Domain length; frequencies are ``k / extent`` cycles per unit length.
    window : str or tuple, optional
        Any window ``scipy.signal.get_window`` knows (periodic form), e.g.
        ``"hann"``. Reduces leakage from functions that are not periodic on the
        domain; amplitudes are corrected by the window's coherent gain.

    Returns
    -------
    Spectrum
        Numpy arrays: ``freqs``, ``amplitude``, ``power``, ``coefficients``.

    Raises
    ------
    TypeError
        If ``values`` is complex or not numeric.
    ValueError
        If ``values`` is empty or not 1D/2D, ``extent`` is not positive and
        finite, or ``window`` is unknown.

    Notes
    -----
    With ``X_k`` the DFT of ``values * w`` (``w = 1`` without a window) and
    ``N`` the number of samples: ``coefficients = X / sum(w)``,
    ``amplitude = 2|X_k| / sum(w)`` (``|X_k| / sum(w)`` at DC and Nyquist),
    ``power = |X_k|^2 / (N sum(w^2))`` (doubled on one-sided 1D bins other
    than DC and Nyquist).

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
    """
    tensor = check_grid_values(values)
    extent = positive_finite(extent, "extent")
    shape = tuple(tensor.shape)
    window_np = window_array(window, shape)
    window_t = None if window_np is None else torch.as_tensor(window_np, dtype=tensor.dtype, device=tensor.device)
    coefficients, power = fourier(tensor, tensor.ndim, window_t)
    coefficients = coefficients.cpu().numpy()
    weights = amplitude_weights(shape)
    axes = frequency_axes(shape, extent)
    return Spectrum(
        freqs=axes[0] if len(axes) == 1 else tuple(axes),
        amplitude=weights * np.abs(coefficients),
        power=power.cpu().numpy(),
        coefficients=coefficients,
        extent=extent,
        window=window,
    )

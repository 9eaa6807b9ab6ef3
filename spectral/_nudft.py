"""Non-uniform discrete Fourier transform of scattered samples: an exact sum, or finufft."""

from __future__ import annotations

import importlib.util
import math
from typing import Any

import numpy as np
import torch

from ._validation import positive_int, real_tensor

#: Elements of the ``(rows, K)`` phase block formed at once on the CPU: small enough to stay in cache.
DEFAULT_CHUNK_ELEMENTS = 1 << 16
#: The same on accelerators, where larger blocks mean fewer kernel launches.
DEVICE_CHUNK_ELEMENTS = 1 << 22
BACKENDS = ("auto", "exact", "finufft")
#: ``backend="auto"`` hands sums of more than this many terms (``M * K``) to finufft, when installed.
AUTO_FINUFFT_TERMS = 10_000_000
#: Largest mode grid finufft may hold: bounds its memory as ``chunk_elements`` bounds the exact sum's.
FINUFFT_MAX_MODES = 1 << 20
FINUFFT_EPS = 1e-12
FINUFFT_MISSING = 'backend="finufft" needs the finufft package: pip install "spectral-probes[finufft]"'


def as_points(x: Any) -> torch.Tensor:
    points = real_tensor(x, "x")
    if points.ndim == 1:
        points = points[:, None]
    if points.ndim != 2 or points.shape[1] not in (1, 2):
        raise ValueError(f"x must have shape (M,) or (M, d) with d in (1, 2), got {tuple(points.shape)}")
    return points


def as_frequencies(freqs: Any, ndim: int, device: torch.device) -> torch.Tensor:
    try:
        array = np.asarray(freqs.detach().cpu() if isinstance(freqs, torch.Tensor) else freqs)
    except ValueError:  # ragged nested lists
        raise ValueError(f"freqs must have shape (K,) or (K, {ndim}); got a ragged sequence") from None
    if array.size == 0:
        raise ValueError("freqs is empty")
    if array.dtype.kind not in "iuf" or not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
        raise ValueError("freqs must hold integers (cycles per unit length on [0, 1))")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] != ndim:
        raise ValueError(f"freqs must have shape (K,) or (K, {ndim}) to match x, got {np.shape(freqs)}")
    return torch.as_tensor(array, dtype=torch.float64, device=device)


def as_samples(y: Any, count: int, name: str = "y") -> torch.Tensor:
    """``(M,)`` real values from ``(M,)`` or ``(M, 1)`` input."""
    values = real_tensor(y, name)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1 or values.shape[0] != count:
        raise ValueError(f"{name} must have shape (M,) or (M, 1) with M = {count} to match x, "
                         f"got {tuple(values.shape)}")
    return values


def finufft_installed() -> bool:
    """Whether the optional ``finufft`` package can be imported."""
    return importlib.util.find_spec("finufft") is not None


def blocks(rows: int, frequencies: int, chunk_elements: int) -> tuple[int, int]:
    """Rows and frequencies per block of the exact sum, their product at most ``chunk_elements``."""
    columns = min(frequencies, chunk_elements)
    return min(rows, max(1, chunk_elements // columns)), columns


def _exact(points: torch.Tensor, values: torch.Tensor, k: torch.Tensor, chunk_elements: int) -> torch.Tensor:
    """``(B, K)`` sums of ``values[:, b] * exp(-2*pi*i k.x)`` over the rows, in float64, block by block."""
    rows, columns = blocks(points.shape[0], k.shape[0], chunk_elements)
    real = torch.zeros(values.shape[1], k.shape[0], dtype=torch.float64, device=values.device)
    imag = torch.zeros_like(real)
    for first in range(0, k.shape[0], columns):
        block = k[first : first + columns].T
        for start in range(0, points.shape[0], rows):
            # Turns reduced to (-1, 1) before the 2*pi: exact phases whatever the size of k.x.
            phase = (points[start : start + rows] @ block).frac_().mul_(2 * math.pi)
            weights = values[start : start + rows].T
            real[:, first : first + columns] += weights @ torch.cos(phase)
            imag[:, first : first + columns] -= weights @ phase.sin_()
    return torch.complex(real, imag)


def _mode_grid(k: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """Largest ``|k|`` per axis and the odd, centred mode grid ``-half .. half`` that holds every ``k``."""
    half = np.abs(k).max(axis=0).astype(np.int64)
    return half, tuple(int(n) for n in 2 * half + 1)


def _finufft(points: torch.Tensor, values: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The same sums by finufft's type-1 transform (``isign=-1``), picked out of the mode grid."""
    try:
        import finufft
    except ImportError:
        raise ImportError(FINUFFT_MISSING) from None
    k_np = k.cpu().numpy().astype(np.int64)
    half, modes = _mode_grid(k_np)
    if math.prod(modes) > FINUFFT_MAX_MODES:
        raise ValueError(f"freqs span a mode grid of {modes} modes, more than the finufft backend holds "
                         f"({FINUFFT_MAX_MODES}); use backend=\"exact\"")
    # k.x only matters modulo 1 for integer k: angles 2*pi*x with x reduced to [-1/2, 1/2), i.e. [-pi, pi).
    x = points.cpu().numpy()
    angles = [np.ascontiguousarray(2 * np.pi * ((x[:, i] + 0.5) % 1.0 - 0.5)) for i in range(x.shape[1])]
    strengths = np.ascontiguousarray(values.T.cpu().numpy(), dtype=np.complex128)
    transform = finufft.nufft1d1 if len(modes) == 1 else finufft.nufft2d1
    grid = transform(*angles, strengths, modes, eps=FINUFFT_EPS, isign=-1, modeord=0)
    index = tuple((k_np + half).T)
    return torch.from_numpy(grid[(slice(None),) + index]).to(values.device)


def _resolve(backend: Any, terms: int, k: torch.Tensor, device: torch.device) -> str:
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        return backend
    if device.type != "cpu" or terms <= AUTO_FINUFFT_TERMS or not finufft_installed():
        return "exact"
    return "finufft" if math.prod(_mode_grid(k.numpy())[1]) <= FINUFFT_MAX_MODES else "exact"


def fourier_sums(points: torch.Tensor, values: torch.Tensor, k: torch.Tensor, *,
                 chunk_elements: int | None = None, backend: str = "auto") -> torch.Tensor:
    """``(B, K)`` complex128 coefficients of the ``B`` columns of ``values`` (float64, on ``values``' device).

    ``points`` is ``(M, d)``, ``values`` ``(M, B)`` and ``k`` ``(K, d)``, all
    validated; used by :func:`nudft` and :class:`BatchSpectrumProbe`.
    """
    device = values.device
    points = points.to(device=device, dtype=torch.float64)
    values = values.to(torch.float64)
    k = k.to(device)
    chosen = _resolve(backend, points.shape[0] * k.shape[0], k, device)
    if chunk_elements is None:
        chunk_elements = DEFAULT_CHUNK_ELEMENTS if device.type == "cpu" else DEVICE_CHUNK_ELEMENTS
    sums = _finufft(points, values, k) if chosen == "finufft" else _exact(points, values, k, chunk_elements)
    return sums / points.shape[0]


def nudft(x: Any, y: Any, freqs: Any, *, chunk_elements: int | None = None, backend: str = "auto") -> Any:
    """Fourier coefficients of scattered samples.

    ``c_k = (1/M) * sum_j y_j * exp(-2*pi*i * k . x_j)``.

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (M,) or (M, d)
        Sample positions in ``[0, 1)^d``, ``d`` 1 or 2.
    y : array_like or torch.Tensor, shape (M,) or (M, 1)
        Real sample values.
    freqs : array_like of int, shape (K,) or (K, d)
        Integer frequencies (wavevectors in 2D).
    chunk_elements : int, optional
        Largest ``(rows, frequencies)`` block of the exact sum formed at once;
        its memory stays ``O(chunk_elements)`` whatever ``M * K``. Default
        ``2**16`` on the CPU (cache-sized), ``2**22`` on other devices.
    backend : {"auto", "exact", "finufft"}, default "auto"
        ``"exact"`` sums every term in float64. ``"finufft"`` uses the
        optional ``finufft`` package (``pip install "spectral-probes[finufft]"``),
        a type-1 non-uniform FFT accurate to about ``1e-12`` relative to
        ``mean(|y|)``, on the CPU; its mode grid ``-max|k| .. max|k|`` per axis
        must hold at most ``FINUFFT_MAX_MODES`` modes. ``"auto"`` picks finufft
        for CPU data when it is installed, ``M * K`` exceeds
        ``AUTO_FINUFFT_TERMS`` (``1e7``) and the mode grid fits, else exact.

    Returns
    -------
    ndarray or torch.Tensor, complex, shape (K,)
        A tensor (complex128, on ``y``'s device) when ``y`` is a tensor, else a
        numpy array.

    Raises
    ------
    TypeError, ValueError
        If shapes disagree, values are complex or empty, ``freqs`` are not
        integers, or ``backend`` is unknown.
    ImportError
        For ``backend="finufft"`` without the ``finufft`` package.

    Notes
    -----
    The exact sum computes phases in float64 from ``k . x`` reduced modulo 1,
    so it is exact to float64 rounding for any ``k``. On the uniform grid
    ``x_j = j / M`` the result equals ``numpy.fft.fft(y) / M`` at ``k``, and
    ``2 |c_k|`` equals ``spectrum(y).amplitude[k]`` for ``0 < k < M/2``.

    Examples
    --------
    >>> import numpy as np
    >>> from spectral import nudft
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(size=2000)
    >>> c = nudft(x, np.cos(2 * np.pi * 3 * x), [0, 3])
    >>> np.round(np.abs(c), 1)
    array([0. , 0.5])
    """
    points = as_points(x)
    values = as_samples(y, points.shape[0])
    if chunk_elements is not None:
        chunk_elements = positive_int(chunk_elements, "chunk_elements")
    k = as_frequencies(freqs, points.shape[1], values.device)
    total = fourier_sums(points, values[:, None], k, chunk_elements=chunk_elements, backend=backend)[0]
    return total if isinstance(y, torch.Tensor) else total.cpu().numpy()

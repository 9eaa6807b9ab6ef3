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


#: Frequencies must stay below this in magnitude: every such integer is an int64 (the type histories store
#: them in), and the phase reduction below is exact for all of them.
MAX_FREQUENCY = 2**63


def as_points(x: Any) -> torch.Tensor:
    points = real_tensor(x, "x")
    if points.ndim == 1:
        points = points[:, None]
    if points.ndim != 2 or points.shape[1] not in (1, 2):
        raise ValueError(f"x must have shape (M,) or (M, d) with d in (1, 2), got {tuple(points.shape)}")
    if not torch.isfinite(points).all():
        raise ValueError("x has NaN or inf positions")
    return points


def as_frequencies(freqs: Any, ndim: int, device: torch.device) -> torch.Tensor:
    """``(K, ndim)`` int64 frequencies on ``device``; refuses non-integers and ``|k| >= MAX_FREQUENCY``."""
    try:
        array = np.asarray(freqs.detach().cpu() if isinstance(freqs, torch.Tensor) else freqs)
    except ValueError:  # ragged nested lists
        raise ValueError(f"freqs must have shape (K,) or (K, {ndim}); got a ragged sequence") from None
    if array.size == 0:
        raise ValueError("freqs is empty")
    if array.dtype.kind not in "iuf" or not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
        raise ValueError("freqs must hold integers (cycles per unit length on [0, 1))")
    # Compared as Python ints or floats: exact on both sides, whatever the dtype.
    if not all(-MAX_FREQUENCY < value < MAX_FREQUENCY for value in (array.min().item(), array.max().item())):
        raise ValueError(f"freqs must be integers of magnitude below 2**63, got extremes "
                         f"{array.min().item()!r} and {array.max().item()!r}")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] != ndim:
        raise ValueError(f"freqs must have shape (K,) or (K, {ndim}) to match x, got {np.shape(freqs)}")
    return torch.as_tensor(array.astype(np.int64), device=device)


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


#: Frequencies are split into parts ``k = p0 + p1 * 2**27 + p2 * 2**54`` with ``0 <= p0, p1 < 2**27``.
_PART_BITS = 27
#: Positions are split ``x = coarse + fine``, ``coarse`` a multiple of ``2**-26``: ``coarse * part`` is exact.
_COARSE = 2.0**26


def _phase_terms(points: torch.Tensor, k: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(coarse, fine, part)`` per frequency part and axis: ``k . x mod 1`` is the sum of their turns.

    For integer ``k``, ``k . x mod 1 == sum_j,i part_j,i * (2**(27 j) x_i mod 1) mod 1``.
    Each such position, reduced exactly modulo 1, is split into ``coarse``
    (``C / 2**26``, ``|C| <= 2**26``) and ``fine`` (``|fine| <= 2**-27``, exact),
    so ``coarse * part`` (below ``2**53 / 2**26``) is formed without rounding and
    ``|fine * part| <= 1`` rounds by at most ``2**-54``.
    """
    positions = points - points.floor()  # exact, and k.x mod 1 depends only on x mod 1
    parts, rest = [], k
    for _ in range(2):
        parts.append(rest & (2**_PART_BITS - 1))
        rest = rest >> _PART_BITS  # floor division: the last part keeps the sign
    parts.append(rest)
    terms = []
    for j, part in enumerate(parts):
        if j and not bool(part.any()):  # the higher parts are zero unless some |k| >= 2**27
            continue
        scaled = positions * 2.0 ** (_PART_BITS * j)  # exact: a power of two
        scaled = scaled - scaled.floor()
        coarse = torch.round(scaled * _COARSE) / _COARSE
        fine = scaled - coarse
        terms += [(coarse[:, i : i + 1], fine[:, i : i + 1], part[:, i].to(torch.float64)) for i in range(k.shape[1])]
    return terms


def _exact(points: torch.Tensor, values: torch.Tensor, k: torch.Tensor, chunk_elements: int) -> torch.Tensor:
    """``(B, K)`` sums of ``values[:, b] * exp(-2*pi*i k.x)`` over the rows, in float64, block by block."""
    rows, columns = blocks(points.shape[0], k.shape[0], chunk_elements)
    terms = _phase_terms(points, k)
    real = torch.zeros(values.shape[1], k.shape[0], dtype=torch.float64, device=values.device)
    imag = torch.zeros_like(real)
    for first in range(0, k.shape[0], columns):
        end = first + columns
        for start in range(0, points.shape[0], rows):
            stop = start + rows
            phase = None
            for coarse, fine, part in terms:
                turns = coarse[start:stop] * part[first:end]  # exact, so is its reduction modulo 1
                turns.sub_(turns.round()).addcmul_(fine[start:stop], part[first:end])
                phase = turns if phase is None else phase.add_(turns)
            phase.mul_(2 * math.pi)
            weights = values[start:stop].T
            real[:, first:end] += weights @ torch.cos(phase)
            imag[:, first:end] -= weights @ phase.sin_()
    return torch.complex(real, imag)


def _mode_grid(k: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """Largest ``|k|`` per axis and the odd, centred mode grid ``-half .. half`` that holds every ``k``."""
    half = np.abs(k).max(axis=0)
    return half, tuple(2 * int(n) + 1 for n in half)  # Python ints: no int64 overflow for huge k


def _finufft(points: torch.Tensor, values: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The same sums by finufft's type-1 transform (``isign=-1``), picked out of the mode grid."""
    try:
        import finufft
    except ImportError:
        raise ImportError(FINUFFT_MISSING) from None
    k_np = k.cpu().numpy()
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

    ``points`` is ``(M, d)``, ``values`` ``(M, B)`` and ``k`` ``(K, d)`` int64, all
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
        Integer frequencies (wavevectors in 2D), of magnitude below ``2**63``.
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
        If shapes disagree, values are complex or empty, positions are NaN or
        inf, ``freqs`` are not integers or reach ``2**63`` in magnitude, or
        ``backend`` is unknown.
    ImportError
        For ``backend="finufft"`` without the ``finufft`` package.

    Notes
    -----
    The exact sum reduces ``k . x`` modulo 1 before the ``2*pi`` without
    losing precision to the size of ``k``: positions are reduced modulo 1,
    ``k`` is split into parts below ``2**27``, and each position into a part
    whose product with them is exact and a remainder below ``2**-27``. Every
    phase is within ``3 * d * 2**-51`` turns (about ``3e-16 * d``) of the true
    ``k . x mod 1`` for every integer ``|k| < 2**63`` (larger frequencies are
    refused), so each coefficient is exact to about ``1e-15 * mean(|y|)``
    plus float64 summation rounding, whatever ``k``. On the uniform grid
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

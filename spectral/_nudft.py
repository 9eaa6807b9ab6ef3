"""Exact non-uniform discrete Fourier transform of scattered samples."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._validation import positive_int, real_tensor

#: Elements of the ``(chunk, K)`` phase matrix built at once; bounds memory.
DEFAULT_CHUNK_ELEMENTS = 1 << 22


def _as_points(x: Any) -> torch.Tensor:
    points = real_tensor(x, "x")
    if points.ndim == 1:
        points = points[:, None]
    if points.ndim != 2 or points.shape[1] not in (1, 2):
        raise ValueError(f"x must have shape (M,) or (M, d) with d in (1, 2), got {tuple(points.shape)}")
    return points


def _as_frequencies(freqs: Any, ndim: int, device: torch.device) -> torch.Tensor:
    array = np.asarray(freqs.detach().cpu() if isinstance(freqs, torch.Tensor) else freqs)
    if array.size == 0:
        raise ValueError("freqs is empty")
    if array.dtype.kind not in "iuf" or not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
        raise ValueError("freqs must hold integers (cycles per unit length on [0, 1))")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] != ndim:
        raise ValueError(f"freqs must have shape (K,) or (K, {ndim}) to match x, got {np.shape(freqs)}")
    return torch.as_tensor(array, dtype=torch.float64, device=device)


def nudft(x: Any, y: Any, freqs: Any, *, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> Any:
    """Fourier coefficients of scattered samples, summed exactly.

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
        Largest ``(chunk, K)`` block formed at once; memory stays
        ``O(chunk_elements)`` whatever ``M * K``.

    Returns
    -------
    ndarray or torch.Tensor, complex, shape (K,)
        A tensor (complex128, on ``y``'s device) when ``y`` is a tensor, else a
        numpy array.

    Raises
    ------
    TypeError, ValueError
        If shapes disagree, values are complex or empty, or ``freqs`` are not
        integers.

    Notes
    -----
    Phases are computed in float64 from ``k . x`` reduced modulo 1, so the sum
    is exact to float64 rounding for any ``k``. On the uniform grid
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
    points = _as_points(x)
    values = real_tensor(y, "y")
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1 or values.shape[0] != points.shape[0]:
        raise ValueError(
            f"y must have shape (M,) or (M, 1) with M = {points.shape[0]} to match x, got {tuple(values.shape)}"
        )
    chunk_elements = positive_int(chunk_elements, "chunk_elements")
    device = values.device
    k = _as_frequencies(freqs, points.shape[1], device)
    points = points.to(device=device, dtype=torch.float64)
    values = values.to(torch.float64)
    chunk = max(1, chunk_elements // k.shape[0])
    real = torch.zeros(k.shape[0], dtype=torch.float64, device=device)
    imag = torch.zeros_like(real)
    for start in range(0, points.shape[0], chunk):
        turns = points[start : start + chunk] @ k.T
        phase = 2 * torch.pi * (turns - torch.floor(turns))
        weights = values[start : start + chunk]
        real += weights @ torch.cos(phase)
        imag -= weights @ torch.sin(phase)
    total = torch.complex(real, imag) / points.shape[0]
    return total if isinstance(y, torch.Tensor) else total.cpu().numpy()

"""Synthetic signals with known spectra on the unit domain ``[0, 1)^d``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._grid import Grid
from ._validation import non_negative_finite, optional_seed, positive_int

__all__ = ["SineSum", "PlaneWaveSum", "default_1d", "default_2d"]


def _points(x: Any, ndim: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if ndim == 1 and x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != ndim:
        raise ValueError(f"x must have shape (N, {ndim})" + (" or (N,)" if ndim == 1 else "") + f", got {x.shape}")
    return x


@dataclass(frozen=True)
class _WaveSum:
    """``f(x) = sum_j a_j * sin(2*pi * k_j . x + phi_j)`` with integer ``k_j``."""

    wavevectors: np.ndarray
    amplitudes: np.ndarray
    phases: np.ndarray = field(default=None)

    ndim = 0

    def __post_init__(self) -> None:
        k = np.asarray(self.wavevectors, dtype=np.float64)
        if k.ndim != (1 if self.ndim == 1 else 2) or (self.ndim == 2 and k.shape[1] != 2):
            shape = "(K,)" if self.ndim == 1 else "(K, 2)"
            raise ValueError(f"wavevectors must have shape {shape}, got {k.shape}")
        k = k.reshape(-1, self.ndim)
        a = np.asarray(self.amplitudes, dtype=np.float64).reshape(-1)
        phi = np.zeros_like(a) if self.phases is None else np.asarray(self.phases, dtype=np.float64).reshape(-1)
        if not (len(k) == len(a) == len(phi)) or len(a) == 0:
            raise ValueError("wavevectors, amplitudes and phases must have the same non-zero length")
        if not np.all(k == np.round(k)) or not np.all(np.isfinite(a)) or not np.all(np.isfinite(phi)):
            raise ValueError("wavevectors must be integers and amplitudes/phases finite (periodic on [0, 1))")
        object.__setattr__(self, "wavevectors", k)
        object.__setattr__(self, "amplitudes", a)
        object.__setattr__(self, "phases", phi)

    @property
    def max_frequency(self) -> float:
        """Largest ``|k|`` in cycles per unit length."""
        return float(np.max(np.linalg.norm(self.wavevectors, axis=1)))

    def __call__(self, x: Any) -> np.ndarray:
        """Values at ``(N, d)`` points, shape ``(N,)``."""
        x = _points(x, self.ndim)
        return np.sin(2 * np.pi * x @ self.wavevectors.T + self.phases) @ self.amplitudes

    def on_grid(self, grid: Grid) -> np.ndarray:
        """Values on ``grid``, shape ``grid.shape``."""
        if grid.ndim != self.ndim:
            raise ValueError(f"grid must be {self.ndim}D for this signal, got {grid.ndim}D")
        return self(grid.points).reshape(grid.shape)

    def sample(self, n: int, *, noise: float = 0.0, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Scattered training data: ``n`` uniform points and noisy values.

        Parameters
        ----------
        n : int
            Number of points, uniform on ``[0, 1)^d``.
        noise : float, default 0.0
            Standard deviation of additive Gaussian noise.
        seed : int, optional
            Seed of ``numpy.random.default_rng``.

        Returns
        -------
        x : ndarray, shape (n, d)
        y : ndarray, shape (n,)
        """
        n = positive_int(n, "n")
        noise = non_negative_finite(noise, "noise")
        rng = np.random.default_rng(optional_seed(seed))
        x = rng.uniform(size=(n, self.ndim))
        return x, self(x) + noise * rng.standard_normal(n)


class SineSum(_WaveSum):
    """1D sum of sinusoids ``sum_j a_j sin(2 pi k_j x + phi_j)`` on ``[0, 1)``.

    Examples
    --------
    >>> from spectral.signals import SineSum
    >>> f = SineSum([1, 4], [1.0, 0.5])
    >>> x, y = f.sample(8, noise=0.1, seed=0)
    >>> x.shape, y.shape
    ((8, 1), (8,))
    """

    ndim = 1


class PlaneWaveSum(_WaveSum):
    """2D sum of plane waves ``sum_j a_j sin(2 pi k_j . x + phi_j)`` on ``[0, 1)^2``.

    ``wavevectors`` has shape ``(K, 2)``, ordered ``(k_y, k_x)`` to match the
    grid's row-major points ``(y, x)``.
    """

    ndim = 2


def default_1d() -> SineSum:
    """The built-in 1D signal: frequencies 1, 3 and 5 with decreasing amplitude."""
    return SineSum([1, 3, 5], [1.0, 0.5, 0.25], [0.0, 0.7, 1.9])


def default_2d() -> PlaneWaveSum:
    """The built-in 2D signal: three plane waves with ``|k| <= 3``."""
    return PlaneWaveSum([[1, 0], [1, 2], [-2, 1]], [1.0, 0.5, 0.3], [0.0, 0.9, 2.1])

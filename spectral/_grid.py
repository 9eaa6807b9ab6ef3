"""Uniform periodic grids on which learned functions are sampled."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ._validation import positive_finite, positive_int


@dataclass(frozen=True)
class Grid:
    """A periodic grid on ``[0, extent)^d``, endpoint excluded.

    Build one with :meth:`Grid.uniform`.

    Attributes
    ----------
    shape : tuple of int
        Samples per axis, ``(n,)`` in 1D or ``(h, w)`` in 2D.
    extent : float
        Length of the domain along every axis.
    """

    shape: tuple[int, ...]
    extent: float = 1.0

    @classmethod
    def uniform(cls, shape: int | tuple[int, ...], *, extent: float = 1.0) -> Grid:
        """Return a uniform periodic grid.

        Parameters
        ----------
        shape : int or tuple of one or two ints
            Samples per axis. An int means 1D.
        extent : float, default 1.0
            Domain length; points are ``i * extent / n`` for ``i < n``.

        Raises
        ------
        TypeError, ValueError
            If ``shape`` is not one or two positive ints or ``extent`` is not
            positive and finite.

        Examples
        --------
        >>> from spectral import Grid
        >>> Grid.uniform(4).points[:, 0]
        array([0.  , 0.25, 0.5 , 0.75])
        >>> Grid.uniform((2, 3)).points.shape
        (6, 2)
        """
        if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
            shape = (shape,)
        if not isinstance(shape, (tuple, list)) or len(shape) not in (1, 2):
            raise ValueError(f"shape must be an int or a tuple of one or two ints, got {shape!r}")
        shape = tuple(positive_int(n, "shape") for n in shape)
        return cls(shape=shape, extent=positive_finite(extent, "extent"))

    @property
    def ndim(self) -> int:
        """Number of dimensions, 1 or 2."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of points ``N``."""
        return int(np.prod(self.shape))

    def axes(self) -> list[np.ndarray]:
        """Coordinates along each axis (float64)."""
        return [np.arange(n) * (self.extent / n) for n in self.shape]

    @property
    def points(self) -> np.ndarray:
        """``(N, d)`` float64 coordinates, row-major over ``shape``."""
        mesh = np.meshgrid(*self.axes(), indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)

"""Uniform periodic grids on which learned functions are sampled."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import positive_finite, positive_int


def per_axis(value: Any, ndim: int, name: str = "extent") -> tuple[Any, ...]:
    """``value`` repeated over ``ndim`` axes, or ``value`` itself when it already has one entry per axis."""
    if isinstance(value, (tuple, list)):
        if len(value) != ndim:
            raise ValueError(f"{name} must have one entry per axis ({ndim}), got {value!r}")
        return tuple(value)
    return (value,) * ndim


def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must hold real numbers, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def check_axis(points: int, lower: float, length: float, name: str) -> None:
    """Refuse an axis whose ``points`` samples on ``[lower, lower + length)`` are not distinct finite floats,
    or whose frequencies ``k / length`` (cycles per unit length) overflow, with a ValueError naming ``name``.

    Examples
    --------
    >>> from spectral._grid import check_axis
    >>> check_axis(8, 0.0, 5e-324, "extent")
    Traceback (most recent call last):
    ...
    ValueError: extent gives 8 points on [0.0, 5e-324) that are not distinct finite floats (spacing 0); widen or move the domain
    """
    with np.errstate(all="ignore"):  # an infinite length: refused just below
        spacing, upper = length / points, lower + length
    # Each point lower + fl(i * spacing) is within 2 ulps of the largest coordinate of its true value:
    # a spacing above 8 of them keeps the points in order, distinct and below upper.
    if not (math.isfinite(upper) and spacing > 8 * math.ulp(max(abs(lower), abs(upper)))):
        raise ValueError(f"{name} gives {points} points on [{lower!r}, {upper!r}) that are not distinct "
                         f"finite floats (spacing {spacing:g}); widen or move the domain")
    if not math.isfinite(points / length):
        raise ValueError(f"{name} gives a domain of length {length:g}, whose frequencies (up to {points} / "
                         f"{length:g} cycles per unit length) overflow float64; widen the domain")


def _collapse(values: tuple[float, ...]) -> float | tuple[float, ...]:
    """One float when every axis agrees (what spectra and histories read), else the per-axis tuple."""
    return values[0] if len(set(values)) == 1 else values


def _bounds_per_axis(bounds: Any, ndim: int) -> tuple[tuple[float, float], ...]:
    """``(lo, hi)`` for every axis from one pair or one pair per axis; refuses ``hi <= lo``."""
    pairs = (bounds,) * ndim
    if isinstance(bounds, (tuple, list)) and bounds and all(isinstance(b, (tuple, list)) for b in bounds):
        pairs = tuple(bounds)
    if len(pairs) != ndim or not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs):
        raise ValueError(f"bounds must be one (lo, hi) pair or one pair per axis ({ndim}), got {bounds!r}")
    checked = tuple((_finite(lo, "bounds"), _finite(hi, "bounds")) for lo, hi in pairs)
    for lo, hi in checked:
        if hi <= lo:
            raise ValueError(f"bounds must have hi > lo on every axis, got {bounds!r}")
    return checked


@dataclass(frozen=True)
class Grid:
    """A periodic grid on ``[lo, hi)`` per axis, endpoint excluded.

    Build one with :meth:`Grid.uniform`. Frequencies on the grid are in
    cycles per unit length: bin ``k`` of axis ``i`` is ``k / extent_i``,
    wherever the domain starts.

    Attributes
    ----------
    shape : tuple of int
        Samples per axis, ``(n,)`` in 1D or ``(h, w)`` in 2D.
    extent : float or tuple of float
        Length of the domain: one float when every axis has the same length,
        else one length per axis (a rectangle); :func:`spectrum`,
        :class:`SpectrumProbe` and :class:`SpectrumHistory` take either.
    origin : float or tuple of float
        Lower bound of the domain, one float for every axis or one per axis.

    Raises
    ------
    TypeError, ValueError
        On construction, naming the field, if ``shape`` is not a tuple of one
        or two positive ints, an ``extent`` is not positive and finite, an
        ``origin`` is not finite, the points of an axis are not distinct
        finite floats, or its frequencies ``k / extent`` overflow.

    Examples
    --------
    >>> from spectral import Grid
    >>> Grid(shape=(4,), extent=2.0).points[:, 0]
    array([0. , 0.5, 1. , 1.5])
    """

    shape: tuple[int, ...]
    extent: float | tuple[float, ...] = 1.0
    origin: float | tuple[float, ...] = 0.0

    def __post_init__(self) -> None:
        shape = self.shape
        if not isinstance(shape, (tuple, list)) or len(shape) not in (1, 2):
            raise (ValueError if isinstance(shape, (tuple, list)) else TypeError)(
                f"shape must be a tuple of one or two ints, got {shape!r}; Grid.uniform also takes an int"
            )
        shape = tuple(positive_int(n, "shape") for n in shape)
        extent = tuple(positive_finite(e, "extent") for e in per_axis(self.extent, len(shape), "extent"))
        origin = tuple(_finite(o, "origin") for o in per_axis(self.origin, len(shape), "origin"))
        for n, lower, length in zip(shape, origin, extent):
            check_axis(n, lower, length, "extent")
        # Frozen: the normalised fields are written once, here.
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "extent", _collapse(extent))
        object.__setattr__(self, "origin", _collapse(origin))

    @classmethod
    def uniform(cls, shape: int | tuple[int, ...], *, extent: float | tuple[float, ...] | None = None,
                bounds: Any = None) -> Grid:
        """Return a uniform periodic grid.

        Parameters
        ----------
        shape : int or tuple of one or two ints
            Samples per axis. An int means 1D.
        extent : float or tuple of floats, optional
            Domain length, one for every axis or one per axis; the domain is
            ``[0, extent)``. Default 1.0. Give ``extent`` or ``bounds``, not both.
        bounds : (lo, hi) or sequence of (lo, hi), optional
            The domain ``[lo, hi)``: one pair for every axis, or one pair per
            axis for a rectangle. Points are ``lo + i * (hi - lo) / n`` for
            ``i < n``.

        Raises
        ------
        TypeError, ValueError
            If ``shape`` is not one or two positive ints, ``extent`` is not
            positive and finite, ``bounds`` are not finite pairs with
            ``hi > lo``, or both ``extent`` and ``bounds`` are given; if the
            points would not be distinct floats (``Grid.uniform(8,
            bounds=(0, 5e-324))``) or the frequencies ``k / extent`` would
            overflow (``extent=1e-320``).

        Examples
        --------
        >>> from spectral import Grid
        >>> Grid.uniform(4).points[:, 0]
        array([0.  , 0.25, 0.5 , 0.75])
        >>> Grid.uniform(4, bounds=(-1, 1)).points[:, 0]
        array([-1. , -0.5,  0. ,  0.5])
        >>> grid = Grid.uniform((2, 3), bounds=[(0, 1), (-3, 3)])
        >>> grid.extent, grid.bounds
        ((1.0, 6.0), ((0.0, 1.0), (-3.0, 3.0)))
        """
        if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
            shape = (shape,)
        if not isinstance(shape, (tuple, list)):
            raise TypeError(f"shape must be an int or a tuple of one or two ints, got {shape!r}")
        if bounds is None:
            return cls(shape=tuple(shape), extent=1.0 if extent is None else extent)
        if extent is not None:
            raise ValueError("give extent or bounds, not both")
        if len(shape) not in (1, 2):
            raise ValueError(f"shape must be an int or a tuple of one or two ints, got {shape!r}")
        pairs = _bounds_per_axis(bounds, len(shape))
        for n, (lower, upper) in zip(shape, pairs):
            check_axis(positive_int(n, "shape"), lower, upper - lower, "bounds")
        return cls(shape=tuple(shape), extent=tuple(hi - lo for lo, hi in pairs), origin=tuple(lo for lo, _ in pairs))

    @property
    def ndim(self) -> int:
        """Number of dimensions, 1 or 2."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of points ``N``."""
        return int(np.prod(self.shape))

    @property
    def lengths(self) -> tuple[float, ...]:
        """Domain length per axis."""
        return per_axis(self.extent, self.ndim, "extent")

    @property
    def lower(self) -> tuple[float, ...]:
        """Lower bound of the domain per axis."""
        return per_axis(self.origin, self.ndim, "origin")

    @property
    def bounds(self) -> tuple[tuple[float, float], ...]:
        """``(lo, hi)`` per axis; ``hi`` itself is not a grid point."""
        return tuple((lo, lo + length) for lo, length in zip(self.lower, self.lengths))

    def axes(self) -> list[np.ndarray]:
        """Coordinates along each axis (float64): ``lo + i * extent / n``."""
        return [lo + np.arange(n) * (length / n) for n, lo, length in zip(self.shape, self.lower, self.lengths)]

    @property
    def points(self) -> np.ndarray:
        """``(N, d)`` float64 coordinates, row-major over ``shape``."""
        mesh = np.meshgrid(*self.axes(), indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)

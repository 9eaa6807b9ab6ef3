"""The record of spectra a :class:`SpectrumProbe` takes over training."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._grid import Grid
from ._protocol import History
from ._spectrum import (
    Extent,
    frequency_magnitude,
    high_frequency_fraction,
    radial_profile,
    spectrum_freqs,
    window_array,
)

#: Most grid points a history without records may declare: with no spectra to check its shape against,
#: a crafted file could otherwise make ``load`` allocate its window (or ``freqs``) without bound.
MAX_POINTS_WITHOUT_RECORDS = 2**24


class SpectrumHistory(History):
    """Spectra recorded over training, one row per record.

    Built by :class:`SpectrumProbe`; read back with :meth:`load`. Each array
    is in its own natural normalisation under a window: ``amplitude`` as
    :func:`spectrum` with ``scaling="amplitude"`` (a sinusoid on a bin reads
    its amplitude), ``power`` as with ``scaling="power"`` (Parseval: a
    record's power sums to the mean square of the windowed, renormalised
    values, which the high-frequency fraction and band powers divide up).
    Without a window the two scalings agree.

    Parameters
    ----------
    shape : tuple of int
        Grid shape, ``(n,)`` or ``(h, w)``.
    extent : float or tuple of float
        Domain length, one for every axis or one per axis.
    window : str, tuple or None
        Window used for every record.
    target_freqs : ndarray, optional
        Frequencies where the target has power; None without a target.

    Attributes
    ----------
    shape : tuple of int
        Grid shape.
    extent : float or tuple of float
        Domain length: one float when every axis has the same length, else one per axis.
    window : str, tuple or None
        Window used for every record.
    target_freqs : ndarray or None
        Frequencies where the target has power, ``(K,)`` in 1D or ``(K, 2)``
        (``(f_y, f_x)``) in 2D, cycles per unit length; None without a target.

    Notes
    -----
    Schema ``spectral.SpectrumHistory`` version 3 (the extent may be one
    length per axis); files of versions 1 (labels as a numpy string array)
    and 2 are read too.
    """

    FORMAT = "spectral.SpectrumHistory"
    SCHEMA_VERSION = 3
    READS_SCHEMA_VERSIONS = (1, 2, 3)

    def __init__(self, shape: tuple[int, ...], extent: Extent, window: Any = None,
                 target_freqs: np.ndarray | None = None) -> None:
        grid = Grid(shape=tuple(shape), extent=extent)  # checked, naming the field
        self.shape, self.extent = grid.shape, grid.extent
        self.window = tuple(window) if isinstance(window, list) else window
        self.target_freqs = target_freqs
        super().__init__()

    def _layout(self) -> dict[str, tuple[tuple[int, ...], type]]:
        bins = (self.shape[0] // 2 + 1,) if len(self.shape) == 1 else self.shape
        layout = {"amplitude": (bins, np.float64), "power": (bins, np.float64)}
        if self.target_freqs is not None:
            layout["relative_error"] = ((len(self.target_freqs),), np.float64)
        return layout

    def _configuration(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        window = list(self.window) if isinstance(self.window, tuple) else self.window
        extent = list(self.extent) if isinstance(self.extent, tuple) else self.extent
        fixed = {} if self.target_freqs is None else {"target_freqs": np.asarray(self.target_freqs, dtype=np.float64)}
        return {"shape": list(self.shape), "extent": extent, "window": window}, fixed

    @classmethod
    def _from_configuration(cls, metadata: dict[str, Any], arrays: dict[str, np.ndarray]) -> SpectrumHistory:
        extent = metadata["extent"]
        grid = Grid(shape=tuple(metadata["shape"]), extent=tuple(extent) if isinstance(extent, list) else extent)
        target = arrays.get("target_freqs")
        if target is not None and (target.dtype.kind != "f" or target.ndim != grid.ndim
                                   or target.shape[1:] != ((2,) if grid.ndim == 2 else ())):
            raise ValueError(f"array 'target_freqs' has shape {target.shape} and dtype {target.dtype}, "
                             f"expected (K,{' 2' if grid.ndim == 2 else ''}) floats")
        return cls(grid.shape, grid.extent, metadata["window"], target)

    @classmethod
    def _read_labels(cls, arrays: dict[str, np.ndarray], metadata: dict[str, Any]) -> list[str]:
        if metadata["schema_version"] > 1:
            return super()._read_labels(arrays, metadata)
        labels = arrays["labels"]  # version 1: a numpy string array (it drops trailing NULs)
        if labels.dtype.kind != "U":
            raise ValueError(f"array 'labels' has dtype {labels.dtype}, expected str")
        return labels.tolist()

    def _check_loaded(self, records: int) -> None:
        size = int(np.prod(self.shape))
        if records == 0 and size > MAX_POINTS_WITHOUT_RECORDS:
            raise ValueError(f"shape {self.shape} has {size} points; a history without records may have at most "
                             f"{MAX_POINTS_WITHOUT_RECORDS}")
        window_array(self.window, self.shape)  # now bounded: the grid matches spectra read from the file

    @property
    def freqs(self) -> Any:
        """Frequency axes, as in :attr:`Spectrum.freqs`."""
        return spectrum_freqs(self.shape, self.extent)

    @property
    def amplitude(self) -> np.ndarray:
        """``(R, *bins)`` amplitudes, coherent-gain normalised (NaN rows where the record is not finite)."""
        return self._array("amplitude")

    @property
    def power(self) -> np.ndarray:
        """``(R, *bins)`` power per bin, Parseval normalised (NaN rows where the record is not finite)."""
        return self._array("power")

    def high_frequency_fraction(self, cutoff: float) -> np.ndarray:
        """``(R,)`` fraction of non-DC power above ``cutoff`` cycles per unit length."""
        return high_frequency_fraction(self.power, frequency_magnitude(self.shape, self.extent), cutoff)

    def radial(self) -> tuple[np.ndarray, np.ndarray]:
        """``(radii, power)`` ring sums for every record, ``power`` of shape ``(R, rings)`` (2D only).

        Rings as in :meth:`Spectrum.radial`, of the Parseval-normalised power.
        """
        if len(self.shape) != 2:
            raise ValueError("radial() needs a 2D history; this one is 1D")
        return radial_profile(self.power, self.extent)

    def relative_error(self) -> np.ndarray:
        """``(R, K)`` frequency-principle error ``|F[h](k) - F[f](k)| / |F[f](k)|``.

        Columns follow :attr:`target_freqs`. Raises ``ValueError`` when the
        probe had no target.
        """
        if self.target_freqs is None:
            raise ValueError("relative_error() needs a probe built with target=...")
        return self._array("relative_error")

"""The record of spectra a probe takes over training."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ._grid import Grid
from ._io import load_npz, save_npz
from ._spectrum import frequency_axes, frequency_magnitude, high_frequency_fraction, radial_profile, window_array

FORMAT = "spectral.SpectrumHistory"
SCHEMA_VERSION = 1


class SpectrumHistory:
    """Spectra recorded over training, one row per record.

    Built by :class:`SpectrumProbe`; read back with :meth:`load`.

    Attributes
    ----------
    shape : tuple of int
        Grid shape.
    extent : float
        Domain length.
    window : str, tuple or None
        Window used for every record.
    target_freqs : ndarray or None
        Frequencies where the target has power, ``(K,)`` in 1D or ``(K, 2)``
        (``(f_y, f_x)``) in 2D, cycles per unit length; None without a target.
    """

    def __init__(self, shape: tuple[int, ...], extent: float, window: Any = None,
                 target_freqs: np.ndarray | None = None) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.extent = float(extent)
        self.window = tuple(window) if isinstance(window, list) else window
        self.target_freqs = target_freqs
        self._rows: dict[str, list] = {key: [] for key in ("steps", "labels", "amplitude", "power", "finite", "relative_error")}
        self._arrays: dict[str, np.ndarray] = {}

    def append(self, step: int, label: str, amplitude: np.ndarray, power: np.ndarray, finite: bool,
               relative_error: np.ndarray | None = None) -> None:
        """Add one record (used by probes)."""
        for key, value in (("steps", int(step)), ("labels", str(label)), ("amplitude", amplitude),
                           ("power", power), ("finite", bool(finite)), ("relative_error", relative_error)):
            self._rows[key].append(value)
        self._arrays.clear()

    def __len__(self) -> int:
        return len(self._rows["steps"])

    def _array(self, key: str, empty_shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        if key not in self._arrays:
            rows = self._rows[key]
            self._arrays[key] = np.array(rows, dtype=dtype) if rows else np.empty((0,) + empty_shape, dtype)
        return self._arrays[key]

    @property
    def freqs(self) -> Any:
        """Frequency axes, as in :attr:`Spectrum.freqs`."""
        axes = frequency_axes(self.shape, self.extent)
        return axes[0] if len(axes) == 1 else tuple(axes)

    @property
    def _bins(self) -> tuple[int, ...]:
        return (self.shape[0] // 2 + 1,) if len(self.shape) == 1 else self.shape

    @property
    def steps(self) -> np.ndarray:
        """``(R,)`` int64 training steps of the records."""
        return self._array("steps", (), np.int64)

    @property
    def labels(self) -> np.ndarray:
        """``(R,)`` str labels; ``""`` for records taken by ``update``."""
        return self._array("labels", (), str)

    @property
    def amplitude(self) -> np.ndarray:
        """``(R, *bins)`` amplitudes (NaN rows where the model was not finite)."""
        return self._array("amplitude", self._bins, np.float64)

    @property
    def power(self) -> np.ndarray:
        """``(R, *bins)`` power per bin (NaN rows where the model was not finite)."""
        return self._array("power", self._bins, np.float64)

    @property
    def finite(self) -> np.ndarray:
        """``(R,)`` bool: False where the model produced NaN or inf."""
        return self._array("finite", (), bool)

    def high_frequency_fraction(self, cutoff: float) -> np.ndarray:
        """``(R,)`` fraction of non-DC power above ``cutoff`` cycles per unit length."""
        return high_frequency_fraction(self.power, frequency_magnitude(self.shape, self.extent), cutoff)

    def radial(self) -> tuple[np.ndarray, np.ndarray]:
        """``(radii, power)`` ring sums for every record, ``power`` of shape ``(R, rings)`` (2D only)."""
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
        return self._array("relative_error", (len(self.target_freqs),), np.float64)

    def index(self, label: str) -> int:
        """Row of the last record with ``label``; ``KeyError`` if there is none."""
        matches = np.flatnonzero(self.labels == label)
        if not len(matches):
            raise KeyError(f"no record labelled {label!r}; labels are {sorted(set(self.labels) - {''})}")
        return int(matches[-1])

    def save(self, path: str | os.PathLike) -> None:
        """Write the history atomically as ``.npz`` (no pickle) with JSON metadata.

        The file is written exactly at ``path`` (no extension is added).
        """
        arrays = {"steps": self.steps, "labels": self.labels, "amplitude": self.amplitude,
                  "power": self.power, "finite": self.finite}
        if self.target_freqs is not None:
            arrays["target_freqs"] = np.asarray(self.target_freqs, dtype=np.float64)
            arrays["relative_error"] = self.relative_error()
        window = list(self.window) if isinstance(self.window, tuple) else self.window
        metadata = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "shape": list(self.shape),
                    "extent": self.extent, "window": window}
        save_npz(path, arrays, metadata)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SpectrumHistory:
        """Read a history written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If ``path`` is not a spectrum history (corrupt, truncated, foreign,
            pickle-bearing, another schema version, or inconsistent arrays).
        """
        arrays, metadata = load_npz(path, kind=FORMAT, schema_version=SCHEMA_VERSION)
        try:
            history = _checked(arrays, metadata)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"path={str(path)!r} is not a consistent spectrum history: {error}") from None
        rows = len(arrays["steps"])
        for i in range(rows):
            error_row = arrays["relative_error"][i] if history.target_freqs is not None else None
            history.append(arrays["steps"][i], arrays["labels"][i], arrays["amplitude"][i],
                           arrays["power"][i], arrays["finite"][i], error_row)
        return history


#: Array name -> dtype kinds it may have on disk.
_KINDS = {"steps": "iu", "labels": "U", "amplitude": "f", "power": "f", "finite": "b", "relative_error": "f",
          "target_freqs": "f"}


def _checked(arrays: dict[str, np.ndarray], metadata: dict[str, Any]) -> SpectrumHistory:
    """A history shell from loaded arrays and metadata, after checking they agree; raises on any mismatch."""
    grid = Grid.uniform(tuple(metadata["shape"]), extent=metadata["extent"])
    window_array(metadata["window"], grid.shape)
    history = SpectrumHistory(grid.shape, grid.extent, metadata["window"], arrays.get("target_freqs"))
    rows = len(arrays["steps"])
    shapes = {"steps": (rows,), "labels": (rows,), "amplitude": (rows,) + history._bins,
              "power": (rows,) + history._bins, "finite": (rows,)}
    if history.target_freqs is not None:
        shapes["target_freqs"] = (len(history.target_freqs),) + ((2,) if len(grid.shape) == 2 else ())
        shapes["relative_error"] = (rows, len(history.target_freqs))
    for key, shape in shapes.items():
        if arrays[key].shape != shape or arrays[key].dtype.kind not in _KINDS[key]:
            raise ValueError(f"array {key!r} has shape {arrays[key].shape} and dtype {arrays[key].dtype}, "
                             f"expected shape {shape}")
    return history

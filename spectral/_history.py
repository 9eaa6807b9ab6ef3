"""The record of spectra a probe takes over training."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ._grid import Grid
from ._io import load_npz, save_npz
from ._spectrum import frequency_axes, frequency_magnitude, high_frequency_fraction, radial_profile, window_array
from ._validation import INT64_MAX, INT64_MIN

FORMAT = "spectral.SpectrumHistory"
#: Version 2 keeps the labels in the JSON metadata (numpy strings drop trailing NULs); version 1 files are read too.
SCHEMA_VERSION = 2
READS_SCHEMA_VERSIONS = (1, 2)
#: Most grid points a history without records may declare: with no spectra to check its shape against,
#: a crafted file could otherwise make ``load`` allocate its window (or ``freqs``) without bound.
MAX_POINTS_WITHOUT_RECORDS = 2**24


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
        """``(R,)`` object array of str labels; ``""`` for records taken by ``update``.

        An object array, because numpy's fixed-width strings drop trailing NUL characters.
        """
        return self._array("labels", (), object)

    @property
    def amplitude(self) -> np.ndarray:
        """``(R, *bins)`` amplitudes (NaN rows where the record is not finite)."""
        return self._array("amplitude", self._bins, np.float64)

    @property
    def power(self) -> np.ndarray:
        """``(R, *bins)`` power per bin (NaN rows where the record is not finite)."""
        return self._array("power", self._bins, np.float64)

    @property
    def finite(self) -> np.ndarray:
        """``(R,)`` bool: False where the model produced NaN or inf or its spectrum overflowed.

        A record with ``finite`` True has finite amplitudes, power and relative errors.
        """
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
        # Compared as Python strings: numpy would turn ``label`` into a fixed-width string and drop trailing NULs.
        matches = [row for row, found in enumerate(self._rows["labels"]) if found == label]
        if not matches:
            raise KeyError(f"no record labelled {label!r}; labels are {sorted(set(self.labels) - {''})}")
        return matches[-1]

    def save(self, path: str | os.PathLike) -> Path:
        """Write the history atomically as ``.npz`` (no pickle) with JSON metadata.

        Like :func:`numpy.savez`, ``.npz`` is appended to a ``path`` that does
        not end in it. Returns the path written.
        """
        arrays = {"steps": self.steps, "amplitude": self.amplitude, "power": self.power, "finite": self.finite}
        if self.target_freqs is not None:
            arrays["target_freqs"] = np.asarray(self.target_freqs, dtype=np.float64)
            arrays["relative_error"] = self.relative_error()
        window = list(self.window) if isinstance(self.window, tuple) else self.window
        metadata = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "shape": list(self.shape),
                    "extent": self.extent, "window": window, "labels": self.labels.tolist()}
        return save_npz(path, arrays, metadata)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SpectrumHistory:
        """Read a history written by :meth:`save` (schema version 1 or 2).

        Sizes declared in the file are checked against its real size before
        anything is allocated (see :func:`spectral._io.load_npz`); a history
        without records may declare at most ``MAX_POINTS_WITHOUT_RECORDS``
        grid points.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If ``path`` is not a spectrum history (not a regular file, corrupt,
            truncated, crafted, foreign, pickle-bearing, another schema version,
            or inconsistent arrays).
        """
        arrays, metadata = load_npz(path, kind=FORMAT, schema_version=READS_SCHEMA_VERSIONS)
        try:
            history, labels = _checked(arrays, metadata)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"path={str(path)!r} is not a consistent spectrum history: {error}") from None
        for i, label in enumerate(labels):
            error_row = arrays["relative_error"][i] if history.target_freqs is not None else None
            history.append(arrays["steps"][i], label, arrays["amplitude"][i], arrays["power"][i],
                           arrays["finite"][i], error_row)
        return history


#: Array name -> dtype kinds it may have on disk.
_KINDS = {"steps": "iu", "labels": "U", "amplitude": "f", "power": "f", "finite": "b", "relative_error": "f",
          "target_freqs": "f"}


def _labels(arrays: dict[str, np.ndarray], metadata: dict[str, Any]) -> list[str]:
    """The labels: a JSON list in version 2, a numpy string array in version 1."""
    if metadata["schema_version"] == 1:
        labels = arrays["labels"]
        if labels.dtype.kind != "U":
            raise ValueError(f"array 'labels' has dtype {labels.dtype}, expected str")
        return labels.tolist()
    labels = metadata["labels"]
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise ValueError("metadata 'labels' must be a list of str")
    return labels


def _checked(arrays: dict[str, np.ndarray], metadata: dict[str, Any]) -> tuple[SpectrumHistory, list[str]]:
    """A history shell and its labels from loaded arrays and metadata, after checking they agree; raises otherwise."""
    grid = Grid.uniform(tuple(metadata["shape"]), extent=metadata["extent"])
    history = SpectrumHistory(grid.shape, grid.extent, metadata["window"], arrays.get("target_freqs"))
    labels = _labels(arrays, metadata)
    rows = len(arrays["steps"])
    shapes = {"steps": (rows,), "amplitude": (rows,) + history._bins, "power": (rows,) + history._bins,
              "finite": (rows,)}
    if history.target_freqs is not None:
        shapes["target_freqs"] = (len(history.target_freqs),) + ((2,) if len(grid.shape) == 2 else ())
        shapes["relative_error"] = (rows, len(history.target_freqs))
    for key, shape in shapes.items():
        if arrays[key].shape != shape or arrays[key].dtype.kind not in _KINDS[key]:
            raise ValueError(f"array {key!r} has shape {arrays[key].shape} and dtype {arrays[key].dtype}, "
                             f"expected shape {shape}")
    if len(labels) != rows:
        raise ValueError(f"{len(labels)} labels for {rows} records")
    if rows == 0 and grid.size > MAX_POINTS_WITHOUT_RECORDS:
        raise ValueError(f"shape {grid.shape} has {grid.size} points; a history without records may have at most "
                         f"{MAX_POINTS_WITHOUT_RECORDS}")
    if rows and not INT64_MIN <= int(arrays["steps"].min()) <= int(arrays["steps"].max()) <= INT64_MAX:
        raise ValueError("array 'steps' holds steps outside the int64 range")
    spectra = [key for key in ("amplitude", "power", "relative_error") if key in shapes]
    if not all(np.isfinite(arrays[key][arrays["finite"]]).all() for key in spectra):
        raise ValueError("records flagged finite hold NaN or inf")
    window_array(metadata["window"], grid.shape)  # now bounded: the grid matches spectra read from the file
    return history, labels

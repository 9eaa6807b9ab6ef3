"""What every probe and every history share: the probe protocol, the record layout and its file format.

Every probe (:class:`~spectral.SpectrumProbe`, :class:`~spectral.BatchSpectrumProbe`,
:class:`~spectral.FilterProbe`, :class:`~spectral.ProjectionProbe`,
:class:`spectral.precision.LostUpdateProbe`) is a :class:`Probe`:

* ``update(*data, step) -> bool`` records when ``step % every == 0`` and says
  whether it did; call it on every training step.
* ``snapshot(*data, label, step=None)`` records unconditionally, with a
  non-empty ``label`` such as ``"before shrink"``; ``step`` defaults to the last
  step given to ``update`` (0 before any).
* ``reset()`` starts a new, empty history and keeps the configuration (the
  old history object is left as it was).
* ``history`` is the record so far, a :class:`History`; ``every`` the spacing.

``data`` is what the probe measures: a model for the probes that evaluate
one, the training inputs, outputs and targets for :class:`~spectral.BatchSpectrumProbe`,
nothing for :class:`~spectral.precision.LostUpdateProbe`.

Every history (``SpectrumHistory``, ``BatchSpectrumHistory``, ``FilterHistory``,
``ProjectionHistory``, ``LostUpdateHistory``) is a :class:`History`: one row per
record with its ``steps``, ``labels`` and ``finite`` flag, per-record arrays of
its own, and one file format (:meth:`History.save`, :meth:`History.load`).
"""

from __future__ import annotations

import abc
import copy
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from ._io import load_npz, save_npz
from ._repr import HistoryRepr
from ._validation import INT64_MAX, INT64_MIN, int64, positive_int

if TYPE_CHECKING:
    from typing_extensions import Self

def ratio(numerator: Any, denominator: Any) -> np.ndarray:
    """``numerator / denominator`` as float64, NaN where the denominator is not positive.

    Examples
    --------
    >>> from spectral.precision import ratio
    >>> ratio([1, 3], [2, 0]).tolist()
    [0.5, nan]
    """
    numerator, denominator = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


class History(HistoryRepr, abc.ABC):
    """Records taken over training, one row per record; the base of every probe's history.

    Every record has a step (int64), a label (``""`` for records taken by
    ``update``) and a ``finite`` flag, plus the arrays a subclass lays out in
    :meth:`_layout`. Subclasses set their configuration, then call
    ``super().__init__()``.

    File format: one ``.npz`` (never pickle) holding ``steps``, ``finite``, the
    per-record arrays and the subclass's fixed arrays, plus JSON metadata with
    the schema name ``format`` (e.g. ``"spectral.FilterHistory"``), its
    ``schema_version``, the ``labels`` and the subclass's configuration.
    """

    #: Schema name written as the metadata's ``format``.
    FORMAT: ClassVar[str]
    #: Schema version written.
    SCHEMA_VERSION: ClassVar[int] = 1
    #: Schema versions :meth:`load` reads.
    READS_SCHEMA_VERSIONS: ClassVar[tuple[int, ...]] = (1,)

    def __init__(self) -> None:
        self._rows: dict[str, list] = {key: [] for key in ("steps", "labels", "finite", *self._layout())}
        self._arrays: dict[str, np.ndarray] = {}

    @abc.abstractmethod
    def _layout(self) -> dict[str, tuple[tuple[int, ...], type]]:
        """Per-record arrays: name -> (shape of one record, ``np.float64`` or ``np.int64``)."""

    @abc.abstractmethod
    def _configuration(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """What :meth:`_from_configuration` needs to rebuild an empty copy: JSON metadata and fixed arrays."""

    @classmethod
    @abc.abstractmethod
    def _from_configuration(cls, metadata: dict[str, Any], arrays: dict[str, np.ndarray]) -> History:
        """An empty history from a file's metadata and arrays; raises KeyError, TypeError or ValueError."""

    def _check_loaded(self, records: int) -> None:
        """Checks a subclass needs once a file's arrays are known to fit its layout (``records`` rows)."""

    @classmethod
    def _read_labels(cls, arrays: dict[str, np.ndarray], metadata: dict[str, Any]) -> list[str]:
        """The labels of a file: a JSON list of str in the metadata."""
        labels = metadata["labels"]
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            raise ValueError("metadata 'labels' must be a list of str")
        return labels

    def append(self, step: int, label: str, finite: bool, **rows: Any) -> None:
        """Add one record (used by probes): its step, label, finite flag and one value per per-record array."""
        layout = self._layout()
        if set(rows) != set(layout):
            raise TypeError(f"append() needs the arrays {sorted(layout)}, got {sorted(rows)}")
        self._rows["steps"].append(int(step))
        self._rows["labels"].append(str(label))
        self._rows["finite"].append(bool(finite))
        for key, (_, dtype) in layout.items():
            self._rows[key].append(np.asarray(rows[key], dtype=dtype))
        self._arrays.clear()

    def append_filled(self, step: int, label: str, finite: bool, fill: float) -> None:
        """Add a record whose every array holds ``fill``.

        NaN with ``finite`` False records a measurement that held NaN or inf;
        0 with ``finite`` True a record that measured nothing (an event).
        """
        self.append(step, label, finite, **{key: np.full(shape, fill, dtype)
                                            for key, (shape, dtype) in self._layout().items()})

    def __len__(self) -> int:
        return len(self._rows["steps"])

    def _array(self, key: str) -> np.ndarray:
        """The records' values of ``key`` stacked into one array (cached until the next append)."""
        if key not in self._arrays:
            shape, dtype = {"steps": ((), np.int64), "labels": ((), object), "finite": ((), bool),
                            **self._layout()}[key]
            rows = self._rows[key]
            self._arrays[key] = np.array(rows, dtype=dtype) if rows else np.empty((0, *shape), dtype)
        return self._arrays[key]

    @property
    def steps(self) -> np.ndarray:
        """``(R,)`` int64 training steps of the records."""
        return self._array("steps")

    @property
    def labels(self) -> np.ndarray:
        """``(R,)`` object array of str labels; ``""`` for records taken by ``update``.

        An object array, because numpy's fixed-width strings drop trailing NUL characters.
        """
        return self._array("labels")

    @property
    def finite(self) -> np.ndarray:
        """``(R,)`` bool: False where what the probe measured held NaN or inf (its arrays are NaN there)."""
        return self._array("finite")

    def index(self, label: str) -> int:
        """Row of the last record with ``label``; ``KeyError`` if there is none."""
        # Compared as Python strings: numpy would turn ``label`` into a fixed-width string and drop trailing NULs.
        matches = [row for row, found in enumerate(self._rows["labels"]) if found == label]
        if not matches:
            raise KeyError(f"no record labelled {label!r}; labels are {sorted(set(self._rows['labels']) - {''})}")
        return matches[-1]

    def _emptied(self) -> Self:
        """A history with this one's configuration and no records."""
        empty = copy.copy(self)
        empty._rows = {key: [] for key in self._rows}
        empty._arrays = {}
        return empty

    def save(self, path: str | os.PathLike) -> Path:
        """Write the history atomically as ``.npz`` (no pickle) with JSON metadata.

        Like :func:`numpy.savez`, ``.npz`` is appended to a ``path`` that does
        not end in it. Returns the path written.
        """
        metadata, fixed = self._configuration()
        arrays = {key: self._array(key) for key in ("steps", "finite", *self._layout())}
        metadata = {"format": self.FORMAT, "schema_version": self.SCHEMA_VERSION, **metadata,
                    "labels": self.labels.tolist()}
        return save_npz(path, {**arrays, **fixed}, metadata)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Self:
        """Read a history written by :meth:`save`.

        Sizes declared in the file are checked against its real size before
        anything is allocated (see :func:`spectral._io.load_npz`).

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If ``path`` is not such a history (not a regular file, corrupt,
            truncated, crafted, foreign, pickle-bearing, another schema
            version, or inconsistent arrays).
        """
        arrays, metadata = load_npz(path, kind=cls.FORMAT, schema_version=cls.READS_SCHEMA_VERSIONS)
        try:
            history = cls._from_configuration(metadata, arrays)
            labels = cls._read_labels(arrays, metadata)
            records = history._check_arrays(arrays, len(labels))
            history._check_loaded(records)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"path={str(path)!r} is not a consistent {cls.FORMAT} file: {error}") from None
        layout = history._layout()
        for i, label in enumerate(labels):
            history.append(arrays["steps"][i], label, arrays["finite"][i], **{key: arrays[key][i] for key in layout})
        return history

    def _check_arrays(self, arrays: dict[str, np.ndarray], labels: int) -> int:
        """The number of records in a file's ``arrays``, after checking they fit the layout; raises otherwise."""
        records = len(arrays["steps"])
        kinds = {np.float64: "f", np.int64: "iu"}
        expected = {"steps": ((records,), "iu"), "finite": ((records,), "b")}
        expected.update({key: ((records, *shape), kinds[dtype]) for key, (shape, dtype) in self._layout().items()})
        for key, (shape, kind) in expected.items():
            if arrays[key].shape != shape or arrays[key].dtype.kind not in kind:
                raise ValueError(f"array {key!r} has shape {arrays[key].shape} and dtype {arrays[key].dtype}, "
                                 f"expected shape {shape}")
        if labels != records:
            raise ValueError(f"{labels} labels for {records} records")
        if records and not INT64_MIN <= int(arrays["steps"].min()) <= int(arrays["steps"].max()) <= INT64_MAX:
            raise ValueError("array 'steps' holds steps outside the int64 range")
        floats = [key for key, (_, dtype) in self._layout().items() if dtype is np.float64]
        if not all(np.isfinite(arrays[key][arrays["finite"]]).all() for key in floats):
            raise ValueError("records flagged finite hold NaN or inf")
        return records


def check_label(label: Any) -> str:
    """``label`` itself, refusing anything but a non-empty str (TypeError naming ``label``)."""
    if not isinstance(label, str) or not label:
        raise TypeError(f"label must be a non-empty str, got {label!r}")
    return label


class Probe(abc.ABC):
    """The protocol every probe follows (see the module's description).

    Subclasses implement :meth:`update` and :meth:`snapshot` with their own
    data arguments, through :meth:`_update` and :meth:`_snapshot`.

    Parameters
    ----------
    history : History
        The empty history to record into.
    every : int
        :meth:`update` records when ``step % every == 0``.
    """

    def __init__(self, history: History, every: int) -> None:
        self.every = positive_int(every, "every")
        self._history = history
        self._last_step: int | None = None

    @property
    def history(self) -> Any:
        """The records so far (a :class:`History`); :meth:`reset` starts a new one."""
        return self._history

    @abc.abstractmethod
    def update(self, *data: Any) -> bool:
        """Record if ``step % every == 0`` (``step`` the last argument); return whether it did."""

    @abc.abstractmethod
    def snapshot(self, *data: Any, **kwargs: Any) -> None:
        """Record unconditionally, with a non-empty ``label`` and ``step`` defaulting to the last step."""

    def reset(self) -> None:
        """Start a new, empty history with the same configuration; the old history object is kept as it was."""
        self._history = self._history._emptied()
        self._last_step = None

    def _update(self, step: Any, record: Callable[[int, str], None]) -> bool:
        """``record(step, "")`` when ``step`` (an int64) is due; remember ``step`` once nothing raised."""
        step = int64(step, "step")
        due = step % self.every == 0
        if due:
            record(step, "")
        self._last_step = step
        return due

    def _snapshot(self, label: Any, step: Any, record: Callable[[int, str], None]) -> None:
        """``record(step, label)``, ``step`` defaulting to the last step given to :meth:`_update` (0 before any)."""
        label = check_label(label)
        record((self._last_step or 0) if step is None else int64(step, "step"), label)

"""Finished work on disk: one digest of a computation's inputs, and records reused only when they match.

A record is a JSON file written atomically with the ``digest`` of its
inputs; a record with a companion file (a case's ``.history.npz``) also
holds the companion's SHA-256 and is written after it, so a kill between
the two leaves a record that does not match and is recomputed. A computed
result is stored with the digest of its own content (``result_digest``), so
a result that was emptied, nulled or edited is recomputed too. The case
files, the precision study and the sweep's run files all go through here.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any, Callable

from .._io import read_json, write_json

__all__ = ["digest", "file_sha256", "load_if_current", "reuse_or_compute", "save_record"]


def digest(data: Any) -> str:
    """Stable hash of JSON-able data: a finished result is reused only if its inputs match."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    """SHA-256 of a regular file; a FIFO, device or folder is refused (``ValueError``) without being opened.

    Raises
    ------
    OSError
        If ``path`` does not exist or cannot be read.
    """
    handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO opens at once, unread
    with os.fdopen(handle, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise ValueError(f"{str(path)!r} is not a regular file")
        return hashlib.sha256(file.read()).hexdigest()


def load_if_current(path: Path, expected: str, companion: Path | None = None) -> dict[str, Any] | None:
    """The record at ``path`` if it is whole JSON with digest ``expected`` (and ``companion`` matches), else None."""
    try:
        record = read_json(path) if path.is_file() else None
        if not (isinstance(record, dict) and record.get("digest") == expected):
            return None
        if companion is not None and record.get("companion_sha256") != file_sha256(companion):
            return None
    except (ValueError, OSError):
        return None
    return record


def save_record(path: Path, record: dict[str, Any], companion: Path | None = None) -> dict[str, Any]:
    """Write ``record`` atomically (with ``companion``'s SHA-256, when given); return it as read back."""
    if companion is not None:
        record = {**record, "companion_sha256": file_sha256(companion)}
    write_json(path, record)
    return read_json(path)  # exactly what a resumed run reads back (NaN as None)


def reuse_or_compute(path: Path, inputs: Any, compute: Callable[[], tuple[Any, Callable[[Path], Any] | None]], *,
                     units: int, progress: Callable[[], None], companion: Path | None = None) -> Any:
    """The result stored at ``path`` for ``inputs``, or ``compute()``'s, then stored there.

    ``compute`` returns ``(result, write_companion)``; ``write_companion``
    (None without a companion) writes the companion file to the path it is
    given, before the record. A reused result still calls ``progress``
    ``units`` times, as the computation would; a damaged or stale record is
    recomputed with one line on stderr.
    """
    expected = digest(inputs)
    record = load_if_current(path, expected, companion)
    if record is not None and record.get("result_digest") == digest(record.get("result")):
        for _ in range(units):
            progress()
        return record["result"]
    if path.is_file():
        print(f"spectral: recomputing {path.name}: its saved result is damaged, incomplete or from other inputs",
              file=sys.stderr)
    result, write_companion = compute()
    if write_companion is not None and companion is not None:
        write_companion(companion)
    result = _as_written(result)
    return save_record(path, {"digest": expected, "inputs": inputs, "result": result, "result_digest": digest(result)},
                       companion)["result"]


def _as_written(data: Any) -> Any:
    """``data`` as a JSON record holds it and reads back: tuples as lists, NaN and inf as None."""
    return json.loads(json.dumps(data, allow_nan=True), parse_constant=lambda _: None)

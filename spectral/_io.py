"""Atomic writes and safe reads of result files (never pickle)."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], *, binary: bool = True) -> Path:
    """Write through ``write(file)`` to a temporary file, then rename it onto ``path``.

    A crash mid-write leaves the old file (or none), never half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb" if binary else "w") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; results are meant to be shared
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Atomically save a matplotlib figure as PNG."""
    return atomic_write(path, lambda file: fig.savefig(file, format="png", dpi=dpi))


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Atomically write ``data`` as indented JSON (NaN written as null)."""
    text = json.dumps(_finite_or_none(data), indent=2, sort_keys=False, allow_nan=False)
    return atomic_write(path, lambda file: file.write(text + "\n"), binary=False)


def _finite_or_none(data: Any) -> Any:
    if isinstance(data, float):
        return data if np.isfinite(data) else None
    if isinstance(data, dict):
        return {key: _finite_or_none(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite_or_none(value) for value in data]
    return data


def read_json(path: str | os.PathLike, name: str = "path") -> Any:
    """Read a JSON file, refusing anything that is not JSON with a ValueError."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{name}={str(path)!r} is not a JSON file: {error}") from None


def save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray], metadata: dict[str, Any]) -> Path:
    """Atomically save ``arrays`` plus JSON ``metadata`` (key ``metadata``) as one ``.npz``."""
    arrays = dict(arrays, metadata=np.array(json.dumps(metadata)))
    return atomic_write(path, lambda file: np.savez(file, **arrays))


def load_npz(path: str | os.PathLike, *, kind: str, schema_version: int, name: str = "path") -> tuple[dict, dict]:
    """Load an ``.npz`` written by :func:`save_npz`; refuse foreign or corrupt files.

    Returns ``(arrays, metadata)``. Raises ``ValueError`` naming ``name`` when the
    file is not a readable ``.npz``, holds pickled objects, is of another kind,
    or has a schema version this code does not read.
    """
    where = f"{name}={str(path)!r}"
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{where} is not a readable {kind} file: {error}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{where} is a .npy array, not a {kind} file")
    try:
        with archive:
            arrays = {key: archive[key] for key in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise ValueError(f"{where} is not a readable {kind} file: {error}") from None
    try:
        metadata = json.loads(str(arrays.pop("metadata")))
    except (KeyError, json.JSONDecodeError):
        raise ValueError(f"{where} is not a {kind} file: no JSON metadata") from None
    found = metadata.get("format") if isinstance(metadata, dict) else None
    if found != kind:
        raise ValueError(f"{where} is not a {kind} file (format {found!r})")
    if metadata.get("schema_version") != schema_version:
        raise ValueError(
            f"{where} has schema version {metadata.get('schema_version')!r}; this version of spectral reads {schema_version}"
        )
    return arrays, metadata

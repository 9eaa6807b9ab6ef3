"""Atomic writes and safe reads of result files (never pickle)."""

from __future__ import annotations

import json
import math
import os
import re
import stat
import struct
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

from ._errors import UserInputError
from ._validation import non_negative_finite


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: The ending of every temporary :func:`atomic_write` makes: ``.NAME.RANDOM.spectral-tmp``, a name of this library's own,
#: so that :func:`remove_stale_temporaries` never takes a user's ``*.tmp`` file for one.
TEMPORARY_SUFFIX = ".spectral-tmp"


def output_folder(path: str | os.PathLike, name: str = "out") -> Path:
    """``path`` as a folder to write results into; a ``UserInputError`` naming ``name`` if it cannot be one.

    Refused: an empty path (``Path("")`` is the current folder, which nobody
    means) and an existing file.

    Examples
    --------
    >>> output_folder("results").name
    'results'
    >>> output_folder("")
    Traceback (most recent call last):
    ...
    spectral._errors.UserInputError: out must be a folder path, got ''
    """
    text = os.fspath(path)
    if not isinstance(text, str) or not text.strip():
        raise UserInputError(f"{name} must be a folder path, got {text!r}")
    folder = Path(text)
    if folder.exists() and not folder.is_dir():
        raise UserInputError(f"{name}={text!r} exists and is not a directory")
    return folder


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], *, binary: bool = True) -> Path:
    """Write through ``write(file)`` to a temporary file, then rename it onto ``path``.

    A crash mid-write leaves the old file (or none), never half a file. The
    temporary is ``.NAME.RANDOM.spectral-tmp`` beside ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
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


#: Figure formats :func:`save_figure` writes, by file suffix.
FIGURE_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}


def figure_format(path: str | os.PathLike, name: str = "path") -> str:
    """The figure format ``path``'s suffix names; ``ValueError`` naming ``name`` for any but :data:`FIGURE_FORMATS`."""
    suffix = Path(path).suffix.lower()
    if suffix not in FIGURE_FORMATS:
        raise ValueError(f"{name}={str(path)!r} must end in one of {', '.join(FIGURE_FORMATS)} (the figure format)")
    return FIGURE_FORMATS[suffix]


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Atomically save a matplotlib figure in the format its suffix names (``.png``, ``.pdf``, ``.svg``).

    Raises
    ------
    ValueError
        If the suffix of ``path`` is not one of :data:`FIGURE_FORMATS`.
    """
    format = figure_format(path)
    return atomic_write(path, lambda file: fig.savefig(file, format=format, dpi=dpi))


#: The names :func:`atomic_write` gives its temporaries (``tempfile.mkstemp``), and no others.
_TEMPORARY = re.compile(r"\..+\.\w+" + re.escape(TEMPORARY_SUFFIX))


def remove_stale_temporaries(folder: str | os.PathLike, older_than: float | None = None) -> list[Path]:
    """Delete the hidden ``.NAME.RANDOM.spectral-tmp`` files that :func:`atomic_write` leaves when a process is killed.

    A write interrupted by ``SIGKILL`` never reaches its cleanup, so its
    temporary file stays beside the result it was meant to replace. Only
    names ending in :data:`TEMPORARY_SUFFIX` are touched: a user's own
    ``.draft.tmp`` stays, however old.

    Parameters
    ----------
    folder : path
        The folder to clean (not its subfolders). A missing folder has nothing to clean.
    older_than : float, optional
        Only delete temporaries last modified more than this many seconds ago,
        so writes still in progress elsewhere survive. None deletes every one:
        for a caller that holds the folder (e.g. at the start of a run that
        owns it).

    Returns
    -------
    list of Path
        The files deleted.
    """
    if older_than is not None:
        older_than = non_negative_finite(older_than, "older_than")
    folder = Path(folder)
    if not folder.is_dir():
        return []
    newest = None if older_than is None else time.time() - older_than
    removed = []
    for entry in os.scandir(folder):
        if not (_TEMPORARY.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)):
            continue
        if newest is not None and entry.stat(follow_symlinks=False).st_mtime > newest:
            continue
        Path(entry.path).unlink(missing_ok=True)  # another cleaner may have been first
        removed.append(Path(entry.path))
    return removed


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


def _finite_number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def loads_json(text: str, name: str) -> Any:
    """Parse JSON ``text``, refusing anything that is not strict JSON with a ValueError naming ``name``.

    Refused: syntax errors, ``NaN``/``Infinity`` and numbers that overflow to
    infinity, and nesting deeper than Python's recursion limit (which makes the
    decoder raise ``RecursionError``).
    """
    try:
        return json.loads(text, parse_constant=_finite_number, parse_float=_finite_number)
    except (ValueError, RecursionError) as error:  # json.JSONDecodeError is a ValueError
        reason = "it is nested too deeply" if isinstance(error, RecursionError) else error
        raise ValueError(f"{name} is not valid JSON: {reason}") from None


def _open_regular(path: str | os.PathLike, where: str) -> BinaryIO:
    """Open a regular file for reading; refuse FIFOs, devices and folders without blocking on them."""
    handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO opens at once, unread
    if not stat.S_ISREG(os.fstat(handle).st_mode):
        os.close(handle)
        raise ValueError(f"{where} is not a regular file")
    return os.fdopen(handle, "rb")


def read_json(path: str | os.PathLike, name: str = "path") -> Any:
    """Read a JSON file, refusing anything that is not strict JSON (see :func:`loads_json`) with a ValueError."""
    where = f"{name}={str(path)!r}"
    try:
        with _open_regular(path, where) as file:
            text = file.read().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{where} is not a JSON file: {error}") from None
    return loads_json(text, where)


def save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray], metadata: dict[str, Any]) -> Path:
    """Atomically save ``arrays`` plus JSON ``metadata`` (key ``metadata``) as one ``.npz``.

    Like :func:`numpy.savez`, a ``path`` without the ``.npz`` suffix gets it
    appended; the path written is returned.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays = dict(arrays, metadata=np.array(json.dumps(metadata)))
    return atomic_write(path, lambda file: np.savez(file, **arrays))


#: Errors the zip and ``.npy`` decoders raise on damaged input.
_DECODE_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError, RuntimeError, KeyError,
                  OverflowError, struct.error)
_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, size: int) -> np.ndarray:
    """One ``.npy`` member, after checking the sizes it declares against the ``size`` bytes of the file."""
    member = repr(info.filename)
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"member {member} is compressed (method {info.compress_type}); .npz files are written "
                         "uncompressed")
    if info.file_size != info.compress_size or info.header_offset + info.compress_size > size:
        raise ValueError(f"member {member} claims {info.file_size} bytes, more than the file's {size}")
    with archive.open(info) as file:
        header = _NPY_HEADERS.get(np.lib.format.read_magic(file))
        if header is None:
            raise ValueError(f"member {member} is not a .npy array of format version 1 or 2")
        shape, _, dtype = header(file)
        if dtype.hasobject:
            raise ValueError(f"member {member} holds pickled objects, which are never loaded")
        declared = math.prod(shape) * dtype.itemsize
        if declared > info.file_size:
            raise ValueError(f"member {member} claims shape {shape} of {dtype} ({declared} bytes), more than "
                             f"its {info.file_size} bytes")
    with archive.open(info) as file:
        array = np.lib.format.read_array(file, allow_pickle=False)
        if file.read(1):  # reading to the end also checks the member's CRC
            raise ValueError(f"member {member} has bytes after its array")
    return array


def _read_archive(file: BinaryIO, size: int) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(file) as archive:
        infos = archive.infolist()
        if any(not info.filename.endswith(".npy") for info in infos):
            raise ValueError("it holds members other than .npy arrays")
        return {info.filename[:-4]: _read_member(archive, info, size) for info in infos}


def load_npz(path: str | os.PathLike, *, kind: str, schema_version: int | tuple[int, ...],
             name: str = "path") -> tuple[dict, dict]:
    """Load an ``.npz`` written by :func:`save_npz`; refuse foreign, corrupt or crafted files.

    Every size a member declares is checked against the file's real size
    before anything is allocated, and the members' checksums are verified.

    Parameters
    ----------
    path : path
        The file; it must be a regular file (a FIFO or device is refused, not read).
    kind : str
        The ``format`` the metadata must name.
    schema_version : int or tuple of int
        The schema version(s) the caller reads.
    name : str, default "path"
        The parameter named in errors.

    Returns
    -------
    arrays : dict of str to ndarray
    metadata : dict

    Raises
    ------
    OSError
        If ``path`` cannot be opened (``FileNotFoundError`` when it does not exist).
    ValueError
        Naming ``name``, when the file is not a regular file or a readable
        ``.npz``, holds pickled objects, declares more data than it holds, is of
        another kind, or has a schema version the caller does not read.
    """
    where = f"{name}={str(path)!r}"
    versions = (schema_version,) if isinstance(schema_version, int) else tuple(schema_version)
    with _open_regular(path, where) as file:
        size = os.fstat(file.fileno()).st_size
        magic = file.read(6)
        if magic.startswith(b"\x93NUMPY"):
            raise ValueError(f"{where} is a .npy array, not a {kind} file")
        if not magic.startswith(b"PK"):
            raise ValueError(f"{where} is not a {kind} file: not an .npz (zip) archive")
        file.seek(0)
        try:
            arrays = _read_archive(file, size)
        except _DECODE_ERRORS as error:
            raise ValueError(f"{where} is not a readable {kind} file: {error}") from None
    text = arrays.pop("metadata", None)
    if text is None or text.shape != () or text.dtype.kind != "U":
        raise ValueError(f"{where} is not a {kind} file: no JSON metadata")
    metadata = loads_json(str(text), f"{where} metadata")
    found = metadata.get("format") if isinstance(metadata, dict) else None
    if found != kind:
        raise ValueError(f"{where} is not a {kind} file (format {found!r})")
    version = metadata.get("schema_version")
    if type(version) is not int or version not in versions:  # True == 1, but a bool is no version
        raise ValueError(f"{where} has schema version {version!r}; this version of spectral reads "
                         f"{' or '.join(map(str, versions))}")
    return arrays, metadata

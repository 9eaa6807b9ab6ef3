"""Exceptions that say "the user can fix this", as opposed to a bug in spectral.

The ``spectral`` command reports these in one line and exits with status 2;
any other exception is a bug and shows its traceback (see :mod:`spectral.cli`).
Each subclasses the built-in type that callers already catch, so raising one
where a plain ``ValueError`` or ``ImportError`` was raised before breaks no
caller.
"""

from __future__ import annotations

__all__ = ["MissingExtraError", "UserInputError"]


class UserInputError(ValueError):
    """Bad input from the user: an argument, a setting, or a file or folder that is missing or not what it should be.

    Examples
    --------
    >>> issubclass(UserInputError, ValueError)
    True
    """


class MissingExtraError(ImportError):
    """An optional extra is not installed; the message names the ``pip install`` that adds it.

    Examples
    --------
    >>> str(MissingExtraError('needs dask: pip install "spectral-probes[dask]"'))
    'needs dask: pip install "spectral-probes[dask]"'
    """

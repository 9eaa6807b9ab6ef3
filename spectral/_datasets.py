"""Real data sets that need no download, loaded lazily from optional extras."""

from __future__ import annotations

import numpy as np

from ._errors import MissingExtraError

#: Classes of the 8x8 digits.
DIGIT_CLASSES = 10


def missing_data_message(purpose: str) -> str:
    """The error for a missing scikit-learn: what needs it, and the extra that installs it."""
    return f'{purpose} needs scikit-learn for its bundled digits data set: pip install "spectral-probes[data]"'


def digits(purpose: str = "this") -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (1797 images, no download): pixels scaled to [0, 1], integer labels.

    Parameters
    ----------
    purpose : str
        What needs the data, for the error message when scikit-learn is missing.

    Returns
    -------
    pixels : ndarray, shape (1797, 64), float64
    labels : ndarray, shape (1797,), int

    Raises
    ------
    spectral._errors.MissingExtraError
        (an ``ImportError``) without scikit-learn, naming the extra that installs it.

    Examples
    --------
    >>> pixels, labels = digits()
    >>> pixels.shape, float(pixels.max()), sorted(set(labels.tolist())) == list(range(10))
    ((1797, 64), 1.0, True)
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise MissingExtraError(missing_data_message(purpose)) from None
    data = load_digits()
    return data.data / 16.0, data.target

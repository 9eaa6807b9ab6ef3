"""The claim on MNIST-1D: per-seed splits of its procedurally generated signals, measured like the digits.

MNIST-1D (Greydanus 2020, the ``mnist1d`` extra) draws 1D signals of length
40 in 10 classes from ten hand-made templates by padding, scaling,
translation, correlated and white noise and shear. Its generator runs offline:
``mnist1d.data.make_dataset`` with the default arguments makes the standard
5000 signals (4000 training, 1000 test) from a fixed seed; nothing is
downloaded (``get_dataset`` would fetch a pickle, and is never called).

Which spectral measure. The claim is about the frequency content of the
*network's function* over its input space (here R^40), not about the
frequency content of an input signal along its 40 samples. A Fourier
transform of the input signals describes the data and is the same for every
network, so it cannot tell a slingshot from a control. The filtering method
(a Gaussian low-pass over the seed's training inputs, the digits' measure)
does measure the function, at the inputs the net was trained on, and is the
one measure both real data sets share, so their verdicts read alike. This
module therefore reuses :class:`~spectral.claim._digits.FilterKind` and
:class:`~spectral.claim._digits.FilterMeasure`; it adds only the data.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import torch

from .._errors import MissingExtraError
from ._config import MNIST1D_POOL, MNIST1D_TEST, DigitsConfig
from ._digits import FilterKind, LabelledSplit, split_labelled

if TYPE_CHECKING:
    from ._check import Case


@lru_cache(maxsize=1)
def mnist1d_signals() -> tuple[np.ndarray, np.ndarray]:
    """MNIST-1D's standard signals (training pool first, then the test set) and labels, generated offline.

    The generator seeds NumPy's global random state; it is saved and restored,
    so calling this changes no caller's random numbers. The result is the same
    on every call (cached per process).

    Returns
    -------
    signals : ndarray, shape (5000, 40), float64
        The first 4000 are MNIST-1D's training split, the last 1000 its test split.
    labels : ndarray, shape (5000,), int

    Raises
    ------
    spectral._errors.MissingExtraError
        (an ``ImportError``) without the ``mnist1d`` package, naming the extra that installs it.

    Examples
    --------
    >>> signals, labels = mnist1d_signals()  # doctest: +SKIP
    >>> signals.shape, sorted(set(labels.tolist())) == list(range(10))  # doctest: +SKIP
    ((5000, 40), True)
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise MissingExtraError('the mnist1d case of the claim check needs the MNIST-1D generator: '
                                'pip install "spectral-probes[mnist1d]"') from None
    state = np.random.get_state()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(state)
    signals = np.concatenate([data["x"], data["x_test"]])
    labels = np.concatenate([data["y"], data["y_test"]]).astype(np.int64)
    if signals.shape != (MNIST1D_POOL + MNIST1D_TEST, 40):
        raise RuntimeError(f"mnist1d generated signals of shape {signals.shape}, expected "
                           f"({MNIST1D_POOL + MNIST1D_TEST}, 40): an mnist1d version this module does not know")
    return signals, labels


def split_mnist1d(spec: DigitsConfig, train_points: int, seeds: list[int], device: torch.device) -> LabelledSplit:
    """The first ``spec.test_points`` test signals (clean) and, per seed, noisy-label draws from the training pool."""
    signals, labels = mnist1d_signals()
    pool, test = np.arange(MNIST1D_POOL), MNIST1D_POOL + np.arange(spec.test_points)
    return split_labelled(signals, labels, test, pool, spec, train_points, seeds, device)


class Mnist1dKind(FilterKind):
    """Cases on MNIST-1D (``signal = "mnist1d"``): label noise, one-hot MSE, the filtering method.

    Examples
    --------
    >>> Mnist1dKind().signals, Mnist1dKind().choice
    (('mnist1d',), 'filter width')
    """

    signals = ("mnist1d",)
    source, examples = "MNIST-1D (Greydanus 2020, generated offline from its templates)", "signals"

    def split(self, case: Case) -> LabelledSplit:
        return split_mnist1d(case.spec, case.train_points, case.seeds, case.device)

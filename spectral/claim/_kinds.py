"""Case kinds: what the claim check asks of a data set, so that adding one adds a module, not ``if`` branches.

A kind (a synthetic signal, the 8x8 digits) gives a :class:`~spectral.claim._check.Case`
its data per seed, its measure and its seed-0 probe (:meth:`CaseKind.setup`),
its verdict set, what its result records about the measurement, and the
report's sentence and figures for it. The experiment calls only these
methods; :func:`kind_of` finds a case's kind from its ``signal``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ._arms import Verdicts

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .._protocol import History
    from ._check import Case


class CaseKind:
    """The interface of a case kind. Subclasses set the class attributes and implement every method."""

    #: The ``signal`` names (config keys under ``signals``) this kind serves.
    signals: tuple[str, ...] = ()
    #: What the second measurement choice of its spectral verdicts is called in the report.
    choice = "window"
    #: Keys of a case result holding numbers about its measurement (checked when a report is read back), and
    #: keys holding a table of such numbers (one per measurement choice).
    measurement_numbers: tuple[str, ...] = ()
    measurement_tables: tuple[str, ...] = ()
    #: Per-arm curves the case result keeps (names as the measure returns them).
    curve_names: tuple[str, ...] = ()
    #: The class of the seed-0 history its probe records (what ``cases/<id>.history.npz`` holds).
    history_type: ClassVar[type[History]]
    #: The verdicts a case of this kind is tested on.
    verdicts: ClassVar[Verdicts] = {}

    def setup(self, case: Case) -> None:
        """Give ``case`` its ``x, y, x_validation, y_validation`` (members first), ``in_features``,
        ``out_features``, ``measure`` (callable on an ensemble, with a ``test`` method) and ``probe``."""
        raise NotImplementedError

    def measurement(self, case: Case) -> dict[str, Any]:
        """What the case result records about how it was measured."""
        raise NotImplementedError

    def describe(self, result: dict[str, Any]) -> str:
        """The report's sentence on the data and the measurement, from a case result."""
        raise NotImplementedError

    def history_figures(self, result: dict[str, Any], history: History) -> dict[str, Figure]:
        """The figures (stem -> figure) drawn from a case result's seed-0 history (a :attr:`history_type`)."""
        raise NotImplementedError


def kind_of(signal: str) -> CaseKind:
    """The kind serving ``signal`` (``"1d"``, ``"2d"``, ``"digits"``, ``"mnist1d"``).

    Examples
    --------
    >>> kind_of("2d").choice, kind_of("digits").choice
    ('window', 'filter width')
    """
    from ._digits import DigitsKind
    from ._mnist1d import Mnist1dKind
    from ._synthetic import SyntheticKind

    for kind in (SyntheticKind(), DigitsKind(), Mnist1dKind()):
        if signal in kind.signals:
            return kind
    raise ValueError(f"signal={signal!r} has no case kind")

"""Paired statistics behind every verdict: one estimand, its exact signed-rank tests, power, and the families.

A verdict asks whether ``claim`` comes out lower than ``reference``, seed by
seed, and by more than a margin. One estimand serves the test, the interval
and the margin: the paired log-ratio ``d = log(claim / reference)`` (or
``claim - reference`` for values already on a log scale, and for signed
quantities with the margin relative to the reference), its Hodges-Lehmann
estimate (the median of the Walsh averages), the exact signed-rank interval,
and two one-sided exact signed-rank tests whose p-values come from the
enumerated null distribution (:func:`signed_rank_null`), never from
``scipy.stats.wilcoxon`` (whose method differs between scipy versions):

- ``p_value``, superiority: H0 ``effect >= 0`` against "claim is lower";
- ``p_absent``, non-superiority: H0 ``effect <= -delta`` against "the
  improvement is absent or smaller than the margin", with
  ``delta = -log(1 - margin)``: the differences shifted by ``delta`` tested
  for the other side.

Zero differences (a seed where the two arms agree exactly) carry no sign: they
are left out of the sample, counted in ``zeros``, and ``n`` counts the pairs
that remain; the estimate, the interval and both tests use the same ``n``
pairs. Ties among the remaining ``|d|`` get midranks and the exact null of
those midranks. The outcome is four-valued (:class:`Verdict`) and is set
within a corrected family by :func:`correct_families`.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

CORRECTIONS = ("bh", "holm", "none")
OUTCOMES = ("yes", "no", "inconclusive", "untestable")
FAMILIES = ("primary", "secondary")
DIRECTIONS = ("equivalent", "worse", "smaller than the margin")
SCALES = ("ratio", "log", "difference")
ESTIMANDS = {"ratio": "median paired log-ratio log(claim/reference) (Hodges-Lehmann)",
             "log": "median paired difference claim - reference of log values (Hodges-Lehmann)",
             "difference": "median paired difference claim - reference (Hodges-Lehmann), relative to |median reference|"}
#: The effect every verdict's power is stated for: 20% lower, on the log scale.
POWER_EFFECT = math.log(0.8)
#: The power ``seeds_needed`` asks for.
TARGET_POWER = 0.8
#: The largest seed count ``seeds_needed`` searches; beyond it, ``None``.
MAX_SEEDS = 256
#: Simulated samples per power estimate (standard error at most 0.025 at power 0.8).
SIMULATIONS = 256
#: The power simulation's fixed seed: the same data give the same power.
POWER_SEED = 20240619


def smallest_testable_n(alpha: float) -> int:
    """Fewest pairs for which the exact one-sided signed-rank test can reach ``p < alpha``.

    With ``n`` pairs the smallest attainable p-value is ``2**-n``.

    Examples
    --------
    >>> smallest_testable_n(0.05)
    5
    """
    return math.floor(math.log2(1 / alpha)) + 1


@functools.lru_cache(maxsize=64)
def _null(n: int) -> np.ndarray:
    probability = np.zeros(n * (n + 1) // 2 + 1)
    probability[0] = 1.0
    for rank in range(1, n + 1):  # halve at every step: no overflow at any n
        probability[rank:] = (probability[rank:] + probability[:-rank].copy()) / 2
        probability[:rank] /= 2
    probability.flags.writeable = False
    return probability


def signed_rank_null(n: int) -> np.ndarray:
    """``P(T+ = t)`` for ``t = 0 .. n(n+1)/2`` under the null: the exact signed-rank distribution.

    ``T+`` is the sum of the ranks of ``|d|`` over the positive ``d``; under
    the null each of the ``2**n`` sign patterns is equally likely.

    Examples
    --------
    >>> signed_rank_null(2).tolist()  # T+ in {0, 1, 2, 3}, each of the 4 sign patterns equally likely
    [0.25, 0.25, 0.25, 0.25]
    """
    return _null(int(n)).copy()


@functools.lru_cache(maxsize=256)
def _tied_null(doubled_ranks: tuple[int, ...]) -> np.ndarray:
    """``P(2 T+ = s)`` for midranks with ties (doubled so that they are integers)."""
    probability = np.zeros(sum(doubled_ranks) + 1)
    probability[0] = 1.0
    for rank in doubled_ranks:
        probability[rank:] = (probability[rank:] + probability[:-rank].copy()) / 2
        probability[:rank] /= 2
    return probability


def _midranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``, ties sharing the mean of their ranks."""
    order = np.argsort(values, kind="stable")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranks = np.empty(values.size)
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    return ranks


def signed_rank_p(differences: Any, alternative: str) -> float:
    """Exact one-sided signed-rank p-value of non-zero paired differences.

    Parameters
    ----------
    differences : array_like, shape (n,)
        Finite differences. Zeros count as negative (they never add to
        ``T+``): callers leave true zero differences out (see the module
        docstring); a zero of shifted differences then makes ``"greater"``
        conservative.
    alternative : {"less", "greater"}
        ``"less"``: the differences are centred below 0, ``p = P(T+ <= t)``;
        ``"greater"``: above 0, ``p = P(T+ >= t)``.

    Returns
    -------
    float
        From the exact null of ``n`` untied ranks (:func:`signed_rank_null`),
        or, with ties among ``|d|``, the exact null of their midranks.

    Examples
    --------
    >>> signed_rank_p([-1.0, -2.0, -3.0, -4.0, -5.0], "less")  # every sign negative: 2**-5
    0.03125
    >>> signed_rank_p([-1.0, -1.0, 1.0], "greater")  # midranks 2, 2, 2: P(T+ >= 2) = 7/8
    0.875
    """
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 1 or d.size == 0 or not np.all(np.isfinite(d)):
        raise ValueError(f"differences must be a non-empty 1D array of finite numbers, got shape {d.shape}")
    if alternative not in ("less", "greater"):
        raise ValueError(f"alternative must be 'less' or 'greater', got {alternative!r}")
    doubled = np.rint(2 * _midranks(np.abs(d))).astype(np.int64)
    statistic = int(doubled[d > 0].sum())
    if np.array_equal(np.sort(doubled), np.arange(2, 2 * d.size + 1, 2)):  # no ties: the cached table
        probability, statistic = _null(d.size), statistic // 2
    else:
        probability = _tied_null(tuple(int(r) for r in np.sort(doubled)))
    tail = probability[:statistic + 1] if alternative == "less" else probability[statistic:]
    return float(min(1.0, tail.sum()))


def hodges_lehmann(differences: Any, confidence: float = 0.95) -> tuple[float, list[float], float]:
    """Hodges-Lehmann estimate of the centre of paired differences, with its exact signed-rank interval.

    Parameters
    ----------
    differences : array_like, shape (n,)
        Finite paired differences.
    confidence : float, default 0.95
        Two-sided confidence level; the interval's actual coverage under a
        symmetric distribution is at least this (the signed-rank statistic is
        discrete).

    Returns
    -------
    estimate : float
        Median of the ``n(n+1)/2`` Walsh averages ``(d_i + d_j) / 2, i <= j``.
    interval : list of two floats
        ``[W_(d), W_(M+1-d)]`` of the sorted Walsh averages, with ``d - 1`` the
        largest ``t`` such that ``P(T+ <= t) <= (1 - confidence) / 2``; the
        whole range of the differences when ``n`` is too small for that.
        Under a distribution symmetric about its centre it covers the centre;
        in general it is an interval for the Hodges-Lehmann shift (the
        pseudo-median of the differences), not for their mean.
    level : float
        The interval's exact coverage ``1 - 2 P(T+ <= d - 1)`` (at least
        ``confidence``; for the whole range, ``1 - 2**(1 - n)``, e.g. 0.9375
        at n = 5).

    Examples
    --------
    >>> estimate, (low, high), level = hodges_lehmann([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    >>> estimate, low, high, round(level, 4)
    (4.5, 2.0, 7.0, 0.9609)
    """
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 1 or d.size == 0 or not np.all(np.isfinite(d)):
        raise ValueError(f"differences must be a non-empty 1D array of finite numbers, got shape {d.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    i, j = np.triu_indices(d.size)
    walsh = np.sort((d[i] + d[j]) / 2)
    cumulative = np.cumsum(_null(d.size))
    below = np.flatnonzero(cumulative <= (1 - confidence) / 2)
    depth = int(below[-1]) + 1 if below.size else 0  # d - 1 = the largest such t; 0: no finite interval
    if depth:
        interval, level = [float(walsh[depth - 1]), float(walsh[walsh.size - depth])], 1 - 2 * cumulative[depth - 1]
    else:
        interval, level = [float(d.min()), float(d.max())], 1 - 2.0 ** (1 - d.size)
    return float(np.median(walsh)), interval, float(level)


# --- Power -------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _critical_values(alpha: float) -> tuple[int, ...]:
    """For ``n = 0 .. MAX_SEEDS``, the largest ``t`` with ``P(T+ <= t) < alpha`` (-1 if none).

    One pass of the recursion that builds :func:`signed_rank_null`: after
    rank ``n`` it holds the null of ``n`` pairs.
    """
    probability, values = np.zeros(MAX_SEEDS * (MAX_SEEDS + 1) // 2 + 1), [-1]
    probability[0] = 1.0
    for n in range(1, MAX_SEEDS + 1):
        size = n * (n + 1) // 2 + 1
        probability[n:size] = (probability[n:size] + probability[:size - n].copy()) / 2
        probability[:n] /= 2
        below = np.flatnonzero(np.cumsum(probability[:size]) < alpha)
        values.append(int(below[-1]) if below.size else -1)
    return tuple(values)


def _critical(n: int, alpha: float) -> int:
    """Largest ``t`` with ``P(T+ <= t) < alpha`` (-1 if none): "less" rejects at ``T+ <= t``."""
    return _critical_values(alpha)[n]


def _positive_rank_sums(samples: np.ndarray) -> np.ndarray:
    """``T+`` of every row of float64 ``samples`` (continuous draws: no ties, no zeros).

    One integer sort instead of an argsort: the bits of ``|x|`` order like
    the values, and the lowest one carries the sign (which reorders only
    values within one unit in the last place of each other).
    """
    keys = (np.abs(samples).view(np.int64) & ~1) | (samples > 0)
    return (np.sort(keys, axis=1) & 1) @ np.arange(1, samples.shape[1] + 1)


class _PowerSimulation:
    """The uncorrected decision rules applied to samples drawn like a verdict's centred log differences.

    The draws are a smoothed bootstrap of ``differences - HL``: a resampled
    residual plus Gaussian noise of Silverman's bandwidth, rescaled to the
    residuals' sample variance (continuous, so the untied null applies), one fixed
    ``(SIMULATIONS, MAX_SEEDS)`` matrix per verdict; the power at ``n`` uses
    its first ``n`` columns, so power against ``n`` is smooth.
    """

    def __init__(self, differences: np.ndarray, *, alpha: float, delta: float) -> None:
        residuals = differences - hodges_lehmann(differences)[0]
        rng = np.random.default_rng(POWER_SEED)
        picks = residuals[rng.integers(0, residuals.size, (SIMULATIONS, MAX_SEEDS))]
        spread = float(residuals.std())
        quartiles = np.subtract(*np.percentile(residuals, [75, 25]))
        width = 0.9 * min(spread, quartiles / 1.34 if quartiles > 0 else spread) * residuals.size ** -0.2
        noise = rng.standard_normal((SIMULATIONS, MAX_SEEDS))
        # Rescaled to the residuals' unbiased variance (ddof 1): the smoothing adds width**2, the resampling loses 1/n.
        scale = float(residuals.std(ddof=1)) / math.hypot(spread, width) if spread > 0 else 1.0
        self.draws = (picks + width * noise) * scale
        self.alpha, self.delta = alpha, delta

    def power(self, n: int, effect: float, rule: str) -> float:
        """Fraction of samples of ``n`` pairs with true ``effect`` that read ``rule`` ("yes" or "no")."""
        critical = _critical(n, self.alpha)
        if critical < 0:
            return 0.0
        sample = self.draws[:, :n] + effect
        half = n * (n + 1) / 4  # HL <= -delta  <=>  T+(d + delta) < M / 2 (up to T+ = M / 2 exactly)
        shifted = _positive_rank_sums(sample + self.delta)
        if rule == "yes":
            passed = (_positive_rank_sums(sample) <= critical) & (shifted < half)
        else:
            passed = shifted >= n * (n + 1) // 2 - critical
        return float(passed.mean())

    def seeds(self, effect: float, rule: str, power: float = TARGET_POWER) -> int | None:
        """Fewest ``n`` up to :data:`MAX_SEEDS` with power at least ``power`` (doubling, then bisection).

        Assumes the power grows with ``n`` (it does up to simulation noise and
        the discreteness of the critical values).
        """
        low, high = smallest_testable_n(self.alpha) - 1, smallest_testable_n(self.alpha)
        while self.power(high, effect, rule) < power:  # invariant: power(low) < power (or low untestable)
            if high == MAX_SEEDS:
                return None
            low, high = high, min(2 * high, MAX_SEEDS)
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if self.power(middle, effect, rule) >= power else (middle, high)
        return high


def required_seeds(log_differences: Any, *, effect: float = POWER_EFFECT, power: float = TARGET_POWER,
                   alpha: float = 0.05, margin: float = 0.05) -> int | None:
    """Fewest seeds whose "yes" rule has the given power for ``effect`` at the variability of ``log_differences``.

    Parameters
    ----------
    log_differences : array_like, shape (n,)
        Per-seed paired log-ratios ``log(claim / reference)``; non-finite
        values and zeros are left out, at least 2 must remain. Their spread
        (around their Hodges-Lehmann centre) is what is used.
    effect : float, default log(0.8)
        True effect on the log scale (a 20% improvement by default).
    power : float, default 0.8
    alpha : float, default 0.05
        Level of the superiority test, uncorrected. Pass a smaller level
        (e.g. alpha over the family size, Bonferroni) for a count that
        survives a family correction.
    margin : float, default 0.05
        The verdict's relative margin: "yes" also needs the estimate beyond it.

    Returns
    -------
    int or None
        None when even :data:`MAX_SEEDS` seeds fall short.

    Examples
    --------
    >>> noise = np.random.default_rng(0).normal(0.0, 0.5, 16)
    >>> 20 <= required_seeds(noise) <= 60  # sd 0.5: about ((1.64 + 0.84) * 0.5 / 0.22)**2 * pi / 3 seeds
    True
    """
    d = np.asarray(log_differences, dtype=np.float64)
    if d.ndim != 1:
        raise ValueError(f"log_differences must be 1D, got shape {d.shape}")
    d = d[np.isfinite(d) & (d != 0)]  # as in a verdict: zero differences carry no sign
    if d.size < 2:
        raise ValueError(f"log_differences needs at least 2 finite non-zero values, got {d.size}")
    return _PowerSimulation(d, alpha=alpha, delta=-math.log1p(-margin)).seeds(effect, "yes", power)


# --- The verdict ---------------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """One verdict: does ``claim`` come out lower than ``reference`` by more than the margin?

    :func:`verdict` computes it, :func:`correct_families` sets the final
    ``outcome``. ``to_dict()`` gives the JSON form written to ``report.json``;
    :meth:`from_dict` reads it back and checks it.

    Attributes
    ----------
    outcome : {"yes", "no", "inconclusive", "untestable"}
        "yes": ``q_value < alpha`` and ``relative_effect <= -margin``; "no":
        ``q_absent < alpha``; "untestable": a ``reason`` before any test;
        "inconclusive": otherwise.
    holds : bool or None
        yes: True, no: False, otherwise None.
    family : {"primary", "secondary"}
    estimand : str
        What ``effect`` estimates (:data:`ESTIMANDS`).
    effect, relative_effect : float or None
        Hodges-Lehmann estimate (log scale), ``expm1(effect)`` (negative: the
        claim arm lower).
    ci, ci_level : [low, high], float or None
        Exact signed-rank interval for ``effect`` at ``1 - 2 alpha``, its exact coverage.
    p_value, p_absent : float or None
        Exact one-sided p for H0 ``effect >= 0`` and for H0 ``effect <= -delta``.
    q_value, q_absent : float or None
        The two adjusted within the family (None until corrected or when untestable).
    margin : float
        Relative margin ``m``; ``delta = -log(1 - m)``.
    direction : {"equivalent", "worse", "smaller than the margin"} or None
        For "no": the ``1 - 2 alpha`` interval inside ``(-delta, delta)``,
        above 0, or neither.
    n, dropped, zeros : int
        Pairs used; pairs dropped (non-finite, or non-positive on the ratio
        scale); zero differences (left out of ``n``).
    power : float or None
        Power of the uncorrected rule at ``n`` for a 20% improvement at this
        verdict's variability.
    seeds_needed : int or None
        Fewest seeds for power 0.8 there; None beyond :data:`MAX_SEEDS`.
    reason : str or None
        Why untestable, or what would decide an inconclusive verdict.

    Examples
    --------
    >>> result = verdict([0.5, 0.6, 0.4, 0.5, 0.55, 0.45], [1.0] * 6, alpha=0.05, margin=0.05)
    >>> Verdict.from_dict(result.to_dict()) == result
    True
    """

    outcome: str = "untestable"
    holds: bool | None = None
    family: str = "secondary"
    estimand: str = ESTIMANDS["ratio"]
    effect: float | None = None
    relative_effect: float | None = None
    ci: list[float | None] = field(default_factory=lambda: [None, None])
    ci_level: float | None = None
    p_value: float | None = None
    p_absent: float | None = None
    q_value: float | None = None
    q_absent: float | None = None
    margin: float = 0.05
    direction: str | None = None
    n: int = 0
    dropped: int = 0
    zeros: int = 0
    power: float | None = None
    seeds_needed: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able dict of the contract's keys."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """Read a verdict back (e.g. from ``report.json``); other keys (``metric``, ...) are ignored.

        Raises
        ------
        ValueError
            A key is missing, or a value has the wrong type or is out of range
            (the message names the key).
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"a verdict must be a dict, got {type(data).__name__}")
        missing = [f.name for f in fields(cls) if f.name not in data]
        if missing:
            raise ValueError(f"verdict is missing {', '.join(missing)}")
        values = {f.name: data[f.name] for f in fields(cls)}
        for name, check in _CHECKS.items():
            expected = check(values[name])
            if expected:
                raise ValueError(f"verdict field {name!r}: expected {expected}, got {values[name]!r}")
        values["ci"] = [None if v is None else float(v) for v in values["ci"]]
        result = cls(**values)
        if result.holds is not _HOLDS[result.outcome]:
            raise ValueError(f"verdict field 'holds': {result.holds!r} contradicts outcome {result.outcome!r}")
        return result


def _number(value: Any, low: float = -math.inf, high: float = math.inf) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


def _check_optional(test: Any, expected: str) -> Any:
    return lambda value: None if value is None or test(value) else f"{expected} or null"


_HOLDS = {"yes": True, "no": False, "inconclusive": None, "untestable": None}
_CHECKS = {
    "outcome": lambda v: None if v in OUTCOMES else f"one of {OUTCOMES}",
    "holds": lambda v: None if v in (True, False, None) else "true, false or null",
    "family": lambda v: None if v in FAMILIES else f"one of {FAMILIES}",
    "estimand": lambda v: None if isinstance(v, str) else "a string",
    "effect": _check_optional(_number, "a number"),
    "relative_effect": _check_optional(_number, "a number"),
    "ci": lambda v: None if isinstance(v, (list, tuple)) and len(v) == 2 and all(x is None or _number(x) for x in v)
    else "a list of two numbers (or nulls)",
    "ci_level": _check_optional(lambda v: _number(v, 0, 1), "a number in [0, 1]"),
    "p_value": _check_optional(lambda v: _number(v, 0, 1), "a number in [0, 1]"),
    "p_absent": _check_optional(lambda v: _number(v, 0, 1), "a number in [0, 1]"),
    "q_value": _check_optional(lambda v: _number(v, 0, 1), "a number in [0, 1]"),
    "q_absent": _check_optional(lambda v: _number(v, 0, 1), "a number in [0, 1]"),
    "margin": lambda v: None if _number(v, 0, 1) and v < 1 else "a number in [0, 1)",
    "direction": lambda v: None if v is None or v in DIRECTIONS else f"one of {DIRECTIONS} or null",
    "n": lambda v: None if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else "an integer >= 0",
    "dropped": lambda v: None if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else "an integer >= 0",
    "zeros": lambda v: None if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else "an integer >= 0",
    "power": _check_optional(lambda v: _number(v, 0, 1), "a number in [0, 1]"),
    "seeds_needed": _check_optional(lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
                                    "an integer > 0"),
    "reason": _check_optional(lambda v: isinstance(v, str), "a string"),
}


def _paired_differences(claim: Any, reference: Any, scale: str) -> tuple[np.ndarray, int, float]:
    """The paired differences of the usable pairs, how many pairs were dropped, and the unit of the margin.

    The unit is 1 on the log scales; for ``"difference"``, ``|median(reference)|``.
    """
    claim = np.asarray(claim, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if claim.shape != reference.shape or claim.ndim != 1:
        raise ValueError(f"claim and reference must be 1D of the same length, got {claim.shape} and {reference.shape}")
    keep = np.isfinite(claim) & np.isfinite(reference)
    if scale == "ratio":
        keep &= (claim > 0) & (reference > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            differences = np.log(claim[keep]) - np.log(reference[keep])
    else:
        differences = claim[keep] - reference[keep]
    unit = abs(float(np.median(reference[keep]))) if scale == "difference" and keep.any() else 1.0
    return differences, int((~keep).sum()), unit


def verdict(claim: Any, reference: Any, *, alpha: float, margin: float, family: str = "secondary",
            scale: str = "ratio", reason: str | None = None) -> Verdict:
    """Does ``claim`` come out lower than ``reference`` by more than ``margin``, pair by pair (one pair per seed)?

    Parameters
    ----------
    claim, reference : array_like, shape (n,)
        One value per seed for the arm the claim favours and for its reference.
    alpha : float
        Level of every test, in (0, 0.5); the interval's level is ``1 - 2 alpha``.
    margin : float
        Relative margin ``m`` in [0, 1) (config ``min_relative_effect``): "yes"
        needs ``relative_effect <= -m``, i.e. ``claim / reference <= 1 - m``;
        ``delta = -log(1 - m)`` on the log scale.
    family : {"primary", "secondary"}, default "secondary"
        The corrected family the verdict belongs to (:func:`correct_families`).
    scale : {"ratio", "log"}, default "ratio"
        ``"ratio"``: positive values compared as ``log(claim / reference)``;
        pairs with a non-finite or non-positive value are dropped and counted.
        ``"log"``: values already logarithms (e.g. log retentions) compared as
        ``claim - reference``; non-finite pairs dropped. ``"difference"``:
        values that may be zero or negative (a gain, a count) compared as
        ``claim - reference``, the margin and the 20% effect taken relative
        to ``|median(reference)|`` (``relative_effect`` is the estimate over
        it); non-finite pairs dropped.
    reason : str, optional
        Why the verdict cannot be tested (e.g. "case did not overfit"): the
        statistics are still computed, the outcome is "untestable" and the
        verdict stays out of the family.

    Returns
    -------
    Verdict
        ``effect`` (Hodges-Lehmann estimate of the log differences; zero
        differences left out, counted in ``zeros``), ``relative_effect``
        (``expm1(effect)``), ``ci`` (the exact signed-rank interval at level
        ``1 - 2 alpha``, exact coverage ``ci_level``: its ends are where the
        two one-sided tests at ``alpha`` turn), ``p_value`` (H0 effect >= 0),
        ``p_absent`` (H0 effect <= -delta: the signed-rank test of
        ``d + delta`` for "greater"), ``power`` (the uncorrected "yes" rule's
        power at ``n`` for a 20% effect at this verdict's variability),
        ``seeds_needed`` (fewest seeds for power 0.8, None beyond
        :data:`MAX_SEEDS`), and the outcome of the rule of
        :func:`correct_families` with ``q = p`` (a family of one) until that
        function corrects it: "untestable" when ``reason`` is given or fewer
        than :func:`smallest_testable_n` pairs remain.

    Notes
    -----
    Power: :data:`SIMULATIONS` samples from a smoothed bootstrap of the
    centred differences (fixed seed :data:`POWER_SEED`), shifted by
    ``log(0.8)``, judged by the uncorrected rule at ``alpha``
    (``p_value < alpha`` and ``effect <= -delta``). The family correction
    lowers the level each test meets, so this power is an upper bound on the
    corrected one; :func:`required_seeds` takes a smaller ``alpha`` for a
    conservative count.

    Examples
    --------
    >>> result = verdict([0.5, 0.6, 0.4, 0.5, 0.55, 0.45], [1.0] * 6, alpha=0.05, margin=0.05)
    >>> result.outcome, result.p_value, round(result.relative_effect, 3)
    ('yes', 0.015625, -0.5)
    >>> verdict([0.5], [1.0], alpha=0.05, margin=0.05).reason
    'fewer than 5 seeds'
    """
    if not (isinstance(alpha, numbers.Real) and 0 < alpha < 0.5):
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha!r}")
    if not (isinstance(margin, numbers.Real) and 0 <= margin < 1):
        raise ValueError(f"margin must be in [0, 1), got {margin!r}")
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    differences, dropped, unit = _paired_differences(claim, reference, scale)
    sample = differences[differences != 0]
    result = Verdict(family=family, estimand=ESTIMANDS[scale], margin=float(margin), n=int(sample.size),
                     dropped=dropped, zeros=int(differences.size - sample.size), reason=reason)
    # The margin and the 20% effect in the estimand's units (the log scale, or the reference's for "difference").
    delta, twenty_percent = (-math.log1p(-margin), POWER_EFFECT) if scale != "difference" else (margin * unit, -0.2 * unit)
    if sample.size:
        estimate, interval, level = hodges_lehmann(sample, 1 - 2 * alpha)
        result.effect, result.ci, result.ci_level = estimate, interval, level
        result.relative_effect = (math.expm1(estimate) if scale != "difference" else
                                  estimate / unit if unit > 0 else None)
        result.p_value = signed_rank_p(sample, "less")
        result.p_absent = signed_rank_p(sample + delta, "greater")
    if sample.size >= 2:
        simulation = _PowerSimulation(sample, alpha=alpha, delta=delta)
        result.power = simulation.power(sample.size, twenty_percent, "yes")
        result.seeds_needed = simulation.seeds(twenty_percent, "yes")
    needed = smallest_testable_n(alpha)
    if result.reason is None and sample.size < needed:
        result.reason = _too_few(result, needed)
    if result.reason is None:
        result.direction = _direction(result.ci, delta)
        _decide(result, result.p_value, result.p_absent, alpha)
        if result.outcome == "inconclusive":
            result.reason = _inconclusive_reason(result, simulation, delta)
    return result


def _direction(interval: list[float], delta: float) -> str:
    """What a "no" shows, read from the ``1 - 2 alpha`` interval (in the estimand's units)."""
    low, high = interval
    return "equivalent" if -delta < low and high < delta else "worse" if low > 0 else "smaller than the margin"


def _too_few(result: Verdict, needed: int) -> str:
    lost = [f"{count} {what}" for count, what in ((result.dropped, "dropped (non-finite or non-positive)"),
                                                  (result.zeros, "with equal arms")) if count]
    return f"fewer than {needed} seeds" + (f" ({result.n} left: {', '.join(lost)})" if lost else "")


def _twenty_percent(result: Verdict) -> str:
    count = f"more than {MAX_SEEDS}" if result.seeds_needed is None else f"about {result.seeds_needed}"
    return f"at this variability {count} seeds give power {TARGET_POWER} for a 20% improvement"


def _inconclusive_reason(result: Verdict, simulation: _PowerSimulation, delta: float) -> str:
    """The seeds that would decide it if the true effect were the estimate, and the 20% standard."""
    rule = "yes" if result.effect <= -delta else "no"
    seeds = simulation.seeds(result.effect, rule)
    count = f"more than {MAX_SEEDS}" if seeds is None else f"about {seeds}"
    shown = "show it beyond the margin" if rule == "yes" else "show it is smaller than the margin"
    return (f"inconclusive with {result.n} seeds; if the true effect were the estimate "
            f"({_percent(result.relative_effect)}), {count} seeds would {shown} with power {TARGET_POWER}; "
            + _twenty_percent(result))


def _percent(relative: float | None) -> str:
    return "n/a" if relative is None else f"{100 * relative:+.1f}%"


def _decide(item: Verdict, q_value: float, q_absent: float, alpha: float) -> None:
    """Set ``outcome``, ``holds``, ``direction`` (and ``reason``) of a testable verdict from its adjusted p-values.

    ``direction`` is the one :func:`verdict` read from the interval, kept for
    a "no" only (a "no" only a laxer ``alpha`` than the verdict's made gets the
    weakest one, "smaller than the margin", which its test shows). An
    inconclusive verdict keeps a reason it has (from :func:`verdict`) or gets
    one from its fields.
    """
    if q_value < alpha and item.relative_effect is not None and item.relative_effect <= -item.margin:
        item.outcome, item.reason, item.direction = "yes", None, None
    elif q_absent < alpha:
        item.outcome, item.reason = "no", None
        item.direction = item.direction or "smaller than the margin"
    else:
        item.direction = None
        item.outcome = "inconclusive"
        if item.reason is None:
            item.reason = (f"inconclusive with {item.n} seeds after the family correction (q {q_value:.3g}, "
                           f"q_absent {q_absent:.3g}); " + _twenty_percent(item))
    item.holds = _HOLDS[item.outcome]


# --- Families ------------------------------------------------------------------------------------------------------


def _benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum.accumulate((p[order] * m / np.arange(1, m + 1))[::-1])[::-1]
    result = np.empty(m)
    result[order] = np.minimum(adjusted, 1.0)
    return result


def adjust(p_values: Any, method: str = "bh") -> np.ndarray:
    """Multiplicity-adjusted p-values (q-values) of one family of tests.

    Parameters
    ----------
    p_values : array_like, shape (m,)
    method : {"bh", "holm", "none"}
        Benjamini-Hochberg (false discovery rate; ``scipy.stats.false_discovery_control``
        where scipy has it, from 1.11, else the same computation here), Holm
        (family-wise error rate), or no adjustment.

    Examples
    --------
    >>> adjust([0.01, 0.04, 0.03], "bh").round(3).tolist()
    [0.03, 0.04, 0.04]
    >>> adjust([0.01, 0.04, 0.03], "holm").round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=np.float64)
    if method not in CORRECTIONS:
        raise ValueError(f"method must be one of {CORRECTIONS}, got {method!r}")
    if p.ndim != 1 or np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p_values must be a 1D array of numbers in [0, 1]")
    if method == "none" or p.size == 0:
        return p.copy()
    if method == "bh":
        import scipy.stats  # here: slow to import, and only a finished run needs it

        control = getattr(scipy.stats, "false_discovery_control", None)
        return np.asarray(control(p), dtype=np.float64) if control is not None else _benjamini_hochberg(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate(p[order] * (p.size - np.arange(p.size)))
    result = np.empty(p.size)
    result[order] = np.minimum(adjusted, 1.0)
    return result


def correct_families(verdicts: Iterable[Verdict | dict[str, Any]], *, alpha: float,
                     correction: str) -> dict[str, dict[str, Any]]:
    """Adjust each family's p-values and set every testable verdict's ``q_value``, ``q_absent`` and outcome.

    Parameters
    ----------
    verdicts : iterable of Verdict or dict
        Changed in place (a dict is checked by :meth:`Verdict.from_dict` and
        updated; its other keys stay).
    alpha : float
        Level of the corrected decisions.
    correction : {"bh", "holm", "none"}
        Method (:func:`adjust`), applied to each family on its own.

    Returns
    -------
    dict
        ``{"primary": {"size", "hypotheses", "method", "alpha"}, "secondary": {...}}``:
        ``size`` testable verdicts, ``hypotheses = 2 size`` tests corrected.

    Notes
    -----
    A family is its testable verdicts (outcome not "untestable"). Each contributes two
    members, its superiority p (``p_value``) and its non-superiority p
    (``p_absent``), adjusted together as ``2 size`` hypotheses; then ``yes``
    is ``q_value < alpha`` with the estimate beyond the margin, ``no`` is
    ``q_absent < alpha``, otherwise ``inconclusive``. At most one of a
    verdict's two null hypotheses (effect >= 0, effect <= -delta) is true, so
    this spends more of the level than needed (an error rate at most the one
    the method states), and it treats "yes" and "no" alike.

    Examples
    --------
    >>> strong = verdict([0.5] * 8, [1.0] * 8, alpha=0.05, margin=0.05)
    >>> correct_families([strong], alpha=0.05, correction="bh")["secondary"]
    {'size': 1, 'hypotheses': 2, 'method': 'bh', 'alpha': 0.05}
    >>> strong.outcome, strong.q_value
    ('yes', 0.0078125)
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    pairs = [(item, item if isinstance(item, Verdict) else Verdict.from_dict(item)) for item in verdicts]
    summary = {}
    for family in FAMILIES:
        members = [(raw, record) for raw, record in pairs
                   if record.family == family and record.outcome != "untestable"]
        q = adjust([record.p_value for _, record in members] + [record.p_absent for _, record in members], correction)
        for (raw, record), q_value, q_absent in zip(members, q[:len(members)], q[len(members):]):
            record.q_value, record.q_absent = float(q_value), float(q_absent)
            _decide(record, q_value, q_absent, alpha)
            if record is not raw:
                raw.update(record.to_dict())
        summary[family] = {"size": len(members), "hypotheses": 2 * len(members), "method": correction, "alpha": alpha}
    return summary

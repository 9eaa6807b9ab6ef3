"""Paired statistics behind every verdict: the signed-rank test, its interval, and the family correction.

A verdict asks whether ``claim`` comes out lower than ``reference``, seed by
seed. The test is the one-sided Wilcoxon signed-rank test; the estimate is its
Hodges-Lehmann companion (the median of the Walsh averages of the paired
differences) with the exact signed-rank confidence interval, so the estimate,
the interval and the test rest on the same ranks. ``holds`` is three-valued:
``None`` (with a ``reason``) when the data cannot answer, never ``False``.
The final ``holds`` is set by :func:`correct_family` from the q-value,
adjusted over every verdict of a run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

CORRECTIONS = ("bh", "holm", "none")
CONFIDENCE = 0.95


def smallest_testable_n(alpha: float) -> int:
    """Fewest pairs for which the exact one-sided signed-rank test can reach ``p < alpha``.

    With ``n`` pairs the smallest attainable p-value is ``2**-n``.

    Examples
    --------
    >>> smallest_testable_n(0.05)
    5
    """
    return math.floor(math.log2(1 / alpha)) + 1


def signed_rank_null(n: int) -> np.ndarray:
    """``P(T+ = t)`` for ``t = 0 .. n(n+1)/2`` under the null: the exact signed-rank distribution.

    Examples
    --------
    >>> signed_rank_null(2).tolist()  # T+ in {0, 1, 2, 3}, each of the 4 sign patterns equally likely
    [0.25, 0.25, 0.25, 0.25]
    """
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for rank in range(1, n + 1):
        counts[rank:] = counts[rank:] + counts[:-rank].copy()
    return counts / 2.0**n


def hodges_lehmann(differences: Any, confidence: float = CONFIDENCE) -> tuple[float, list[float], float]:
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
    cumulative = np.cumsum(signed_rank_null(d.size))
    below = np.flatnonzero(cumulative <= (1 - confidence) / 2)
    depth = int(below[-1]) + 1 if below.size else 0  # d - 1 = the largest such t; 0: no finite interval
    if depth:
        interval, level = [float(walsh[depth - 1]), float(walsh[walsh.size - depth])], 1 - 2 * cumulative[depth - 1]
    else:
        interval, level = [float(d.min()), float(d.max())], 1 - 2.0 ** (1 - d.size)
    return float(np.median(walsh)), interval, float(level)


def signed_rank_less(differences: np.ndarray) -> float:
    """One-sided Wilcoxon signed-rank p-value for "the differences are centred below 0" (zeros dropped)."""
    import scipy.stats  # here: slow to import, and only a finished case needs it

    if not np.any(differences):
        return 1.0  # no pair differs: no evidence for a decrease
    return float(scipy.stats.wilcoxon(differences, alternative="less").pvalue)


def verdict(claim: Any, reference: Any, config: Any, *, log_scale: bool = False,
            reason: str | None = None) -> dict[str, Any]:
    """Does ``claim`` come out lower than ``reference``, pair by pair (one pair per seed)?

    Parameters
    ----------
    claim, reference : array_like, shape (n,)
        One value per seed for the arm the claim favours and for its reference.
        Pairs with a non-finite value are dropped and counted.
    config : ClaimConfig or any object with the same attributes
        Reads ``config.alpha`` and ``config.min_relative_effect``.
    log_scale : bool, default False
        The values are logarithms (e.g. log retentions): the relative effect
        is then ``expm1(estimate)``, the ratio minus one, instead of the
        estimate over ``|mean(reference)|``.
    reason : str, optional
        Why the verdict cannot be tested (e.g. "case did not overfit"): the
        statistics are still computed, ``holds`` is None.

    Returns
    -------
    dict
        ``effect`` (Hodges-Lehmann estimate of the paired difference),
        ``ci`` (its exact signed-rank interval, nominal 95%, for that shift:
        the pseudo-median of the differences, which is their mean only when
        they are symmetric), ``ci_level`` (its exact coverage), ``p_value`` (one-sided
        Wilcoxon signed-rank, ``alternative="less"``), ``relative_effect``
        (``mean(claim - reference) / |mean(reference)|``, i.e. the ratio of
        the means minus one, never below -1 for a positive metric; with
        ``log_scale``, ``expm1(effect)``),
        ``n`` (finite pairs), ``dropped`` (non-finite pairs), ``reason``
        (None when testable), ``q_value`` (None until
        :func:`correct_family`) and ``holds``: None when untestable, else the
        uncorrected ``p_value < alpha and relative_effect <=
        -min_relative_effect`` until :func:`correct_family` replaces
        ``p_value`` by ``q_value`` there.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> criteria = SimpleNamespace(alpha=0.05, min_relative_effect=0.05)  # or a ClaimConfig
    >>> result = verdict([0.5, 0.6, 0.4, 0.5, 0.55, 0.45], [1.0] * 6, criteria)
    >>> result["holds"], result["p_value"], result["effect"]
    (True, 0.015625, -0.5)
    >>> verdict([0.5], [1.0], criteria)["reason"]
    'fewer than 5 seeds'
    """
    claim = np.asarray(claim, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if claim.shape != reference.shape or claim.ndim != 1:
        raise ValueError(f"claim and reference must be 1D of the same length, got {claim.shape} and {reference.shape}")
    keep = np.isfinite(claim) & np.isfinite(reference)
    differences = claim[keep] - reference[keep]
    result: dict[str, Any] = {"holds": None, "reason": reason, "q_value": None, "p_value": None,
                              "effect": None, "ci": [None, None], "ci_level": None, "relative_effect": None,
                              "n": int(keep.sum()), "dropped": int((~keep).sum())}
    if differences.size:
        estimate, interval, level = hodges_lehmann(differences)
        mean, scale = float(differences.mean()), abs(float(reference[keep].mean()))
        relative = math.expm1(estimate) if log_scale else (
            mean / scale if scale > 0 else (0.0 if mean == 0 else math.nan))
        result.update(effect=estimate, ci=interval, ci_level=level, relative_effect=relative,
                      p_value=signed_rank_less(differences))
    needed = smallest_testable_n(config.alpha)
    if result["reason"] is None and differences.size < needed:
        result["reason"] = (f"non-finite values in {result['dropped']} seeds leave fewer than {needed}"
                            if result["dropped"] else f"fewer than {needed} seeds")
    if result["reason"] is None:
        result["holds"] = _passes(result, result["p_value"], config)
    return result


def _passes(result: dict[str, Any], p: float, config: Any) -> bool:
    relative = result["relative_effect"]
    return bool(p < config.alpha and relative is not None and math.isfinite(relative)
                and relative <= -config.min_relative_effect)


def adjust(p_values: Any, method: str = "bh") -> np.ndarray:
    """Multiplicity-adjusted p-values (q-values) of one family of tests.

    Parameters
    ----------
    p_values : array_like, shape (m,)
    method : {"bh", "holm", "none"}
        Benjamini-Hochberg (false discovery rate), Holm (family-wise error
        rate), or no adjustment.

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
    m = p.size
    if method == "none" or m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if method == "bh":
        adjusted = np.minimum.accumulate((ranked * m / np.arange(1, m + 1))[::-1])[::-1]
    else:
        adjusted = np.maximum.accumulate(ranked * (m - np.arange(m)))
    result = np.empty(m)
    result[order] = np.minimum(adjusted, 1.0)
    return result


def correct_family(verdicts: Iterable[dict[str, Any]], config: Any) -> dict[str, Any]:
    """Set ``q_value`` and the final ``holds`` of every verdict of one run, adjusted over all of them.

    The family is every testable verdict (``reason`` None) with a p-value;
    ``config.correction`` names the method (:func:`adjust`; ``config`` a
    ClaimConfig or an object with ``correction``, ``alpha`` and
    ``min_relative_effect``). Untestable
    verdicts keep ``holds`` None and ``q_value`` None.

    Returns
    -------
    dict
        ``{"size": m, "method": ..., "alpha": ...}``, what the report states.
    """
    family = [v for v in verdicts if v["reason"] is None and v["p_value"] is not None]
    q = adjust([v["p_value"] for v in family], config.correction)
    for item, q_value in zip(family, q):
        item["q_value"] = float(q_value)
        item["holds"] = _passes(item, q_value, config)
    return {"size": len(family), "method": config.correction, "alpha": config.alpha}

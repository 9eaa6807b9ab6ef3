"""Paired statistics behind every verdict of the claim check."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.stats


def paired_verdict(claim: Any, reference: Any, *, alpha: float = 0.05, min_relative_effect: float = 0.05,
                   resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Does ``claim`` come out lower than ``reference``, pair by pair?

    Parameters
    ----------
    claim, reference : array_like, shape (n,)
        One value per seed for the arm the claim favours and for its reference.
        Pairs with a non-finite value are dropped and counted.
    alpha : float
        Significance level of the one-sided test.
    min_relative_effect : float
        Smallest relative decrease that counts, so rounding noise never passes.
    resamples : int
        Bootstrap resamples.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``effect`` (mean of ``claim - reference``), ``ci`` (95% bootstrap CI of
        that mean, BCa), ``p_value`` (one-sided Wilcoxon signed-rank,
        ``alternative="less"``), ``relative_effect`` (``effect / |mean(reference)|``),
        ``holds`` (``ci[1] < 0 and p_value < alpha and relative_effect <=
        -min_relative_effect``), ``n`` and ``dropped`` (non-finite pairs).
    """
    claim = np.asarray(claim, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if claim.shape != reference.shape or claim.ndim != 1:
        raise ValueError(f"claim and reference must be 1D of the same length, got {claim.shape} and {reference.shape}")
    keep = np.isfinite(claim) & np.isfinite(reference)
    differences = claim[keep] - reference[keep]
    result: dict[str, Any] = {"holds": False, "effect": float("nan"), "ci": [float("nan"), float("nan")],
                              "p_value": float("nan"), "relative_effect": float("nan"),
                              "n": int(keep.sum()), "dropped": int((~keep).sum())}
    if differences.size == 0:
        return result
    effect = float(differences.mean())
    scale = abs(float(reference[keep].mean()))
    result["effect"] = effect
    result["relative_effect"] = effect / scale if scale > 0 else (0.0 if effect == 0 else float("nan"))
    if differences.size < 2:
        return result
    result["ci"] = _bootstrap_ci(differences, resamples, seed)
    result["p_value"] = _wilcoxon_less(differences)
    result["holds"] = bool(result["ci"][1] < 0 and result["p_value"] < alpha
                           and result["relative_effect"] <= -min_relative_effect)
    return result


def _bootstrap_ci(differences: np.ndarray, resamples: int, seed: int) -> list[float]:
    if np.ptp(differences) == 0:  # every resample has the same mean
        return [float(differences[0])] * 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interval = scipy.stats.bootstrap((differences,), np.mean, n_resamples=resamples, confidence_level=0.95,
                                         method="BCa", random_state=np.random.default_rng(seed)).confidence_interval
        if not np.all(np.isfinite([interval.low, interval.high])):
            interval = scipy.stats.bootstrap((differences,), np.mean, n_resamples=resamples, confidence_level=0.95,
                                             method="percentile", random_state=np.random.default_rng(seed)).confidence_interval
    return [float(interval.low), float(interval.high)]


def _wilcoxon_less(differences: np.ndarray) -> float:
    if not np.any(differences):
        return 1.0  # no pair differs: no evidence for a decrease
    return float(scipy.stats.wilcoxon(differences, alternative="less").pvalue)

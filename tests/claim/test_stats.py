import itertools

import numpy as np
import pytest
import scipy.stats

from spectral.claim._config import load_config
from spectral.claim._stats import (
    adjust,
    correct_family,
    hodges_lehmann,
    signed_rank_null,
    smallest_testable_n,
    verdict,
)

CONFIG = load_config(overrides={"alpha": 0.05, "min_relative_effect": 0.05, "correction": "bh"})


def test_signed_rank_null_is_the_enumerated_distribution():
    n = 6
    sums = [sum(r for r, s in zip(range(1, n + 1), signs) if s) for signs in itertools.product((0, 1), repeat=n)]
    expected = np.bincount(sums) / 2**n
    assert np.allclose(signed_rank_null(n), expected)


def test_hodges_lehmann_by_hand():
    # Walsh averages of 1..8: median 4.5; n = 8 at 95%: P(T+ <= 3) = 5/256 <= 0.025 < P(T+ <= 4) = 7/256, so d = 4.
    estimate, (low, high), level = hodges_lehmann(np.arange(1.0, 9.0))
    assert estimate == 4.5 and (low, high) == (2.0, 7.0) and level == pytest.approx(1 - 2 * 5 / 256)
    assert hodges_lehmann(np.arange(5.0))[2] == pytest.approx(1 - 2**-4)  # too few for 95%: the whole range


def _pseudo_median_of_lognormal_minus(offset):
    draws = np.random.default_rng(7).lognormal(0.0, 1.0, (1_000_000, 2))
    return float(np.median(draws.mean(axis=1))) - offset


@pytest.mark.parametrize("kind", ["normal", "paired lognormal", "skewed lognormal"])
def test_interval_coverage_at_the_default_sixteen_seeds(kind):
    # Normal differences, and paired lognormal data (each seed its own skewed level, the claim arm lower by a
    # fixed shift): symmetric about the shift. Skewed: the differences themselves lognormal, where the interval's
    # target is the pseudo-median (the Hodges-Lehmann shift), not the mean. Coverage >= 93% (nominal 95%).
    rng = np.random.default_rng(1)
    covered, trials = 0, 2000
    truth = _pseudo_median_of_lognormal_minus(2.0) if kind == "skewed lognormal" else -0.3
    for _ in range(trials):
        if kind == "normal":
            differences = rng.normal(-0.3, 1.0, 16)
        elif kind == "paired lognormal":
            level = rng.lognormal(0.0, 1.0, 16)
            differences = (level * rng.lognormal(0, 0.5, 16) - 0.3) - level * rng.lognormal(0, 0.5, 16)
        else:
            differences = rng.lognormal(0.0, 1.0, 16) - 2.0
        low, high = hodges_lehmann(differences)[1]
        covered += low <= truth <= high
    assert covered / trials >= 0.93


def test_verdict_fields_and_the_test_it_rests_on():
    rng = np.random.default_rng(0)
    reference = rng.normal(1.0, 0.1, 16)
    claim = reference - 0.3 + rng.normal(0, 0.02, 16)
    result = verdict(claim, reference, CONFIG)
    differences = claim - reference
    assert result["p_value"] == pytest.approx(scipy.stats.wilcoxon(differences, alternative="less").pvalue)
    assert result["relative_effect"] == pytest.approx(claim.mean() / reference.mean() - 1)
    assert result["ci"][0] <= result["effect"] <= result["ci"][1] < 0
    assert result["holds"] is True and result["reason"] is None and result["q_value"] is None
    assert result["n"] == 16 and result["dropped"] == 0


def test_rounding_noise_never_passes():
    reference = np.linspace(1, 2, 16)
    result = verdict(reference * (1 - 1e-7), reference, CONFIG)
    assert result["p_value"] < 0.05 and result["holds"] is False


def test_increase_and_equal_do_not_hold():
    reference = np.linspace(1, 2, 8)
    assert verdict(reference + 0.5, reference, CONFIG)["holds"] is False
    equal = verdict(reference, reference, CONFIG)
    assert equal["effect"] == 0 and equal["p_value"] == 1.0 and equal["holds"] is False


def test_one_seed_is_untestable_not_no():
    result = verdict([0.1], [1.0], CONFIG)
    assert result["holds"] is None and result["reason"] == "fewer than 5 seeds"
    assert smallest_testable_n(0.05) == 5 and 2.0**-5 < 0.05 <= 2.0**-4


def test_non_finite_pairs_are_dropped_counted_and_can_make_it_untestable():
    claim = np.array([0.1, np.nan, 0.2, 0.1, 0.15, 0.12, np.inf, 0.1])
    result = verdict(claim, np.ones(8), CONFIG)
    assert result["n"] == 6 and result["dropped"] == 2 and result["holds"] is True
    broken = verdict([np.nan] * 8, np.ones(8), CONFIG)
    assert broken["holds"] is None and "non-finite" in broken["reason"] and broken["p_value"] is None


def test_a_given_reason_makes_it_untestable():
    result = verdict(np.zeros(8), np.ones(8), CONFIG, reason="case did not overfit")
    assert result["holds"] is None and result["reason"] == "case did not overfit" and result["p_value"] < 0.05


def test_log_scale_relative_effect_is_the_ratio():
    result = verdict(np.log(np.full(8, 0.5)) + np.linspace(0, 1e-3, 8), np.zeros(8), CONFIG, log_scale=True)
    assert result["relative_effect"] == pytest.approx(-0.5, abs=1e-3)


def test_adjust_matches_by_hand_and_scipy():
    p = np.array([0.01, 0.04, 0.03, 0.5])
    assert adjust(p, "bh") == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.5])
    assert adjust(p, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert adjust(p, "none") == pytest.approx(p)
    if hasattr(scipy.stats, "false_discovery_control"):
        assert adjust(p, "bh") == pytest.approx(scipy.stats.false_discovery_control(p))
    with pytest.raises(ValueError, match="method"):
        adjust(p, "bonferroni")


def test_family_correction_sets_q_and_holds_and_skips_untestable():
    strong = verdict(np.zeros(8), np.ones(8), CONFIG)  # p = 1/256
    weak = verdict(np.r_[np.zeros(6), 2.0, 2.0], np.ones(8), CONFIG)
    untestable = verdict([0.0], [1.0], CONFIG)
    family = correct_family([strong, weak, untestable], CONFIG)
    assert family == {"size": 2, "method": "bh", "alpha": 0.05}
    assert strong["q_value"] == pytest.approx(2 / 256) and strong["holds"] is True
    assert weak["q_value"] >= weak["p_value"] and untestable["q_value"] is None and untestable["holds"] is None


def test_bad_shapes():
    with pytest.raises(ValueError, match="same length"):
        verdict([1.0, 2.0], [1.0], CONFIG)
    with pytest.raises(ValueError, match="differences"):
        hodges_lehmann([])

import numpy as np
import pytest
import scipy.stats

from spectral._stats import paired_verdict


def test_clear_decrease_holds_with_documented_fields():
    rng = np.random.default_rng(0)
    reference = rng.normal(1.0, 0.1, 10)
    claim = reference - 0.3 + rng.normal(0, 0.02, 10)
    result = paired_verdict(claim, reference, resamples=500, seed=1)
    differences = claim - reference
    assert result["effect"] == pytest.approx(differences.mean())
    assert result["relative_effect"] == pytest.approx(differences.mean() / abs(reference.mean()))
    assert result["p_value"] == pytest.approx(scipy.stats.wilcoxon(differences, alternative="less").pvalue)
    assert result["ci"][0] < result["effect"] < result["ci"][1] < 0
    assert result["holds"] and result["n"] == 10 and result["dropped"] == 0


def test_rounding_noise_never_passes():
    reference = np.linspace(1, 2, 12)
    claim = reference * (1 - 1e-7)  # consistent but negligible decrease
    result = paired_verdict(claim, reference)
    assert result["ci"][1] < 0 and result["p_value"] < 0.05
    assert not result["holds"]


def test_increase_and_equal_do_not_hold():
    reference = np.linspace(1, 2, 8)
    assert not paired_verdict(reference + 0.5, reference)["holds"]
    equal = paired_verdict(reference, reference)
    assert equal["effect"] == 0 and equal["p_value"] == 1.0 and not equal["holds"]


def test_non_finite_pairs_are_dropped_and_counted():
    claim = np.array([0.1, np.nan, 0.2, 0.1, 0.15, 0.12, np.inf, 0.1])
    reference = np.ones(8)
    result = paired_verdict(claim, reference)
    assert result["n"] == 6 and result["dropped"] == 2


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=8), rng.normal(size=8)
    assert paired_verdict(a, b, seed=5)["ci"] == paired_verdict(a, b, seed=5)["ci"]


def test_too_few_pairs_and_bad_shapes():
    assert not paired_verdict([1.0], [2.0])["holds"]
    with pytest.raises(ValueError, match="same length"):
        paired_verdict([1.0, 2.0], [1.0])

"""The arms of the claim check and the verdicts that compare them: names, comparison points, families.

A verdict is ``name -> (metric, claim, reference)``: "the claim's arm comes out
lower than the reference's on ``metric``", paired by seed. A case kind
(:mod:`spectral.claim._kinds`) picks its verdict set from the builders here.
"""

from __future__ import annotations

ARMS = ("slingshot", "control", "optimizer_reset", "gradual_shrink", "shrink_perturb", "fresh", "output_scale")
#: Compared with the slingshot but not retrained: the phase-1 checkpoint (after step 0) with the best validation error.
BASELINES = ("early_stop",)
#: Arms that continue the overfit run's optimiser state; the others restart it.
CONTINUED = ("control", "gradual_shrink")
#: Arms whose retraining starts from the overfit weights as they are (recovered at step 0).
UNCHANGED = ("control", "optimizer_reset", "gradual_shrink")
#: The verdicts declared in advance to answer the essay: one corrected family; every other verdict is secondary.
PRIMARY = ("shrink_removes_high_frequencies", "shrink_removes_high_more_than_low", "slingshot_beats_control",
           "slingshot_beats_overfit_at_matched_fit", "slingshot_beats_early_stop", "slingshot_beats_gradual_shrink")
#: Generalisation metrics, lower is better: test MSE (test loss for the digits), and the digits' error rate.
TEST_METRICS = ("test_mse", "test_error")
#: Where along retraining each arm's test error is read: after the fixed steps, at recovery, at best validation.
COMPARISONS = ("end", "matched_fit", "best_validation")
#: Metrics taken under two measurement choices (windows, or filter widths): their verdicts are checked under both.
SPECTRAL_METRICS = ("hf_fraction", "hf_error", "log_retention")

Verdicts = dict[str, tuple[str, str, str]]


def family(name: str) -> str:
    """``"primary"`` for the verdicts declared in advance (:data:`PRIMARY`), else ``"secondary"``.

    Examples
    --------
    >>> family("slingshot_beats_control"), family("slingshot_beats_fresh")
    ('primary', 'secondary')
    """
    return "primary" if name in PRIMARY else "secondary"


def spectral_verdicts() -> Verdicts:
    """The shrink and retraining verdicts on the high-frequency share and the per-band retention (scale-free)."""
    return {"shrink_removes_high_frequencies": ("hf_fraction", "shrunk", "overfit"),
            "shrink_removes_high_more_than_low": ("log_retention", "high", "low"),
            "slingshot_keeps_fewer_high_frequencies": ("hf_fraction", "slingshot", "control"),
            "fresh_keeps_fewer_high_frequencies": ("hf_fraction", "fresh", "control")}


def generalisation_verdicts(metric: str = "test_mse", comparisons: tuple[str, ...] = COMPARISONS,
                            name_suffix: str = "") -> Verdicts:
    """The slingshot against every other arm and baseline on ``metric``, at each of ``comparisons``.

    At matched fit, the arms that start from the overfit weights unchanged are
    at the overfit fit from step 0: against all of them the comparison is
    "the slingshot re-fitted vs the overfit net", one test (``overfit``).
    """
    verdicts = {}
    for comparison in comparisons:
        suffix = "" if comparison == "end" else f"_at_{comparison}"
        references = [arm for arm in ARMS + BASELINES if arm != "slingshot"]
        if comparison == "matched_fit":
            references = ["overfit"] + [arm for arm in references if arm not in UNCHANGED + BASELINES]
        for reference in references:
            verdicts[f"slingshot_beats_{reference}{suffix}{name_suffix}"] = (f"{metric}@{comparison}", "slingshot",
                                                                             reference)
    return verdicts

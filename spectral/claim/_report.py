"""The claim-check report: report.json, report.md, report.html and figures, built from the per-case result files.

The report is where the run's whole family of verdicts is corrected for
multiplicity (:func:`spectral.claim._stats.correct_families`, one family of primary verdicts and one of secondary ones): the cached case files
keep the raw p-values, every q-value and final ``holds`` lives here.
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import UserInputError
from .._io import atomic_write, read_json, save_figure, write_json
from ._arms import ARMS, BASELINES, UNCHANGED
from ._config import ClaimConfig
from ._figures import scope_figure, write_figures
from ._format import mean_sd, number
from ._html import write_html
from ._kinds import kind_of
from ._report_checks import check_report
from ._stats import correct_families, smallest_testable_n
from ._tables import markdown_safe, verdict_cell, verdict_rows

REPORT_VERSION = 3

#: Columns of the headline table: the primary verdicts (declared in advance; one corrected family).
PRIMARY_NAMES = {
    "shrink_removes_high_frequencies": "shrink cuts HF",
    "shrink_removes_high_more_than_low": "cuts HF more than LF",
    "slingshot_beats_control": "beats control",
    "slingshot_beats_overfit_at_matched_fit": "beats overfit at matched fit",
    "slingshot_beats_early_stop": "beats early stop",
    "slingshot_beats_gradual_shrink": "beats gradual shrink",
}
#: Columns of the secondary table (their own corrected family).
SECONDARY_NAMES = {
    "slingshot_keeps_fewer_high_frequencies": "fewer HF after retrain",
    "slingshot_beats_optimizer_reset": "beats optimizer reset",
    "slingshot_beats_fresh": "beats fresh",
    "slingshot_beats_shrink_perturb": "beats shrink+perturb",
    "slingshot_beats_output_scale": "beats output-scale",
    "slingshot_beats_control_on_test_error": "beats control (test error)",
    "slingshot_fits_high_frequencies_less": "fits HF less after retrain",
}
SHORT_NAMES = {**PRIMARY_NAMES, **SECONDARY_NAMES}
COMPARISON_TITLES = {"": "at the end of retraining", "_at_matched_fit": "at matched training fit",
                     "_at_best_validation": "at each arm's best validation error"}


def iter_verdicts(report: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every verdict of a report (cases, their alternate windows, the scope grid, the precision study)."""
    for case in report["cases"]:
        for item in case["verdicts"].values():
            yield item
            if "alternate_window" in item:
                yield item["alternate_window"]
    for cell in report.get("scope") or []:
        yield from cell["verdicts"].values()
    yield from ((report.get("precision") or {}).get("verdicts") or {}).values()


def _attribute(cases: list[dict[str, Any]]) -> None:
    """Say when a "fewer HF after retrain" result is not the shrink's doing (the restart or the negative control)."""
    controls = [c for c in cases if "negative_control" in c]
    for case in cases:
        item = case["verdicts"]["slingshot_keeps_fewer_high_frequencies"]
        notes = []
        if case["verdicts"]["fresh_keeps_fewer_high_frequencies"]["holds"]:
            notes.append("a fresh initialisation keeps fewer high frequencies than the control too: a restart effect")
        notes += [f"the homogeneous negative control {c['id']} shows it too, where the shrink cannot change the "
                  "spectrum's shape" for c in controls if c is not case
                  and c["signal"] == case["signal"] and c["verdicts"]["slingshot_keeps_fewer_high_frequencies"]["holds"]]
        item["attribution"] = notes


def build_report(config: ClaimConfig, cases: list[dict[str, Any]], precision: dict[str, Any] | None,
                 scope: list[dict[str, Any]] | None = None, *, device: str = "cpu",
                 times: dict[str, float] | None = None) -> dict[str, Any]:
    """The JSON report, every verdict corrected over the run's whole family.

    Everything but ``provenance`` (versions, machine, date, wall times) is
    deterministic: the same config gives the same report on rerun.
    """
    from .._provenance import provenance

    report = copy.deepcopy({"version": REPORT_VERSION, "config": config.to_dict(), "cases": cases, "precision": precision,
                            "scope": scope or None})
    report["family"] = correct_families(iter_verdicts(report), alpha=config.alpha, correction=config.correction)
    for case in report["cases"]:
        for item in case["verdicts"].values():
            if "alternate_window" not in item:
                continue
            item["window_dependent"] = item["outcome"] != item["alternate_window"]["outcome"]
    _attribute(report["cases"])
    report["provenance"] = {**provenance(device=device, dtype="float32"),
                            "wall_time_s": {name: round(value, 2) for name, value in (times or {}).items()}}
    return report


def load_report(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``report.json``; refuse files that are not a claim-check report of this version, or damaged ones.

    Raises
    ------
    OSError
        If the file cannot be read.
    ValueError
        If it is not strict JSON; ``UserInputError`` (a ``ValueError``) if it
        is not a claim-check report of this version, or a field the report
        reads is missing or of the wrong type (the message names its JSON
        path, e.g. ``cases[0].overfit.steps``; see
        :mod:`spectral.claim._report_checks`).
    """
    report = read_json(path)
    if not (isinstance(report, dict) and isinstance(report.get("config"), dict) and isinstance(report.get("cases"), list)):
        raise UserInputError(f"path={str(path)!r} is not a spectral claim-check report")
    version = report.get("version")
    if type(version) is not int or version != REPORT_VERSION:
        raise UserInputError(f"path={str(path)!r} has report version {version!r}; this spectral reads {REPORT_VERSION}")
    check_report(report)
    return report


def verdict_table(cases: list[dict[str, Any]], names: list[str] | None = None) -> str:
    """Markdown table: one row per case, one column per verdict (default: the primary verdicts)."""
    if names is None:
        names = list(PRIMARY_NAMES)
    names = [name for name in names if any(name in case["verdicts"] for case in cases)]
    lines = ["| case | " + " | ".join(SHORT_NAMES.get(n, n) for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for case in cases:
        cells = [verdict_cell(case["verdicts"][n]) if n in case["verdicts"] else "-" for n in names]
        lines.append(f"| {case['id']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _comparison_table(cases: list[dict[str, Any]]) -> list[str]:
    """Slingshot vs every reference, at the end, at matched fit and at the best validation error."""
    references = ["overfit"] + [arm for arm in ARMS + BASELINES if arm != "slingshot"]
    lines = ["| case | comparison | " + " | ".join(references) + " |", "|---|---|" + "---|" * len(references)]
    for case in cases:
        for suffix, title in COMPARISON_TITLES.items():
            cells = [verdict_cell(case["verdicts"][f"slingshot_beats_{r}{suffix}"])
                     if f"slingshot_beats_{r}{suffix}" in case["verdicts"] else "-" for r in references]
            lines.append(f"| {case['id']} | {title} | " + " | ".join(cells) + " |")
    return lines


def _overfit_sentence(case: dict[str, Any]) -> str:
    overfit = case["overfit"]
    seeds = len(case["seeds"])
    steps = np.array(overfit["steps"], dtype=float)
    reached = sum(bool(r) for r in overfit["reached"])
    gap = np.array([np.nan if g is None else g for g in overfit["test_gap"]], dtype=float)
    verdict = ("overfits: its generalisation verdicts use those seeds" if overfit["overfits"] else
               f"DID NOT OVERFIT (fewer than {overfit['min_overfit_fraction']:.0%} of its seeds): its generalisation "
               "verdicts are untestable")
    return (f"Phase 1: each seed trained until its own training MSE fell below {number(overfit['threshold'])} "
            f"({number(overfit['threshold'] / case['noise_variance'], 2)} x the noise variance), "
            f"{_range(steps)} steps; {reached}/{seeds} "
            f"seeds reached it. Test MSE at the stop over the seed's phase-1 minimum (test gap): median "
            f"{number(float(np.nanmedian(gap)) if np.isfinite(gap).any() else None)}. "
            f"{overfit['seeds_overfitting']}/{seeds} seeds overfit (reached the threshold and a test gap >= "
            f"{overfit['min_test_gap']}): the case {verdict}.")


def _range(values: np.ndarray) -> str:
    """``"200"`` or ``"150-2000"``: the range of whole numbers."""
    low, high = int(values.min()), int(values.max())
    return str(low) if low == high else f"{low}-{high}"


def _recovery_sentence(case: dict[str, Any]) -> str:
    """Of the seeds that overfit, how many of each retrained arm got back to their overfit training MSE, when, and
    at what weight norm (the arms that start at the overfit weights are there at step 0 by construction)."""
    retrain, overfit = case["retrain"], np.array(case["overfit"]["overfit_seeds"], dtype=bool)
    parts = []
    for arm, steps in retrain["recovered_step"].items():
        if arm in UNCHANGED:
            continue
        chosen = [(s, r) for s, r, keep in zip(steps, retrain["weight_norm_ratio"][arm], overfit) if keep]
        recovered = np.array([s for s, _ in chosen if s is not None], dtype=float)
        ratios = np.array([r for _, r in chosen if r is not None], dtype=float)
        median = f", median step {number(float(np.median(recovered)))}" if recovered.size else ""
        norm = f", weight norm {number(float(np.median(ratios)), 2)} x overfit" if ratios.size else ""
        parts.append(f"{arm} {recovered.size}/{len(chosen)}{median}{norm}")
    return (f"Retraining: every arm trained {retrain['fixed_steps']} steps (the comparison at the end), then each "
            f"member not yet back at its seed's overfit training MSE trained on alone, checked every "
            f"{retrain['check_every']} steps, up to {retrain['recovery_max_steps']} (matched fit). Of the seeds that "
            f"overfit, recovered: " + "; ".join(parts) + f" ({', '.join(UNCHANGED)} start there: step 0).")


def _case_section(case: dict[str, Any], figures: dict[str, str]) -> list[str]:
    negative = "negative_control" in case
    columns = {"test_mse": "test MSE (mean ± sd)", "test_error": "test error", "hf_error:primary": "HF error",
               "hf_fraction:primary": "high-frequency fraction", "train_mse": "training MSE"}
    columns = {name: title for name, title in columns.items() if name in case["metrics"]}
    lines = [f"## Case {case['id']}", "",
             (f"Signal {case['signal']}, activation {case['activation']}, biases {'on' if case['bias'] else 'off'}"
             f"{' (constant input feature: positively homogeneous, the negative control)' if negative else ''}, "
             f"optimiser {case['optimizer']} (learning rate {number(case['learning_rate'])}); {len(case['seeds'])} "
             f"seeds. {kind_of(case['signal']).describe(case)}"), "", _overfit_sentence(case), "", _recovery_sentence(case), "",
             "| arm | " + " | ".join(columns.values()) + " |", "|---" * (len(columns) + 1) + "|"]
    metrics = case["metrics"]
    for arm in ("overfit", "shrunk") + ARMS + BASELINES:
        row = [mean_sd(metrics[name][arm]) if metrics[name].get(arm) is not None else "-" for name in columns]
        lines.append(f"| {arm} | " + " | ".join(row) + " |")
    lines += ["", (f"Output-scale arm: last layer scaled by {mean_sd(case['output_scale_factors'])} (the whole net's "
                  "output RMS ratio after the shrink)."), ""]
    if negative:
        control = case["negative_control"]
        state = {True: "no effect, as homogeneity requires", False: "AN EFFECT: the measurement is wrong",
                 None: f"untestable ({control['reason']})"}[control["passed"]]
        lines += [(f"Negative control: the high-frequency fraction changed by at most "
                  f"{number(control['max_relative_hf_change'], 2)} (relative) through the shrink: {state}. "
                  "Homogeneity constrains only the shrink itself; retraining afterwards may change the spectrum "
                  "like in any other net."), ""]
    lines += verdict_rows(case["verdicts"], choice=kind_of(case["signal"]).choice) + [""]
    lines += [f"![{name}]({path})" for name, path in figures.items()] + [""]
    return lines


def _sweep_section(case: dict[str, Any], figure: str) -> list[str]:
    sweep = case["sweep"]
    lines = [f"## Shrink-factor sweep ({case['id']})", "",
             "| factor | HF fraction right after shrink | HF fraction after retraining | test MSE after retraining |",
             "|---|---|---|---|"]
    for i, factor in enumerate(sweep["factors"]):
        lines.append(f"| {factor:g} | {mean_sd(sweep['hf_fraction_shrunk'][i])} | {mean_sd(sweep['hf_fraction'][i])} | "
                     f"{mean_sd(sweep['test_mse'][i])} |")
    return lines + ["", f"![sweep]({figure})", ""]


def _scope_section(scope: list[dict[str, Any]], figure: str) -> list[str]:
    lines = ["## Scope: data size x width", "",
             ("The essay says the maneuver \"works best with smaller data sets and models\". Each cell retrains its "
             "case at that number of training points and width; cells read slingshot vs control / slingshot vs "
             "early stop."), "", "| case | training points | width | overfits | vs control | vs early stop |",
             "|---|---|---|---|---|---|"]
    for cell in scope:
        v = cell["verdicts"]
        lines.append(f"| {cell['case']} | {cell['train_points']} | {cell['width']} | {'yes' if cell['overfit'] else 'no'} "
                     f"| {verdict_cell(v['slingshot_beats_control'])} | {verdict_cell(v['slingshot_beats_early_stop'])} |")
    return lines + ["", f"![scope]({figure})", ""]


def _provenance_lines(provenance: dict[str, Any]) -> list[str]:
    lines = ["## Provenance", "", "| item | value |", "|---|---|"]
    for key, value in provenance.items():
        text = ", ".join(f"{k} {v} s" for k, v in value.items()) if isinstance(value, dict) else str(value)
        lines.append(f"| {key} | {text} |")
    return lines + [""]


def _method(method: str) -> str:
    return {"bh": "Benjamini-Hochberg (false discovery rate)", "holm": "Holm (family-wise error rate)",
            "none": "no correction"}[method]


def _summary(report: dict[str, Any]) -> list[str]:
    config, families = report["config"], report["family"]
    seeds = len(report["cases"][0]["seeds"]) if report["cases"] else 0
    margin = config["min_relative_effect"]
    sizes = ", ".join(f"{name} {family['size']} hypotheses" for name, family in families.items())
    return [
        (f"Each verdict compares two arms seed by seed (paired, {seeds} seeds, every seed trained and stopped on its "
         "own). One estimand serves the test, the interval and the margin: the paired log-ratio log(claim / "
         "reference), its Hodges-Lehmann estimate and exact signed-rank interval; the relative effect is "
         "exp(estimate) - 1. **yes**: the claim's arm is lower, significantly after correction, by at least the "
         f"margin ({margin:.0%}). **no**: a test shows the improvement is absent or smaller than the margin "
         "(equivalent: within the margin either way; worse: significantly higher). **inconclusive**: neither "
         "(with the seeds the data suggest would decide it). **untestable**: the data cannot answer (reason given: "
         f"fewer than {smallest_testable_n(config['alpha'])} finite pairs, too few seeds that overfit, too few "
         f"that recovered). Each verdict states its power for a 20% improvement at its own spread (of the rule "
         f"before the correction: an upper bound) and the seeds that would give 0.8. The primary verdicts were "
         f"declared in advance and form one family; every other verdict "
         f"is secondary, a family of its own ({sizes}; each corrected by {_method(config['correction'])} at "
         f"{config['alpha']}). Generalisation verdicts use only the seeds that overfit (n counts the pairs used; "
         "dropped: seeds that did not overfit, non-finite values, non-positive values of a ratio). Spectral "
         "verdicts are also "
         f"computed under a second measurement choice (`{config['window']}` and `{config['alternate_window']}` "
         f"windows for the signals); † marks one whose outcome differs. Cells read `outcome (relative effect)`; "
         f"shrink factor {config['shrink_factor']}."), ""]


def report_markdown(report: dict[str, Any], figures: dict[str, dict[str, str]], precision_markdown: str = "",
                    left_out: dict[str, str] | None = None) -> str:
    """The human-readable report: verdict table first, then one section per case.

    ``left_out`` maps a case id to why its history figures are missing.
    """
    cases = report["cases"]
    lines = ["# Claim check: the slingshot maneuver", "", *_summary(report), "## Primary verdicts", "",
             verdict_table(cases), "", "## Secondary verdicts", "", verdict_table(cases, list(SECONDARY_NAMES)), "",
             "### The slingshot against every reference, at three points of retraining", "",
             *_comparison_table(cases), ""]
    for case in cases:
        if "negative_control" in case:
            state = {True: "passed", False: "FAILED", None: "untestable"}[case["negative_control"]["passed"]]
            lines.append(f"Negative control {case['id']}: {state} (HF fraction change through the shrink at most "
                         f"{number(case['negative_control']['max_relative_hf_change'], 2)}).")
    lines.append("")
    for case in cases:
        lines += _case_section(case, figures.get(case["id"], {}))
        if case["id"] in (left_out or {}):
            lines += [f"Figures from this case's history left out: {left_out[case['id']]}.", ""]
        if case["sweep"]:
            lines += _sweep_section(case, figures.get("sweep", {}).get("sweep", ""))
    if report.get("scope"):
        lines += _scope_section(report["scope"], figures.get("scope", {}).get("scope", ""))
    if precision_markdown:
        lines += [precision_markdown, ""]
    lines += _provenance_lines(report["provenance"])
    return "\n".join(lines)


@contextmanager
def _precision_from_file() -> Iterator[None]:
    """The precision study's tables as read from report.json: one it cannot render is the file's fault, in one line.

    (Its verdicts are checked on load; the study's own layout belongs to its module.)
    """
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, ZeroDivisionError) as error:
        raise UserInputError(f"report.json: precision is not what `spectral run` writes ({type(error).__name__}: "
                             f"{error})") from None


def write_outputs(report: dict[str, Any], out: Path, *, from_file: bool = False) -> None:
    """Write the figures, report.md, report.html and report.json (each atomically) from ``report`` and the case files.

    Every string of ``report`` goes into report.md escaped (:func:`~spectral.claim._tables.markdown_safe`).
    A case whose history cannot be used loses its history figures, with a
    warning on stderr and a note in its section. ``from_file``: ``report``
    was read from report.json, so a precision section it cannot render is a
    ``UserInputError``.
    """
    warnings: dict[str, str] = {}
    figures = write_figures(report["cases"], out, skipped=warnings)
    for case_id, reason in warnings.items():
        print(f"spectral: warning: case {case_id}'s history figures are left out: {reason}", file=sys.stderr)
    if report.get("scope"):
        path = out / "figures" / "scope.png"
        save_figure(scope_figure(report["scope"]), path)
        figures["scope"] = {"scope": str(path.relative_to(out))}
    shown = markdown_safe(report)
    precision_text = ""
    if report.get("precision"):
        from ._precision_report import precision_figures, precision_markdown

        with _precision_from_file() if from_file else nullcontext():
            precision_figures(report["precision"], out / "figures")
            precision_text = precision_markdown(shown["precision"])
    text = report_markdown(shown, figures, precision_text, markdown_safe(warnings))
    write_json(out / "report.json", report)
    atomic_write(out / "report.md", lambda file: file.write(text), binary=False)
    write_html(report, out, figures, text)


def rebuild(out: str | os.PathLike) -> dict[str, Any]:
    """Rebuild report.md, report.html and the figures of a finished run from its saved results, without training.

    Figures from a case's history are drawn only when the case file in
    ``cases/`` is the one the report was built from and vouches for the
    history (its ``companion_sha256``); otherwise they are left out with a
    warning on stderr and a note in report.md.

    Raises
    ------
    OSError, ValueError
        As ``load_report``, for a missing or unusable report.json.
    """
    out = Path(out)
    report = load_report(out / "report.json")
    write_outputs(report, out, from_file=True)
    return report

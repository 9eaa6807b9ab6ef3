"""The claim-check report: report.json, report.md and figures, built from the per-case result files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from . import plot
from ._claim import ARMS, VERDICTS
from ._format import mean_sd, number
from ._history import SpectrumHistory
from ._io import atomic_write, read_json, save_figure, write_json

REPORT_VERSION = 1

#: Verdict columns of the terminal table, shortest names a reader still understands.
SHORT_NAMES = {
    "shrink_removes_high_frequencies": "shrink cuts HF",
    "slingshot_beats_control": "beats control",
    "slingshot_beats_shrink_perturb": "beats shrink+perturb",
    "slingshot_beats_fresh": "beats fresh",
    "slingshot_beats_output_scale": "beats output-scale",
    "slingshot_keeps_fewer_high_frequencies": "fewer HF after retrain",
}


def build_report(config: dict[str, Any], cases: list[dict[str, Any]], precision: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON report (deterministic: no times, no paths)."""
    return {"version": REPORT_VERSION, "config": config, "cases": cases, "precision": precision}


def load_report(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``report.json``; refuse files that are not a claim-check report of this version."""
    report = read_json(path)
    if not isinstance(report, dict) or not {"version", "config", "cases"} <= set(report):
        raise ValueError(f"path={str(path)!r} is not a spectral claim-check report")
    if report["version"] != REPORT_VERSION:
        raise ValueError(f"path={str(path)!r} has report version {report['version']!r}; this spectral reads {REPORT_VERSION}")
    return report


def verdict_cell(verdict: dict[str, Any]) -> str:
    return f"{'yes' if verdict['holds'] else 'no'} ({number(verdict['relative_effect'], 2)})"


def verdict_table(cases: list[dict[str, Any]]) -> str:
    """Markdown table: one row per case, one column per verdict, ``yes/no (relative effect)``."""
    names = list(VERDICTS)
    lines = ["| case | " + " | ".join(SHORT_NAMES[n] for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for case in cases:
        lines.append(f"| {case['id']} | " + " | ".join(verdict_cell(case["verdicts"][n]) for n in names) + " |")
    return "\n".join(lines)


def _verdict_details(case: dict[str, Any]) -> list[str]:
    lines = ["| verdict | metric: claim vs reference | holds | effect | 95% CI | p (Wilcoxon, less) | relative effect | n |",
             "|---|---|---|---|---|---|---|---|"]
    for name, v in case["verdicts"].items():
        ci = f"[{number(v['ci'][0])}, {number(v['ci'][1])}]"
        count = f"{v['n']} ({v['dropped']} non-finite dropped)" if v["dropped"] else str(v["n"])
        lines.append(f"| {name} | {v['metric']}: {v['claim']} vs {v['reference']} | {'yes' if v['holds'] else 'no'} | "
                     f"{number(v['effect'])} | {ci} | {number(v['p_value'])} | {number(v['relative_effect'])} | "
                     f"{count} |")
    return lines


def _case_section(case: dict[str, Any], figures: dict[str, str]) -> list[str]:
    overfit = case["overfit"]
    reached = sum(bool(r) for r in overfit["reached"])
    ratio = np.nanmean(np.array(overfit["train_mse"], dtype=float)) / case["noise_variance"]
    lines = [f"## Case {case['id']}", "",
             f"Signal {case['signal']}, activation {case['activation']}, biases {'on' if case['bias'] else 'off'}"
             f"{' (constant input feature: positively homogeneous, the negative control)' if 'negative_control' in case else ''}; "
             f"{len(case['seeds'])} seeds. Phase 1 trained {overfit['steps']} steps: {reached}/{len(case['seeds'])} seeds "
             f"reached training MSE < {number(overfit['threshold'])} (mean training MSE = {ratio:.2f} x noise variance). "
             f"High-frequency fraction: power above {number(case['cutoff'])} cycles (the signal's highest is "
             f"{number(case['signal_max_frequency'])}) over non-DC power.", "",
             "| arm | test MSE (mean ± sd) | high-frequency fraction | training MSE |", "|---|---|---|---|"]
    metrics = case["metrics"]
    for arm in ("overfit", "shrunk") + ARMS:
        lines.append(f"| {arm} | {mean_sd(metrics['test_mse'][arm])} | {mean_sd(metrics['hf_fraction'][arm])} | "
                     f"{mean_sd(metrics['train_mse'][arm])} |")
    transient = case["transient"]
    explanation = {"lasting": "holds at the end of retraining",
                   "transient": f"holds only at steps {transient['holds_at_steps']} and fades by the end: early stopping, not a lasting gain",
                   "none": "holds at no checkpoint of retraining"}[transient["kind"]]
    lines += ["", f"Slingshot vs control along retraining: {explanation}. Output-scale arm: last layer scaled by "
                  f"{mean_sd(case['output_scale_factors'])} (the whole net's output RMS ratio after the shrink).", ""]
    if "negative_control" in case:
        control = case["negative_control"]
        lines += [f"Negative control: the high-frequency fraction changed by at most "
                  f"{control['max_relative_hf_change']:.2g} (relative) through the shrink: "
                  f"{'no effect, as homogeneity requires' if control['passed'] else 'AN EFFECT: the measurement is wrong'}. "
                  "Homogeneity constrains only the shrink itself (`shrink_removes_high_frequencies`); "
                  "retraining afterwards may change the spectrum like in any other net.", ""]
    lines += _verdict_details(case) + [""]
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


def report_markdown(report: dict[str, Any], figures: dict[str, dict[str, str]], precision_markdown: str = "") -> str:
    """The human-readable report: verdict table first, then one section per case."""
    config, cases = report["config"], report["cases"]
    seeds = len(cases[0]["seeds"]) if cases else 0
    lines = ["# Claim check: the slingshot maneuver", "",
             "Each verdict compares two arms seed by seed (paired): `holds` needs the 95% bootstrap CI of the mean "
             f"difference below 0, a one-sided Wilcoxon p < {config['alpha']}, and a relative effect of at most "
             f"-{config['min_relative_effect']}. Cells read `yes/no (relative effect)`. {seeds} seeds per case, "
             f"shrink factor {config['shrink_factor']}, window `{config['window']}`.", "",
             "## Verdicts", "", verdict_table(cases), ""]
    controls = [c for c in cases if "negative_control" in c]
    for case in controls:
        passed = case["negative_control"]["passed"]
        lines.append(f"Negative control {case['id']}: {'passed' if passed else 'FAILED'} "
                     f"(HF fraction change through the shrink at most {case['negative_control']['max_relative_hf_change']:.2g}).")
    lines.append("")
    for case in cases:
        lines += _case_section(case, figures.get(case["id"], {}))
        if case["sweep"]:
            lines += _sweep_section(case, figures.get("sweep", {}).get("sweep", ""))
    if precision_markdown:
        lines += [precision_markdown, ""]
    return "\n".join(lines)


def _curves_figure(case: dict[str, Any]) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    steps = case["curves"]["steps"]
    for ax, metric, label in zip(axes, ("test_mse", "hf_fraction"), ("test MSE", "high-frequency fraction")):
        for arm in ARMS:
            values = np.array(case["curves"][metric][arm], dtype=float)
            mean = np.nanmean(values, axis=1)
            sem = np.nanstd(values, axis=1) / np.sqrt(values.shape[1])
            ax.plot(steps, mean, marker=".", label=arm)
            ax.fill_between(steps, mean - sem, mean + sem, alpha=0.2)
        ax.set_xlabel("retraining step")
        ax.set_ylabel(f"{label} (mean ± s.e.m.)")
        ax.set_yscale("log")
    axes[0].legend()
    fig.suptitle(f"{case['id']}: retraining curves per arm")
    return fig


def _sweep_figure(case: dict[str, Any]) -> Any:
    from matplotlib.figure import Figure

    sweep = case["sweep"]
    fig = Figure(figsize=(11, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    factors = sweep["factors"]
    for key, label in (("hf_fraction_shrunk", "right after shrink"), ("hf_fraction", "after retraining")):
        axes[0].plot(factors, np.nanmean(np.array(sweep[key], dtype=float), axis=1), marker="o", label=label)
    axes[0].set_ylabel("high-frequency fraction")
    axes[1].plot(factors, np.nanmean(np.array(sweep["test_mse"], dtype=float), axis=1), marker="o")
    axes[1].set_ylabel("test MSE after retraining")
    for ax in axes:
        ax.set_xlabel("shrink factor")
    axes[0].legend()
    fig.suptitle(f"{case['id']}: shrink-factor sweep (1.0 = no shrink)")
    return fig


def write_figures(cases: list[dict[str, Any]], out: Path) -> dict[str, dict[str, str]]:
    """Write every PNG; return ``{case id: {figure name: relative path}}``."""
    figures_dir = out / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, dict[str, str]] = {}
    for case in cases:
        history = SpectrumHistory.load(out / "cases" / f"{case['id']}.history.npz")
        spectra = plot.before_after(history) if case["signal"] == "1d" else plot.spectra_2d(history)
        made = [("spectra before/after shrink (seed 0)", "spectra", spectra),
                ("relative error over training (seed 0)", "heatmap", plot.error_heatmap(history)),
                ("retraining curves", "curves", _curves_figure(case))]
        written[case["id"]] = {}
        for name, stem, fig in made:
            path = figures_dir / f"{case['id']}-{stem}.png"
            save_figure(fig, path)
            written[case["id"]][name] = str(path.relative_to(out))
        if case["sweep"]:
            path = figures_dir / "sweep.png"
            save_figure(_sweep_figure(case), path)
            written["sweep"] = {"sweep": str(path.relative_to(out))}
    return written


def write_report(report: dict[str, Any], out: Path, figures: dict[str, dict[str, str]], precision_markdown: str = "") -> None:
    """Write report.json and report.md atomically."""
    write_json(out / "report.json", report)
    text = report_markdown(report, figures, precision_markdown)
    atomic_write(out / "report.md", lambda file: file.write(text), binary=False)

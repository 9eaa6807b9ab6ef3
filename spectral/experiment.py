"""The main job: run the claim check and write its report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ._claim import run_cases
from ._config import load_config
from ._progress import Progress
from ._report import build_report, verdict_table, write_figures, write_report

__all__ = ["run_claim_check"]


def run_claim_check(config: str | os.PathLike | None = None, out: str | os.PathLike = "spectral-results", *,
                    overrides: dict[str, Any] | None = None, quiet: bool = False) -> tuple[dict[str, Any], str]:
    """Test the slingshot claim on 1D and 2D signals, with controls and statistics.

    Parameters
    ----------
    config : path, optional
        TOML or JSON file overriding any part of the built-in default.
    out : path, default "spectral-results"
        Output folder: ``report.json``, ``report.md``, ``figures/`` and
        ``cases/`` (one file per finished case: an interrupted run resumes).
    overrides : dict, optional
        Applied after ``config`` (e.g. ``{"seeds": 32}``).
    quiet : bool, default False
        No progress bar.

    Returns
    -------
    report : dict
        What ``report.json`` holds.
    table : str
        The verdict table (Markdown) that heads ``report.md``.

    Raises
    ------
    spectral._config.ConfigError
        (a ``ValueError``) for a missing or malformed config, naming the key.
    """
    config = load_config(config, overrides)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    precision = config.get("precision", {}).get("enabled", False)
    units = 2 * len(config["cases"]) + 1
    if precision:
        from ._precision_experiment import PRECISION_UNITS
        units += PRECISION_UNITS
    progress = Progress(units, "claim check", disable=quiet)
    try:
        cases = run_cases(config, out, progress)
        precision_result, precision_text = None, ""
        if precision:
            from ._precision_experiment import precision_figures, precision_markdown, run_precision
            precision_result = run_precision(config, out, progress)
            precision_figures(precision_result, out / "figures")
            precision_text = precision_markdown(precision_result)
        report = build_report(config, cases, precision_result)
        figures = write_figures(cases, out)
        write_report(report, out, figures, precision_text)
        progress()
    finally:
        progress.close()
    return report, verdict_table(cases)

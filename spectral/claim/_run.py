"""The main job: run the claim check and write its report."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import torch

from .._io import remove_stale_temporaries
from .._progress import Progress
from .._validation import positive_int
from ._check import CASE_UNITS, case_tasks, run_cached_case
from ._parallel import Task, available_cores, run_tasks
from ._config import ClaimConfig, FrozenMap, load_config, parse_case_id

__all__ = ["resolve_device", "run_claim_check"]

DEVICES = ("auto", "cpu", "cuda", "mps")
#: A temporary file this old in an output folder belongs to a killed run (a figure or case file takes seconds).
STALE_AFTER_S = 600.0


def resolve_device(device: str) -> str:
    """``"auto"``: a CUDA GPU if there is one, else Apple's MPS, else the CPU; other names are checked.

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()}
    if device == "auto":
        return next(name for name in ("cuda", "mps", "cpu") if available[name])
    if not available[device]:
        raise ValueError(f"device={device!r} is not available on this machine")
    return device


def scope_cells(config: ClaimConfig) -> list[tuple[str, int, int]]:
    """The (case, training points, width) cells of the data-size x width grid, when ``scope`` is ``"full"``."""
    if config.scope != "full":
        return []
    grid = config.scope_grid
    return [(name, n, width) for name in grid.cases for n in grid.train_points for width in grid.widths]


def _scope_tasks(config: ClaimConfig, out: Path, device: str) -> list[Task]:
    """Every cell of the scope grid: the case retrained at that data size and width (no sweep)."""
    tasks = []
    seeds = list(range(config.seeds))
    for name, points, width in scope_cells(config):
        variant = config.replace(sweep=config.sweep.replace(case=""), training=config.training.replace(width=width),
                                 signals=FrozenMap({**config.signals,
                                                    "1d": config.signals["1d"].replace(train_points=points)}))
        tasks.append(Task(run_cached_case, (parse_case_id(name), variant, seeds,
                                            out / "scope" / f"{name}-n{points}-w{width}.json"), {"device": device}))
    return tasks


def _scope_cell(cell: tuple[str, int, int], result: dict[str, Any]) -> dict[str, Any]:
    name, points, width = cell
    return {"case": name, "train_points": points, "width": width, "overfit": result["overfit"]["overfits"],
            "test_gap": result["overfit"]["test_gap"],
            "verdicts": {key: result["verdicts"][key] for key in ("slingshot_beats_control", "slingshot_beats_early_stop")}}


def _run_all(config: ClaimConfig, out: Path, progress: Callable[[], None], device: str,
             workers: int) -> tuple[list[dict[str, Any]], dict[str, Any] | None, list[dict[str, Any]], dict[str, float]]:
    """The cases, the precision study and the scope grid: independent tasks, on ``workers`` processes.

    Returns the three results and the seconds each part's tasks took (summed over its tasks).
    """
    phases = {"cases": case_tasks(config, out, device), "scope": _scope_tasks(config, out, device),
              "precision": []}
    if config.precision.enabled:
        from ._precision import run_precision

        phases["precision"] = [Task(run_precision, (config, out))]
    # One worker: today's order. Several: the precision study (the longest task) first, so no core idles at the end.
    order = ("cases", "precision", "scope") if workers == 1 else ("precision", "cases", "scope")
    tasks = [task for phase in order for task in phases[phase]]
    finished = iter(run_tasks(tasks, workers, progress))
    done = {phase: [next(finished) for _ in phases[phase]] for phase in order}
    times = {phase: float(sum(task.seconds for task in done[phase])) for phase in order
             if phase != "precision" or config.precision.enabled}
    precision = done["precision"][0].result if done["precision"] else None
    scope = [_scope_cell(cell, task.result) for cell, task in zip(scope_cells(config), done["scope"])]
    return [task.result for task in done["cases"]], precision, scope, times


def run_claim_check(config: str | os.PathLike | None = None, out: str | os.PathLike = "spectral-results", *,
                    overrides: dict[str, Any] | None = None, quiet: bool = False,
                    device: str = "cpu", workers: int | None = None) -> tuple[dict[str, Any], str]:
    """Test the slingshot claim on 1D and 2D signals, with controls and statistics.

    Parameters
    ----------
    config : path, optional
        TOML or JSON file overriding any part of the built-in default.
    out : path, default "spectral-results"
        Output folder: ``report.json``, ``report.md``, ``report.html``,
        ``figures/`` and ``cases/`` (one file per finished case: an
        interrupted run resumes).
    overrides : dict, optional
        Applied after ``config`` (e.g. ``{"seeds": 32}``).
    quiet : bool, default False
        No progress bar.
    device : {"cpu", "auto", "cuda", "mps"}, default "cpu"
        Where the claim check trains (``"auto"``: a GPU when there is one).
        The precision study always runs on the CPU. On the CPU the run uses
        one torch thread per process (restored afterwards): at these sizes a
        second one adds no speed.
    workers : int, optional
        Processes that run the cases, the precision study and the scope
        cells side by side (default: the cores this process may use; 1: one
        after another in this process). The numbers are the same bit for bit
        whatever the count. Workers are fresh interpreters (``spawn``): a
        script that calls this needs the ``if __name__ == "__main__":`` guard.

    Returns
    -------
    report : dict
        What ``report.json`` holds.
    table : str
        The verdict table (Markdown) that heads ``report.md``.

    Raises
    ------
    spectral.claim._config.ConfigError
        (a ``ValueError``) for a missing or malformed config, naming the key;
        ``ValueError`` for an unknown or unavailable device.
    """
    from ._report import build_report, verdict_table, write_outputs

    config = load_config(config, overrides)
    device = resolve_device(device)
    workers = available_cores() if workers is None else positive_int(workers, "workers")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out={str(out)!r} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    for folder in (out, out / "cases", out / "figures", out / "scope"):
        # Left by a killed run. Only old ones: another run on the same folder may be writing right now.
        remove_stale_temporaries(folder, older_than=STALE_AFTER_S)
    units = CASE_UNITS * (len(config.cases) + len(scope_cells(config))) + 1
    if config.precision.enabled:
        from ._precision import PRECISION_UNITS
        units += PRECISION_UNITS
    progress = Progress(units, "claim check", disable=quiet)
    threads = torch.get_num_threads()
    # One thread: at these sizes a second one adds no speed (measured) and oversubscribes a busy machine.
    torch.set_num_threads(1)
    try:
        started = time.perf_counter()
        cases, precision_result, scope, times = _run_all(config, out, progress, device, workers)
        times["total"] = time.perf_counter() - started
        report = build_report(config, cases, precision_result, scope, device=device, times=times)
        write_outputs(report, out)
        progress()
    finally:
        progress.close()
        torch.set_num_threads(threads)
    return report, verdict_table(report["cases"])

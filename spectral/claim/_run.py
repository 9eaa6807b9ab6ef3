"""The main job: run the claim check and write its report."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import torch

from .._errors import UserInputError
from .._io import atomic_write, output_folder, read_json, remove_stale_temporaries
from .._progress import Progress
from .._validation import positive_int
from ._cache import digest
from ._check import CASE_UNITS, case_tasks, run_cached_case
from ._config import ClaimConfig, load_config, parse_case_id
from ._parallel import Task, available_cores, run_tasks

__all__ = ["resolve_device", "run_claim_check"]

DEVICES = ("auto", "cpu", "cuda", "mps")
#: A temporary file this old in an output folder belongs to a killed run (a figure or case file takes seconds).
STALE_AFTER_S = 600.0
#: The file that says which config's run a results folder holds (written when the run starts).
RUN_MARKER = "run.json"


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


def claim_folder(out: Path, config: ClaimConfig) -> None:
    """Mark ``out`` as holding ``config``'s run, or refuse it if it holds another config's (``UserInputError``).

    The marker ``run.json`` records the config's digest. It is written whole
    and only if absent (a hard link of a finished temporary file), so of two
    runs starting at once exactly one writes it and the other reads it whole:
    identical configs share the folder (each case is then reused or computed
    once per process, as before), a different config is refused. A folder
    from before the marker counts as its report.json's config, when it has one.
    """
    marker = out / RUN_MARKER
    expected = digest(config.to_dict())
    if not marker.exists():
        _legacy_config_matches(out, expected)
        _write_once(marker, {"format": "spectral-claim-run", "config_digest": expected})
    try:
        found = read_json(marker, "run marker")
    except ValueError:
        found = None
    if not (isinstance(found, dict) and found.get("config_digest") == expected):
        raise _another_run(out, RUN_MARKER)


def _another_run(out: Path, evidence: str) -> UserInputError:
    return UserInputError(f"{str(out)!r} holds the results of a run with another config ({evidence}); use another "
                          "--out for this config (or remove that folder to start over)")


def _legacy_config_matches(out: Path, expected: str) -> None:
    report = out / "report.json"
    try:
        found = read_json(report).get("config") if report.is_file() else None
    except (ValueError, AttributeError):
        return  # not a report: nothing says which run the folder holds
    if found is not None and digest(found) != expected:
        raise _another_run(out, "report.json")


def _write_once(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` whole, unless ``path`` exists (then leave it as it is)."""
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    atomic_write(staging, lambda file: file.write(json.dumps(data) + "\n"), binary=False)
    try:
        try:
            os.link(staging, path)  # fails if path exists: the first run to get here owns the folder
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links: not exclusive, but still never half a file
            if not path.exists():
                os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


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
        tasks.append(Task(run_cached_case, (parse_case_id(name), config.scope_cell(points, width), seeds,
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
    times = {phase: sum(task.seconds for task in done[phase]) for phase in order
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
        whatever the count.

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
        ``ValueError`` for an unknown or unavailable device, or an ``out`` that
        is empty or a file; ``spectral._errors.UserInputError`` (a
        ``ValueError``) when ``out`` holds a run of another config (its
        ``run.json``; see ``claim_folder``).
    """
    from ._report import build_report, verdict_table, write_outputs

    config = load_config(config, overrides)
    device = resolve_device(device)
    workers = available_cores() if workers is None else positive_int(workers, "workers")
    out = output_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    claim_folder(out, config)
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

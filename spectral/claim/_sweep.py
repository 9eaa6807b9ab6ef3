"""Run a grid of claim-check configurations through any ``concurrent.futures.Executor``.

A sweep file (TOML or JSON) holds a ``base`` table of config overrides (the
keys of the claim check's config) and a ``grid`` of dotted config keys, each
with a list of values::

    [base]
    seeds = 8
    [grid]
    shrink_factor = [0.1, 0.2, 0.5]
    "training.width" = [32, 64]

Every combination is one *run*: a full config, named by its grid values and a
digest of the config. Each run goes to the executor as one task, which runs
the claim check's cases and writes ``runs/<run id>.json`` atomically. A
rerun skips the runs whose file holds the same digest, and each run resumes
its finished cases; the combined ``sweep.json`` and ``sweep.md`` are built
from the run files alone.

A grid may have at most ``MAX_RUNS`` combinations (checked before any is
built), and pool workers end when the process that started them dies.
"""

from __future__ import annotations

import concurrent.futures
import copy
import itertools
import json
import math
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

import torch

from .._io import atomic_write, output_folder, read_json, write_json
from .._progress import Progress
from .._validation import positive_int
from ._cache import digest, load_if_current, save_record
from ._check import run_cases
from ._config import (
    DEFAULT_CONFIG,
    ClaimConfig,
    ConfigError,
    load_config,
    merge_overrides,
    read_config_file,
)
from ._report import SHORT_NAMES
from ._stats import correct_families
from ._tables import verdict_cell

__all__ = ["RunsFailed", "expand_sweep", "load_sweep", "make_executor", "run_sweep", "write_sweep_report"]

FORMAT = "spectral.sweep"
#: 3: each run's verdicts corrected over its own family (``runs[i].family``; 2 had one family for the sweep).
VERSION = 3
#: Most combinations a grid may have: each is a whole claim check (minutes), and expanding a million took 11 minutes
#: and gigabytes before anything ran.
MAX_RUNS = 10_000
#: Seconds between a pool worker's checks that the process that started it is still alive.
PARENT_POLL_S = 1.0
#: The verdicts of the sweep.md table.
MAIN_VERDICTS = ("shrink_removes_high_frequencies", "slingshot_beats_control")
DASK_MISSING = 'a Dask scheduler needs dask.distributed: pip install "spectral-probes[dask]"'
#: The claim check seeds torch's global RNG, so runs sharing a process (thread executors) take turns.
_RUN_LOCK = threading.Lock()

Run = tuple[str, ClaimConfig]


class RunsFailed(RuntimeError):
    """Some runs of a sweep failed; the others are finished and written (:func:`run_sweep`).

    Examples
    --------
    >>> issubclass(RunsFailed, RuntimeError)
    True
    """


def _check_key(key: Any) -> list[str]:
    """The parts of a dotted grid key that names a config key."""
    if not isinstance(key, str) or not key:
        raise ConfigError(f"sweep grid keys must be dotted config keys, got {key!r}")
    table: Any = DEFAULT_CONFIG
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(table, dict) or part not in table:
            where = ".".join(parts[:depth]) or "the top level"
            known = sorted(table) if isinstance(table, dict) else []
            raise ConfigError(f"sweep grid key {key!r} is not a config key: no {part!r} in {where} (known: {known})")
        table = table[part]
    return parts


def _check_grid(grid: Any) -> dict[str, list[Any]]:
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(f"sweep key 'grid' must be a non-empty table of dotted config keys, got {grid!r}")
    for key, values in grid.items():
        _check_key(key)
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep grid key {key!r} must be a non-empty list of values, got {values!r}")
    for key, other in itertools.permutations(grid, 2):
        if other.startswith(key + "."):
            raise ConfigError(f"sweep grid keys {key!r} and {other!r} overlap: set one or the other")
    size = math.prod(len(values) for values in grid.values())
    if size > MAX_RUNS:
        raise ConfigError(f"sweep grid has {size} combinations ({' x '.join(str(len(v)) for v in grid.values())}), "
                          f"more than the cap of {MAX_RUNS} runs: split it into several sweeps", "grid")
    return grid


def _set(overrides: dict[str, Any], key: str, value: Any) -> None:
    *tables, leaf = key.split(".")
    for part in tables:
        if not isinstance(overrides.get(part), dict):
            overrides[part] = {}
        overrides = overrides[part]
    overrides[leaf] = copy.deepcopy(value)


def _slug(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_")[:24] or "_"


def _run_id(assignment: dict[str, Any], config: ClaimConfig) -> str:
    """``"shrink_factor=0.2,width=64-<digest>"``: the grid values (last key part) and the config's digest."""
    name = ",".join(f"{key.rsplit('.', 1)[-1]}={_slug(value)}" for key, value in assignment.items())
    return f"{name[:96]}-{digest(config.to_dict())[:8]}"


def expand_sweep(spec: dict[str, Any]) -> list[Run]:
    """The runs of a sweep given as a dict ``{"base": {...}, "grid": {...}}``.

    Parameters
    ----------
    spec : dict
        ``base`` (optional): config overrides shared by every run, with the
        keys of the claim check's config. ``grid``: dotted config keys
        (``"training.width"``), each with a non-empty list of values.

    Returns
    -------
    list of (str, dict)
        ``(run id, full config)`` for every combination of grid values, the
        last grid key varying fastest.

    Raises
    ------
    ConfigError
        Naming the key: unknown or overlapping grid keys, a grid value that
        is not a non-empty list, more than ``MAX_RUNS`` combinations,
        bad base or grid values, or two combinations that give the same
        config.

    Examples
    --------
    >>> from spectral.claim import expand_sweep
    >>> runs = expand_sweep({"base": {"seeds": 4}, "grid": {"shrink_factor": [0.2, 0.5]}})
    >>> [config.shrink_factor for _, config in runs]
    [0.2, 0.5]
    >>> runs[0][0].startswith("shrink_factor=0.2-")
    True
    """
    if not isinstance(spec, dict):
        raise ConfigError(f"a sweep must be a table with keys 'base' and 'grid', got {spec!r}")
    unknown = sorted(set(spec) - {"base", "grid"})
    if unknown:
        raise ConfigError(f"unknown sweep key {unknown[0]!r}; expected 'base' and 'grid'")
    base = spec.get("base", {})
    if not isinstance(base, dict):
        raise ConfigError(f"sweep key 'base' must be a table of config overrides, got {base!r}")
    grid = _check_grid(spec.get("grid"))
    runs: dict[str, Run] = {}
    for values in itertools.product(*grid.values()):
        assignment = dict(zip(grid, values))
        overrides = copy.deepcopy(base)
        for key, value in assignment.items():
            _set(overrides, key, value)
        try:
            config = load_config(overrides=overrides)
        except ConfigError as error:
            raise ConfigError(f"sweep run {assignment}: {error}") from None
        key = digest(config.to_dict())
        if key in runs:
            raise ConfigError(f"sweep grid gives one config twice: runs {runs[key][0]!r} and "
                              f"{_run_id(assignment, config)!r}; drop the duplicate grid value")
        runs[key] = (_run_id(assignment, config), config)
    return list(runs.values())


def load_sweep(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> list[Run]:
    """The runs of a sweep file (TOML or JSON); see :func:`expand_sweep`.

    ``overrides`` (nested config keys, as ``spectral sweep --set`` gives
    them) replace the file's ``base`` values before the grid is expanded.

    Raises
    ------
    ConfigError
        A missing or malformed file, or a bad sweep (naming the key).

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> from spectral.claim import load_sweep
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "sweep.json"
    ...     _ = path.write_text(json.dumps({"grid": {"training.width": [32, 64]}}))
    ...     runs = load_sweep(path)
    >>> [config.training.width for _, config in runs]
    [32, 64]
    """
    spec = read_config_file(Path(path))
    if overrides and isinstance(spec, dict):
        spec = {**spec, "base": merge_overrides(spec.get("base", {}), overrides)}
    return expand_sweep(spec)


def _check_runs(runs: Any) -> list[Run]:
    try:
        runs = list(runs)
    except TypeError:
        raise TypeError(f"runs must be a sweep file path or a list of (run id, config), "
                        f"got {type(runs).__name__}") from None
    ids = set()
    for item in runs:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], ClaimConfig)):
            raise TypeError(f"runs must hold (run id, ClaimConfig) tuples, got {item!r}")
        if not item[0] or item[0] in ids or Path(item[0]).name != item[0] or item[0].startswith("."):
            raise ValueError(f"runs must have unique run ids usable as file names, got {item[0]!r}")
        ids.add(item[0])
    if not runs:
        raise ValueError("runs is empty")
    return runs


def _finished(path: Path, expected: str) -> bool:
    return load_if_current(path, expected) is not None


def _run_task(run: str, config: ClaimConfig, runs_dir: str, device: str = "cpu") -> str:
    """One sweep task: run (or resume) every case of ``config``, then write ``runs_dir/<run>.json``.

    Computes with one torch thread, so results do not depend on the executor
    or the machine's core count; runs that share a process take turns.
    """
    torch.set_num_threads(1)
    directory = Path(runs_dir)
    with _RUN_LOCK:
        cases = run_cases(config, directory / run, device=device)
    save_record(directory / f"{run}.json", {"format": FORMAT, "id": run, "digest": digest(config.to_dict()),
                                           "config": config.to_dict(), "cases": cases})
    return run


def _exit_with_parent(parent: int) -> None:
    """A pool worker's initializer: a daemon thread ends the worker once ``parent`` (its starter) is gone.

    A ``kill -9`` of the sweep runs no cleanup, and its busy workers would train on for hours; an orphan is
    re-parented, so ``os.getppid()`` changes (on POSIX systems).
    """
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="spectral-parent-watch", daemon=True).start()


def make_executor(workers: int | None = None,
                  scheduler: str | None = None) -> tuple[concurrent.futures.Executor, Callable[[], Any]]:
    """An executor for :func:`run_sweep` and the function that shuts it down.

    Parameters
    ----------
    workers : int, optional
        Local worker processes (default ``os.cpu_count()``). Each ends when
        the process that made the pool dies (checked every
        ``PARENT_POLL_S`` seconds), even mid-run.
    scheduler : str, optional
        Address of a Dask scheduler (``"tcp://host:8786"``): tasks go to its
        cluster through ``dask.distributed.Client(scheduler).get_executor()``.
        Needs the ``dask`` extra.

    Returns
    -------
    (executor, close)
        ``close()`` shuts the pool down or closes the Dask client.

    Raises
    ------
    TypeError, ValueError
        If both ``workers`` and ``scheduler`` are given, or ``scheduler`` is
        not a non-empty string.
    ImportError
        For a scheduler without ``dask.distributed``.

    Examples
    --------
    >>> from spectral.claim import make_executor
    >>> executor, close = make_executor(workers=1)
    >>> close()
    """
    if scheduler is not None:
        if workers is not None:
            raise ValueError("workers and scheduler exclude each other: the Dask cluster has its own workers")
        if not isinstance(scheduler, str):
            raise TypeError(f"scheduler must be an address string, got {scheduler!r}")
        if not scheduler.strip():
            raise ValueError(f"scheduler must be a Dask scheduler's address such as 'tcp://host:8786', got {scheduler!r}")
        try:
            from dask.distributed import Client
        except ImportError:
            raise ImportError(DASK_MISSING) from None
        client = Client(scheduler)
        return client.get_executor(), client.close
    count = (os.cpu_count() or 1) if workers is None else positive_int(workers, "workers")
    # Fresh interpreters: forking a process whose torch thread pools already ran can deadlock.
    context = multiprocessing.get_context("spawn")
    executor = concurrent.futures.ProcessPoolExecutor(max_workers=count, mp_context=context,
                                                      initializer=_exit_with_parent, initargs=(os.getpid(),))
    return executor, lambda: executor.shutdown(cancel_futures=True)


def run_sweep(runs: str | os.PathLike | Sequence[Run], out: str | os.PathLike, *,
              executor: concurrent.futures.Executor | None = None, quiet: bool = False,
              device: str = "cpu") -> dict[str, Any]:
    """Run (or resume) every run of a sweep, one executor task each; write and return the combined report.

    Parameters
    ----------
    runs : path or list of (str, dict)
        A sweep file, or the runs :func:`load_sweep` returns.
    out : path
        Output directory: ``runs/<run id>.json`` per run (its cases under
        ``runs/<run id>/``), then ``sweep.json`` and ``sweep.md``.
    executor : concurrent.futures.Executor, optional
        Anything with ``submit`` returning ``concurrent.futures.Future``:
        a process or thread pool, or a Dask cluster's
        ``Client.get_executor()``. Default: a pool of ``os.cpu_count()``
        fresh processes, shut down at the end.
    quiet : bool, default False
        No progress bar.
    device : {"cpu", "cuda", "mps"}, default "cpu"
        Where every run trains (resolved by the caller: see
        :func:`spectral.claim.resolve_device`).

    Returns
    -------
    dict
        The report written to ``sweep.json``: for every run its id, digest,
        the config values that vary across the runs, and each case's verdicts.

    Raises
    ------
    RunsFailed
        (a ``RuntimeError``) if any run failed; the others are finished and
        written first.

    Notes
    -----
    Every run computes with one torch thread (``torch.set_num_threads(1)``
    in the task; the caller's setting is restored at the end), so its
    results are the same bit for bit whichever executor ran it. Parallelism
    comes from running runs side by side: use processes or a Dask cluster,
    since runs sharing one process (a thread pool) take turns. The default
    pool starts fresh interpreters (``spawn``), so a script that calls
    ``run_sweep`` without an executor must do so under
    ``if __name__ == "__main__":``.

    Examples
    --------
    >>> import concurrent.futures, tempfile
    >>> from spectral.claim import expand_sweep, run_sweep
    >>> base = {"cases": [{"signal": "1d", "activation": "tanh", "bias": True}], "seeds": 2,
    ...         "sweep": {"case": ""}, "precision": {"enabled": False},
    ...         "training": {"width": 8, "depth": 1, "overfit_max_steps": 10, "check_every": 10,
    ...                      "retrain_steps": 4, "curve_points": 1}}
    >>> runs = expand_sweep({"base": base, "grid": {"shrink_factor": [0.2, 0.5]}})
    >>> with tempfile.TemporaryDirectory() as out, concurrent.futures.ThreadPoolExecutor(2) as pool:
    ...     report = run_sweep(runs, out, executor=pool, quiet=True)
    >>> [run["grid"] for run in report["runs"]]
    [{'shrink_factor': 0.2}, {'shrink_factor': 0.5}]
    """
    runs = load_sweep(runs) if isinstance(runs, (str, os.PathLike)) else _check_runs(runs)
    out = output_folder(out)
    runs_dir = out / "runs"
    pending = [(run, config) for run, config in runs if not _finished(runs_dir / f"{run}.json", digest(config.to_dict()))]
    progress = Progress(len(runs), "sweep runs", disable=quiet)
    for _ in range(len(runs) - len(pending)):
        progress()
    threads = torch.get_num_threads()
    close = None
    if executor is None and pending:
        executor, close = make_executor()
    failures: dict[str, BaseException] = {}
    try:
        futures = {executor.submit(_run_task, run, config, str(runs_dir), device): run for run, config in pending}
        for future in concurrent.futures.as_completed(futures):
            if future.exception() is not None:
                failures[futures[future]] = future.exception()
            progress()
    finally:
        progress.close()
        torch.set_num_threads(threads)
        if close is not None:
            close()
    if failures:
        run, error = next(iter(failures.items()))
        raise RunsFailed(f"{len(failures)} of {len(pending)} sweep runs failed: {sorted(failures)}; "
                         f"{run}: {error!r}") from error
    return write_sweep_report(out, [run for run, _ in runs])


def _leaves(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    leaves: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            leaves.update(_leaves(value, f"{prefix}{key}."))
        else:
            leaves[prefix + key] = value
    return leaves


def _case_summary(case: dict[str, Any]) -> dict[str, Any]:
    summary = {"id": case["id"], "verdicts": case["verdicts"], "overfits": case["overfit"]["overfits"]}
    if "negative_control" in case:
        summary["negative_control"] = case["negative_control"]
    return summary


def _correct_run(record: dict[str, Any]) -> dict[str, Any]:
    """Correct one run's verdicts over its own family, with its own ``correction``, ``alpha`` and
    ``min_relative_effect`` (as ``spectral run`` with its config does); in place. Returns the family."""
    verdicts = [item for case in record["cases"] for item in case["verdicts"].values()]
    verdicts += [item["alternate_window"] for item in verdicts if "alternate_window" in item]
    config = ClaimConfig.from_dict(record["config"])
    return correct_families(verdicts, alpha=config.alpha, correction=config.correction)


def _build_report(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The sweep report from the run files' contents: per run, the varying config values, its family and the verdicts.

    Each run is judged by its own config: a grid over ``alpha``,
    ``min_relative_effect`` or ``correction`` changes the judgement of its
    own runs only.
    """
    records = copy.deepcopy(records)
    families = [_correct_run(record) for record in records]
    leaves = [_leaves(record["config"]) for record in records]
    varying = [key for key in leaves[0] if len({json.dumps(leaf.get(key), sort_keys=True) for leaf in leaves}) > 1]
    return {"format": FORMAT, "version": VERSION, "varying": varying,
            "runs": [{"id": record["id"], "digest": record["digest"], "grid": {key: leaf[key] for key in varying},
                      "family": family, "cases": [_case_summary(case) for case in record["cases"]]}
                     for record, leaf, family in zip(records, leaves, families)]}


def _report_markdown(report: dict[str, Any]) -> str:
    """``sweep.md``: one row per run and case, the two main verdicts as ``yes/no (relative effect)``."""
    lines = [f"# Sweep: {len(report['runs'])} runs", "",
             (f"Varying: {', '.join(report['varying']) or 'nothing'}. Cells read `yes/no (relative effect)`; each "
             "run's verdicts are corrected over that run's own tests, with its own correction, alpha and "
             "min_relative_effect."), "",
             "| run | grid values | case | " + " | ".join(SHORT_NAMES[name] for name in MAIN_VERDICTS) + " |",
             "|---|---|---|" + "---|" * len(MAIN_VERDICTS)]
    for run in report["runs"]:
        values = ", ".join(f"{key}={json.dumps(value)}" for key, value in run["grid"].items())
        for case in run["cases"]:
            cells = " | ".join(verdict_cell(case["verdicts"][name]) for name in MAIN_VERDICTS)
            lines.append(f"| {run['id']} | {values} | {case['id']} | {cells} |")
    return "\n".join(lines) + "\n"


def write_sweep_report(out: str | os.PathLike, run_ids: Sequence[str]) -> dict[str, Any]:
    """Build ``sweep.json`` and ``sweep.md`` from the run files alone, atomically; return the report.

    Parameters
    ----------
    out : path
        A sweep's output directory, holding ``runs/<run id>.json``.
    run_ids : sequence of str
        The runs to report, in order.

    Returns
    -------
    dict
        The report, as :func:`run_sweep` returns it.

    Raises
    ------
    FileNotFoundError
        If a run has no file yet.

    Examples
    --------
    Rebuild the report of a finished sweep:

    >>> from spectral.claim import load_sweep, write_sweep_report
    >>> report = write_sweep_report("results", [run for run, _ in load_sweep("sweep.toml")])  # doctest: +SKIP
    """
    out = Path(out)
    report = _build_report([read_json(out / "runs" / f"{run}.json") for run in run_ids])
    write_json(out / "sweep.json", report)
    text = _report_markdown(report)
    atomic_write(out / "sweep.md", lambda file: file.write(text), binary=False)
    return report

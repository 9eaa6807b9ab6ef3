"""``spectral reproduce``: published spectral-bias results rerun on an embedded default setup.

Each reproduction (one module here) declares what its paper reports and the
tolerance for "agrees" before it runs, trains small networks on the CPU, and
writes ``report.json`` (the published statement beside our numbers and
whether they agree), ``report.md`` and ``figure.png`` into its folder.
:func:`run_all` runs every one and writes ``reproductions.md`` and
``reproductions.json``, one row per result.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from .._datasets import missing_data_message
from .._errors import MissingExtraError
from .._io import atomic_write, write_json
from .._validation import optional_seed, positive_int
from ._basri import BASRI_LAW
from ._common import Reproduction, Setting, report_of, writable_folder, write_report
from ._convergence import first_step_below, rank_correlation
from ._f_principle import F_PRINCIPLE
from ._filtering import DATA_MISSING, FILTERING_METHOD
from ._fourier_features import FOURIER_FEATURES_GAIN, IMAGE_MISSING
from ._spectral_bias import SPECTRAL_BIAS
from ._warm_start import DATA_MISSING as WARM_START_DATA_MISSING
from ._warm_start import WARM_START_GAP

__all__ = [
    "DATA_MISSING",
    "MISSING_EXTRA_MESSAGES",
    "REGISTRY",
    "REPRODUCTIONS",
    "first_step_below",
    "listing",
    "rank_correlation",
    "run_all",
    "run_reproduction",
    "writable_folder",
]

#: Every reproduction, in the order ``--all`` runs them and ``--list`` prints them.
REGISTRY: dict[str, Reproduction] = {reproduction.name: reproduction for reproduction in (
    F_PRINCIPLE, SPECTRAL_BIAS, FILTERING_METHOD, BASRI_LAW, FOURIER_FEATURES_GAIN, WARM_START_GAP)}
#: Names ``run_reproduction`` (and ``spectral reproduce``) accepts.
REPRODUCTIONS = tuple(REGISTRY)
#: The ImportError messages of a missing ``data`` extra (scikit-learn), one per reproduction that needs it.
MISSING_EXTRA_MESSAGES = (DATA_MISSING, WARM_START_DATA_MISSING, IMAGE_MISSING)
#: Columns of ``reproductions.md``.
TABLE_COLUMNS = ("name", "paper", "claim", "tolerance", "measured", "agrees")
TABLE_SCHEMA_VERSION = 1


def _setting(out: str | os.PathLike, device: Any, steps: int | None, seed: int, quiet: bool,
             quick: bool) -> tuple[Path, Setting]:
    """Arguments checked (and ``out`` created writable) before any training."""
    steps = None if steps is None else positive_int(steps, "steps")
    if not isinstance(quick, bool):
        raise TypeError(f"quick must be a bool, got {quick!r}")
    seed = optional_seed(seed) or 0
    where = torch.device("cpu" if device is None else device)
    return writable_folder(out), Setting(steps=steps, seed=seed, device=where, quiet=quiet, quick=quick)


def _run(reproduction: Reproduction, folder: Path, setting: Setting) -> dict:
    threads = torch.get_num_threads()
    if setting.device.type == "cpu":
        torch.set_num_threads(1)  # these small networks run fastest on one thread, and steadily on a busy machine
    try:
        outcome = reproduction.run(setting)
    finally:
        torch.set_num_threads(threads)
    report = report_of(reproduction, outcome)
    write_report(folder, report, outcome.figure)
    return report


def run_reproduction(name: str, out: str | os.PathLike, *, quiet: bool = False, device: Any = None,
                     steps: int | None = None, seed: int = 0, quick: bool = False) -> dict:
    """Rerun a published spectral-bias result and write its report.

    Parameters
    ----------
    name : str
        One of :data:`REPRODUCTIONS` (``spectral reproduce --list`` prints
        each with its paper and claim): ``"f-principle"``, ``"spectral-bias"``,
        ``"filtering"`` (needs the ``data`` extra), ``"basri"``,
        ``"fourier-features"`` and ``"warm-start"`` (both need the ``data``
        extra).
    out : path
        Folder for ``report.json``, ``report.md`` and ``figure.png``; created,
        and checked writable before any training.
    quiet : bool, default False
        No progress bar.
    device : str or torch.device, optional
        Where to train; default the CPU.
    steps : int, optional
        The training budget; default the embedded setting. Training steps for
        f-principle, spectral-bias, filtering and fourier-features; the most
        gradient-descent steps for basri; the most epochs per phase for
        warm-start. A smaller budget makes a quick check whose verdict may
        differ.
    seed : int, default 0
        Seed of the initialisations, splits and random phases (seeds
        ``seed, seed + 1, ...`` where a reproduction uses several).
    quick : bool, default False
        The reduced setting the tests run (a few steps; for basri,
        fourier-features and warm-start also fewer seeds, smaller networks
        and images): it keeps the code paths alive; its verdict means nothing.

    Returns
    -------
    dict
        The report written to ``report.json``: ``paper``, ``claim``,
        ``published`` (the statement), ``criterion`` (the tolerance for
        "agrees", fixed before running), ``ours`` (our numbers),
        ``measured`` (one line) and ``agrees`` (bool).

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`REPRODUCTIONS`, or ``out`` is a file
        or cannot be created and written
        (:class:`~spectral._errors.UserInputError`).
    ImportError
        For a reproduction on the digits or the sample image without
        scikit-learn (``pip install "spectral-probes[data]"``).

    Notes
    -----
    On the CPU the run uses one torch thread (restored afterwards): these
    networks are small, and on a shared machine more threads mostly wait.

    Examples
    --------
    >>> import tempfile
    >>> from spectral._reproduce import run_reproduction
    >>> report = run_reproduction("f-principle", tempfile.mkdtemp(), quiet=True, steps=20)
    >>> report["name"], type(report["agrees"]).__name__
    ('f-principle', 'bool')
    """
    if name not in REGISTRY:
        raise ValueError(f"name={name!r} is not a known reproduction; expected one of {tuple(REGISTRY)}")
    folder, setting = _setting(out, device, steps, seed, quiet, quick)
    return _run(REGISTRY[name], folder, setting)


def table_row(report: dict, seconds: float) -> dict:
    """One row of ``reproductions.json`` from a report."""
    return {"name": report["name"], "paper": report["paper"], "claim": report["claim"],
            "tolerance": report["criterion"], "measured": report["measured"], "agrees": report["agrees"],
            "seconds": round(seconds, 1), "report": f"{report['name']}/report.md"}


def table_markdown(rows: list[dict]) -> str:
    """``reproductions.md``: one row per reproduction, the verdict last."""
    lines = ["# Reproductions", "", "| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    for row in rows:
        cells = [f"[{row['name']}]({row['report']})", row["paper"], row["claim"], row["tolerance"], row["measured"],
                 "yes" if row["agrees"] else "**no**"]
        lines.append("| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |")
    agreeing = sum(row["agrees"] for row in rows)
    lines += ["", f"{agreeing} of {len(rows)} agree with the published statement.", ""]
    return "\n".join(lines)


def _check_data_extra(reproductions: list[Reproduction]) -> None:
    """Before any training: a missing ``data`` extra that some of ``reproductions`` need is a MissingExtraError."""
    needing = [reproduction.name for reproduction in reproductions if reproduction.needs_data]
    if needing:
        try:
            import sklearn.datasets  # noqa: F401 - only whether it imports
        except ImportError:
            raise MissingExtraError(missing_data_message(f"the reproductions {', '.join(needing)}")) from None


def run_all(out: str | os.PathLike, *, quiet: bool = False, device: Any = None, seed: int = 0,
            quick: bool = False) -> list[dict]:
    """Run every reproduction into ``out/NAME/`` and write ``reproductions.md`` and ``reproductions.json``.

    Parameters are those of :func:`run_reproduction` (each reproduction on
    its embedded budget). Returns the table's rows: ``name``, ``paper``,
    ``claim``, ``tolerance``, ``measured``, ``agrees``, ``seconds`` and
    ``report`` (the path of its report.md, relative to ``out``). Every
    argument, ``out`` and the ``data`` extra (when a reproduction needs it)
    are checked before the first reproduction trains.
    """
    folder, setting = _setting(out, device, None, seed, quiet, quick)
    _check_data_extra(list(REGISTRY.values()))
    rows = []
    for name, reproduction in REGISTRY.items():
        started = time.perf_counter()
        report = _run(reproduction, writable_folder(folder / name), setting)
        rows.append(table_row(report, time.perf_counter() - started))
    write_json(folder / "reproductions.json", {"schema_version": TABLE_SCHEMA_VERSION, "rows": rows})
    text = table_markdown(rows)
    atomic_write(folder / "reproductions.md", lambda file: file.write(text), binary=False)
    return rows


def listing() -> str:
    """What ``spectral reproduce --list`` prints: each reproduction's name, paper and claim.

    Examples
    --------
    >>> print(listing().splitlines()[0])
    f-principle (Xu et al., CiCP 2020): a network captures the low frequencies of its target first
    """
    return "\n".join(f"{r.name} ({r.paper}): {r.claim}" for r in REGISTRY.values())

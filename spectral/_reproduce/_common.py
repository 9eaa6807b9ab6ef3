"""What every reproduction shares: its declaration, seeded networks, a training loop, the report files."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from .._errors import UserInputError
from .._io import atomic_write, save_figure, write_json
from .._progress import Progress


@dataclasses.dataclass(frozen=True)
class Setting:
    """How one reproduction runs: ``steps`` (None: its embedded default), ``quick`` (the reduced CI setting)."""

    steps: int | None
    seed: int
    device: torch.device
    quiet: bool
    quick: bool = False


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a reproduction measured: its numbers, its setup, the verdict, a one-line summary and a figure."""

    ours: dict
    setup: dict
    agrees: bool
    measured: str
    figure: Any


@dataclasses.dataclass(frozen=True)
class Reproduction:
    """One published result: what the paper reports and the tolerance for "agrees", stated before running.

    Attributes
    ----------
    name : str
        The name ``spectral reproduce NAME`` takes.
    paper : str
        Short citation ("Basri et al., NeurIPS 2019").
    reference : str
        Full citation.
    claim : str
        What we test, in one sentence.
    published : str
        What the paper reports (with its numbers where it gives them).
    published_numbers : dict or None
        The paper's numbers we compare with, when it gives any.
    tolerance : str
        When ours "agrees": fixed here, never tuned after a run.
    run : callable
        ``run(setting) -> Outcome``.
    needs_data : bool
        Whether it needs the ``data`` extra (scikit-learn's bundled data).
    """

    name: str
    paper: str
    reference: str
    claim: str
    published: str
    published_numbers: dict | None
    tolerance: str
    run: Callable[[Setting], Outcome]
    needs_data: bool = False


def network(sizes: list[int], activation: type[torch.nn.Module], seed: int) -> torch.nn.Sequential:
    """Fully connected ``sizes[0] -> ... -> sizes[-1]`` with ``activation`` between layers, seeded."""
    layers: list[torch.nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers += [torch.nn.Linear(n_in, n_out)] + ([activation()] if i < len(sizes) - 2 else [])
    return torch.nn.Sequential(*layers)


def train(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int, lr: float, every: int,
          loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], record: Callable[[int], Any],
          quiet: bool, description: str) -> None:
    """Full-batch Adam for ``steps`` steps; ``record(step)`` before the first step and every ``every`` after."""
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    progress = Progress(steps // every + 1, description, disable=quiet)
    try:
        for step in range(steps + 1):
            if step % every == 0:
                record(step)
                progress()
            if step == steps:
                break
            optimizer.zero_grad()
            loss(net(x), y).backward()
            optimizer.step()
    finally:
        progress.close()


def writable_folder(out: str | os.PathLike, name: str = "out") -> Path:
    """``out`` created if missing and checked writable, before any training: else a :class:`UserInputError`."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise UserInputError(f"{name}={str(out)!r} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UserInputError(f"{name}={str(out)!r} is not a writable folder: {error.strerror or error}") from None
    return folder


def report_of(reproduction: Reproduction, outcome: Outcome) -> dict:
    """The ``report.json`` of one run: the declaration beside the measured numbers and the verdict."""
    return {"name": reproduction.name, "paper": reproduction.paper, "reference": reproduction.reference,
            "claim": reproduction.claim, "published": reproduction.published,
            "published_numbers": reproduction.published_numbers, "setup": outcome.setup, "ours": outcome.ours,
            "criterion": reproduction.tolerance, "measured": outcome.measured, "agrees": bool(outcome.agrees),
            "figure": "figure.png"}


def write_report(folder: Path, report: dict, figure: Any) -> None:
    """``figure.png``, ``report.json`` and ``report.md`` into ``folder``, each written atomically."""
    save_figure(figure, folder / "figure.png")
    write_json(folder / "report.json", report)
    text = markdown(report)
    atomic_write(folder / "report.md", lambda file: file.write(text), binary=False)


def markdown(report: dict) -> str:
    """``report.md``: the published statement and tolerance first, then the setup, our numbers, the verdict."""
    verdict = "**agrees**" if report["agrees"] else "**does not agree**"
    lines = [f"# Reproduction: {report['name']}", "", f"Reference: {report['reference']}", "",
             "## Published", "", report["published"], "",
             f"Tolerance for \"agrees\" (fixed before running): {report['criterion']}.", "",
             "## Setup", "", "| key | value |", "|---|---|"]
    lines += [f"| {key} | {format_value(value)} |" for key, value in report["setup"].items()]
    lines += ["", "## Ours", "", "| figure | value |", "|---|---|"]
    lines += [f"| {key} | {format_value(value)} |" for key, value in report["ours"].items()]
    lines += ["", f"Measured: {report['measured']}.", "",
              f"Verdict: ours {verdict} with the published statement.", "", "![figure](figure.png)", ""]
    return "\n".join(lines)


def format_value(value: Any) -> str:
    """A number to 4 significant digits, lists element by element, None as "never"."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {format_value(v)}" for key, v in value.items()) + "}"
    return "never" if value is None else str(value)


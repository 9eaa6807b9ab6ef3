"""Command line: ``spectral run``, ``spectral plot``, ``spectral sweep``.

Every error a user can cause exits with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Sequence

from ._config import ConfigError

DEFAULT_OUT = "spectral-results"


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


class RunsFailed(Exception):
    """Some runs of a sweep failed (the others are saved): one line, exit status 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _parser() -> _Parser:
    parser = _Parser(prog="spectral", description="Fourier spectral diagnostics for neural networks.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="test the slingshot claim with controls and statistics")
    run.add_argument("--config", type=Path, help="TOML or JSON file overriding the built-in default")
    run.add_argument("--out", type=Path, default=Path(DEFAULT_OUT), help=f"output folder (default: {DEFAULT_OUT})")
    run.add_argument("--seeds", type=_positive_int, help="seeds per case (default: 8)")
    run.add_argument("--quiet", action="store_true", help="no progress bar, no table")
    figure = commands.add_parser("plot", help="plot a saved SpectrumHistory (.npz)")
    figure.add_argument("history", type=Path, help="a file written by SpectrumHistory.save")
    figure.add_argument("--out", type=Path, required=True, help="figure to write: .png, .pdf or .svg")
    figure.add_argument("--before", default="before shrink", help="label of the first record to compare")
    figure.add_argument("--after", default="after shrink", help="label of the second record to compare")
    sweep = commands.add_parser("sweep", help="run a grid of configurations through an executor")
    sweep.add_argument("config", type=Path, help="sweep file: {base: {...}, grid: {key: [values]}}")
    sweep.add_argument("--out", type=Path, required=True, help="output folder")
    sweep.add_argument("--workers", type=_positive_int, help="local worker processes (default: CPU count)")
    sweep.add_argument("--scheduler", help="address of a Dask scheduler to run on instead")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _check_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out must be a directory; {str(out)!r} is a file")


def _run(args: argparse.Namespace) -> None:
    from .experiment import run_claim_check

    _check_folder(args.out)
    overrides = {"seeds": args.seeds} if args.seeds is not None else None
    started = time.perf_counter()
    report, table = run_claim_check(config=args.config, out=args.out, overrides=overrides, quiet=args.quiet)
    if not args.quiet:
        print(table)
        print(f"\nreport: {args.out / 'report.md'} (and report.json, figures/) in {time.perf_counter() - started:.0f} s")


def _plot(args: argparse.Namespace) -> None:
    from . import plot
    from ._history import SpectrumHistory
    from ._io import figure_format, save_figure

    figure_format(args.out, "--out")  # before any work
    history = SpectrumHistory.load(args.history)
    labels = set(history.labels)
    if {args.before, args.after} <= labels:
        fig = plot.before_after(history, args.before, args.after) if len(history.shape) == 1 else \
            plot.spectra_2d(history, args.before, args.after)
    elif history.target_freqs is not None:
        fig = plot.error_heatmap(history)
    else:
        raise ValueError(f"history has no records labelled {args.before!r} and {args.after!r} and no target to plot "
                         f"a heat map; labels are {sorted(labels - {''})}")
    save_figure(fig, args.out)
    print(f"wrote {args.out}")


def _sweep(args: argparse.Namespace) -> None:
    from .sweep import load_sweep, make_executor, run_sweep

    _check_folder(args.out)
    runs = load_sweep(args.config)
    executor, close = make_executor(args.workers, args.scheduler)
    try:
        run_sweep(runs, args.out, executor=executor, quiet=args.quiet)
    except RuntimeError as error:
        raise RunsFailed(str(error)) from error
    finally:
        close()
    print(f"sweep report: {args.out / 'sweep.md'}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``spectral`` command; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
        {"run": _run, "plot": _plot, "sweep": _sweep}[args.command](args)
    except (UsageError, ConfigError, ValueError, OSError, ImportError) as error:
        return _fail(error)
    except RunsFailed as error:
        return _fail(error, status=1)
    except KeyboardInterrupt:
        print("spectral: interrupted; finished work is saved, rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


def _fail(error: Exception, status: int = 2) -> int:
    """Report ``error`` in one line: newlines and other control characters are shown escaped."""
    message = re.sub(r"[\x00-\x1f\x7f]", lambda match: repr(match.group())[1:-1], str(error) or type(error).__name__)
    print(f"spectral: error: {message}", file=sys.stderr)
    return status


def entry_point() -> None:  # pragma: no cover - console script
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry_point()

"""Command line: ``spectral run``, ``report``, ``plot``, ``sweep`` and ``reproduce``.

Exit status and what goes to stderr:

- 0: done.
- 2: an error the user can fix (a bad argument or setting, a missing or
  invalid input file or folder, a missing optional extra, a file system
  that refuses): one line ``spectral: error: ...``, no traceback.
- 1: some runs of a sweep failed (the others are saved): one line; or a bug in
  spectral: its full traceback, then one line asking to report it.
- 130: interrupted (Ctrl-C): one line.

Only exceptions that *say* they are the user's (:class:`ConfigError`,
:class:`~spectral._errors.UserInputError`,
:class:`~spectral._errors.MissingExtraError`, ``OSError``) are reported in
one line everywhere; a library function that signals bad user input with a
plain ``ValueError`` is caught at that one call (:func:`_user_input`), so a
``ValueError`` from a bug anywhere else still shows its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from ._errors import MissingExtraError, UserInputError
from ._reproduce import REPRODUCTIONS
from .claim import DEVICES, ConfigError, RunsFailed
from .claim._config import parse_assignments
from .claim._sweep import DASK_MISSING

DEFAULT_OUT = "spectral-results"
#: Where bugs are reported (the last line after a traceback).
ISSUES = "the project's issue tracker"
#: Errors the user can fix: one line on stderr, exit status 2. ``OSError``: the file system refused (a missing
#: file, no permission, a full disk), which no change to spectral fixes.
USER_ERRORS = (UserInputError, ConfigError, MissingExtraError, OSError)


class UsageError(UserInputError):
    """Bad command-line input: reported in one line, exit status 2."""


@contextlib.contextmanager
def _user_input(*types: type[BaseException]) -> Iterator[None]:
    """Around one library call that checks the user's input: an exception of ``types`` from it is a :class:`UsageError`.

    For library functions that refuse bad input with a plain ``ValueError``
    (a device, a file that is not what it should be), so that the same type
    raised by a bug elsewhere is not mistaken for the user's error.
    """
    try:
        yield
    except types as error:
        raise UsageError(str(error)) from error


@contextlib.contextmanager
def _extra(message: str) -> Iterator[None]:
    """Around one library call that raises ``ImportError(message)`` when an optional extra is missing."""
    try:
        yield
    except ImportError as error:
        if isinstance(error, MissingExtraError) or str(error) != message:
            raise
        raise MissingExtraError(message) from error


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(message)


def _path(text: str) -> Path:
    """A path argument: an empty one would silently mean the current folder (``Path("") == Path(".")``)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}")
    return Path(text)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


RUN_DESCRIPTION = """Test the slingshot claim: train MLPs on 1D and 2D signals until they overfit, shrink every
weight, retrain, and compare with controls, seed by seed, every verdict corrected over the run's family. Writes
report.json, report.md, report.html and figures to --out; an interrupted run resumes.

Configuration, later sources winning: the built-in default, then --config, then each --set in order, then
--seeds (a shorthand for --set seeds=N)."""
SET_HELP = "override one config value, e.g. --set training.width=32 --set window=hann (repeatable; JSON values)"
DEVICE_HELP = "where to train: auto (a GPU when there is one), cpu, cuda or mps (default: cpu)"


def _run_parser(commands: Any) -> None:
    run = commands.add_parser("run", help="test the slingshot claim with controls and statistics",
                              description=RUN_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--config", type=Path, help="TOML or JSON file overriding the built-in default")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)
    run.add_argument("--seeds", type=_positive_int, help="seeds per case (default: 16); applied after --set")
    run.add_argument("--scope", choices=("default", "full"),
                     help="full adds the data-size x width grid (same as --set scope=full)")
    run.add_argument("--device", default="cpu", choices=DEVICES, help=DEVICE_HELP)
    run.add_argument("--out", type=_path, default=Path(DEFAULT_OUT), help=f"output folder (default: {DEFAULT_OUT})")
    run.add_argument("--workers", type=_positive_int,
                     help="processes running cases side by side (default: the cores available; 1: one at a time)")
    run.add_argument("--quiet", action="store_true", help="no progress bar, no table")


def _parser() -> _Parser:
    parser = _Parser(prog="spectral", description="Fourier spectral diagnostics for neural networks.")
    parser.add_argument("--version", action="version", version=f"spectral-probes {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _run_parser(commands)
    report = commands.add_parser("report", help="rebuild a finished run's reports and figures without training",
                                 description="Rebuild report.md, report.html and the figures of a finished "
                                 "`spectral run` from its report.json and case files, without training.")
    report.add_argument("folder", type=_path, help="the --out folder of a finished run")
    figure = commands.add_parser("plot", help="plot a saved SpectrumHistory (.npz)",
                                 description="Plot a saved SpectrumHistory: the spectra of two labelled records, "
                                 "or the relative-error heat map when the history has a target.")
    figure.add_argument("history", type=Path, help="a file written by SpectrumHistory.save")
    figure.add_argument("--out", type=_path, required=True, help="figure to write: .png, .pdf or .svg")
    figure.add_argument("--before", default="before shrink", help="label of the first record to compare")
    figure.add_argument("--after", default="after shrink", help="label of the second record to compare")
    sweep = commands.add_parser("sweep", help="run a grid of configurations through an executor",
                                description="Run every combination of a sweep file's grid as a claim check, "
                                "one executor task each (local processes or a Dask cluster); finished runs are "
                                "kept and skipped on rerun. --set overrides the file's base.")
    sweep.add_argument("config", type=Path, help="sweep file: {base: {...}, grid: {key: [values]}}")
    sweep.add_argument("--out", type=_path, required=True, help="output folder")
    sweep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)
    sweep.add_argument("--device", default="cpu", choices=DEVICES, help=DEVICE_HELP)
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_positive_int, help="local worker processes (default: CPU count)")
    where.add_argument("--scheduler", help="address of a Dask scheduler to run on instead")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    reproduce = commands.add_parser("reproduce", help="rerun published spectral-bias results and compare",
                                    description="Rerun a published result on its embedded default and write "
                                    "report.json (with \"agrees\"), report.md and a figure to --out; --all runs "
                                    "every one into --out/NAME and writes the table reproductions.md and .json; "
                                    "--list prints each with its paper and claim.")
    reproduce.add_argument("name", nargs="?", choices=REPRODUCTIONS, help="which result")
    which = reproduce.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="run every reproduction and write one table")
    which.add_argument("--list", action="store_true", help="print each reproduction with its paper and claim")
    reproduce.add_argument("--out", type=_path, help="output folder (required to run)")
    reproduce.add_argument("--quick", action="store_true",
                           help="a reduced setting that checks the code paths (its verdicts mean nothing)")
    reproduce.add_argument("--device", default="cpu", choices=DEVICES, help=DEVICE_HELP)
    reproduce.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _check_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out must be a directory; {str(out)!r} is a file")


def _device(name: str) -> str:
    """``--device`` resolved (``auto``) and checked before any work: one that this machine lacks is a UsageError."""
    from .claim import resolve_device

    with _user_input(ValueError):
        return resolve_device(name)


def _run(args: argparse.Namespace) -> None:
    from .claim import run_claim_check

    _check_folder(args.out)
    extra = [f"scope={json.dumps(args.scope)}"] if args.scope else []
    extra += [f"seeds={args.seeds}"] if args.seeds is not None else []
    overrides = parse_assignments(args.set + extra)
    device = _device(args.device)
    started = time.perf_counter()
    _, table = run_claim_check(config=args.config, out=args.out, overrides=overrides, quiet=args.quiet,
                               device=device, workers=args.workers)
    if not args.quiet:
        print(table)
        print(f"\nreport: {args.out / 'report.html'} (and report.md, report.json, figures/) in "
              f"{time.perf_counter() - started:.0f} s")


def _report(args: argparse.Namespace) -> None:
    from .claim import rebuild
    from .claim._report import load_report

    path = args.folder / "report.json"
    if not path.is_file():
        raise UsageError(f"{str(args.folder)!r} holds no report.json of a finished `spectral run`")
    with _user_input(ValueError):
        load_report(path)  # not a claim-check report, or another version: refused before anything is written
    rebuild(args.folder)
    print(f"report: {args.folder / 'report.html'} (and report.md, figures/)")


def _reproduce(args: argparse.Namespace) -> None:
    from . import _reproduce as reproductions

    if args.list:
        if args.name is not None:
            raise UsageError("--list takes no reproduction NAME")
        print(reproductions.listing())
        return
    if (args.name is None) == (not args.all):
        raise UsageError("give one reproduction NAME or --all" if args.all else
                         f"give a reproduction NAME ({', '.join(REPRODUCTIONS)}), --all or --list")
    if args.out is None:
        raise UsageError("--out is required: the folder for the reports")
    device = _device(args.device)
    reproductions.writable_folder(args.out, "--out")  # an unwritable --out fails here, before any training
    with contextlib.ExitStack() as extras:
        for message in reproductions.MISSING_EXTRA_MESSAGES:
            extras.enter_context(_extra(message))
        if args.all:
            rows = reproductions.run_all(args.out, quiet=args.quiet, device=device, quick=args.quick)
            agreeing = sum(row["agrees"] for row in rows)
            print(f"{agreeing} of {len(rows)} reproductions agree; table: {args.out / 'reproductions.md'}")
            return
        report = reproductions.run_reproduction(args.name, args.out, quiet=args.quiet, device=device,
                                                quick=args.quick)
    print(f"{args.name}: {'agrees' if report['agrees'] else 'does not agree'}; report: {args.out / 'report.md'}")


def _plot(args: argparse.Namespace) -> None:
    from . import plot
    from ._history import SpectrumHistory
    from ._io import figure_format, save_figure

    with _user_input(ValueError):
        figure_format(args.out, "--out")  # before any work
    with _user_input(ValueError, OSError):
        history = SpectrumHistory.load(args.history)  # missing, not a history, damaged or crafted
    labels = set(history.labels)
    if {args.before, args.after} <= labels:
        fig = plot.before_after(history, args.before, args.after) if len(history.shape) == 1 else \
            plot.spectra_2d(history, args.before, args.after)
    elif history.target_freqs is not None:
        fig = plot.error_heatmap(history)
    else:
        raise UsageError(f"history has no records labelled {args.before!r} and {args.after!r} and no target to plot "
                         f"a heat map; labels are {sorted(labels - {''})}")
    save_figure(fig, args.out)
    print(f"wrote {args.out}")


def _sweep(args: argparse.Namespace) -> None:
    from .claim import load_sweep, make_executor, run_sweep

    _check_folder(args.out)
    if args.scheduler is not None and not args.scheduler.strip():
        raise UsageError(f"--scheduler must be a Dask scheduler's address such as 'tcp://host:8786', "
                         f"got {args.scheduler!r}")
    runs = load_sweep(args.config, parse_assignments(args.set))
    device = _device(args.device)
    with _extra(DASK_MISSING), _user_input(ValueError):  # ValueError: Dask could not parse the address
        executor, close = make_executor(args.workers, args.scheduler)
    try:
        run_sweep(runs, args.out, executor=executor, quiet=args.quiet, device=device)
    finally:
        close()
    print(f"sweep report: {args.out / 'sweep.md'}")


COMMANDS = {"run": _run, "report": _report, "plot": _plot, "sweep": _sweep, "reproduce": _reproduce}
#: What an interrupted command leaves: run and sweep keep every finished case or run and resume.
RESUMES = ("run", "sweep")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``spectral`` command; returns the exit status (see the module docstring)."""
    command = None
    try:
        try:
            args = _parser().parse_args(argv)
        except SystemExit as done:  # --help and --version
            return int(done.code or 0)
        command = args.command
        COMMANDS[command](args)
    except USER_ERRORS as error:
        return _fail(error)
    except RunsFailed as error:  # the others are saved
        return _fail(error, status=1)
    except KeyboardInterrupt:
        hint = "; finished work is saved, rerun the same command to resume" if command in RESUMES else ""
        print(f"spectral: interrupted{hint}", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - a bug: the whole traceback, and where to send it
        traceback.print_exc()
        print(f"spectral: this is a bug; please report it on {ISSUES} with the traceback above "
              f"(spectral-probes {__version__})", file=sys.stderr)
        return 1
    return 0


def _fail(error: BaseException, status: int = 2) -> int:
    """Report ``error`` in one line: newlines and other control characters are shown escaped."""
    message = re.sub(r"[\x00-\x1f\x7f]", lambda match: repr(match.group())[1:-1], str(error) or type(error).__name__)
    print(f"spectral: error: {message}", file=sys.stderr)
    return status


def entry_point() -> None:  # pragma: no cover - console script
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry_point()

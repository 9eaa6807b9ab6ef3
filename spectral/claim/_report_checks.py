"""report.json checked on load: the structure and types of everything the report code reads, and case ids as names.

``spectral report`` rebuilds from a file a user can edit. Every field the
Markdown, the figures and the page read is checked here first, so an edited or
damaged report is refused in one line naming the JSON path of the bad field
(``cases[0].overfit.steps``) instead of failing halfway with a traceback. The
config goes through the same validation as ``spectral run``'s
(:func:`~spectral.claim._config.load_config`).
"""

from __future__ import annotations

import re
import sys
from typing import Any

from .._errors import UserInputError
from ._config import SIGNALS, ConfigError, load_config, parse_case_id
from ._kinds import kind_of
from ._stats import FAMILIES, Verdict

__all__ = ["check_case_id", "check_report", "check_verdict"]

#: The multiplicity corrections the report names.
CORRECTIONS = ("bh", "holm", "none")
#: Integers (steps, seeds, counts) at or above this are not a run's (and overflow a float).
LARGEST_INTEGER = 2**63
#: The two verdicts every scope-grid cell carries (its table and heat map read them).
SCOPE_VERDICTS = ("slingshot_beats_control", "slingshot_beats_early_stop")


def _refuse(path: str, expected: str, value: Any) -> UserInputError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return UserInputError(f"report.json: {path} must be {expected}, got {shown}")


def _field(data: dict[str, Any], key: str, path: str = "") -> Any:
    if key not in data:
        raise UserInputError(f"report.json: {f'{path}.' if path else ''}{key} is missing")
    return data[key]


def _table(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _refuse(path, "an object", value)
    return value


def _list(value: Any, path: str, *, non_empty: bool = False) -> list[Any]:
    if not isinstance(value, list) or (non_empty and not value):
        raise _refuse(path, "a non-empty list" if non_empty else "a list", value)
    return value


def _number(value: Any, path: str, *, optional: bool = False) -> None:
    """A finite int or float (not a bool); None too when ``optional`` (NaN is written as null)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not abs(value) <= sys.float_info.max:
        raise _refuse(path, "a finite number or null" if optional else "a finite number", value)


def _positive(value: Any, path: str) -> None:
    _number(value, path)
    if value <= 0:
        raise _refuse(path, "a positive number", value)


def _integer(value: Any, path: str, *, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value < LARGEST_INTEGER:
        raise _refuse(path, f"an integer from {minimum} to {LARGEST_INTEGER - 1}", value)


def _string(value: Any, path: str, *, optional: bool = False) -> None:
    if not (isinstance(value, str) or (optional and value is None)):
        raise _refuse(path, "a string or null" if optional else "a string", value)


def _one_of(value: Any, path: str, allowed: tuple[Any, ...]) -> None:
    if not any(value is item or (type(value) is type(item) and value == item) for item in allowed):
        raise _refuse(path, "one of " + ", ".join(map(repr, allowed)), value)


def _values(value: Any, path: str, *, length: int | None = None) -> None:
    """Per-seed values: a list of numbers or nulls (of ``length``, when given)."""
    for i, item in enumerate(_list(value, path)):
        _number(item, f"{path}[{i}]", optional=True)
    if length is not None and len(value) != length:
        raise _refuse(path, f"a list of {length} values", value)


def _matrix(value: Any, path: str, rows: int) -> None:
    """Per-point, per-seed values: ``rows`` lists of numbers or nulls, all of one length."""
    _list(value, path)
    if len(value) != rows:
        raise _refuse(path, f"a list of {rows} rows (one per step or factor)", value)
    for i, row in enumerate(value):
        _values(row, f"{path}[{i}]", length=len(value[0]) if isinstance(value[0], list) else None)


def _arm_values(value: Any, path: str) -> None:
    """``{arm: per-seed values}`` (a metric's table)."""
    for arm, values in _table(value, path).items():
        _values(values, f"{path}.{arm}")


def check_case_id(value: Any, path: str = "case id") -> str:
    """``value`` if it is a case name such as ``"1d-tanh"`` (a name, never a path), else a ``UserInputError``.

    The rule is the config's (:func:`~spectral.claim._config.parse_case_id`),
    and the name must be the canonical spelling of its case, so it has no
    characters a file name could misread.

    Examples
    --------
    >>> check_case_id("2d-relu-nobias")
    '2d-relu-nobias'
    >>> check_case_id("../../escape/pwn")
    Traceback (most recent call last):
    ...
    spectral._errors.UserInputError: report.json: case id must be a case name such as '1d-tanh', got '../../escape/pwn'
    """
    try:
        canonical = parse_case_id(value).id if isinstance(value, str) else None
    except ConfigError:
        canonical = None
    if canonical is None or canonical != value:
        raise _refuse(path, "a case name such as '1d-tanh'", value)
    return value


def check_verdict(item: Any, path: str) -> None:
    """One verdict as the report reads it: every field of :class:`~spectral.claim._stats.Verdict`, the names and
    notes; its alternate window too."""
    _verdict_fields(item, path)
    for key in ("metric", "claim", "reference"):
        _string(_field(item, key, path), f"{path}.{key}")
    if "window_dependent" in item:
        _one_of(item["window_dependent"], f"{path}.window_dependent", (True, False))
    for i, note in enumerate(_list(item.get("attribution", []), f"{path}.attribution")):
        _string(note, f"{path}.attribution[{i}]")
    if "alternate_window" in item:
        _verdict_fields(item["alternate_window"], f"{path}.alternate_window")


def _verdict_fields(item: Any, path: str) -> None:
    """The contract's fields, checked by the one reader of verdicts, ``Verdict.from_dict``."""
    try:
        Verdict.from_dict(_table(item, path))
    except (TypeError, ValueError) as error:
        field = re.match(r"verdict field '(\w+)': (.*)", str(error))
        where, message = (f"{path}.{field[1]}", field[2]) if field else (path, str(error))
        raise UserInputError(f"report.json: {where}: {message}") from None


def _check_verdicts(value: Any, path: str, required: tuple[str, ...] = ()) -> None:
    verdicts = _table(value, path)
    for name in required:
        _field(verdicts, name, path)
    for name, item in verdicts.items():
        check_verdict(item, f"{path}.{name}")


def _check_overfit(overfit: Any, path: str) -> None:
    overfit = _table(overfit, path)
    for i, steps in enumerate(_list(_field(overfit, "steps", path), f"{path}.steps", non_empty=True)):
        _integer(steps, f"{path}.steps[{i}]")
    for i, reached in enumerate(_list(_field(overfit, "reached", path), f"{path}.reached")):
        _one_of(reached, f"{path}.reached[{i}]", (True, False))
    _values(_field(overfit, "test_gap", path), f"{path}.test_gap")
    _number(_field(overfit, "threshold", path), f"{path}.threshold")
    _number(_field(overfit, "min_test_gap", path), f"{path}.min_test_gap")
    _one_of(_field(overfit, "overfits", path), f"{path}.overfits", (True, False))
    _integer(_field(overfit, "seeds_overfitting", path), f"{path}.seeds_overfitting")


def _check_measurement(case: dict[str, Any], path: str) -> None:
    """What the case's kind reads for its measurement sentence: a known signal, and its numbers."""
    signal = _field(case, "signal", path)
    _one_of(signal, f"{path}.signal", SIGNALS)
    kind = kind_of(signal)
    for key in kind.measurement_numbers:
        _number(_field(case, key, path), f"{path}.{key}")
    for name in kind.measurement_tables:
        for key, value in _table(_field(case, name, path), f"{path}.{name}").items():
            _number(value, f"{path}.{name}.{key}")


def _check_curves(curves: Any, path: str) -> None:
    """Retraining curves: steps, then per metric the same arms, each a (step x seed) table."""
    curves = _table(curves, path)
    steps = _list(_field(curves, "steps", path), f"{path}.steps")
    for i, step in enumerate(steps):
        _number(step, f"{path}.steps[{i}]")
    arms = list(_table(_field(curves, "test_mse", path), f"{path}.test_mse"))
    for metric in ("test_mse", "hf_fraction", "train_mse"):
        table = _table(_field(curves, metric, path), f"{path}.{metric}")
        for arm in arms:
            _matrix(_field(table, arm, f"{path}.{metric}"), f"{path}.{metric}.{arm}", len(steps))


def _check_sweep(sweep: Any, path: str) -> None:
    sweep = _table(sweep, path)
    factors = _list(_field(sweep, "factors", path), f"{path}.factors", non_empty=True)
    for i, factor in enumerate(factors):
        _number(factor, f"{path}.factors[{i}]")
    for key in ("hf_fraction_shrunk", "hf_fraction", "test_mse"):
        _matrix(_field(sweep, key, path), f"{path}.{key}", len(factors))


def _check_case(case: Any, path: str) -> None:
    case = _table(case, path)
    check_case_id(_field(case, "id", path), f"{path}.id")
    for key in ("activation", "optimizer"):
        _string(_field(case, key, path), f"{path}.{key}")
    _one_of(_field(case, "bias", path), f"{path}.bias", (True, False))
    _number(_field(case, "learning_rate", path), f"{path}.learning_rate")
    _positive(_field(case, "noise_variance", path), f"{path}.noise_variance")
    seeds = _list(_field(case, "seeds", path), f"{path}.seeds", non_empty=True)
    for i, seed in enumerate(seeds):
        _integer(seed, f"{path}.seeds[{i}]")
    _check_measurement(case, path)
    _check_overfit(_field(case, "overfit", path), f"{path}.overfit")
    for name, table in _table(_field(case, "metrics", path), f"{path}.metrics").items():
        _arm_values(table, f"{path}.metrics.{name}")
    _values(_field(case, "output_scale_factors", path), f"{path}.output_scale_factors")
    if "negative_control" in case:
        control = _table(case["negative_control"], f"{path}.negative_control")
        where = f"{path}.negative_control"
        _one_of(_field(control, "passed", where), f"{where}.passed", (True, False, None))
        _number(_field(control, "max_relative_hf_change", where), f"{where}.max_relative_hf_change", optional=True)
        _string(_field(control, "reason", where), f"{where}.reason", optional=True)
    _check_verdicts(_field(case, "verdicts", path), f"{path}.verdicts")
    _check_curves(_field(case, "curves", path), f"{path}.curves")
    if _field(case, "sweep", path) is not None:
        _check_sweep(case["sweep"], f"{path}.sweep")
        _number(_field(case, "cutoff", path), f"{path}.cutoff")
        if "shrink_factor" in case:
            _number(case["shrink_factor"], f"{path}.shrink_factor")


def _check_scope(scope: Any) -> None:
    for i, cell in enumerate(_list(scope, "scope")):
        path = f"scope[{i}]"
        cell = _table(cell, path)
        _string(_field(cell, "case", path), f"{path}.case")
        for key in ("train_points", "width"):
            _integer(_field(cell, key, path), f"{path}.{key}")
        _one_of(_field(cell, "overfit", path), f"{path}.overfit", (True, False))
        _check_verdicts(_field(cell, "verdicts", path), f"{path}.verdicts", SCOPE_VERDICTS)


def _check_family(family: Any) -> None:
    """One summary per family (``primary``, ``secondary``): its size and correction method."""
    family = _table(family, "family")
    for name in FAMILIES:
        summary = _table(_field(family, name, "family"), f"family.{name}")
        _integer(_field(summary, "size", f"family.{name}"), f"family.{name}.size")
        _one_of(_field(summary, "method", f"family.{name}"), f"family.{name}.method", CORRECTIONS)


def _check_provenance(provenance: Any) -> None:
    """Versions, machine and date (any scalar), and wall times (an object of scalars)."""
    for key, value in _table(provenance, "provenance").items():
        inner = value.items() if isinstance(value, dict) else [(None, value)]
        for name, item in inner:
            if isinstance(item, (dict, list)):
                raise _refuse(f"provenance.{key}" + (f".{name}" if name is not None else ""), "a single value", item)


def _check_config(config: dict[str, Any]) -> None:
    try:
        load_config(None, config)
    except ConfigError as error:
        where = f"config.{error.key}" if error.key else "config"
        raise UserInputError(f"report.json: {where}: {error}") from None


def check_report(report: dict[str, Any]) -> None:
    """Refuse, with a ``UserInputError`` naming the JSON path, a report whose fields the report code cannot read.

    ``report`` is a dict with a ``config`` dict and a ``cases`` list (checked
    by :func:`~spectral.claim._report.load_report` before this). The
    precision study's own tables are not checked field by field here (that
    study's layout is its module's); its verdicts are.

    Examples
    --------
    >>> family = {name: {"size": 0, "method": "bh"} for name in ("primary", "secondary")}
    >>> check_report({"config": {}, "cases": [], "family": family, "provenance": {}, "scope": None, "precision": None})
    >>> check_report({"config": {"alpha": 0}, "cases": [], "family": family, "provenance": {}})
    Traceback (most recent call last):
    ...
    spectral._errors.UserInputError: report.json: config.alpha: config key 'alpha' must be in [1e-06, 0.5), got 0
    """
    _check_config(report["config"])
    _check_family(_field(report, "family"))
    _check_provenance(_field(report, "provenance"))
    for i, case in enumerate(report["cases"]):
        _check_case(case, f"cases[{i}]")
    if report.get("scope") is not None:
        _check_scope(report["scope"])
    if report.get("precision") is not None:
        precision = _table(report["precision"], "precision")
        _check_verdicts(_field(precision, "verdicts", "precision"), "precision.verdicts")

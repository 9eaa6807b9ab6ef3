"""Configuration of the claim check: an embedded default that a TOML/JSON file overrides."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ._precision_config import PRECISION_DEFAULTS, validate_precision
from .._spectrum import window_array

DEFAULT_CONFIG: dict[str, Any] = {
    "seeds": 16,
    "alpha": 0.05,
    # Multiplicity correction over every verdict of the run: Benjamini-Hochberg, Holm, or none.
    "correction": "bh",
    "min_relative_effect": 0.05,
    "shrink_factor": 0.2,
    "shrink_perturb": {"shrink": 0.4, "perturb": 0.1},
    # Decoupled weight decay of the weight_decay arm: each step multiplies the weights by (1 - lr * weight_decay).
    "weight_decay": 0.5,
    "window": "hann",
    # Every spectral verdict is also computed under this window and flagged where the two disagree.
    "alternate_window": ["tukey", 0.5],
    # "full" adds the data-size x width grid (scope_grid) to the default run.
    "scope": "default",
    "scope_grid": {"cases": ["1d-tanh", "1d-relu"], "train_points": [12, 24, 48], "widths": [32, 64, 128]},
    "sweep": {"case": "1d-tanh", "factors": [0.1, 0.2, 0.3, 0.5, 0.7, 1.0]},
    "training": {
        "width": 64,
        "depth": 3,
        "learning_rate": {"relu": 0.01, "tanh": 0.003, "gelu": 0.003, "sine": 0.0001},
        "sgd_learning_rate": {"relu": 0.05, "tanh": 0.05, "gelu": 0.05, "sine": 0.002},
        "overfit_max_steps": 2000,
        # Overfit: every training point fitted to a tenth of the noise variance (most of the noise memorised).
        "overfit_ratio": 0.1,
        # A case counts as overfit when the median over seeds of (test MSE at the stop / phase-1 minimum) is this.
        "min_test_gap": 1.5,
        "check_every": 50,
        "retrain_steps": 400,
        "curve_points": 10,
        # SIREN's frequency scale; the paper's 30 is for [-1, 1], and on [0, 1) it memorises without ever generalising.
        "omega_0": 10.0,
    },
    "signals": {
        "1d": {"frequencies": [1, 3, 5], "amplitudes": [1.0, 0.5, 0.25], "phases": [0.0, 0.7, 1.9],
               "train_points": 24, "validation_points": 8, "noise": 0.5, "grid": 256, "cutoff_margin": 3.0},
        "2d": {"frequencies": [[1, 0], [1, 2], [-2, 1]], "amplitudes": [1.0, 0.5, 0.3], "phases": [0.0, 0.9, 2.1],
               "train_points": 32, "validation_points": 16, "noise": 0.5, "grid": 32, "cutoff_margin": 3.0},
    },
    "cases": [
        {"signal": signal, "activation": activation, "bias": bias}
        for signal in ("1d", "2d")
        for activation, bias in (("relu", True), ("tanh", True), ("sine", True), ("relu", False))
    ],
    # The precision study (spectral.claim._precision_config): which case, which storage dtypes, the manifold study.
    "precision": PRECISION_DEFAULTS,
}

ACTIVATIONS = ("relu", "tanh", "gelu", "sine")
OPTIMIZERS = ("adam", "sgd")
CORRECTIONS = ("bh", "holm", "none")
#: Largest amplitude a signal may have: far above any signal of interest, far below float32 overflow of its power.
MAX_AMPLITUDE = 1e6
#: What a run may allocate for its largest ensemble (parameters, gradients, optimiser state, activations).
MEMORY_LIMIT_BYTES = 8 * 2**30


class ConfigError(ValueError):
    """A configuration that cannot be run; the message names the key."""


def case_id(case: dict[str, Any]) -> str:
    """``"1d-relu"``, ``"2d-relu-nobias"``, ``"1d-tanh-sgd"``: a case's name in files and reports."""
    optimizer = case.get("optimizer", "adam")
    return (f"{case['signal']}-{case['activation']}" + ("" if case["bias"] else "-nobias")
            + ("" if optimizer == "adam" else f"-{optimizer}"))


def parse_case_id(name: str) -> dict[str, Any]:
    """The case a name like ``"1d-tanh"``, ``"2d-relu-nobias"`` or ``"1d-tanh-sgd"`` stands for; ``ConfigError`` if none."""
    parts = name.split("-") if isinstance(name, str) else []
    optimizer = parts.pop() if parts[-1:] == ["sgd"] else "adam"
    bias = parts[-1:] != ["nobias"]
    parts = parts if bias else parts[:-1]
    if len(parts) != 2 or parts[0] not in ("1d", "2d") or parts[1] not in ACTIVATIONS:
        raise ConfigError(f"{name!r} is not a case name like '1d-tanh', '2d-relu-nobias' or '1d-tanh-sgd'")
    case = {"signal": parts[0], "activation": parts[1], "bias": bias}
    return case if optimizer == "adam" else {**case, "optimizer": optimizer}


def _merge(default: Any, override: Any, key: str) -> Any:
    """Override ``default`` by ``override``, checking keys and types against the default."""
    if isinstance(default, dict):
        if not isinstance(override, dict):
            raise ConfigError(f"config key {key or 'top level'!r} must be a table, got {override!r}")
        unknown = sorted(set(override) - set(default))
        if unknown:
            where = f" in {key!r}" if key else ""
            raise ConfigError(f"unknown config key{where}: {unknown[0]!r}; expected one of {sorted(default)}")
        return {name: _merge(default[name], override[name], f"{key}.{name}".lstrip("."))
                if name in override else copy.deepcopy(default[name]) for name in default}
    if key in ("cases", "window", "alternate_window"):  # checked by validate()
        return override
    if isinstance(default, bool) or isinstance(override, bool):
        if type(default) is not type(override):
            raise ConfigError(f"config key {key!r} must be {type(default).__name__}, got {override!r}")
        return override
    if isinstance(default, (int, float)):
        if not isinstance(override, (int, float)) or (isinstance(default, int) and not isinstance(override, int)):
            expected = "an integer" if isinstance(default, int) else "a number"
            raise ConfigError(f"config key {key!r} must be {expected}, got {override!r}")
        if not math.isfinite(override):
            raise ConfigError(f"config key {key!r} must be finite, got {override!r}")
        return type(default)(override)
    if isinstance(default, list) and not isinstance(override, list):
        raise ConfigError(f"config key {key!r} must be a list, got {override!r}")
    if isinstance(default, str) and override is not None and not isinstance(override, (str, list)):
        raise ConfigError(f"config key {key!r} must be a string, got {override!r}")
    return override


def _require(condition: bool, key: str, expected: str, value: Any) -> None:
    if not condition:
        raise ConfigError(f"config key {key!r} must be {expected}, got {value!r}")


def _lookup(config: dict[str, Any], path: str) -> Any:
    value = config
    for part in path.split("."):
        value = value[part]
    return value


def _check_positive(config: dict[str, Any], path: str, integer: bool = False) -> None:
    value = _lookup(config, path)
    _require(value > 0 and (not integer or isinstance(value, int)), path,
             "a positive integer" if integer else "positive", value)


def _check_non_negative(config: dict[str, Any], path: str) -> None:
    value = _lookup(config, path)
    _require(value >= 0, path, ">= 0", value)


def _check_cases(config: dict[str, Any]) -> None:
    cases = config["cases"]
    _require(isinstance(cases, list) and len(cases) > 0, "cases", "a non-empty list of tables", cases)
    names = set()
    for i, case in enumerate(cases):
        key = f"cases[{i}]"
        _require(isinstance(case, dict) and {"signal", "activation", "bias"} <= set(case)
                 <= {"signal", "activation", "bias", "optimizer"}, key,
                 "a table with keys signal, activation, bias and optionally optimizer", case)
        _require(case["signal"] in ("1d", "2d"), f"{key}.signal", '"1d" or "2d"', case["signal"])
        _require(case["activation"] in ACTIVATIONS, f"{key}.activation", f"one of {ACTIVATIONS}", case["activation"])
        _require(isinstance(case["bias"], bool), f"{key}.bias", "true or false", case["bias"])
        _require(case.get("optimizer", "adam") in OPTIMIZERS, f"{key}.optimizer", f"one of {OPTIMIZERS}",
                 case.get("optimizer"))
        _require(case_id(case) not in names, key, "unique", case_id(case))
        names.add(case_id(case))
    sweep = config["sweep"]["case"]
    _require(sweep in names or sweep == "", "sweep.case", f"one of the cases {sorted(names)} or \"\"", sweep)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_frequencies(key: str, frequencies: Any, dims: int, grid: int) -> None:
    """Integer frequencies, none of them zero (no power to learn) nor at or above the grid's Nyquist (aliased)."""
    nyquist = grid // 2
    if dims == 1:
        valid = bool(frequencies) and all(_is_integer(k) and 0 < k < nyquist for k in frequencies)
        expected = f"a non-empty list of integers in [1, {nyquist - 1}] (below the grid's Nyquist frequency)"
    else:
        valid = bool(frequencies) and all(isinstance(k, list) and len(k) == 2 and all(map(_is_integer, k))
                                          and any(k) and max(map(abs, k)) < nyquist for k in frequencies)
        expected = f"a non-empty list of non-zero [k_y, k_x] integer pairs with |k| < {nyquist} (the grid's Nyquist)"
    _require(valid, f"{key}.frequencies", expected, frequencies)


def _check_signal(name: str, signal: dict[str, Any]) -> None:
    key = f"signals.{name}"
    for path in ("train_points", "validation_points", "grid"):
        _check_positive(signal, path, integer=True)
    _require(signal["grid"] >= 8, f"{key}.grid", ">= 8", signal["grid"])
    # Without noise there is nothing to overfit, and the overfit threshold (a fraction of its variance) is 0.
    _require(0 < signal["noise"] <= MAX_AMPLITUDE, f"{key}.noise", f"in (0, {MAX_AMPLITUDE:g}]", signal["noise"])
    dims = 1 if name == "1d" else 2
    _check_frequencies(key, signal["frequencies"], dims, signal["grid"])
    for part in ("amplitudes", "phases"):
        values = signal[part]
        _require(isinstance(values, list) and all(map(_is_number, values)) and len(values) == len(signal["frequencies"]),
                 f"{key}.{part}", "finite numbers, one per frequency", values)
    _require(all(0 < abs(a) <= MAX_AMPLITUDE for a in signal["amplitudes"]), f"{key}.amplitudes",
             f"non-zero with |a| <= {MAX_AMPLITUDE:g}", signal["amplitudes"])
    top = max(math.hypot(*k) if dims == 2 else k for k in signal["frequencies"])
    _require(0 <= signal["cutoff_margin"] and top + signal["cutoff_margin"] < signal["grid"] // 2,
             f"{key}.cutoff_margin", f">= 0 and leaving the cutoff (highest frequency {top:g} + margin) below the "
             f"grid's Nyquist frequency {signal['grid'] // 2}", signal["cutoff_margin"])


def _check_window(key: str, window: Any) -> None:
    try:
        values = window_array(window, (16,))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"config key {key!r}: {error}") from None
    _require(values is None or (np.all(np.isfinite(values)) and values.sum() > 0), key,
             "a window with finite values and a positive sum", window)


def _check_scope(config: dict[str, Any]) -> None:
    _require(config["scope"] in ("default", "full"), "scope", '"default" or "full"', config["scope"])
    grid = config["scope_grid"]
    for name in grid["cases"] if isinstance(grid["cases"], list) else [None]:
        try:
            case = parse_case_id(name)
        except ConfigError as error:
            raise ConfigError(f"config key 'scope_grid.cases': {error}") from None
        _require(case["signal"] == "1d", "scope_grid.cases", "1D cases", name)
    for part in ("train_points", "widths"):
        values = grid[part]
        _require(isinstance(values, list) and bool(values) and all(_is_integer(v) and v > 0 for v in values),
                 f"scope_grid.{part}", "a non-empty list of positive integers", values)


def _check_size(config: dict[str, Any]) -> None:
    """Refuse, before anything runs, a run whose largest ensemble cannot fit in :data:`MEMORY_LIMIT_BYTES`."""
    training = config["training"]
    width, depth = training["width"], training["depth"]
    widths = [width] + (config["scope_grid"]["widths"] if config["scope"] == "full" else [])
    groups = 7 + len(config["sweep"]["factors"])
    points = max(s["grid"] ** (1 if name == "1d" else 2) + s["train_points"] + s["validation_points"]
                 for name, s in config["signals"].items())
    largest = 0
    for w in widths:
        parameters = 3 * w + (depth - 1) * w * (w + 1) + w + 1
        members = config["seeds"] * groups
        # parameters, gradients, two optimiser moments, update temporaries; activations and their gradients
        largest = max(largest, 4 * members * (8 * parameters + 3 * points * w * depth))
    if largest > MEMORY_LIMIT_BYTES:
        raise ConfigError(
            f"config asks for about {largest / 2**30:.0f} GiB for its largest ensemble ({config['seeds']} seeds x "
            f"{groups} arms and sweep factors, width up to {max(widths)}); the limit is "
            f"{MEMORY_LIMIT_BYTES / 2**30:.0f} GiB: lower 'seeds', 'training.width' or 'sweep.factors'")


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """Check value ranges; raise :class:`ConfigError` naming the key."""
    for path in ("seeds", "training.width", "training.depth", "training.overfit_max_steps",
                 "training.check_every", "training.retrain_steps", "training.curve_points"):
        _check_positive(config, path, integer=True)
    for path in ["shrink_factor", "training.overfit_ratio", "training.omega_0", "shrink_perturb.shrink",
                 "training.min_test_gap"] + [f"training.{rates}.{name}" for name in ACTIVATIONS
                                             for rates in ("learning_rate", "sgd_learning_rate")]:
        _check_positive(config, path)
    _require(0 < config["alpha"] < 1, "alpha", "in (0, 1)", config["alpha"])
    _require(config["correction"] in CORRECTIONS, "correction", f"one of {CORRECTIONS}", config["correction"])
    _require(config["min_relative_effect"] >= 0, "min_relative_effect", ">= 0", config["min_relative_effect"])
    for path in ("shrink_perturb.perturb", "weight_decay"):
        _check_non_negative(config, path)
    factors = config["sweep"]["factors"]
    _require(isinstance(factors, list) and bool(factors) and all(_is_number(f) and f > 0 for f in factors),
             "sweep.factors", "a non-empty list of positive numbers", factors)
    for name, signal in config["signals"].items():
        _check_signal(name, signal)
    for key in ("window", "alternate_window"):
        _check_window(key, config[key])
    _check_cases(config)
    _check_scope(config)
    _check_size(config)
    validate_precision(config)
    return config


def merge_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with nested ``overrides`` applied, tables merged key by key (values are checked by :func:`load_config`)."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_overrides(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """Nested overrides from ``KEY=VALUE`` strings with dotted keys (``training.width=32``).

    A value is read as JSON when it parses (numbers, ``true``, lists such as
    ``[0.1,0.5]``, ``null``) and as a string otherwise (``window=hann``); the
    config then checks its type like any other value. Later assignments win.

    Examples
    --------
    >>> parse_assignments(["seeds=4", "training.width=32", "window=hann", "sweep.factors=[0.2,1.0]"])
    {'seeds': 4, 'training': {'width': 32}, 'window': 'hann', 'sweep': {'factors': [0.2, 1.0]}}
    """
    overrides: dict[str, Any] = {}
    for text in assignments:
        key, separator, raw = text.partition("=")
        parts = key.strip().split(".")
        if not separator or not all(parts):
            raise ConfigError(f"--set expects KEY=VALUE with a dotted config key, got {text!r}")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        table = overrides
        for part in parts[:-1]:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ConfigError(f"--set {text!r}: {part!r} was set to a value, not a table, by an earlier --set")
        table[parts[-1]] = value
    return overrides


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The default configuration, overridden by a TOML or JSON file and then by ``overrides``.

    Raises
    ------
    ConfigError
        Missing or malformed file, unknown keys, wrong types or out-of-range values.
    """
    config = copy.deepcopy(DEFAULT_CONFIG)
    if path is not None:
        config = _merge(config, read_config_file(Path(path)), "")
    if overrides:
        config = _merge(config, overrides, "")
    return validate(config)


def _parse_toml(text: str) -> Any:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError("reading a TOML config on Python < 3.11 needs tomli (pip install tomli); "
                              "or use a JSON config") from None
    return tomllib.loads(text)


def read_config_file(path: Path) -> dict[str, Any]:
    """A config file's table: TOML (``.toml``) or JSON (``.json``) only; ``ConfigError`` for anything else."""
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ConfigError(f"config file {str(path)!r}: TOML (.toml) or JSON (.json) only, got {suffix or 'no suffix'!r}")
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    kind = "TOML" if suffix == ".toml" else "JSON"
    try:
        text = path.read_bytes().decode("utf-8")
        return _parse_toml(text) if kind == "TOML" else json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:  # JSONDecodeError, TOMLDecodeError: ValueError
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error).splitlines()[0]
        raise ConfigError(f"config file {str(path)!r} is not valid {kind}: {reason}") from None

"""Configuration of the claim check: an embedded default that a TOML/JSON file overrides."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

from ._spectrum import window_array

DEFAULT_CONFIG: dict[str, Any] = {
    "seeds": 8,
    "alpha": 0.05,
    "min_relative_effect": 0.05,
    "bootstrap_resamples": 2000,
    "shrink_factor": 0.2,
    "shrink_perturb": {"shrink": 0.4, "perturb": 0.1},
    "window": "hann",
    "sweep": {"case": "1d-tanh", "factors": [0.1, 0.2, 0.3, 0.5, 0.7, 1.0]},
    "training": {
        "width": 64,
        "depth": 3,
        "learning_rate": {"relu": 0.01, "tanh": 0.003, "gelu": 0.003, "sine": 0.0001},
        "overfit_max_steps": 4000,
        "overfit_ratio": 0.5,
        "check_every": 100,
        "retrain_steps": 400,
        "curve_points": 8,
        "omega_0": 30.0,
    },
    "signals": {
        "1d": {"frequencies": [1, 3, 5], "amplitudes": [1.0, 0.5, 0.25], "phases": [0.0, 0.7, 1.9],
               "train_points": 24, "noise": 0.3, "grid": 256, "cutoff_margin": 3.0},
        "2d": {"frequencies": [[1, 0], [1, 2], [-2, 1]], "amplitudes": [1.0, 0.5, 0.3], "phases": [0.0, 0.9, 2.1],
               "train_points": 64, "noise": 0.3, "grid": 32, "cutoff_margin": 3.0},
    },
    "cases": [
        {"signal": signal, "activation": activation, "bias": bias}
        for signal in ("1d", "2d")
        for activation, bias in (("relu", True), ("tanh", True), ("sine", True), ("relu", False))
    ],
    # Weights stored in low precision: "float32", "bfloat16" and "float16" store the weights in that dtype (no
    # master copy); "bfloat16+master" computes in bfloat16 on a float32 master copy. The default lists them all.
    "precision": {"enabled": True, "case": "1d-tanh", "schemes": ["float32", "bfloat16", "float16", "bfloat16+master"],
                  "window_steps": 20, "continue_steps": 200},
}

ACTIVATIONS = ("relu", "tanh", "gelu", "sine")


class ConfigError(ValueError):
    """A configuration that cannot be run; the message names the key."""


def case_id(case: dict[str, Any]) -> str:
    """``"1d-relu"``, ``"2d-relu-nobias"``: a case's name in files and reports."""
    return f"{case['signal']}-{case['activation']}" + ("" if case["bias"] else "-nobias")


def parse_case_id(name: str) -> dict[str, Any]:
    """The case a name like ``"1d-tanh"`` or ``"2d-relu-nobias"`` stands for; ``ConfigError`` if none."""
    parts = name.split("-") if isinstance(name, str) else []
    bias = parts[-1:] != ["nobias"]
    parts = parts if bias else parts[:-1]
    if len(parts) != 2 or parts[0] not in ("1d", "2d") or parts[1] not in ACTIVATIONS:
        raise ConfigError(f"{name!r} is not a case name like '1d-tanh' or '2d-relu-nobias'")
    return {"signal": parts[0], "activation": parts[1], "bias": bias}


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
    if key == "cases":
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


def _check_positive(config: dict[str, Any], path: str, integer: bool = False) -> None:
    value = config
    for part in path.split("."):
        value = value[part]
    _require(value > 0 and (not integer or isinstance(value, int)), path,
             "a positive integer" if integer else "positive", value)


def _check_cases(config: dict[str, Any]) -> None:
    cases = config["cases"]
    _require(isinstance(cases, list) and len(cases) > 0, "cases", "a non-empty list of tables", cases)
    names = set()
    for i, case in enumerate(cases):
        key = f"cases[{i}]"
        _require(isinstance(case, dict) and set(case) == {"signal", "activation", "bias"}, key,
                 "a table with keys signal, activation, bias", case)
        _require(case["signal"] in ("1d", "2d"), f"{key}.signal", '"1d" or "2d"', case["signal"])
        _require(case["activation"] in ACTIVATIONS, f"{key}.activation", f"one of {ACTIVATIONS}", case["activation"])
        _require(isinstance(case["bias"], bool), f"{key}.bias", "true or false", case["bias"])
        _require(case_id(case) not in names, key, "unique", case_id(case))
        names.add(case_id(case))
    sweep = config["sweep"]["case"]
    _require(sweep in names or sweep == "", "sweep.case", f"one of the cases {sorted(names)} or \"\"", sweep)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_signal(name: str, signal: dict[str, Any]) -> None:
    key = f"signals.{name}"
    for path in ("train_points", "grid"):
        _check_positive(signal, path, integer=True)
    # Without noise there is nothing to overfit, and the overfit threshold (a fraction of its variance) is 0.
    _require(signal["noise"] > 0, f"{key}.noise", "> 0", signal["noise"])
    _require(signal["cutoff_margin"] >= 0, f"{key}.cutoff_margin", ">= 0", signal["cutoff_margin"])
    dims = 1 if name == "1d" else 2
    frequencies = signal["frequencies"]
    _require(bool(frequencies) and all(_is_integer(k) if dims == 1 else isinstance(k, list) and len(k) == 2
                                       and all(map(_is_integer, k)) for k in frequencies),
             f"{key}.frequencies", "a non-empty list of integers" if dims == 1 else "a non-empty list of [k_y, k_x] "
             "integer pairs", frequencies)
    for part in ("amplitudes", "phases"):
        values = signal[part]
        _require(all(map(_is_number, values)) and len(values) == len(frequencies), f"{key}.{part}",
                 "finite numbers, one per frequency", values)


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """Check value ranges; raise :class:`ConfigError` naming the key."""
    for path in ("seeds", "bootstrap_resamples", "training.width", "training.depth", "training.overfit_max_steps",
                 "training.check_every", "training.retrain_steps", "training.curve_points"):
        _check_positive(config, path, integer=True)
    for path in ["shrink_factor", "training.overfit_ratio", "training.omega_0", "shrink_perturb.shrink"] + [
            f"training.learning_rate.{name}" for name in ACTIVATIONS]:
        _check_positive(config, path)
    _require(0 < config["alpha"] < 1, "alpha", "in (0, 1)", config["alpha"])
    _require(config["min_relative_effect"] >= 0, "min_relative_effect", ">= 0", config["min_relative_effect"])
    _require(config["shrink_perturb"]["perturb"] >= 0, "shrink_perturb.perturb", ">= 0",
             config["shrink_perturb"]["perturb"])
    factors = config["sweep"]["factors"]
    _require(all(isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f < math.inf for f in factors),
             "sweep.factors", "a list of positive numbers", factors)
    for name, signal in config["signals"].items():
        _check_signal(name, signal)
    try:
        window_array(config["window"], (8,))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"config key 'window': {error}") from None
    _check_cases(config)
    precision = config["precision"]
    for path in ("precision.window_steps", "precision.continue_steps"):
        _check_positive(config, path, integer=True)
    known, schemes = DEFAULT_CONFIG["precision"]["schemes"], precision["schemes"]
    _require(isinstance(schemes, list) and all(s in known for s in schemes) and len(set(schemes)) == len(schemes)
             and "float32" in schemes, "precision.schemes", f'a list of distinct schemes from {known} with "float32"',
             schemes)
    try:
        parse_case_id(precision["case"])
    except ConfigError as error:
        raise ConfigError(f"config key 'precision.case': {error}") from None
    return config


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


def read_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    text = path.read_bytes()
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            return tomllib.loads(text.decode("utf-8"))
        return json.loads(text)
    except ImportError:
        raise ConfigError("reading TOML needs Python 3.11 or newer; use a JSON config") from None
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise ConfigError(f"config file {str(path)!r} is not valid {kind}: {error}") from None

"""The ``precision`` table of the claim check's configuration: its defaults and its checks.

``spectral.claim._config`` imports this module at import time, so nothing here
imports ``spectral.claim._config`` before a check runs.
"""

from __future__ import annotations

import math
from typing import Any

#: Precision schemes by name: a dtype name alone stores the weights in it (no master copy); "bfloat16+master"
#: computes in bfloat16 on a float32 master copy. The order is the order of the report.
SCHEME_NAMES = ("float32", "bfloat16", "float16", "bfloat16+master")

PRECISION_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "case": "1d-tanh",
    # Trained in their storage dtype (slingshot and control) only at scope "full"; float32 always runs.
    "schemes": list(SCHEME_NAMES),
    # Steps before and after the shrink over which lost updates are pooled.
    "window_steps": 20,
    # Steps of continued training at the interpolating minimum, per storage dtype.
    "continue_steps": 200,
    # The small over-parameterised float64 network trained to interpolation for the manifold measurement.
    "manifold": {"width": 16, "depth": 2, "points": 12, "mse_ratio": 1e-10, "max_iterations": 100},
}


def validate_precision(config: dict[str, Any]) -> None:
    """Check the ``precision`` table of a merged ``config``; raise ``ConfigError`` naming the dotted key.

    Examples
    --------
    >>> import copy
    >>> from spectral.claim._config import DEFAULT_CONFIG
    >>> config = copy.deepcopy(DEFAULT_CONFIG)
    >>> config["precision"] = {**copy.deepcopy(PRECISION_DEFAULTS), "window_steps": 0}
    >>> validate_precision(config)
    Traceback (most recent call last):
    ...
    spectral.claim._config.ConfigError: config key 'precision.window_steps' must be a positive integer, got 0
    """
    from ._config import (  # here, not at import: _config imports this module
        ConfigError,
        parse_case_id,
    )

    def require(condition: bool, key: str, expected: str, value: Any) -> None:
        if not condition:
            raise ConfigError(f"config key {key!r} must be {expected}, got {value!r}")

    precision = config["precision"]
    manifold = precision["manifold"]
    for key, value in [("window_steps", precision["window_steps"]), ("continue_steps", precision["continue_steps"])] + [
            (f"manifold.{name}", manifold[name]) for name in ("width", "depth", "points", "max_iterations")]:
        require(isinstance(value, int) and not isinstance(value, bool) and value > 0, f"precision.{key}",
                "a positive integer", value)
    ratio = manifold["mse_ratio"]
    require(isinstance(ratio, (int, float)) and math.isfinite(ratio) and 0 < ratio < 1, "precision.manifold.mse_ratio",
            "in (0, 1)", ratio)
    require(isinstance(precision["enabled"], bool), "precision.enabled", "true or false", precision["enabled"])
    schemes = precision["schemes"]
    require(isinstance(schemes, list) and all(s in SCHEME_NAMES for s in schemes) and len(set(schemes)) == len(schemes)
            and "float32" in schemes, "precision.schemes", f'a list of distinct schemes from {list(SCHEME_NAMES)} '
            'with "float32"', schemes)
    try:
        case = parse_case_id(precision["case"])
    except ConfigError as error:
        raise ConfigError(f"config key 'precision.case': {error}") from None
    points = config["signals"][case["signal"]]["train_points"]
    require(manifold["points"] <= points, "precision.manifold.points",
            f"at most the case's signals.{case['signal']}.train_points ({points})", manifold["points"])

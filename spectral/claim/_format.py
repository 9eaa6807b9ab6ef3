"""Numbers as report text."""

from __future__ import annotations

from typing import Any

import numpy as np


def number(value: Any, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits; ``n/a`` for None, NaN and inf."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}g}"


def mean_sd(values: list[Any]) -> str:
    """``mean ± sd`` of the finite values, saying how many were not finite."""
    array = np.array([np.nan if v is None else v for v in values], dtype=float)
    finite = array[np.isfinite(array)]
    if not finite.size:
        return "n/a"
    text = f"{finite.mean():.3g} ± {finite.std(ddof=1) if finite.size > 1 else 0:.2g}"
    return text + (f" ({array.size - finite.size} non-finite)" if finite.size < array.size else "")

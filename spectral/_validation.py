"""Argument checks shared by the public functions.

Every check raises ``TypeError`` or ``ValueError`` naming the parameter, so a
bad call fails at the boundary instead of deep inside torch.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch


def positive_finite(value: Any, name: str) -> float:
    """Return ``value`` as a float, refusing non-numbers, non-finite and <= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return value


def non_negative_finite(value: Any, name: str) -> float:
    """Return ``value`` as a float, refusing non-numbers, non-finite and < 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be non-negative and finite, got {value!r}")
    return value


def positive_int(value: Any, name: str) -> int:
    """Return ``value`` as an int >= 1, refusing bools, floats and the like."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(value)


def integer(value: Any, name: str) -> int:
    """Return ``value`` as an int, refusing bools, floats and the like."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    return int(value)


#: The range of a training step: what an int64 array of steps (and the files holding one) can store.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def int64(value: Any, name: str) -> int:
    """Return ``value`` as an int in the int64 range, refusing bools, floats and larger integers."""
    value = integer(value, name)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{name} must fit in int64 (-2**63 .. 2**63 - 1), got {value!r}")
    return value


def optional_seed(value: Any, name: str = "seed") -> int | None:
    """Return ``value`` as an int in ``[0, 2**64)`` (what ``torch.manual_seed`` takes), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise TypeError(f"{name} must be None or a non-negative integer, got {value!r}")
    if value >= 2**64:
        raise ValueError(f"{name} must be below 2**64, got {value!r}")
    return int(value)


def real_tensor(values: Any, name: str) -> torch.Tensor:
    """Return ``values`` (array-like or tensor) as a real floating tensor.

    Numpy input keeps its precision (float64 stays float64); integers become
    float64. Complex, empty, boolean and non-numeric input is refused.
    """
    if isinstance(values, torch.Tensor):
        tensor = values.detach()
    else:
        try:
            array = np.asarray(values)
        except Exception as error:  # ragged lists and other oddities
            raise TypeError(f"{name} must be an array or tensor of real numbers") from error
        if array.dtype.kind == "c":
            raise TypeError(f"{name} must be real, got complex dtype {array.dtype}")
        if array.dtype.kind not in "iuf":
            raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
        if array.dtype.kind in "iu":
            array = array.astype(np.float64)
        tensor = torch.tensor(array)
    not_on_meta(tensor, name)
    if tensor.is_complex():
        raise TypeError(f"{name} must be real, got complex dtype {tensor.dtype}")
    if tensor.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float64)
    elif tensor.dtype in (torch.float16, torch.bfloat16):
        tensor = tensor.to(torch.float32)  # torch.fft and most reductions want float32 or float64
    if tensor.numel() == 0:
        raise ValueError(f"{name} is empty, shape {tuple(tensor.shape)}")
    return tensor


def not_on_meta(tensor: torch.Tensor, name: str) -> None:
    """Refuse a tensor on the ``meta`` device: it has a shape but no values to measure."""
    if tensor.device.type == "meta":
        raise TypeError(f"{name} is on the meta device and holds no values; materialise it first "
                        "(e.g. module.to_empty(device='cpu') and load or initialise the weights)")

"""What probes on a fixed sample set share: inputs and targets, and the model's outputs there.

The filtering and projection probes measure a model at the training inputs
themselves (any input dimension, any number of outputs), not on a grid.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import numpy as np
import torch

from ._evaluate import DEFAULT_BATCH_SIZE, PointEvaluator
from ._protocol import History
from ._validation import real_tensor

Function = TypeVar("Function", bound=Callable[..., Any])

#: Device types without float64 arithmetic.
NO_FLOAT64_DEVICES = ("mps",)


def renamed_keywords(**renamed: str) -> Callable[[Function], Function]:
    """Decorator: a keyword argument under an old name (``old="new"``) raises a TypeError naming the new name."""

    def decorate(function: Function) -> Function:
        @functools.wraps(function)
        def refusing(*args: Any, **kwargs: Any) -> Any:
            old = sorted(set(kwargs) & set(renamed))
            if old:
                raise TypeError(f"{function.__qualname__}() got {old[0]}=, which is now called "
                                f"{renamed[old[0]]}= (see the CHANGELOG)")
            return function(*args, **kwargs)

        return refusing  # type: ignore[return-value]

    return decorate


def supports_float64(device: torch.device) -> bool:
    """Whether tensors on ``device`` can be float64 (MPS cannot)."""
    return device.type not in NO_FLOAT64_DEVICES


def as_float64(values: torch.Tensor) -> torch.Tensor:
    """``values`` in float64: on their own device, or on the CPU for a device without float64 (MPS)."""
    return values.to(torch.float64) if supports_float64(values.device) else values.cpu().to(torch.float64)


def as_inputs(inputs: Any) -> torch.Tensor:
    """``(N, d)`` finite real inputs (``(N,)`` means ``d = 1``), on the CPU, floating precision kept."""
    points = real_tensor(inputs, "inputs").cpu()
    if points.ndim == 1:
        points = points[:, None]
    if points.ndim != 2:
        raise ValueError(f"inputs must have shape (N,) or (N, d), got {tuple(points.shape)}; "
                         "flatten images to (N, height * width * channels)")
    if not torch.isfinite(points).all():
        raise ValueError("inputs have NaN or inf values")
    return points


def as_columns(values: Any, count: int, name: str) -> torch.Tensor:
    """``(N, C)`` float64 values from ``(N,)`` or ``(N, C)``, on the CPU; ``N`` must be ``count``."""
    columns = real_tensor(values, name).cpu().to(torch.float64)
    if columns.ndim == 1:
        columns = columns[:, None]
    if columns.ndim != 2 or columns.shape[0] != count:
        raise ValueError(f"{name} must have shape (N,) or (N, C) with N = {count} to match inputs, "
                         f"got {tuple(columns.shape)}")
    return columns


def as_target(target: Any, count: int) -> torch.Tensor:
    """``(N, C)`` finite float64 target values from ``(N,)`` or ``(N, C)`` (e.g. one-hot labels)."""
    values = as_columns(target, count, "target")
    if not torch.isfinite(values).all():
        raise ValueError("target has NaN or inf values")
    return values


def _checked_outputs(raw: Any, count: int, columns: int) -> torch.Tensor:
    """``raw`` as a detached ``(count, columns)`` real tensor; refuses any other shape."""
    if not isinstance(raw, torch.Tensor):
        raw = np.asarray(raw)
        if raw.dtype.kind not in "biuf":
            raise TypeError(f"model must return real numbers, got dtype {raw.dtype}")
        raw = torch.from_numpy(np.ascontiguousarray(raw, dtype=np.float64))
    if tuple(raw.shape) != (count, columns):
        raise ValueError(f"model returned shape {tuple(raw.shape)} for {count} inputs; "
                         f"expected ({count}, {columns}) to match the targets")
    return raw.detach()


class _AllOutputs(torch.nn.Module):
    """Runs ``model`` and keeps every output column, handing :class:`PointEvaluator` the first.

    So a model with ``C`` outputs is evaluated once per batch, with the
    evaluator's device, dtype, eval-mode and batching rules.
    """

    def __init__(self, model: Callable[..., Any], columns: int) -> None:
        super().__init__()
        self.columns, self.kept = columns, []
        if isinstance(model, torch.nn.Module):
            self.model = model
            width = getattr(model, "in_features", None)
            if isinstance(width, int):
                self.in_features = width
        else:
            self.function = model

    def forward(self, x: Any) -> Any:
        model = self.model if "model" in self._modules else self.function
        outputs = _checked_outputs(model(x), len(x), self.columns)
        self.kept.append(outputs)
        return outputs[:, 0]


class SampleEvaluator:
    """A model's ``(N, C)`` outputs at fixed inputs, ``C`` the number of target columns.

    Evaluated as :class:`SpectrumProbe` does (see :class:`PointEvaluator`:
    torch modules on their own device and dtype, in eval mode, under
    ``no_grad``, in batches; other callables on float64 numpy arrays).
    """

    def __init__(self, inputs: torch.Tensor, columns: int, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.columns = columns
        self._points = PointEvaluator(inputs.to(torch.float64).numpy(), batch_size)

    def __call__(self, model: Callable[..., Any]) -> torch.Tensor:
        """``(N, C)`` outputs, on the model's device (the CPU for plain callables)."""
        if self.columns == 1:
            return self._points(model)[:, None]
        if not callable(model):
            raise TypeError(f"model must be a torch.nn.Module or a callable, got {type(model).__name__}")
        recorder = _AllOutputs(model, self.columns)
        # A plain callable stays a plain callable (numpy in), a module stays a module (its device and dtype).
        self._points(recorder if isinstance(model, torch.nn.Module) else recorder.forward)
        outputs = torch.cat(recorder.kept)
        return outputs if outputs.dtype in (torch.float32, torch.float64) else outputs.to(torch.float32)


def root_mean_square(values: torch.Tensor) -> np.ndarray:
    """RMS over every axis but the first, as float64 numpy."""
    return as_float64(values).flatten(1).square().mean(1).sqrt().cpu().numpy()


class SampleHistory(History):
    """A history whose per-record arrays are norms (RMS values, amplitudes): :meth:`load` refuses negative ones."""

    def _check_arrays(self, arrays: dict[str, np.ndarray], labels: int) -> int:
        records = super()._check_arrays(arrays, labels)
        for key in self._layout():
            if (arrays[key][arrays["finite"]] < 0).any():
                raise ValueError(f"array {key!r} holds negative values; it holds norms")
        return records

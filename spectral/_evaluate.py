"""Evaluating a model (torch module or any callable) on a fixed set of points."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ._validation import not_on_meta, positive_int

#: Points per forward pass: bounds the activations held at once.
DEFAULT_BATCH_SIZE = 16384


def _module_device_dtype(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    for tensor in model.parameters():
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    for tensor in model.buffers():
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.get_default_dtype()


def _check_input_width(model: torch.nn.Module, width: int) -> None:
    # Only the model itself speaks for its input width (an mlp or a Linear declares it); inner layers may
    # see features, not points. Other models are checked by running them (see _forward).
    expected = getattr(model, "in_features", None)
    expected = expected if isinstance(expected, int) else None
    if expected is not None and expected != width:
        raise ValueError(
            f"model takes inputs of width {expected}, but the grid's points have width {width}"
        )


def _as_output(raw: Any, count: int) -> torch.Tensor:
    if isinstance(raw, torch.Tensor):
        not_on_meta(raw, "model's output")
        raw = raw.detach()
    else:
        raw = np.asarray(raw)
        if raw.dtype.kind == "c":
            raise TypeError(f"model must return real values, got complex dtype {raw.dtype}")
        if raw.dtype.kind not in "biuf":
            raise TypeError(f"model must return numbers, got dtype {raw.dtype}")
        raw = torch.from_numpy(np.ascontiguousarray(raw, dtype=np.float64))
    if raw.is_complex():
        raise TypeError(f"model must return real values, got complex dtype {raw.dtype}")
    if raw.shape not in ((count,), (count, 1)):
        raise ValueError(
            f"model returned shape {tuple(raw.shape)} for {count} points; expected ({count},) or ({count}, 1)"
        )
    raw = raw.reshape(count)
    return raw if raw.dtype in (torch.float32, torch.float64) else raw.to(torch.float32)


#: What a callable that is not a torch module receives, and how to hand a torch model what it expects.
CALLABLE_INPUT_HINT = ("a model that is not a torch.nn.Module receives a float64 numpy array of shape (N, d) "
                       "(or, if that raises TypeError, a float64 CPU tensor); convert it in the callable, e.g. "
                       "lambda p: net(torch.as_tensor(p, dtype=torch.float32))")


class PointEvaluator:
    """Evaluates models on fixed ``(N, d)`` points in batches, without gradients.

    Torch modules run on their own device and dtype in eval mode; the training
    flag of every submodule is restored afterwards. Other callables receive a
    float64 numpy array (or, if that raises ``TypeError``, a float64 CPU tensor).
    Every call gets its own copy of the points, so a model that changes its
    input in place cannot move them; tensor outputs are detached.
    """

    def __init__(self, points: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.points = np.ascontiguousarray(points, dtype=np.float64)
        self.batch_size = positive_int(batch_size, "batch_size")
        self._tensors: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def _points_on(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        key = (device, dtype)
        if key not in self._tensors:
            self._tensors[key] = torch.as_tensor(self.points, dtype=dtype, device=device)
        return self._tensors[key]

    def __call__(self, model: Callable[..., Any]) -> torch.Tensor:
        """Return the model's ``(N,)`` values at the points."""
        if isinstance(model, torch.nn.Module):
            return self._evaluate_module(model)
        if not callable(model):
            raise TypeError(f"model must be a torch.nn.Module or a callable, got {type(model).__name__}")
        with torch.no_grad():
            return torch.cat([self._call(model, batch) for batch in self._batches(self.points)])

    def _batches(self, points: Any) -> list[Any]:
        return [points[i : i + self.batch_size] for i in range(0, len(points), self.batch_size)]

    @staticmethod
    def _call(model: Callable[..., Any], batch: np.ndarray) -> torch.Tensor:
        try:
            raw = model(batch.copy())
        except TypeError:
            try:
                raw = model(torch.from_numpy(batch.copy()))
            except (TypeError, RuntimeError) as error:  # e.g. a float32 torch model handed float64
                raise TypeError(f"model could not be called on the points: {error}; {CALLABLE_INPUT_HINT}") from error
        return _as_output(raw, len(batch))

    def _evaluate_module(self, model: torch.nn.Module) -> torch.Tensor:
        _check_input_width(model, self.points.shape[1])
        device, dtype = _module_device_dtype(model)
        if device.type == "meta":
            raise TypeError("model has its parameters on the meta device and holds no weights to evaluate; "
                            "materialise it first (e.g. model.to_empty(device='cpu') and load its weights)")
        points = self._points_on(device, dtype)
        modes = [(module, module.training) for module in model.modules()]
        if any(training for _, training in modes):
            model.eval()
        try:
            with torch.no_grad():
                # Each batch a copy: a forward pass that changes its input in place must not move the points.
                outputs = [_as_output(self._forward(model, b.clone()), len(b)) for b in self._batches(points)]
            return outputs[0] if len(outputs) == 1 else torch.cat(outputs)
        finally:
            for module, training in modes:
                if module.training != training:
                    module.training = training

    @staticmethod
    def _forward(model: torch.nn.Module, batch: torch.Tensor) -> Any:
        try:
            return model(batch)
        except RuntimeError as error:
            raise ValueError(
                f"model could not be evaluated on points of shape {tuple(batch.shape)} "
                f"(N points of width d): {error}"
            ) from error

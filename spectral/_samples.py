"""What probes on a fixed sample set share: inputs and targets, model outputs there, and their records.

The filtering and projection probes measure a model at the training inputs
themselves (any input dimension, any number of outputs), not on a grid.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np
import torch

from ._evaluate import DEFAULT_BATCH_SIZE, PointEvaluator
from ._io import load_npz, save_npz
from ._validation import real_tensor


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


def as_targets(targets: Any, count: int) -> torch.Tensor:
    """``(N, C)`` finite float64 targets from ``(N,)`` or ``(N, C)`` (e.g. one-hot labels)."""
    values = real_tensor(targets, "targets").cpu().to(torch.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] != count:
        raise ValueError(f"targets must have shape (N,) or (N, C) with N = {count} to match inputs, "
                         f"got {tuple(values.shape)}")
    if not torch.isfinite(values).all():
        raise ValueError("targets have NaN or inf values")
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


def figure_axes(ax: Any, **figure_kwargs: Any) -> tuple[Any, Any]:
    """``(fig, ax)``: a new constrained-layout figure (no pyplot state) when ``ax`` is None, else ``ax``'s."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(layout="constrained", **figure_kwargs)
    return fig, fig.add_subplot()


def check_history(history: Any, kind: type) -> Any:
    """``history`` itself, refusing another type or an empty history (nothing to draw)."""
    if not isinstance(history, kind):
        raise TypeError(f"history must be a {kind.__name__}, got {type(history).__name__}")
    if not len(history):
        raise ValueError("history is empty: nothing was recorded")
    return history


def root_mean_square(values: torch.Tensor) -> np.ndarray:
    """RMS over every axis but the first, as float64 numpy."""
    return values.to(torch.float64).flatten(1).square().mean(1).sqrt().cpu().numpy()


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, NaN where the denominator is 0 (a part the target does not have)."""
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, numerator / safe, np.nan)


class RecordHistory:
    """Rows recorded over training, plus fixed arrays; saves as ``.npz`` with JSON metadata (no pickle).

    Subclasses name their ``FORMAT``, the per-record arrays in ``ROWS`` and
    their row shape in :meth:`_row_shape`, and the fixed arrays in ``FIXED``.
    """

    FORMAT = ""
    SCHEMA_VERSION = 1
    ROWS: tuple[str, ...] = ()
    FIXED: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._rows: dict[str, list] = {key: [] for key in ("steps", "finite") + self.ROWS}

    def _row_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def _metadata(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def _from_metadata(cls, metadata: dict[str, Any], arrays: dict[str, np.ndarray]) -> RecordHistory:
        raise NotImplementedError

    def append(self, step: int, finite: bool, **rows: np.ndarray) -> None:
        """Add one record (used by probes)."""
        self._rows["steps"].append(int(step))
        self._rows["finite"].append(bool(finite))
        for key in self.ROWS:
            self._rows[key].append(np.asarray(rows[key], dtype=np.float64))

    def __len__(self) -> int:
        return len(self._rows["steps"])

    def _array(self, key: str) -> np.ndarray:
        rows = self._rows[key]
        dtype, shape = {"steps": (np.int64, ()), "finite": (bool, ())}.get(key, (np.float64, self._row_shape()))
        return np.array(rows, dtype=dtype) if rows else np.empty((0,) + shape, dtype)

    @property
    def steps(self) -> np.ndarray:
        """``(R,)`` int64 training steps of the records."""
        return self._array("steps")

    @property
    def finite(self) -> np.ndarray:
        """``(R,)`` bool: False where the model's outputs held NaN or inf."""
        return self._array("finite")

    def save(self, path: str | os.PathLike) -> None:
        """Write the history atomically as ``.npz`` (no pickle) with JSON metadata, exactly at ``path``."""
        arrays = {key: self._array(key) for key in ("steps", "finite") + self.ROWS}
        arrays.update({key: np.asarray(getattr(self, key), dtype=np.float64) for key in self.FIXED})
        save_npz(path, arrays, dict(self._metadata(), format=self.FORMAT, schema_version=self.SCHEMA_VERSION))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Any:
        """Read a history written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If ``path`` is not such a history (corrupt, foreign, pickle-bearing,
            another schema version, or inconsistent arrays).
        """
        arrays, metadata = load_npz(path, kind=cls.FORMAT, schema_version=cls.SCHEMA_VERSION)
        try:
            history = cls._from_metadata(metadata, arrays)
            rows = len(arrays["steps"])
            expected = {"steps": ((rows,), "iu"), "finite": ((rows,), "b")}
            expected.update({key: ((rows,) + history._row_shape(), "f") for key in cls.ROWS})
            for key, (shape, kinds) in expected.items():
                if arrays[key].shape != shape or arrays[key].dtype.kind not in kinds:
                    raise ValueError(f"array {key!r} has shape {arrays[key].shape} and dtype "
                                     f"{arrays[key].dtype}, expected shape {shape}")
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"path={str(path)!r} is not a consistent {cls.FORMAT} file: {error}") from None
        for i in range(rows):
            history.append(arrays["steps"][i], arrays["finite"][i], **{key: arrays[key][i] for key in cls.ROWS})
        return history

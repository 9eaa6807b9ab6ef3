"""Floating-point precision of weights: unit in the last place, lost updates, the register floor.

An update ``u`` to a weight ``w`` stored in a floating-point format survives
only if ``w + u`` rounds to a value other than ``w``, roughly when ``|u|`` is at
least half the spacing :func:`ulp` of ``w``. :class:`LostUpdateProbe` measures,
during training, how many updates each low-precision format would swallow.
:func:`register_floor` measures which frequencies of a network's function a
format can still carry: the spectrum of the rounding error next to the spectrum
of the function.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ._evaluate import PointEvaluator
from ._grid import Grid
from ._protocol import History, Probe, ratio
from ._spectrum import Window, magnitude_of, spectrum, window_array
from ._validation import int64, non_negative_finite, real_tensor

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["DEFAULT_RATIO_BINS", "ROUNDINGS", "LostUpdateHistory", "LostUpdateProbe", "LowPrecisionWeights",
           "RegisterFloor", "float_dtype", "lost_update_fraction", "ratio", "register_floor", "stochastic_round", "ulp"]

#: Float formats by name, with the same-width integer type :func:`ulp` views them as.
_FORMATS = {
    "float16": (torch.float16, torch.int16),
    "bfloat16": (torch.bfloat16, torch.int16),
    "float32": (torch.float32, torch.int32),
    "float64": (torch.float64, torch.int64),
}
_NAMES = {dtype: name for name, (dtype, _) in _FORMATS.items()}
_INT_VIEWS = dict(_FORMATS.values())

#: Default edges of the ``log2(|update| / ulp(weight))`` histogram: unit bins from -30 to 30.
DEFAULT_RATIO_BINS = tuple(range(-30, 31))


def float_dtype(dtype: Any, name: str = "dtype") -> torch.dtype:
    """``dtype`` (a torch dtype or its name) as one of the four float dtypes this module measures.

    Raises ``TypeError`` for anything but a dtype or a string, ``ValueError``
    (naming ``name``) for another dtype.

    Examples
    --------
    >>> float_dtype("bfloat16")
    torch.bfloat16
    """
    if not isinstance(dtype, (str, torch.dtype)):
        raise TypeError(f"{name} must be a torch dtype or one of {tuple(_FORMATS)}, got {type(dtype).__name__} "
                        f"{dtype!r}")
    found = _FORMATS[dtype][0] if isinstance(dtype, str) and dtype in _FORMATS else dtype
    if found not in _NAMES:
        raise ValueError(f"{name}={dtype!r} is not a supported float dtype; expected one of {tuple(_FORMATS)}")
    return found


def _ulp_tensor(x: torch.Tensor) -> torch.Tensor:
    magnitude = x.detach().abs()
    finite = torch.isfinite(magnitude)
    magnitude = torch.where(finite, magnitude, 0)  # keeps the integer increment below from overflowing
    int_view = _INT_VIEWS[magnitude.dtype]
    following = (magnitude.view(int_view) + 1).view(magnitude.dtype)
    return torch.where(finite, following - magnitude, float("nan"))


def ulp(x: Any) -> Any:
    """Spacing from ``|x|`` to the next representable value away from zero.

    ``nextafter(|x|, inf) - |x|``, computed exactly in ``x``'s own dtype by
    incrementing the bit pattern of ``|x|``, so subnormals are handled.

    Parameters
    ----------
    x : torch.Tensor, numpy array or scalar, or float
        float16, bfloat16 (torch only), float32 or float64 values.

    Returns
    -------
    torch.Tensor, numpy array or scalar, or float
        Same type, dtype, shape and device as ``x``. ``ulp(0)`` is the smallest
        subnormal, ``ulp`` of the largest finite value is ``inf`` and ``ulp``
        of ``inf`` or NaN is NaN, as with ``numpy.spacing(abs(x))``.

    Raises
    ------
    TypeError
        For anything else, including integer and complex values.

    Examples
    --------
    >>> import torch
    >>> from spectral.precision import ulp
    >>> ulp(torch.tensor([1.0, -1.0, 2.0]))
    tensor([1.1921e-07, 1.1921e-07, 2.3842e-07])
    >>> ulp(torch.tensor(1.0, dtype=torch.bfloat16)) == 2**-7
    tensor(True)
    >>> ulp(1.0) == 2**-52
    True
    """
    if isinstance(x, torch.Tensor):
        if x.dtype not in _INT_VIEWS:
            raise TypeError(f"x must have dtype float16, bfloat16, float32 or float64, got {x.dtype}")
        return _ulp_tensor(x)
    if isinstance(x, (np.ndarray, np.generic)):
        if x.dtype not in (np.float16, np.float32, np.float64):
            raise TypeError(f"x must have dtype float16, float32 or float64, got {x.dtype}")
        return _ulp_tensor(torch.from_numpy(np.array(x))).numpy()[()]
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return _ulp_tensor(torch.tensor(float(x), dtype=torch.float64)).item()
    raise TypeError(f"x must be a float tensor, array or number, got {type(x).__name__}")


def _lost(stored: torch.Tensor, update: torch.Tensor, changed: torch.Tensor) -> torch.Tensor:
    """Mask of ``changed`` elements whose update vanishes when added to ``stored`` in its dtype."""
    return changed & (stored + update.to(stored.dtype) == stored)


def lost_update_fraction(weights: Any, updates: Any, dtype: Any) -> float:
    """Fraction of non-zero updates lost when the weights are stored in ``dtype``.

    An element's update is lost when ``w.to(dtype) + u.to(dtype) == w.to(dtype)``
    in ``dtype`` arithmetic, including when ``u`` itself underflows to zero.

    Parameters
    ----------
    weights : torch.Tensor or array_like
        Weights before the update.
    updates : torch.Tensor or array_like
        Updates, same shape as ``weights``.
    dtype : torch.dtype or str
        ``float16``, ``bfloat16``, ``float32`` or ``float64`` (or its name).

    Returns
    -------
    float
        Lost updates over non-zero updates; NaN when every update is zero
        (nothing could be lost).

    Raises
    ------
    TypeError, ValueError
        For a non-float ``dtype``, ``updates`` of another shape than
        ``weights``, or non-numeric input.

    Examples
    --------
    >>> import torch
    >>> from spectral.precision import lost_update_fraction
    >>> weights, updates = torch.ones(2), torch.tensor([1e-3, 1e-1])
    >>> lost_update_fraction(weights, updates, "bfloat16")
    0.5
    >>> lost_update_fraction(weights, updates, torch.float32)
    0.0
    """
    weights = real_tensor(weights, "weights")
    updates = real_tensor(updates, "updates").to(weights.device)
    if updates.shape != weights.shape:
        raise ValueError(f"updates must have the shape of weights {tuple(weights.shape)}, got {tuple(updates.shape)}")
    changed = updates != 0
    lost = _lost(weights.to(float_dtype(dtype)), updates, changed)
    count = int(changed.sum())
    return int(lost.sum()) / count if count else float("nan")


def stochastic_round(x: torch.Tensor, dtype: Any,
                     generator: torch.Generator | Iterable[torch.Generator] | None = None) -> torch.Tensor:
    """``x`` rounded to ``dtype`` at random, up or down with probability proportional to proximity: unbiased.

    A value between the neighbouring values ``lo < x < hi`` of ``dtype`` becomes
    ``hi`` with probability ``(x - lo) / (hi - lo)`` and ``lo`` otherwise, so
    ``E[stochastic_round(x)] == x``: an update far smaller than the spacing
    survives in expectation instead of being lost as under round-to-nearest.

    Parameters
    ----------
    x : torch.Tensor
        Floating-point values (any float dtype, typically float32 or float64).
    dtype : torch.dtype or str
        ``float16``, ``bfloat16``, ``float32`` or ``float64`` (or its name).
    generator : torch.Generator or sequence of torch.Generator, optional
        Source of the uniform draws, on ``x``'s device; torch's global one
        when None. Pass one for reproducible results, or one per row of
        ``x`` (its first axis) so that each row's draws are its own, whatever
        the other rows (e.g. one per member of an ensemble).

    Returns
    -------
    torch.Tensor
        ``x``'s shape and device, in ``dtype``. Values ``dtype`` represents
        exactly are returned as they are; NaN, infinities and values that
        round to infinity under round-to-nearest stay as round-to-nearest
        gives them.

    Raises
    ------
    TypeError, ValueError
        For a non-float ``x`` or ``dtype``.

    Notes
    -----
    ``x`` and its neighbours are compared in float64, where their differences
    are exact (Sterbenz), and one uniform draw per element decides.

    References
    ----------
    .. [1] M. Hoehfeld and S. E. Fahlman, "Probabilistic rounding in neural
       network learning with limited precision", Neurocomputing 4, 1992.
    .. [2] P. Zamirai, J. Zhang, C. R. Aberger and C. De Sa, "Revisiting
       BFloat16 Training", arXiv:2010.06192, 2020.

    Examples
    --------
    In bfloat16 (spacing ``2**-7`` above 1), ``1 + 2**-10`` lies an eighth of
    the way from 1 to ``1 + 2**-7``: round-to-nearest always gives 1,
    stochastic rounding gives ``1 + 2**-7`` an eighth of the time.

    >>> import torch
    >>> from spectral.precision import stochastic_round
    >>> x = torch.full((80000,), 1 + 2**-10)
    >>> rounded = stochastic_round(x, "bfloat16", torch.Generator().manual_seed(0))
    >>> x.to(torch.bfloat16).unique().tolist(), rounded.unique().tolist()
    ([1.0], [1.0, 1.0078125])
    >>> abs(rounded.double().mean().item() - (1 + 2**-10)) < 1e-4
    True
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {type(x).__name__}")
    dtype = float_dtype(dtype)
    exact = x.detach().to(torch.float64)
    nearest = x.detach().to(dtype)
    near = nearest.to(torch.float64)
    other = _neighbour(nearest, near, exact)
    proximity = (exact - near).abs() / (other - near).abs()  # NaN for inf/NaN, 0 where exact
    return torch.where(_uniform(x, generator) < proximity, other, near).to(dtype)


def _neighbour(nearest: torch.Tensor, near: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """The value of ``nearest``'s dtype next to it on the side of ``exact``, in float64 (``torch.nextafter`` by bits:
    the magnitude's bit pattern one up, away from zero, or one down, toward it; much faster in half precision)."""
    side = torch.sign(exact - near)
    away = (side * near > 0) | (near == 0)
    magnitude = nearest.abs().view(_INT_VIEWS[nearest.dtype])
    moved = torch.where(away, magnitude + 1, magnitude - 1).view(nearest.dtype).to(torch.float64)
    return torch.where(near == 0, side, torch.sign(near)) * moved


def _uniform(x: torch.Tensor, generator: Any) -> torch.Tensor:
    """Uniform float64 draws of ``x``'s shape, from one generator or from one per row."""
    if generator is None or isinstance(generator, torch.Generator):
        return torch.rand(x.shape, generator=generator, dtype=torch.float64, device=x.device)
    generators = list(generator)
    if x.ndim == 0 or len(generators) != x.shape[0] or not all(isinstance(g, torch.Generator) for g in generators):
        raise TypeError(f"generator must be a torch.Generator or one per row of x ({x.shape[:1]}), got {generator!r}")
    if not generators:
        return torch.empty(x.shape, dtype=torch.float64, device=x.device)
    return torch.stack([torch.rand(x.shape[1:], generator=g, dtype=torch.float64, device=x.device)
                        for g in generators])


#: How :class:`LowPrecisionWeights` stores an update.
ROUNDINGS = ("nearest", "stochastic", "kahan")


class LowPrecisionWeights:
    """Weights kept only in a low-precision dtype, each update stored by one rounding rule.

    Three rules, each with the memory of the weights alone (Kahan adds one
    buffer of the same dtype):

    - ``"nearest"``: ``w <- round(w + u)``, what a low-precision weight gets
      from ``w.add_(u)``; an update below about half the spacing of ``w`` is lost.
    - ``"stochastic"``: ``w <- stochastic_round(w + u)``; unbiased, so small
      updates survive in expectation.
    - ``"kahan"``: compensated summation, as torch-optimi does for
      low-precision weights: ``t = c + u``, ``w' = round(w + t)``,
      ``c <- round(t - (w' - w))``; what the weight could not take waits in
      the compensation ``c`` and arrives once it adds up to a spacing.

    Parameters
    ----------
    weights : torch.Tensor
        Initial weights, rounded to ``dtype`` to nearest. Not changed.
    dtype : torch.dtype or str
        Storage dtype: ``float16``, ``bfloat16``, ``float32`` or ``float64``.
    rounding : {"nearest", "stochastic", "kahan"}, default "nearest"
    generator : torch.Generator or sequence of torch.Generator, optional
        For ``"stochastic"``: the source of the draws, one generator or one
        per row of ``weights`` (see :func:`stochastic_round`).

    Attributes
    ----------
    weights : torch.Tensor
        The stored weights, in ``dtype``.
    compensation : torch.Tensor or None
        The Kahan compensation, in ``dtype`` (None for the other rules).

    Notes
    -----
    Each rule computes the exact sum in float64 and rounds it once. An update
    is *lost* (:meth:`apply`'s mask) when it is non-zero and the stored state
    (the weight, and for Kahan the compensation) is unchanged: it left no
    trace. Under stochastic rounding a lost update is lost only in that draw;
    the rule is unbiased over draws.

    Written here rather than taken from torch-optimi or torchao: the rules
    are a few lines each, the study needs the lost-update mask and float64
    intended updates that neither library exposes, and neither is a
    dependency of ``spectral``.

    Examples
    --------
    A thousand updates of ``1e-3`` to a bfloat16 weight of 1 (spacing ``2**-7``):

    >>> import torch
    >>> from spectral.precision import LowPrecisionWeights
    >>> stores = {rule: LowPrecisionWeights(torch.ones(1), "bfloat16", rule) for rule in ("nearest", "kahan")}
    >>> for _ in range(1000):
    ...     lost = {rule: store.apply(torch.tensor([1e-3])) for rule, store in stores.items()}
    >>> stores["nearest"].weights.item(), stores["kahan"].weights.item()
    (1.0, 2.0)
    """

    def __init__(self, weights: torch.Tensor, dtype: Any, rounding: str = "nearest",
                 generator: torch.Generator | Iterable[torch.Generator] | None = None) -> None:
        if not isinstance(weights, torch.Tensor) or not weights.is_floating_point():
            raise TypeError(f"weights must be a floating-point tensor, got {type(weights).__name__}")
        if rounding not in ROUNDINGS:
            raise ValueError(f"rounding={rounding!r} is not one of {ROUNDINGS}")
        self.dtype, self.rounding = float_dtype(dtype), rounding
        self.generator = generator if generator is None or isinstance(generator, torch.Generator) else list(generator)
        self.weights = weights.detach().to(self.dtype).clone()
        self.compensation = torch.zeros_like(self.weights) if rounding == "kahan" else None

    def apply(self, update: torch.Tensor) -> torch.Tensor:
        """Store ``weights + update``; return the mask of updates lost (non-zero, no trace left).

        Parameters
        ----------
        update : torch.Tensor
            The intended update, the shape of ``weights``, in any float
            dtype (float64 keeps it exact).

        Returns
        -------
        torch.Tensor
            Boolean, the shape of ``weights``.
        """
        if not isinstance(update, torch.Tensor) or update.shape != self.weights.shape:
            raise ValueError(f"update must be a tensor of shape {tuple(self.weights.shape)}, got "
                             f"{getattr(update, 'shape', type(update).__name__)}")
        before = self.weights.to(torch.float64)
        total = update.detach().to(torch.float64)
        if self.compensation is not None:
            total = total + self.compensation.to(torch.float64)
        exact = before + total
        new = (stochastic_round(exact, self.dtype, self.generator) if self.rounding == "stochastic"
               else exact.to(self.dtype))
        lost = (update != 0) & (new == self.weights)
        if self.compensation is not None:
            compensation = (total - (new.to(torch.float64) - before)).to(self.dtype)
            lost &= compensation == self.compensation
            self.compensation = compensation
        self.weights = new
        return lost


def _json_floats(values: np.ndarray) -> list:
    """Nested lists with NaN as None, so ``json.dumps`` writes strict JSON."""
    return np.where(np.isnan(values), None, values).tolist()


class LostUpdateHistory(History):
    """Lost-update records, one row per recorded step; built by :class:`LostUpdateProbe`, read back with :meth:`load`.

    Rows taken by :meth:`LostUpdateProbe.snapshot` mark an event (their
    ``label`` names it) and measure no update: ``changed`` 0, fractions NaN.

    Attributes
    ----------
    dtypes : tuple of str
        Storage formats measured, the keys of the per-dtype dictionaries.
    layers : list of str
        Parameter names, the columns of :attr:`changed` and :attr:`layer_fraction`.
    ratio_bin_edges : ndarray
        ``(E,)`` edges of the ``log2(|update| / ulp(weight))`` histogram.
    """

    FORMAT = "spectral.LostUpdateHistory"

    def __init__(self, dtypes: tuple[str, ...], layers: list[str], ratio_bin_edges: np.ndarray) -> None:
        self.dtypes = dtypes
        self.layers = layers
        self.ratio_bin_edges = ratio_bin_edges
        super().__init__()

    def _layout(self) -> dict[str, tuple[tuple[int, ...], type]]:
        # counts: per layer, the changed elements, then the lost updates per dtype; histograms: per dtype, over layers.
        return {"counts": ((len(self.layers), 1 + len(self.dtypes)), np.int64),
                "histograms": ((len(self.dtypes), len(self.ratio_bin_edges) + 1), np.int64)}

    def _configuration(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"dtypes": list(self.dtypes), "layers": list(self.layers)}, {"ratio_bin_edges": self.ratio_bin_edges}

    @classmethod
    def _from_configuration(cls, metadata: dict[str, Any], arrays: dict[str, np.ndarray]) -> LostUpdateHistory:
        dtypes, layers = metadata["dtypes"], metadata["layers"]
        if not isinstance(dtypes, list) or not dtypes or not all(isinstance(d, str) and d in _FORMATS for d in dtypes):
            raise ValueError(f"metadata 'dtypes' must be a list of {tuple(_FORMATS)}, got {dtypes!r}")
        if not isinstance(layers, list) or not all(isinstance(layer, str) for layer in layers):
            raise ValueError("metadata 'layers' must be a list of str")
        return cls(tuple(dtypes), layers, _bin_edges(arrays["ratio_bin_edges"]))

    @property
    def changed(self) -> np.ndarray:
        """``(R, layers)`` number of elements with a non-zero update."""
        return self._array("counts")[:, :, 0]

    @property
    def layer_fraction(self) -> dict[str, np.ndarray]:
        """``{dtype: (R, layers)}`` fraction of non-zero updates lost; NaN where none changed."""
        counts = self._array("counts")
        fraction = ratio(counts[:, :, 1:], counts[:, :, :1])
        return {name: fraction[:, :, k] for k, name in enumerate(self.dtypes)}

    @property
    def fraction(self) -> dict[str, np.ndarray]:
        """``{dtype: (R,)}`` fraction lost over all layers (element-weighted); NaN where none changed."""
        counts = self._array("counts").sum(axis=1)
        fraction = ratio(counts[:, 1:], counts[:, :1])
        return {name: fraction[:, k] for k, name in enumerate(self.dtypes)}

    @property
    def ratio_histogram(self) -> dict[str, np.ndarray]:
        """``{dtype: (R, E + 1)}`` counts of ``log2(|update| / ulp(weight))`` over all layers.

        Column 0 counts values below the first edge, column ``i`` values in
        ``[edges[i-1], edges[i])`` and the last column values at or above the
        last edge. Updates below about ``-1`` (half a spacing) are lost.
        Weights that overflow the dtype have no finite ratio and are left out.
        """
        histograms = self._array("histograms")
        return {name: histograms[:, k] for k, name in enumerate(self.dtypes)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable contents (NaN becomes None)."""
        return {
            "dtypes": list(self.dtypes),
            "layers": list(self.layers),
            "steps": self.steps.tolist(),
            "labels": self.labels.tolist(),
            "finite": self.finite.tolist(),
            "changed": self.changed.tolist(),
            "fraction": {name: _json_floats(value) for name, value in self.fraction.items()},
            "layer_fraction": {name: _json_floats(value) for name, value in self.layer_fraction.items()},
            "ratio_bin_edges": self.ratio_bin_edges.tolist(),
            "ratio_histogram": {name: value.tolist() for name, value in self.ratio_histogram.items()},
        }


def _bin_edges(ratio_bins: Any) -> np.ndarray:
    try:
        edges = np.asarray(ratio_bins, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"ratio_bins must be a sequence of numbers, got {ratio_bins!r}") from error
    steps = np.diff(edges) if edges.ndim == 1 else np.empty(0)
    if len(steps) < 1 or not np.isfinite(edges).all() or steps[0] <= 0 or not np.allclose(steps, steps[0]):
        raise ValueError(f"ratio_bins must be at least 2 evenly spaced, increasing, finite edges, got {ratio_bins!r}")
    return edges


class LostUpdateProbe(Probe):
    """Measures, per step and layer, the updates low-precision weights would lose.

    Around each recorded ``optimizer.step()`` the probe snapshots the trainable
    parameters (one clone each), takes ``update = after - before`` and counts,
    for each storage format, the non-zero updates with
    ``before.to(dtype) + update.to(dtype) == before.to(dtype)``. It also
    histograms ``log2(|update| / ulp(before.to(dtype)))``. All of it is
    vectorised torch on the parameters' device, with one transfer per record.

    A :class:`~spectral._protocol.Probe` whose data is the model's own
    parameters: :meth:`before_step` before the optimizer step and
    :meth:`update` after it (both called by the optimizer's hooks when it is
    given), :meth:`snapshot` to mark an event, :meth:`reset`, ``history``.

    Parameters
    ----------
    model : torch.nn.Module
        Whose parameters with ``requires_grad`` are watched, named as in
        ``model.named_parameters()``.
    optimizer : torch.optim.Optimizer, optional
        Hooks on its ``step`` call :meth:`before_step` and :meth:`update`.
        Without it, call them yourself around the step.
    dtypes : sequence of torch.dtype or str, default ("float16", "bfloat16", "float32")
        Storage formats to test.
    every : int, default 1
        Record steps with ``step % every == 0``; other steps cost nothing.
    ratio_bins : sequence of float, default -30, -29, ..., 30
        Evenly spaced edges of the ``log2(|update| / ulp(weight))`` histogram.

    Notes
    -----
    The updates are those the model's own dtype realised: an update already
    lost in float32 is zero in a float32 model and not counted. So a dtype at
    least as precise as the model's reads (close to) 0, and measuring float32
    losses needs a float64 model. A record whose update holds NaN or inf has
    ``history.finite`` False.

    Examples
    --------
    >>> import torch
    >>> from spectral.precision import LostUpdateProbe
    >>> net = torch.nn.Linear(3, 1)
    >>> optimizer = torch.optim.SGD(net.parameters(), lr=1e-4)
    >>> with LostUpdateProbe(net, optimizer, dtypes=("bfloat16", "float32")) as probe:
    ...     for step in range(3):
    ...         optimizer.zero_grad()
    ...         net(torch.ones(8, 3)).sum().backward()
    ...         optimizer.step()
    ...     probe.snapshot("end")
    >>> probe.history.steps, probe.history.labels
    (array([0, 1, 2, 2]), array(['', '', '', 'end'], dtype=object))
    >>> probe.history.fraction["float32"]
    array([ 0.,  0.,  0., nan])
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None, *,
                 dtypes: Iterable[Any] = ("float16", "bfloat16", "float32"), every: int = 1,
                 ratio_bins: Any = DEFAULT_RATIO_BINS) -> None:
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self._parameters = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        if not self._parameters:
            raise ValueError("model has no parameters with requires_grad")
        if isinstance(dtypes, (str, torch.dtype)):
            dtypes = (dtypes,)
        self._dtypes = tuple(float_dtype(d, "dtypes") for d in dtypes)
        if not self._dtypes or len(set(self._dtypes)) != len(self._dtypes):
            raise ValueError(f"dtypes must be non-empty and without repeats, got {dtypes!r}")
        edges = _bin_edges(ratio_bins)
        super().__init__(LostUpdateHistory(tuple(_NAMES[d] for d in self._dtypes),
                                           [name for name, _ in self._parameters], edges), every)
        self._handles = [] if optimizer is None else [optimizer.register_step_pre_hook(self._pre_hook),
                                                      optimizer.register_step_post_hook(self._post_hook)]
        self._pending: int | None = None
        self._before: list[torch.Tensor] | None = None

    def _pre_hook(self, *_: Any) -> None:
        self.before_step()

    def _post_hook(self, *_: Any) -> None:
        self.update()

    def before_step(self, step: int | None = None) -> None:
        """Announce the step about to be taken (default: one past the last, 0 first); snapshot if it is due."""
        step = (0 if self._last_step is None else self._last_step + 1) if step is None else int64(step, "step")
        self._pending = step
        self._before = [p.detach().clone() for _, p in self._parameters] if step % self.every == 0 else None

    def update(self, step: int | None = None) -> bool:
        """After the optimizer step: record its updates if the step is due; return whether it did.

        ``step`` defaults to the step announced by :meth:`before_step`, and
        must equal it when given.

        Raises
        ------
        RuntimeError
            If no :meth:`before_step` announced a step.
        ValueError
            If ``step`` is not the step announced.
        """
        if self._pending is None:
            raise RuntimeError("update() needs a before_step() before the optimizer step")
        if step is not None and int64(step, "step") != self._pending:
            raise ValueError(f"step={step} is not the step before_step() announced, {self._pending}")
        try:
            return self._update(self._pending, self._record_update)
        finally:
            self._pending, self._before = None, None

    def snapshot(self, label: str, step: int | None = None) -> None:
        """Mark an event such as ``"shrink"`` at ``step`` (default: the last step, 0 before any).

        The record measures no update (``changed`` 0, fractions NaN); its ``label`` names the event.
        """
        self._snapshot(label, step, self._record_event)

    def _record_update(self, step: int, label: str) -> None:
        rows = [self._measure(before, p.detach()) for before, (_, p) in zip(self._before, self._parameters)]
        table = torch.stack([row.to(rows[0].device) for row in rows]).cpu().numpy()
        split = 2 + len(self._dtypes)
        self.history.append(step, label, not table[:, 1].any(), counts=np.delete(table[:, :split], 1, axis=1),
                            histograms=table[:, split:].sum(axis=0).reshape(len(self._dtypes), -1))

    def _record_event(self, step: int, label: str) -> None:
        self.history.append_filled(step, label, True, 0)

    def _measure(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """``[changed, non-finite, lost per dtype, ratio histogram per dtype]`` counts for one parameter."""
        update = after - before
        changed = update != 0
        log_update = torch.log2(update.abs().to(torch.promote_types(update.dtype, torch.float32)))  # -inf if unchanged
        counts, histograms = [changed.sum(), (~torch.isfinite(update)).sum()], []
        for dtype in self._dtypes:
            stored = before.to(dtype)
            counts.append(_lost(stored, update, changed).sum())
            log_spacing = torch.log2(ulp(stored).to(torch.promote_types(dtype, torch.float32)))
            histograms.append(self._histogram(log_update - log_spacing))
        return torch.cat([torch.stack(counts), *histograms])

    def _histogram(self, values: torch.Tensor) -> torch.Tensor:
        """Counts of the finite ``values`` in the ratio bins, under- and overflow included."""
        edges = self.history.ratio_bin_edges
        low, width = float(edges[0]), float(edges[1] - edges[0])
        finite = torch.isfinite(values)
        column = torch.where(finite, (values - low) / width, -1).floor_().clamp_(-1, len(edges) - 1).long() + 1
        counts = torch.zeros(len(edges) + 1, dtype=torch.int64, device=values.device)
        return counts.scatter_add_(0, column.reshape(-1), finite.reshape(-1).long())

    def remove(self) -> None:
        """Detach the optimizer hooks (the history stays)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._pending, self._before = None, None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


@dataclass(frozen=True)
class RegisterFloor:
    """A function's spectrum next to the spectrum of its rounding error in one float format.

    Built by :func:`register_floor`.

    Attributes
    ----------
    freqs : ndarray, or tuple of two ndarrays in 2D
        Cycles per unit length, as in :class:`spectral.Spectrum`.
    power : ndarray
        Power per bin of the float64 function, its mean removed.
    floor : ndarray
        Power per bin of the rounding error ``f_dtype - f_float64``, its mean
        removed: the register floor. Zero where ``dtype`` represents the
        function exactly; ``inf`` or NaN where its evaluation overflowed.
    dtype : str
        The format, e.g. ``"bfloat16"``.
    """

    freqs: Any
    power: np.ndarray
    floor: np.ndarray
    dtype: str

    def fraction_below(self, cutoff: float, *, average_bins: int = 1) -> float:
        """Fraction of the function's power above ``cutoff`` that lies at or below the floor, bin by bin.

        Parameters
        ----------
        cutoff : float
            Cycles per unit length; bins with ``|f| > cutoff`` count.
        average_bins : int, default 1
            Odd width, in bins along each axis, of the window of neighbouring
            bins whose mean floor each bin is compared with. 1 compares each
            bin with its own single draw of the rounding noise, whose power is
            roughly exponential: a bin exactly at the mean floor then reads
            "below" ``exp(-1)``, 37% of the time. The mean of ``k`` bins is
            an estimate of the expected floor, and such a bin reads "below"
            closer to half the time (46% for 9 bins).

        Returns
        -------
        float
            ``sum(power[high & (power <= floor_k)]) / sum(power[high])``,
            ``floor_k`` the floor averaged over the window (the edges of a
            one-sided 1D spectrum reflected, a 2D spectrum's wrapped); NaN
            when the function has no power above ``cutoff``.

        Examples
        --------
        >>> import numpy as np
        >>> from spectral.precision import RegisterFloor
        >>> floor = RegisterFloor(np.arange(5.0), np.ones(5), np.array([0.0, 0.0, 3.0, 0.0, 0.0]), "bfloat16")
        >>> floor.fraction_below(0.5), floor.fraction_below(0.5, average_bins=5)
        (0.25, 0.0)
        """
        cutoff = non_negative_finite(cutoff, "cutoff")
        if isinstance(average_bins, bool) or not isinstance(average_bins, numbers.Integral) or average_bins < 1 \
                or average_bins % 2 == 0:
            raise ValueError(f"average_bins must be an odd positive integer, got {average_bins!r}")
        high = magnitude_of(self.freqs) > cutoff
        total = float(self.power[high].sum())
        if not total > 0:
            return math.nan
        return float(self.power[high & (self.power <= self.expected_floor(average_bins))].sum()) / total

    def expected_floor(self, average_bins: int) -> np.ndarray:
        """The floor averaged over a window of ``average_bins`` neighbouring bins along each axis (see :meth:`fraction_below`)."""
        if average_bins == 1:
            return self.floor
        from scipy.ndimage import uniform_filter

        mode = "reflect" if self.floor.ndim == 1 else "wrap"  # a 2D spectrum is periodic in FFT order
        return uniform_filter(np.asarray(self.floor, dtype=np.float64), size=average_bins, mode=mode)


def register_floor(model: torch.nn.Module, grid: Grid, dtype: Any, window: Window = None) -> RegisterFloor:
    """The quantisation noise floor of ``model`` in ``dtype``, per frequency, next to its function's spectrum.

    The model is evaluated on ``grid`` twice, on copies: with weights, inputs
    and every activation in float64, and with all of them in ``dtype``. The
    spectrum of the float64 outputs is the function's; the spectrum of the
    difference is the floor below which ``dtype`` cannot carry a component.
    Each is taken after removing its mean (so an offset cannot leak through
    the window into the lowest bins).

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(N, d)`` points to ``(N,)`` or ``(N, 1)`` values. Not changed.
    grid : Grid
        Uniform periodic grid of the points (1D or 2D).
    dtype : torch.dtype or str
        ``float16``, ``bfloat16``, ``float32`` or ``float64``.
    window : str or tuple, optional
        Any window ``scipy.signal.get_window`` knows, applied to both spectra.

    Returns
    -------
    RegisterFloor
        ``freqs``, ``power``, ``floor`` and :meth:`RegisterFloor.fraction_below`.

    Raises
    ------
    TypeError
        If ``model`` is not a torch module, ``grid`` not a :class:`Grid` or
        ``dtype`` not a float dtype.
    ValueError
        For an unknown float dtype or window.

    Notes
    -----
    With ``f`` the float64 outputs and ``g`` those in ``dtype``, both after
    removing their means: ``power = P(f)`` and ``floor = P(g - f)``, ``P`` the
    power of :func:`spectral.spectrum` with ``scaling="power"``
    (``|X_k|^2 / (N sum(w^2))``, one-sided in 1D). Rounding is relative, so a component whose amplitude is far below
    ``ulp`` of the values it rides on is erased: its power equals the floor.

    Examples
    --------
    One plus an alternating component of ``2**-12`` on 8 points: bfloat16
    (spacing ``2**-7`` above 1, ``2**-8`` below) rounds every value to 1, so
    the component lies on the floor; float32 keeps it exactly.

    >>> import torch
    >>> from spectral import Grid
    >>> from spectral.precision import register_floor
    >>> class Alternating(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.amplitude = torch.nn.Parameter(torch.tensor(2.0**-12))
    ...     def forward(self, x):
    ...         sign = 1 - 2 * torch.remainder(torch.round(8 * x[:, 0]), 2)
    ...         return 1 + self.amplitude * sign
    >>> grid = Grid.uniform(8)
    >>> register_floor(Alternating(), grid, "bfloat16").fraction_below(cutoff=3)
    1.0
    >>> register_floor(Alternating(), grid, "float32").fraction_below(cutoff=3)
    0.0
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (it is evaluated in another dtype), got {type(model).__name__}")
    if not isinstance(grid, Grid):
        raise TypeError(f"grid must be a spectral.Grid, got {type(grid).__name__}")
    dtype = float_dtype(dtype)
    window_array(window, grid.shape)  # an unknown window is refused before the model runs
    evaluate = PointEvaluator(grid.points)
    exact = evaluate(copy.deepcopy(model).to(torch.float64)).to(torch.float64).cpu().reshape(grid.shape)
    rounded = evaluate(copy.deepcopy(model).to(dtype)).to(torch.float64).cpu().reshape(grid.shape)
    function, error = (spectrum(values - values.mean(), extent=grid.extent, window=window, scaling="power")
                       for values in (exact, rounded - exact))
    return RegisterFloor(freqs=function.freqs, power=function.power, floor=error.power, dtype=_NAMES[dtype])

"""Does the data type carry the essay's mechanism? Four predictions, measured on one case of the claim check.

The essay behind the slingshot says that shrinking the weights pushes the
high-frequency components "off the data type's register", that updates
smaller than a weight's spacing are lost, and that this is why the global
minimum looks like a submanifold. Each prediction is measured here:

1. *Register*: per seed, the fraction of the function's high-frequency power
   at or below the register floor of float32, bfloat16 and float16
   (:func:`spectral.precision.register_floor`), before and after the shrink;
   each bin is compared with the floor averaged over neighbouring bins (the
   single-draw fraction is reported beside it).
2. *Lost updates by band*: along a float64 trajectory (the case's optimiser
   with the overfit run's own state, and the other one fresh), the change of
   the function each intended update makes against the change its stored
   version makes, split into the bands below and above the cutoff, before
   and after the shrink.
3. *Slingshot in low precision*, in every run: from the float32 overfit
   weights, slingshot and control retrain with their weights stored only in
   bfloat16 and float16 (beside float32), by round-to-nearest, and, as the
   interventions that remove lost updates, by stochastic rounding and by
   Kahan-compensated updates (:class:`spectral.precision.LowPrecisionWeights`).
   At scope "full" every scheme also trains phase 1 in its own dtype.
4. *Manifold*: a small over-parameterised float64 network trained to
   interpolation; the singular values of its Jacobian at the training points,
   the manifold dimension each dtype's spacing reads, and a drift from the
   minimum by gradient steps small enough to stay there, in each storage
   dtype, split into motion along and across the manifold.

Every optimiser step is :class:`~spectral.claim._training.MemberOptimizer`'s
(the claim check's own, with the case's optimiser), whose intended update is
stored by the rounding rule. Every seed trains alone in effect: members of a
batched ensemble stop at their own threshold crossing, and a stopped member's
weights and optimiser state do not move, so a seed's numbers do not depend on
how many seeds run.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .._shrink import shrink_
from ..ensemble import BatchedLinear, MLPEnsemble
from ..minima import (
    displacement_split,
    jacobian,
    manifold_dimension,
    parameter_vector,
    relative_spacing,
    singular_values,
)
from ..models import mlp
from ..precision import ROUNDINGS, LowPrecisionWeights, ratio, register_floor
from ._cache import reuse_or_compute
from ._check import Case, repeat_members, train_mse
from ._config import SCHEME_NAMES, ClaimConfig, parse_case_id
from ._stats import verdict
from ._training import MemberOptimizer, train_until_below

__all__ = ["PRECISION_UNITS", "SCHEMES", "StoredTrainer", "precision_inputs",
           "round_to", "run_precision"]


@dataclass(frozen=True)
class Scheme:
    """Where a precision scheme computes (forward and backward) and stores its weights."""

    compute: torch.dtype
    storage: torch.dtype


def _dtype(name: str) -> torch.dtype:
    return getattr(torch, name)


#: The precision schemes: a dtype name alone stores the weights in it (no master copy).
SCHEMES = {name: Scheme(_dtype(name.split("+")[0]), torch.float32 if name.endswith("+master") else _dtype(name))
           for name in SCHEME_NAMES}
#: The scheme every other one is compared with.
REFERENCE = "float32"
#: Formats whose register floor is measured.
REGISTER_DTYPES = ("float32", "bfloat16", "float16")
#: Per grid dimension, the width (bins per axis) of the window whose mean floor each bin is compared with: 9 bins.
ROBUST_FLOOR_BINS = {1: 9, 2: 3}
#: Formats whose lost updates are measured in function space (float32 swallows nothing measurable there).
BAND_DTYPES = ("bfloat16", "float16")
#: Formats whose spacing reads the manifold dimension, and which store the weights of continued training.
MANIFOLD_DTYPES = ("float64", "float32", "bfloat16", "float16")
#: Optimisers whose steps are measured in function space: Adam (normalised steps) and SGD with momentum (steps ~
#: gradient), both as the claim check trains with them (:class:`MemberOptimizer`).
OPTIMIZERS = ("adam", "sgd")
#: Calls of ``progress`` per run: float32 phase 1, register, lost updates by band, manifold, the slingshot in low
#: precision, and one per other scheme.
PRECISION_UNITS = 5 + len(SCHEME_NAMES) - 1
#: Training MSE readings along the drift at the minimum (plus the start).
DRIFT_RECORDS = 10
#: Most points of a lost-update curve in the result.
CURVE_POINTS = 200
#: Why the slow predictions have no verdict at the default scope.
FULL_ONLY = 'runs only with scope "full" (spectral run --scope full)'


def round_to(values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``values`` rounded to the nearest value of ``dtype``, kept in ``values``' own dtype.

    Parameters
    ----------
    values : torch.Tensor
        Floating-point values.
    dtype : torch.dtype
        The storage dtype.

    Returns
    -------
    torch.Tensor
        A new tensor; equal to ``values`` when they are representable in ``dtype``.

    Examples
    --------
    >>> import torch
    >>> round_to(torch.tensor([1.0 + 2**-10]), torch.bfloat16)
    tensor([1.])
    """
    if not isinstance(values, torch.Tensor) or not values.is_floating_point():
        raise TypeError(f"values must be a floating-point tensor, got {values!r}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch dtype, got {dtype!r}")
    return values.to(dtype).to(values.dtype)


def _flatten(tensors: Iterable[torch.Tensor]) -> torch.Tensor:
    """Ensemble parameters (leading member axis) as one ``(members, P)`` float64 matrix."""
    return torch.cat([t.detach().reshape(t.shape[0], -1).to(torch.float64) for t in tensors], dim=1)


def _load(parameters: list[torch.Tensor], theta: torch.Tensor) -> None:
    """Copy the ``(members, P)`` matrix ``theta`` into ensemble ``parameters`` (cast to their dtype)."""
    chunks = theta.split([p[0].numel() for p in parameters], dim=1)
    with torch.no_grad():
        for parameter, chunk in zip(parameters, chunks):
            parameter.copy_(chunk.reshape(parameter.shape))


class _GradientDescent:
    """Plain gradient steps ``-eta_e * grad`` with a step size per member: the drift at a minimum.

    Not an optimiser of the experiment (those are :class:`MemberOptimizer`'s): the step that keeps a network at an
    interpolating minimum, neither normalised like Adam's nor accelerated like momentum's.
    """

    def __init__(self, ensemble: MLPEnsemble, step_sizes: torch.Tensor) -> None:
        self.parameters = list(ensemble.parameters())
        self.step_sizes = step_sizes.to(torch.float64)

    @torch.no_grad()
    def intended_update(self, active: torch.Tensor | None = None) -> list[torch.Tensor]:
        rate = self.step_sizes if active is None else torch.where(torch.as_tensor(active), self.step_sizes, 0.0)
        return [-rate.reshape(-1, *([1] * (p.ndim - 1))) * p.grad for p in self.parameters]


class StoredTrainer:
    """Full-batch training of an ensemble whose weights are stored in ``scheme.storage`` by one rounding rule.

    Each step runs forward and backward on a copy of the ensemble in
    ``scheme.compute`` (the loss, the sum of per-member mean squared errors,
    is reduced in at least float32). The case's optimiser,
    :class:`~spectral.claim._training.MemberOptimizer` (the one the claim
    check trains with), runs in float64 on the stored weights and gives the
    intended update ``u`` (:meth:`MemberOptimizer.intended_update`), which
    :class:`spectral.precision.LowPrecisionWeights` stores by ``rounding``:
    under round-to-nearest an update smaller than about half the spacing of
    the stored weight is lost, as in real storage in that dtype.

    Parameters
    ----------
    ensemble : MLPEnsemble
        Initial weights; rounded to ``scheme.storage`` (this is where a shrink
        done before happens "in" the storage dtype). Not changed.
    x, y : torch.Tensor
        ``(members, N, d)`` inputs and ``(members, N)`` targets.
    learning_rate : float or torch.Tensor
        The optimiser's learning rate; for ``"gradient"``, a ``(members,)`` step size.
    scheme : Scheme
        Compute and storage dtypes.
    optimizer : {"adam", "sgd", "gradient"}, default "adam"
        Adam or SGD with momentum (:class:`MemberOptimizer`), or plain gradient steps.
    rounding : {"nearest", "stochastic", "kahan"}, default "nearest"
        How each update is stored (:class:`spectral.precision.LowPrecisionWeights`).
    seeds : sequence of int, optional
        For ``"stochastic"``: one seed per member, so that a member's draws are its own.

    Attributes
    ----------
    theta : torch.Tensor
        ``(members, P)`` float64 stored weights (values of ``scheme.storage``).
    optimizer : MemberOptimizer
        Its state (moments, per-member step counts), over float64 copies of the stored weights.
    store : LowPrecisionWeights
        The stored weights and, for Kahan, the compensation.
    changed, lost : list of torch.Tensor
        Per step, ``(members,)`` counts of non-zero intended updates and of
        those that left no trace in the store (:meth:`LowPrecisionWeights.apply`).
    """

    def __init__(self, ensemble: MLPEnsemble, x: torch.Tensor, y: torch.Tensor, learning_rate: float | torch.Tensor,
                 scheme: Scheme, *, optimizer: str = "adam", rounding: str = "nearest",
                 seeds: Iterable[int] | None = None) -> None:
        self.scheme = scheme
        self.model = copy.deepcopy(ensemble).to(scheme.compute)
        self.parameters = list(self.model.parameters())
        self.stored = copy.deepcopy(ensemble).to(torch.float64)  # what the optimiser reads: the stored values
        self.optimizer = (_GradientDescent(self.stored, torch.as_tensor(learning_rate)) if optimizer == "gradient"
                          else MemberOptimizer(self.stored, optimizer, learning_rate))
        generators = None if rounding != "stochastic" else [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.store = LowPrecisionWeights(_flatten(ensemble.parameters()), scheme.storage, rounding, generators)
        loss_dtype = torch.promote_types(scheme.compute, torch.float32)
        self.x, self.y = x.to(scheme.compute), y.to(loss_dtype)
        self.changed: list[torch.Tensor] = []
        self.lost: list[torch.Tensor] = []
        self._publish()

    @property
    def theta(self) -> torch.Tensor:
        return self.store.weights.to(torch.float64)

    def _publish(self) -> None:
        """The stored weights into the compute model and the optimiser's float64 copy."""
        theta = self.theta
        _load(self.parameters, theta)
        _load(list(self.stored.parameters()), theta)

    def run(self, steps: int, active: torch.Tensor | None = None) -> None:
        """``steps`` steps of the ``active`` members (all when None); the others do not move."""
        for _ in range(steps):
            self.step(active)

    def step(self, active: torch.Tensor | None = None) -> None:
        for parameter in self.parameters:
            parameter.grad = None
        loss = (self.model(self.x).to(self.y.dtype) - self.y).pow(2).mean(dim=1).sum()
        loss.backward()
        for own, parameter in zip(self.stored.parameters(), self.parameters):
            if own.grad is None:
                own.grad = parameter.grad.to(torch.float64)
            else:
                own.grad.copy_(parameter.grad)  # in place: the optimiser keeps views of the gradients
        update = _flatten(self.optimizer.intended_update(active))
        lost = self.store.apply(update)
        self.changed.append((update != 0).sum(dim=1))
        self.lost.append(lost.sum(dim=1))
        self._publish()

    def ensemble(self) -> MLPEnsemble:
        """The stored weights as an ensemble in float32 (float64 for float64 storage): exact either way."""
        ensemble = copy.deepcopy(self.model).to(torch.promote_types(self.scheme.storage, torch.float32))
        _load(list(ensemble.parameters()), self.theta)
        return ensemble

    def train_mse(self) -> np.ndarray:
        ensemble = self.ensemble()
        dtype = next(ensemble.parameters()).dtype
        return train_mse(ensemble, self.x.to(dtype), self.y.to(dtype))

    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lost, changed)``, each ``(steps, members)`` int64."""
        if not self.lost:
            empty = np.zeros((0, self.theta.shape[0]), dtype=np.int64)
            return empty, empty
        return torch.stack(self.lost).cpu().numpy(), torch.stack(self.changed).cpu().numpy()


def _pooled(counts: tuple[np.ndarray, np.ndarray], rows: Callable[[int], slice], columns: range) -> list[float]:
    """Per member ``e`` of ``columns``, the lost fraction pooled over the steps ``rows(e)``."""
    lost, changed = counts
    return [float(ratio(lost[rows(e), c].sum(), changed[rows(e), c].sum())) for e, c in enumerate(columns)]


def _downsample(lost: np.ndarray, changed: np.ndarray, width: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Pooled lost fraction in blocks of ``width`` steps; block centres shifted by ``offset``."""
    if not len(lost):
        return np.zeros(0), np.zeros(0)
    starts = np.arange(0, len(lost), width)
    centres = offset + (starts + np.minimum(starts + width, len(lost)) - 1) / 2
    return centres, ratio(np.add.reduceat(lost, starts), np.add.reduceat(changed, starts))


def _curve(phase1: tuple[np.ndarray, np.ndarray], phase2: tuple[np.ndarray, np.ndarray], seeds: int) -> dict[str, Any]:
    """Lost fraction over training per arm, pooled over seeds (phase 1 until the last seed stopped)."""
    steps1, steps2 = len(phase1[0]), len(phase2[0])
    width = max(1, math.ceil((steps1 + steps2) / (CURVE_POINTS - 2)))  # blocks never straddle the shrink
    before = _downsample(phase1[0].sum(axis=1), phase1[1].sum(axis=1), width, 0)
    arms = {arm: _downsample(phase2[0][:, part].sum(axis=1), phase2[1][:, part].sum(axis=1), width, steps1)
            for arm, part in (("slingshot", slice(0, seeds)), ("control", slice(seeds, None)))}
    return {"steps": np.concatenate([before[0], arms["slingshot"][0]]).tolist(), "shrink_step": steps1,
            **{arm: np.concatenate([before[1], values[1]]).tolist() for arm, values in arms.items()}}


def _phase1(case: Case, scheme: Scheme) -> tuple[StoredTrainer, np.ndarray]:
    trainer = StoredTrainer(case.ensemble(case.seeds), case.x, case.y, case.learning_rate, scheme,
                            optimizer=case.optimizer)
    training = case.config.training
    return trainer, train_until_below(trainer, case.overfit_threshold, max_steps=training.overfit_max_steps,
                                      every=training.check_every)


def _run_scheme(case: Case, scheme: Scheme, phase1: StoredTrainer, stops: np.ndarray) -> dict[str, Any]:
    """Shrink in storage and retrain: slingshot (fresh optimiser) and control (the overfit run's optimiser)."""
    config, window, seeds = case.config, case.config.precision.window_steps, len(case.seeds)
    overfit = phase1.ensemble()
    both = MLPEnsemble.concatenate([shrink_(copy.deepcopy(overfit), config.shrink_factor), overfit])
    phase2 = StoredTrainer(both, repeat_members(case.x, 2), repeat_members(case.y, 2), case.learning_rate, scheme,
                           optimizer=case.optimizer)
    phase2.optimizer.load(phase1.optimizer.select(list(range(seeds))), slice(seeds, None))
    before = case.measure(overfit)["test_mse"]
    phase2.run(config.training.retrain_steps)
    after = case.measure(phase2.ensemble())["test_mse"]
    counts1, counts2 = phase1.counts(), phase2.counts()
    mse = phase1.train_mse()
    return {
        "compute": str(scheme.compute).removeprefix("torch."), "storage": str(scheme.storage).removeprefix("torch."),
        "phase1_steps": stops.tolist(), "train_mse": mse.tolist(), "reached": (mse < case.overfit_threshold).tolist(),
        "lost_fraction": {"before_shrink": _pooled(counts1, lambda e: slice(max(0, stops[e] - window), stops[e]),
                                                   range(seeds)),
                          "slingshot": _pooled(counts2, lambda e: slice(0, window), range(seeds)),
                          "control": _pooled(counts2, lambda e: slice(0, window), range(seeds, 2 * seeds))},
        "test_mse": {"overfit": before.tolist(), "slingshot": after[:seeds].tolist(), "control": after[seeds:].tolist()},
        "gain": (after[seeds:] - after[:seeds]).tolist(),
        "curve": _curve(counts1, counts2, seeds),
    }


# --- 3. The slingshot retrained in low precision, and the interventions that remove lost updates -----------------


#: (storage dtype, rounding) of the retraining arms: float32 as the reference, each low-precision dtype by every rule.
LOW_PRECISION_ARMS = (("float32", "nearest"), *((dtype, rounding) for dtype in BAND_DTYPES for rounding in ROUNDINGS))
#: The rules that remove lost updates (stochastic rounding: unbiased; Kahan: compensated).
REMEDIES = ROUNDINGS[1:]


def _log_ratio(slingshot: np.ndarray, control: np.ndarray) -> list[float]:
    """Per seed, ``log(slingshot / control)`` test MSE (negative: the slingshot gained); NaN where a value is not
    positive and finite (the verdict drops and counts that seed)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        values = np.log(slingshot / control)
    return np.where(np.isfinite(values), values, np.nan).tolist()


def _retrain_stored(case: Case, overfit: MLPEnsemble, state: dict[str, Any], dtype: str, rounding: str,
                    steps: int) -> dict[str, Any]:
    """Slingshot (shrunk, fresh optimiser) and control (the overfit run's optimiser) retrained with their weights
    stored in ``dtype`` by ``rounding``; per seed the test MSE of each and the fraction of updates lost."""
    seeds = len(case.seeds)
    both = MLPEnsemble.concatenate([shrink_(copy.deepcopy(overfit), case.config.shrink_factor), overfit])
    storage = _dtype(dtype)
    trainer = StoredTrainer(both, repeat_members(case.x, 2), repeat_members(case.y, 2), case.learning_rate,
                            Scheme(torch.float32, storage), optimizer=case.optimizer, rounding=rounding,
                            seeds=[*case.seeds, *case.seeds])
    trainer.optimizer.load(state, slice(seeds, None))
    trainer.run(steps)
    test = case.measure(trainer.ensemble())["test_mse"]
    lost, changed = trainer.counts()
    fraction = ratio(lost.sum(axis=0), changed.sum(axis=0))
    return {"test_mse": {"slingshot": test[:seeds].tolist(), "control": test[seeds:].tolist()},
            "gain": (test[seeds:] - test[:seeds]).tolist(),
            "lost_fraction": {"slingshot": fraction[:seeds].tolist(), "control": fraction[seeds:].tolist()}}


def _slingshot_low_precision(case: Case, phase1: StoredTrainer, stops: np.ndarray) -> dict[str, Any]:
    """Every arm of :data:`LOW_PRECISION_ARMS` retrained from the same float32 overfit weights, paired by seed."""
    steps = case.config.precision.slingshot_retrain_steps
    overfit, mse = phase1.ensemble(), phase1.train_mse()
    reached = mse < case.overfit_threshold
    state = phase1.optimizer.select(list(range(len(case.seeds))))
    arms: dict[str, dict[str, Any]] = {}
    for dtype, rounding in LOW_PRECISION_ARMS:
        arm = _retrain_stored(case, overfit, state, dtype, rounding, steps)
        test = arm["test_mse"]
        arm["log_ratio"] = _log_ratio(np.array(test["slingshot"]), np.array(test["control"]))
        arms.setdefault(dtype, {})[rounding] = arm
    return {"optimizer": case.optimizer, "width": case.config.training.width, "phase1_steps": stops.tolist(),
            "train_mse": mse.tolist(),
            "reached": reached.tolist(), "retrain_steps": steps, "arms": arms}


# --- 1. The register floor before and after the shrink ----------------------------------------------------------


def _scale_breaks(ensemble: MLPEnsemble, points: torch.Tensor) -> dict[str, list[float]]:
    """Per member, where a uniform shrink is not a uniform rescaling of every rounding.

    For each biased linear layer on the grid, with ``t = |W_i a_i|`` the
    magnitudes of the summed terms: ``bias_share``, the median over units and
    points of ``|b| / (sum t + |b|)``, and ``cancellation``, the median of
    ``(sum t + |b|) / |z|`` (the factor by which rounding the sum is worse
    than rounding ``z`` itself; large where pre-activations sit near zero).
    """
    result: dict[str, list[float]] = {}
    activation = points.to(next(ensemble.parameters()).dtype).expand(ensemble.members, *points.shape)
    linears = [m for m in ensemble.layers if isinstance(m, BatchedLinear)]
    with torch.no_grad():
        for module in ensemble.layers:
            if isinstance(module, BatchedLinear) and module.bias is not None:
                terms = torch.bmm(activation.abs(), module.weight.abs())
                bias = module.bias.abs().expand_as(terms)
                total = module(activation)
                index = linears.index(module)
                result[f"bias_share:{index}"] = (bias / (terms + bias)).flatten(1).median(dim=1).values.tolist()
                result[f"cancellation:{index}"] = ((terms + bias) / total.abs()).flatten(1).median(dim=1).values.tolist()
            activation = module(activation)
    return result


def _subnormal(ensemble: MLPEnsemble, dtype: str) -> list[float]:
    """Per member, the fraction of non-zero weights that ``dtype`` stores as a subnormal or as zero."""
    theta = _flatten(ensemble.parameters())
    stored = round_to(theta, _dtype(dtype)).abs()
    nonzero = theta != 0
    small = nonzero & (stored < torch.finfo(_dtype(dtype)).tiny)
    return ratio(small.sum(dim=1).numpy(), nonzero.sum(dim=1).numpy()).tolist()


def _register(case: Case, overfit: MLPEnsemble) -> dict[str, Any]:
    """Per dtype and seed, the HF power at or below the register floor, before and after the shrink."""
    config = case.config
    shrunk = shrink_(copy.deepcopy(overfit), config.shrink_factor)
    states = {"overfit": overfit, "shrunk": shrunk}
    nets = {state: [ensemble.member(i) for i in range(ensemble.members)] for state, ensemble in states.items()}
    bins = ROBUST_FLOOR_BINS[case.grid.ndim]
    result: dict[str, Any] = {"dtypes": {}, "spectra": {}, "average_bins": bins}
    for dtype in REGISTER_DTYPES:
        entry: dict[str, Any] = {}
        for state, members in nets.items():
            floors = [register_floor(net, case.grid, dtype, config.window) for net in members]
            alternating = [floor.freqs != 0 if case.grid.ndim == 1 else slice(None) for floor in floors]
            entry[state] = {
                "fraction_below": [floor.fraction_below(case.cutoff, average_bins=bins) for floor in floors],
                "fraction_below_single_draw": [floor.fraction_below(case.cutoff) for floor in floors],
                "relative_floor": [float(ratio(f.floor[a].sum(), f.power[a].sum())) for f, a in zip(floors, alternating)],
                "subnormal_weights": _subnormal(states[state], dtype),
            }
            result["spectra"].setdefault(state, {"power": floors[0].power.tolist()})[dtype] = floors[0].floor.tolist()
        for key in ("fraction_below", "fraction_below_single_draw"):
            entry[key.replace("fraction_below", "shift")] = (np.array(entry["shrunk"][key])
                                                             - entry["overfit"][key]).tolist()
        result["dtypes"][dtype] = entry
    points = torch.as_tensor(case.grid.points, dtype=torch.float32)
    result["scale"] = {state: _scale_breaks(ensemble, points) for state, ensemble in states.items()}
    if case.grid.ndim == 1:
        result["spectra"]["frequencies"] = floors[0].freqs.tolist()
    return result


# --- 2. Lost updates in function space, by band ------------------------------------------------------------------


def _band_losses(case: Case, start: MLPEnsemble, kind: str, learning_rate: float, state: dict[str, Any] | None,
                 steps: int) -> dict[str, Any]:
    """Along ``steps`` float64 steps from ``start``: per dtype, each band's intended change the storage swallowed.

    The optimiser is :class:`MemberOptimizer` of ``kind`` in float64, started from ``state``
    (:meth:`MemberOptimizer.select` of every member) or fresh. At every step the intended update ``u``
    (:meth:`MemberOptimizer.intended_update`) is stored in dtype D as
    ``s = (w_D + u_D)`` in D arithmetic minus ``w_D``, ``w_D`` the weights
    rounded to D. The function changes ``f(w_D + u) - f(w_D)`` (intended) and
    ``f(w_D + u) - f(w_D + s)`` (swallowed) are evaluated in float64 on the
    grid; their band powers are summed over the steps.
    """
    model = copy.deepcopy(start).to(torch.float64)
    parameters = list(model.parameters())
    optimizer = MemberOptimizer(model, kind, learning_rate)
    if state is not None:
        optimizer.load(state, slice(None))
    theta = _flatten(parameters)
    x, y = case.x.to(torch.float64), case.y.to(torch.float64)
    points = torch.as_tensor(case.grid.points, dtype=torch.float64)
    members = theta.shape[0]
    sums = {dtype: np.zeros((6, members)) for dtype in BAND_DTYPES}  # intended LF, HF, swallowed LF, HF, lost, changed
    relative_step, step_over_lr, losses = [], [], []

    def function(weights: torch.Tensor) -> torch.Tensor:
        _load(parameters, weights)
        with torch.no_grad():
            return model(points)

    for _ in range(steps):
        _load(parameters, theta)
        for parameter in parameters:
            if parameter.grad is not None:
                parameter.grad.zero_()  # in place: the optimiser keeps views of the gradients
        loss = (model(x) - y).pow(2).mean(dim=1)
        losses.append(loss.detach())
        loss.sum().backward()
        update = _flatten(optimizer.intended_update())
        relative_step.append(torch.nanmedian((update / theta).abs(), dim=1).values.numpy())
        step_over_lr.append((update.abs() / learning_rate).median(dim=1).values.numpy())
        for dtype in BAND_DTYPES:
            storage = _dtype(dtype)
            rounded = round_to(theta, storage)
            stored = (rounded.to(storage) + update.to(storage)).to(torch.float64) - rounded
            base, intended, kept = function(rounded), function(rounded + update), function(rounded + stored)
            sums[dtype][0:2] += np.stack(case.measure.bands(intended - base))
            sums[dtype][2:4] += np.stack(case.measure.bands(intended - kept))
            changed = update != 0
            sums[dtype][4] += (changed & (stored == 0)).sum(dim=1).numpy()
            sums[dtype][5] += changed.sum(dim=1).numpy()
        theta = theta + update
    result: dict[str, Any] = {"relative_step": np.mean(relative_step, axis=0).tolist(),
                              "step_over_lr": np.mean(step_over_lr, axis=0).tolist(),
                              "train_mse_growth": ratio(losses[-1].numpy(), losses[0].numpy()).tolist()}
    for dtype, total in sums.items():
        result[dtype] = {"swallowed_low": ratio(total[2], total[0]).tolist(),
                         "swallowed_high": ratio(total[3], total[1]).tolist(),
                         "lost_weights": ratio(total[4], total[5]).tolist()}
    return result


def _bands(case: Case, overfit: MLPEnsemble, phase1: MemberOptimizer) -> dict[str, Any]:
    """Lost updates by band before the shrink and after it (fresh optimiser, as the slingshot restarts).

    Before the shrink, the optimiser that trained phase 1 (the case's) continues with its own state; the other
    starts fresh from the overfit weights.
    """
    config = case.config
    shrunk = shrink_(copy.deepcopy(overfit), config.shrink_factor)
    rates = {kind: config.learning_rate(dataclasses.replace(case.case, optimizer=kind)) for kind in OPTIMIZERS}
    steps = config.precision.window_steps
    trained = phase1.select(list(range(phase1.members)))
    result: dict[str, Any] = {"learning_rate": rates, "steps": steps, "phase1_optimizer": case.optimizer}
    for kind in OPTIMIZERS:
        result[kind] = {"overfit": _band_losses(case, overfit, kind, rates[kind],
                                                trained if kind == case.optimizer else None, steps),
                        "shrunk": _band_losses(case, shrunk, kind, rates[kind], None, steps)}
    return result


# --- 4. The manifold at a real minimum ---------------------------------------------------------------------------


def _interpolate(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, target: float, iterations: int) -> int:
    """Levenberg-Marquardt in float64 until the training MSE is below ``target``; return the iterations used.

    The damped minimum-norm step ``-J^T (J J^T + lambda s I)^-1 r`` (``s`` the
    mean of ``diag(J J^T)``) of an over-parameterised net reaches an
    interpolating point in tens of iterations, where Adam would need tens of
    thousands. Stops early when no damping up to ``1e10`` lowers the error.
    """
    parameters, damping = list(net.parameters()), 1.0

    def error() -> torch.Tensor:
        with torch.no_grad():
            return net(x)[:, 0] - y

    for iteration in range(iterations):
        residual = error()
        mse = float(residual.pow(2).mean())
        if mse < target:
            return iteration
        matrix, theta = jacobian(net, x), parameter_vector(net)
        gram = matrix @ matrix.T
        identity = float(gram.diagonal().mean()) * torch.eye(len(residual), dtype=gram.dtype)
        while True:
            step = -matrix.T @ torch.linalg.solve(gram + damping * identity, residual)
            torch.nn.utils.vector_to_parameters(theta + step, parameters)
            if float(error().pow(2).mean()) < mse:
                damping = max(damping / 10, 1e-15)
                break
            damping *= 10
            if damping > 1e10:
                torch.nn.utils.vector_to_parameters(theta, parameters)
                return iteration
    return iterations


def _interpolation_data(case: Case, points: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per seed, ``points`` evenly spaced inputs (cell centres) and the signal there plus that seed's noise.

    Evenly spaced, because two random points closer than the signal's detail
    with independent noise need weights far larger than a small net's to be
    interpolated, and Levenberg-Marquardt then crawls.
    """
    spec = case.config.signals[case.case.signal]
    if case.grid.ndim == 1:
        x = (np.arange(points) + 0.5) / points
    else:
        side = math.ceil(math.sqrt(points))
        x = np.stack(np.meshgrid(*[(np.arange(side) + 0.5) / side] * 2, indexing="ij"), axis=-1).reshape(-1, 2)[:points]
    x = x.reshape(points, -1) * case.grid.extent
    noise = [np.random.default_rng(seed).standard_normal(points) * spec.noise for seed in case.seeds]
    y = np.stack([case.signal(x) + n for n in noise])
    return torch.as_tensor(x).expand(len(case.seeds), *x.shape), torch.as_tensor(y)


def _drift_step_size(points: int, largest_singular_value: float) -> float:
    """Gradient step that keeps a network at its interpolating minimum: ``1 / lambda_max`` of the loss's Hessian.

    The loss is the mean over ``N`` points of the squared residual, so at an interpolating minimum its Hessian is
    ``(2 / N) J^T J`` with largest eigenvalue ``2 sigma_max^2 / N``; a step of ``N / (2 sigma_max^2)`` takes out
    the stiffest direction's residual in one step and shrinks every other one, half the largest stable step.
    """
    return points / (2 * largest_singular_value**2)


def _manifold(case: Case) -> dict[str, Any]:
    """Interpolating float64 nets (one per seed): Jacobian spectrum, dimension per dtype, drift per storage dtype.

    Seeds that did not reach interpolation read NaN in the per-seed numbers the verdicts use.
    """
    config, spec = case.config, case.config.precision.manifold
    points = spec.points
    x, y = _interpolation_data(case, points)
    nets, iterations, mse, targets, variances = [], [], [], [], []
    for index, seed in enumerate(case.seeds):
        net = mlp(case.grid.ndim, width=spec.width, depth=spec.depth, activation=case.case.activation,
                  bias=case.case.bias, constant_feature=not case.case.bias, omega_0=config.training.omega_0,
                  seed=seed).to(torch.float64)
        variances.append(float(y[index].var(unbiased=False)))
        target = spec.mse_ratio * variances[-1]
        iterations.append(_interpolate(net, x[index], y[index], target, spec.max_iterations))
        with torch.no_grad():
            mse.append(float((net(x[index])[:, 0] - y[index]).pow(2).mean()))
        nets.append(net)
        targets.append(target)
    reached = np.array([m < t for m, t in zip(mse, targets)])

    def at_minimum(values: Iterable[float]) -> list[float]:
        return np.where(reached, np.asarray(list(values), dtype=float), np.nan).tolist()

    parameters = sum(p.numel() for p in nets[0].parameters())
    result: dict[str, Any] = {
        "parameters": parameters, "points": points, "parameters_minus_points": parameters - points,
        "width": spec.width, "depth": spec.depth, "iterations": iterations, "train_mse": mse,
        "target_mse": targets, "target_variance": variances, "interpolated": reached.tolist(),
        "singular_values": [singular_values(net, x[i]).tolist() for i, net in enumerate(nets)],
        "relative_spacing": {dtype: relative_spacing(dtype) for dtype in MANIFOLD_DTYPES},
        "dimension": {dtype: at_minimum(manifold_dimension(net, x[i], dtype) for i, net in enumerate(nets))
                      for dtype in MANIFOLD_DTYPES},
        "continue_steps": config.precision.continue_steps, "drift": {},
    }
    ensemble = MLPEnsemble.from_models(nets)
    matrices = [jacobian(net, x[i]) for i, net in enumerate(nets)]
    step_sizes = torch.tensor([_drift_step_size(points, values[0]) for values in result["singular_values"]])
    steps = config.precision.continue_steps
    every = max(1, steps // DRIFT_RECORDS)
    result.update(drift_step_size=step_sizes.tolist(), drift_steps=list(range(0, steps + 1, every)),
                  drift_train_mse={})
    for dtype in MANIFOLD_DTYPES:
        storage = _dtype(dtype)
        trainer = StoredTrainer(ensemble, x, y, step_sizes, Scheme(storage, storage), optimizer="gradient")
        start, along_the_way = trainer.theta.clone(), [trainer.train_mse()]
        for _ in result["drift_steps"][1:]:
            trainer.run(every)
            along_the_way.append(trainer.train_mse())
        result["drift_train_mse"][dtype] = np.stack(along_the_way, axis=1).tolist()
        splits = [displacement_split(matrix, trainer.theta[i] - start[i]) for i, matrix in enumerate(matrices)]
        lost, changed = trainer.counts()
        result["drift"][dtype] = {
            "moved": at_minimum(math.hypot(s["along"], s["across"]) for s in splits),
            "along": at_minimum(s["along"] for s in splits), "across": at_minimum(s["across"] for s in splits),
            "fraction_along": at_minimum(s["fraction_along"] for s in splits),
            "lost_fraction": ratio(lost.sum(axis=0), changed.sum(axis=0)).tolist(),
            "stalled_steps": ((lost == changed) & (changed > 0)).mean(axis=0).tolist(),
            "train_mse_start": along_the_way[0].tolist(), "train_mse_end": along_the_way[-1].tolist(),
        }
    return result


# --- Verdicts ------------------------------------------------------------------------------------------------------


def _named(claim: Any, reference: Any, config: ClaimConfig, metric: str, claim_name: str, reference_name: str,
           reason: str | None = None, *, log_scale: bool = False) -> dict[str, Any]:
    """The one call of the statistics for every verdict of the study ("claim < reference", paired by seed).

    ``log_scale``: the values are logs, compared as differences (``scale="log"``: the relative effect is
    ``expm1`` of the estimate); otherwise signed quantities that may be zero or negative (gains, counts,
    distances, fractions), compared as differences with the margin relative to the reference's median
    (``scale="difference"``).
    """
    result = verdict(np.asarray(claim, dtype=float), np.asarray(reference, dtype=float), alpha=config.alpha,
                     margin=config.min_relative_effect, scale="log" if log_scale else "difference",
                     reason=reason).to_dict()
    result.update(metric=metric, claim=claim_name, reference=reference_name)
    return result


def _low_precision_verdicts(slingshot: dict[str, Any], config: ClaimConfig) -> dict[str, dict[str, Any]]:
    """Prediction 3 in the default run, and the interventions, per case and low-precision dtype.

    The per-seed statistic is ``log(slingshot / control)`` test MSE: negative where the slingshot gained, the
    relative gain on a log scale (so the margin is relative, as everywhere in the report).
    """
    verdicts = {}
    metric = "log(slingshot test MSE / control test MSE), per seed"
    for name, entry in slingshot.items():
        arms = entry["arms"]
        for dtype in BAND_DTYPES:
            verdicts[f"slingshot_gains_more_in_low_precision_{name}_{dtype}"] = _named(
                arms[dtype]["nearest"]["log_ratio"], arms[REFERENCE]["nearest"]["log_ratio"], config, metric,
                f"{dtype} (round-to-nearest)", REFERENCE, log_scale=True)
            for remedy in REMEDIES:
                verdicts[f"removing_lost_updates_removes_the_extra_gain_{name}_{dtype}_{remedy}"] = _named(
                    arms[dtype]["nearest"]["log_ratio"], arms[dtype][remedy]["log_ratio"], config, metric,
                    f"{dtype} (round-to-nearest)", f"{dtype} ({remedy})", log_scale=True)
    return verdicts


def _verdicts(result: dict[str, Any], config: ClaimConfig) -> dict[str, dict[str, Any]]:
    """Every verdict of the precision study, each "claim < reference" paired by seed."""
    register, bands, manifold, schemes = result["register"]["dtypes"], result["bands"], result["manifold"], result["schemes"]
    verdicts = {}
    for dtype in REGISTER_DTYPES:
        verdicts[f"shrink_pushes_hf_below_floor_{dtype}"] = _named(
            register[dtype]["overfit"]["fraction_below"], register[dtype]["shrunk"]["fraction_below"], config,
            f"HF power at or below the {dtype} floor", "overfit", "shrunk")
    for dtype in REGISTER_DTYPES[1:]:
        verdicts[f"floor_shift_larger_than_float32_{dtype}"] = _named(
            register[REFERENCE]["shift"], register[dtype]["shift"], config,
            "increase through the shrink of the HF power at or below the floor", REFERENCE, dtype)
    for kind in OPTIMIZERS:
        for dtype in BAND_DTYPES:
            verdicts[f"high_band_loses_more_after_shrink_{kind}_{dtype}"] = _named(
                bands[kind]["overfit"][dtype]["swallowed_high"], bands[kind]["shrunk"][dtype]["swallowed_high"],
                config, f"HF change swallowed by {dtype} storage ({kind})", "overfit", "shrunk")
    for name, scheme in SCHEMES.items():
        if name == REFERENCE or scheme.storage == torch.float32:
            continue
        ran = name in schemes and "gain" in schemes[name]
        empty: list[float] = []
        verdicts[f"slingshot_gain_larger_than_float32_{name}"] = _named(
            schemes[REFERENCE]["gain"] if ran else empty, schemes[name]["gain"] if ran else empty, config,
            "slingshot gain (control test MSE - slingshot test MSE)", REFERENCE, name,
            None if ran else (FULL_ONLY if name in config.precision.schemes else "scheme not configured"))
    verdicts.update(_low_precision_verdicts(result["slingshot_low_precision"], config))
    for dtype in MANIFOLD_DTYPES[1:]:
        verdicts[f"manifold_grows_as_precision_drops_{dtype}"] = _named(
            manifold["dimension"]["float64"], manifold["dimension"][dtype], config,
            "manifold dimension P - rank(J) at the dtype's spacing", "float64", dtype)
        verdicts[f"drift_stalls_{dtype}"] = _named(
            manifold["drift"][dtype]["moved"], manifold["drift"]["float64"]["moved"], config,
            "distance moved by continued training at the minimum", dtype, "float64")
    return verdicts


# --- Running and caching -------------------------------------------------------------------------------------------


def precision_inputs(config: ClaimConfig) -> dict[str, Any]:
    """What the precision experiment's result depends on (its cached file is reused only when this matches)."""
    case, plain = parse_case_id(config.precision.case), config.to_dict()
    return {"case": case.to_dict(), "seeds": list(range(config.seeds)), "signal": config.signal(case).to_dict(),
            "scope": config.scope, "precision": {k: v for k, v in plain["precision"].items() if k != "enabled"},
            "config": {k: plain[k] for k in ("alpha", "min_relative_effect", "shrink_factor", "window", "training")}}


def _compute(config: ClaimConfig, inputs: dict[str, Any], progress: Callable[[], None]) -> dict[str, Any]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is faster, and the numbers cannot depend on the thread count
    try:
        return _measure(config, inputs, progress)
    finally:
        torch.set_num_threads(threads)


def _measure(config: ClaimConfig, inputs: dict[str, Any], progress: Callable[[], None]) -> dict[str, Any]:
    full = inputs["scope"] == "full"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # nothing below should draw from it; this makes sure nothing leaks in
        case = Case(parse_case_id(config.precision.case), config, inputs["seeds"])
        phase1, stops = _phase1(case, SCHEMES[REFERENCE])
        overfit = phase1.ensemble()
        schemes = {REFERENCE: _run_scheme(case, SCHEMES[REFERENCE], phase1, stops) if full else
                   {"phase1_steps": stops.tolist(), "train_mse": phase1.train_mse().tolist()}}
        progress()
        register = _register(case, overfit)
        progress()
        bands = _bands(case, overfit, phase1.optimizer)
        progress()
        manifold = _manifold(case)
        progress()
        narrow = config.replace(training=config.training.replace(width=config.precision.slingshot_width))
        low_precision = {}
        for name in config.precision.slingshot_cases:
            small = Case(parse_case_id(name), narrow, inputs["seeds"])
            low_precision[name] = _slingshot_low_precision(small, *_phase1(small, SCHEMES[REFERENCE]))
        progress()
        for name, scheme in SCHEMES.items():
            if name == REFERENCE:
                continue
            if full and name in config.precision.schemes:
                schemes[name] = _run_scheme(case, scheme, *_phase1(case, scheme))
            progress()
    result = {"case": case.case.id, "seeds": case.seeds, "scope": inputs["scope"],
              "shrink_factor": config.shrink_factor, "window_steps": config.precision.window_steps,
              "retrain_steps": config.training.retrain_steps, "learning_rate": case.learning_rate,
              "threshold": case.overfit_threshold, "cutoff": case.cutoff, "schemes": schemes, "register": register,
              "bands": bands, "manifold": manifold, "slingshot_low_precision": low_precision}
    result["verdicts"] = _verdicts(result, config)
    return result


def run_precision(config: ClaimConfig, out: Path, progress: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Run (or resume) the precision experiment of ``config``.

    Parameters
    ----------
    config : dict
        A validated configuration (:func:`spectral.claim._config.load_config`); its
        ``precision`` table picks the case and the schemes, and ``scope``
        ("default" or "full") whether the schemes train in their own dtype.
    out : pathlib.Path
        Output folder; the result is written atomically to ``out/precision.json``
        and reused from there when its inputs are unchanged.
    progress : callable, optional
        Called :data:`PRECISION_UNITS` times, also when the result is reused.

    Returns
    -------
    dict
        JSON-able result, exactly as read back from ``precision.json`` (NaN as
        None): ``register`` (per dtype and seed, the HF power at or below the
        register floor before and after the shrink; where scale invariance
        breaks), ``bands`` (lost updates by band, Adam and SGD), ``schemes``
        (per scheme trained in its dtype: lost updates, test errors, slingshot
        gain; float32's phase-1 steps only at the default scope),
        ``slingshot_low_precision`` (per case, storage dtype and rounding, per
        seed: slingshot and control test MSE, gain, log ratio, lost-update
        fraction), ``manifold`` (with ``drift_train_mse`` per dtype) and ``verdicts`` (flat, name -> :func:`spectral.claim._stats.verdict` with
        ``metric``, ``claim`` and ``reference``).
    """
    inputs = precision_inputs(config)
    return reuse_or_compute(Path(out) / "precision.json", inputs, lambda: (_compute(config, inputs, progress), None),
                            units=PRECISION_UNITS, progress=progress)

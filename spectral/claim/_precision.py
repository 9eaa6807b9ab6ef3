"""Does the data type carry the essay's mechanism? Four predictions, measured on one case of the claim check.

The essay behind the slingshot says that shrinking the weights pushes the
high-frequency components "off the data type's register", that updates
smaller than a weight's spacing are lost, and that this is why the global
minimum looks like a submanifold. Each prediction is measured here:

1. *Register*: per seed, the fraction of the function's high-frequency power
   at or below the register floor of float32, bfloat16 and float16
   (:func:`spectral.precision.register_floor`), before and after the shrink.
2. *Lost updates by band*: along a float64 trajectory (Adam with the overfit
   run's own state, and plain SGD), the change of the function each intended
   update makes against the change its stored version makes, split into the
   bands below and above the cutoff, before and after the shrink.
3. *Slingshot in true low precision* (scope "full"): every scheme trains
   phase 1, shrink and phase 2 (slingshot and control) with the weights
   stored in its dtype, no master copy.
4. *Manifold*: a small over-parameterised float64 network trained to
   interpolation; the singular values of its Jacobian at the training points,
   the manifold dimension each dtype's spacing reads, and continued training
   in each storage dtype split into motion along and across the manifold.

Every seed trains alone in effect: members of a batched ensemble stop at their
own threshold crossing, and a stopped member's weights and optimiser state do
not move, so a seed's numbers do not depend on how many seeds run.
"""

from __future__ import annotations

import copy
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
from ..precision import ratio, register_floor
from ._cache import reuse_or_compute
from ._check import Case, repeat_members, train_mse
from ._config import SCHEME_NAMES, ClaimConfig, parse_case_id
from ._stats import verdict
from ._training import train_until_below

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
#: Formats whose lost updates are measured in function space (float32 swallows nothing measurable there).
BAND_DTYPES = ("bfloat16", "float16")
#: Formats whose spacing reads the manifold dimension, and which store the weights of continued training.
MANIFOLD_DTYPES = ("float64", "float32", "bfloat16", "float16")
#: Optimisers whose steps are measured in function space: Adam (normalised steps) and plain SGD (steps ~ gradient).
OPTIMIZERS = ("adam", "sgd")
ADAM_BETAS, ADAM_EPSILON = (0.9, 0.999), 1e-8
#: Calls of ``progress`` per run: float32 phase 1, register, lost updates by band, manifold, and one per other scheme.
PRECISION_UNITS = 4 + len(SCHEME_NAMES) - 1
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


class _Optimizer:
    """Per-member Adam or plain SGD in float64: the intended update, computed but not added.

    Row ``e`` of every tensor is member ``e``; an inactive member's state does
    not change and its update is zero. Adam's bias correction counts each
    member's own steps.
    """

    def __init__(self, kind: str, like: torch.Tensor, learning_rate: float) -> None:
        self.kind, self.learning_rate = kind, learning_rate
        self.average, self.square = torch.zeros_like(like), torch.zeros_like(like)
        self.steps = torch.zeros(like.shape[0], 1, dtype=like.dtype, device=like.device)

    def update(self, gradient: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        mask = active[:, None]
        if self.kind == "sgd":
            return torch.where(mask, -self.learning_rate * gradient, 0.0)
        beta1, beta2 = ADAM_BETAS
        self.steps = self.steps + mask
        self.average = torch.where(mask, self.average.lerp(gradient, 1 - beta1), self.average)
        self.square = torch.where(mask, self.square * beta2 + (1 - beta2) * gradient.square(), self.square)
        denominator = (self.square / (1 - beta2**self.steps)).sqrt() + ADAM_EPSILON
        return torch.where(mask, -self.learning_rate * self.average / (1 - beta1**self.steps) / denominator, 0.0)

    def take(self, other: _Optimizer, rows: slice) -> None:
        """Give members ``rows`` the state of ``other``'s members (as many, in order)."""
        for name in ("average", "square", "steps"):
            getattr(self, name)[rows] = getattr(other, name)


class StoredTrainer:
    """Full-batch training of an ensemble whose weights are stored in ``scheme.storage``.

    Each step runs forward and backward on a copy of the ensemble in
    ``scheme.compute`` (the loss, the sum of per-member mean squared errors,
    is reduced in at least float32), lets a float64 optimiser compute the
    intended update ``u`` and stores ``w.to(storage) + u.to(storage)`` in
    storage arithmetic: an update smaller than about half the spacing of the
    stored weight is lost, as in real storage in that dtype.

    Parameters
    ----------
    ensemble : MLPEnsemble
        Initial weights; rounded to ``scheme.storage`` (this is where a shrink
        done before happens "in" the storage dtype). Not changed.
    x, y : torch.Tensor
        ``(members, N, d)`` inputs and ``(members, N)`` targets.
    learning_rate : float
        The optimiser's learning rate.
    scheme : Scheme
        Compute and storage dtypes.
    optimizer : {"adam", "sgd"}, default "adam"
        Adam, or plain SGD (no momentum).

    Attributes
    ----------
    theta : torch.Tensor
        ``(members, P)`` float64 stored weights (values of ``scheme.storage``).
    optimizer : _Optimizer
        Its state (moments, per-member step counts).
    changed, lost : list of torch.Tensor
        Per step, ``(members,)`` counts of non-zero intended updates and of
        those the storage swallowed (the stored weight did not change).
    """

    def __init__(self, ensemble: MLPEnsemble, x: torch.Tensor, y: torch.Tensor, learning_rate: float,
                 scheme: Scheme, *, optimizer: str = "adam") -> None:
        self.scheme = scheme
        self.model = copy.deepcopy(ensemble).to(scheme.compute)
        self.parameters = list(self.model.parameters())
        self.theta = round_to(_flatten(ensemble.parameters()), scheme.storage)
        loss_dtype = torch.promote_types(scheme.compute, torch.float32)
        self.x, self.y = x.to(scheme.compute), y.to(loss_dtype)
        self.optimizer = _Optimizer(optimizer, self.theta, learning_rate)
        self.changed: list[torch.Tensor] = []
        self.lost: list[torch.Tensor] = []
        _load(self.parameters, self.theta)

    def run(self, steps: int, active: torch.Tensor | None = None) -> None:
        """``steps`` steps of the ``active`` members (all when None); the others do not move."""
        for _ in range(steps):
            self.step(active)

    def step(self, active: torch.Tensor | None = None) -> None:
        for parameter in self.parameters:
            parameter.grad = None
        loss = (self.model(self.x).to(self.y.dtype) - self.y).pow(2).mean(dim=1).sum()
        loss.backward()
        active = torch.ones(self.theta.shape[0], dtype=torch.bool) if active is None else active
        update = self.optimizer.update(_flatten(p.grad for p in self.parameters), active)
        stored = self.theta.to(self.scheme.storage)
        new = stored + update.to(self.scheme.storage)
        changed = update != 0
        self.changed.append(changed.sum(dim=1))
        self.lost.append((changed & (new == stored)).sum(dim=1))
        self.theta = new.to(torch.float64)
        _load(self.parameters, self.theta)

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
    trainer = StoredTrainer(case.ensemble(case.seeds), case.x, case.y, case.learning_rate, scheme)
    training = case.config.training
    return trainer, train_until_below(trainer, case.overfit_threshold, max_steps=training.overfit_max_steps,
                                      every=training.check_every)


def _run_scheme(case: Case, scheme: Scheme, phase1: StoredTrainer, stops: np.ndarray) -> dict[str, Any]:
    """Shrink in storage and retrain: slingshot (fresh optimiser) and control (the overfit run's optimiser)."""
    config, window, seeds = case.config, case.config.precision.window_steps, len(case.seeds)
    overfit = phase1.ensemble()
    both = MLPEnsemble.concatenate([shrink_(copy.deepcopy(overfit), config.shrink_factor), overfit])
    phase2 = StoredTrainer(both, repeat_members(case.x, 2), repeat_members(case.y, 2), case.learning_rate, scheme)
    phase2.optimizer.take(phase1.optimizer, slice(seeds, None))
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
    result: dict[str, Any] = {"dtypes": {}, "spectra": {}}
    for dtype in REGISTER_DTYPES:
        entry: dict[str, Any] = {}
        for state, members in nets.items():
            floors = [register_floor(net, case.grid, dtype, config.window) for net in members]
            alternating = [floor.freqs != 0 if case.grid.ndim == 1 else slice(None) for floor in floors]
            entry[state] = {
                "fraction_below": [floor.fraction_below(case.cutoff) for floor in floors],
                "relative_floor": [float(ratio(f.floor[a].sum(), f.power[a].sum())) for f, a in zip(floors, alternating)],
                "subnormal_weights": _subnormal(states[state], dtype),
            }
            result["spectra"].setdefault(state, {"power": floors[0].power.tolist()})[dtype] = floors[0].floor.tolist()
        entry["shift"] = (np.array(entry["shrunk"]["fraction_below"]) - entry["overfit"]["fraction_below"]).tolist()
        result["dtypes"][dtype] = entry
    points = torch.as_tensor(case.grid.points, dtype=torch.float32)
    result["scale"] = {state: _scale_breaks(ensemble, points) for state, ensemble in states.items()}
    if case.grid.ndim == 1:
        result["spectra"]["frequencies"] = floors[0].freqs.tolist()
    return result


# --- 2. Lost updates in function space, by band ------------------------------------------------------------------


def _band_losses(case: Case, start: MLPEnsemble, optimizer: _Optimizer, steps: int) -> dict[str, Any]:
    """Along ``steps`` float64 steps from ``start``: per dtype, each band's intended change the storage swallowed.

    At every step the intended update ``u`` (float64) is stored in dtype D as
    ``s = (w_D + u_D)`` in D arithmetic minus ``w_D``, ``w_D`` the weights
    rounded to D. The function changes ``f(w_D + u) - f(w_D)`` (intended) and
    ``f(w_D + u) - f(w_D + s)`` (swallowed) are evaluated in float64 on the
    grid; their band powers are summed over the steps.
    """
    model = copy.deepcopy(start).to(torch.float64)
    parameters = list(model.parameters())
    theta = _flatten(parameters)
    x, y = case.x.to(torch.float64), case.y.to(torch.float64)
    points = torch.as_tensor(case.grid.points, dtype=torch.float64)
    members = theta.shape[0]
    active = torch.ones(members, dtype=torch.bool)
    sums = {dtype: np.zeros((6, members)) for dtype in BAND_DTYPES}  # intended LF, HF, swallowed LF, HF, lost, changed
    relative_step, step_over_lr = [], []

    def function(weights: torch.Tensor) -> torch.Tensor:
        _load(parameters, weights)
        with torch.no_grad():
            return model(points)

    for _ in range(steps):
        _load(parameters, theta)
        for parameter in parameters:
            parameter.grad = None
        (model(x) - y).pow(2).mean(dim=1).sum().backward()
        update = optimizer.update(_flatten(p.grad for p in parameters), active)
        relative_step.append(torch.nanmedian((update / theta).abs(), dim=1).values.numpy())
        step_over_lr.append((update.abs() / optimizer.learning_rate).median(dim=1).values.numpy())
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
                              "step_over_lr": np.mean(step_over_lr, axis=0).tolist()}
    for dtype, total in sums.items():
        result[dtype] = {"swallowed_low": ratio(total[2], total[0]).tolist(),
                         "swallowed_high": ratio(total[3], total[1]).tolist(),
                         "lost_weights": ratio(total[4], total[5]).tolist()}
    return result


def _bands(case: Case, overfit: MLPEnsemble, adam_state: _Optimizer) -> dict[str, Any]:
    """Lost updates by band before the shrink (the overfit run's Adam state) and after it (fresh), Adam and SGD."""
    config = case.config
    shrunk = shrink_(copy.deepcopy(overfit), config.shrink_factor)
    rates = {"adam": case.learning_rate, "sgd": config.training.sgd_learning_rate[case.case.activation]}
    steps = config.precision.window_steps
    result: dict[str, Any] = {"learning_rate": rates, "steps": steps}
    for kind in OPTIMIZERS:
        fresh = _Optimizer(kind, _flatten(overfit.parameters()), rates[kind])
        before = copy.deepcopy(adam_state) if kind == "adam" else copy.deepcopy(fresh)
        result[kind] = {"overfit": _band_losses(case, overfit, before, steps),
                        "shrunk": _band_losses(case, shrunk, fresh, steps)}
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


def _manifold(case: Case) -> dict[str, Any]:
    """Interpolating float64 nets (one per seed): Jacobian spectrum, dimension per dtype, drift per storage dtype.

    Seeds that did not reach interpolation read NaN in the per-seed numbers the verdicts use.
    """
    config, spec = case.config, case.config.precision.manifold
    points = spec.points
    x, y = _interpolation_data(case, points)
    nets, iterations, mse, targets = [], [], [], []
    for index, seed in enumerate(case.seeds):
        net = mlp(case.grid.ndim, width=spec.width, depth=spec.depth, activation=case.case.activation,
                  bias=case.case.bias, constant_feature=not case.case.bias, omega_0=config.training.omega_0,
                  seed=seed).to(torch.float64)
        target = spec.mse_ratio * float(y[index].var(unbiased=False))
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
        "target_mse": targets, "interpolated": reached.tolist(),
        "singular_values": [singular_values(net, x[i]).tolist() for i, net in enumerate(nets)],
        "relative_spacing": {dtype: relative_spacing(dtype) for dtype in MANIFOLD_DTYPES},
        "dimension": {dtype: at_minimum(manifold_dimension(net, x[i], dtype) for i, net in enumerate(nets))
                      for dtype in MANIFOLD_DTYPES},
        "continue_steps": config.precision.continue_steps, "drift": {},
    }
    ensemble = MLPEnsemble.from_models(nets)
    matrices = [jacobian(net, x[i]) for i, net in enumerate(nets)]
    for dtype in MANIFOLD_DTYPES:
        storage = _dtype(dtype)
        trainer = StoredTrainer(ensemble, x, y, case.learning_rate, Scheme(storage, storage))
        start, start_mse = trainer.theta.clone(), trainer.train_mse()
        trainer.run(config.precision.continue_steps)
        splits = [displacement_split(matrix, trainer.theta[i] - start[i]) for i, matrix in enumerate(matrices)]
        lost, changed = trainer.counts()
        result["drift"][dtype] = {
            "moved": at_minimum(math.hypot(s["along"], s["across"]) for s in splits),
            "along": at_minimum(s["along"] for s in splits), "across": at_minimum(s["across"] for s in splits),
            "fraction_along": at_minimum(s["fraction_along"] for s in splits),
            "lost_fraction": ratio(lost.sum(axis=0), changed.sum(axis=0)).tolist(),
            "stalled_steps": ((lost == changed) & (changed > 0)).mean(axis=0).tolist(),
            "train_mse_start": start_mse.tolist(), "train_mse_end": trainer.train_mse().tolist(),
        }
    return result


# --- Verdicts ------------------------------------------------------------------------------------------------------


def _named(claim: Any, reference: Any, config: ClaimConfig, metric: str, claim_name: str, reference_name: str,
           reason: str | None = None) -> dict[str, Any]:
    result = verdict(np.asarray(claim, dtype=float), np.asarray(reference, dtype=float), alpha=config.alpha,
                     margin=config.min_relative_effect, scale="difference", reason=reason).to_dict()
    result.update(metric=metric, claim=claim_name, reference=reference_name)
    return result


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
              "bands": bands, "manifold": manifold}
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
        gain; float32's phase-1 steps only at the default scope), ``manifold``
        and ``verdicts`` (flat, name -> :func:`spectral.claim._stats.verdict` with
        ``metric``, ``claim`` and ``reference``).
    """
    inputs = precision_inputs(config)
    return reuse_or_compute(Path(out) / "precision.json", inputs, lambda: (_compute(config, inputs, progress), None),
                            units=PRECISION_UNITS, progress=progress)

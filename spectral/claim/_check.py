"""The claim check: train until overfit, shrink, retrain, and compare with controls that isolate one cause each.

One *case* is a signal (1D or 2D), a network (activation, bias) and an
optimiser. All seeds of a case train together as one
:class:`~spectral.ensemble.MLPEnsemble`, and so do all arms of phase 2 and the
shrink-factor sweep; every member has its own optimiser state and stopping
point (:mod:`spectral.claim._training`), so a seed's numbers never depend on the
other seeds.

Phase 1 trains every seed until its own training MSE is below the overfit
threshold, recording its validation and test error on the way (the
``early_stop`` baseline is the checkpoint after step 0 with the best
validation error). A seed *overfits* when it reached the threshold before the
step limit and its own test gap (test MSE at the stop over its phase-1
minimum) is at least ``min_test_gap``; the generalisation verdicts use those
seeds only. Phase 2 starts every arm from the seed's overfit weights:

* ``slingshot``: all weights x ``shrink_factor``, optimiser restarted;
* ``control``: nothing changed, the overfit run's optimiser state continued;
* ``optimizer_reset``: nothing changed, the optimiser restarted (separates
  the restart from the shrink);
* ``gradual_shrink``: the overfit run continued with the decoupled weight
  decay that multiplies the weights by ``shrink_factor`` over the
  ``retrain_steps`` (the same shrink spread over retraining instead of at once);
* ``shrink_perturb``: shrink and add noise (Ash & Adams), optimiser restarted;
* ``fresh``: a new initialisation;
* ``output_scale``: only the last layer scaled, so that the output RMS drops
  as much as the slingshot's (separates "smaller function" from "smaller
  weights").

Every arm trains ``retrain_steps`` (the essay's "few epochs": the comparison
*at the end*); then every member not yet back at its seed's overfit training
MSE trains on alone until it is (*recovered*: it freezes there) or until
``recovery_max_steps``. The comparison *at matched fit* reads each arm's test
error at its recovery.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .._history import SpectrumHistory
from .._shrink import shrink_
from ..ensemble import MLPEnsemble
from ._arms import (
    ARMS,
    BASELINES,
    COMPARISONS,
    CONTINUED,
    SPECTRAL_METRICS,
    TEST_METRICS,
    UNCHANGED,
    family,
)
from ._cache import reuse_or_compute
from ._config import CaseConfig, ClaimConfig
from ._kinds import kind_of
from ._parallel import Task, run_tasks
from ._stats import smallest_testable_n, verdict
from ._training import Trainer, mse, repeat_members, train_until_below

__all__ = [
    "ARMS",
    "BASELINES",
    "VERDICTS",
    "Case",
    "Trainer",
    "repeat_members",
    "run_cases",
    "train_mse",
]

#: The homogeneous negative control passes when the shrink changes no seed's HF fraction by more than this
#: (relative): a numerical tolerance (float64 measurement; 1.3e-6 measured), not the statistical margin.
NEGATIVE_CONTROL_TOLERANCE = 1e-4
#: Seed offsets for the fresh initialisations, the perturbations and the initial jitter, never a member's own seed.
FRESH_SEED_OFFSET = 1_000_003
PERTURB_SEED_OFFSET = 2_000_003
JITTER_SEED_OFFSET = 3_000_017
#: The version of what a case computes: a case file written by another version is recomputed, never reused.
#: 3: retraining until recovered, the gradual-shrink arm, per-seed overfitting, four-outcome verdicts.
CASE_DESIGN = 3
#: Calls of ``progress`` per case: one after phase 1, one after phase 2 (both at once for a cached case).
CASE_UNITS = 2
#: The synthetic cases' verdicts (the digits': ``kind_of("digits").verdicts``).
VERDICTS = kind_of("1d").verdicts

train_mse = mse


def case_verdicts(case: CaseConfig) -> dict[str, tuple[str, str, str]]:
    """The verdicts a case is tested on: name -> (metric, claim, reference), "claim < reference" by seed."""
    return kind_of(case.signal).verdicts


def jitter_ulps_(ensemble: MLPEnsemble, ulps: int, seeds: list[int]) -> MLPEnsemble:
    """Move every parameter of member ``e`` by ``ulps`` units in the last place, up or down by a coin of ``seeds[e]``.

    The replication check of the verdicts: a perturbation at the data type's
    resolution, drawn per member, so a seed's numbers still depend on its seed only.

    Examples
    --------
    >>> import torch
    >>> from spectral.ensemble import MLPEnsemble
    >>> ens = MLPEnsemble(1, members=2, width=4, depth=1, seeds=[0, 1])
    >>> before = [p.clone() for p in ens.parameters()]
    >>> moved = jitter_ulps_(ens, 1, [7, 8])
    >>> all(bool((a != b).all()) and torch.equal(torch.nextafter(b, a), a) for a, b in zip(ens.parameters(), before))
    True
    """
    with torch.no_grad():
        for member, seed in enumerate(seeds):
            generator = torch.Generator().manual_seed(int(seed))
            for parameter in ensemble.parameters():
                values = parameter[member]
                up = torch.rand(values.shape, generator=generator) < 0.5
                direction = torch.where(up, torch.inf, -torch.inf).to(values.dtype)
                for _ in range(ulps):
                    values.copy_(torch.nextafter(values, direction))
    return ensemble


class Case:
    """Everything one case needs: data per seed (training and validation), the measure, the seed-0 probe.

    Its kind (:func:`spectral.claim._kinds.kind_of` of ``case.signal``) sets
    them up: a synthetic case measures on the uniform grid of its signal with
    two windows; a digits case on held-out images and, by the filtering
    method, at its seeds' training inputs with two filter widths.
    """

    def __init__(self, case: CaseConfig, config: ClaimConfig, seeds: list[int], device: str = "cpu") -> None:
        self.case, self.config, self.seeds, self.device = case, config, seeds, torch.device(device)
        self.kind = kind_of(case.signal)
        self.spec = spec = config.signal(case)
        self.train_points = case.train_points or spec.train_points
        self.optimizer = case.optimizer
        self.learning_rate = config.learning_rate(case)
        self.noise_variance = spec.noise_variance
        self.overfit_threshold = config.training.overfit_ratio * self.noise_variance
        self.kind.setup(self)

    def ensemble(self, seeds: list[int], *, jitter: bool = True) -> MLPEnsemble:
        """Members initialised from ``seeds``; with ``jitter``, moved by ``training.init_jitter_ulps`` ULPs."""
        training = self.config.training
        ensemble = MLPEnsemble(self.in_features, members=len(seeds), width=training.width, depth=training.depth,
                               activation=self.case.activation, bias=self.case.bias,
                               constant_feature=not self.case.bias, omega_0=training.omega_0,
                               out_features=self.out_features, seeds=seeds)
        if jitter and training.init_jitter_ulps:
            jitter_ulps_(ensemble, training.init_jitter_ulps, [s + JITTER_SEED_OFFSET for s in seeds])
        return ensemble.to(self.device)

    def trainer(self, ensemble: MLPEnsemble, repeats: int = 1, weight_decay: Any = 0.0) -> Trainer:
        return Trainer(ensemble, repeat_members(self.x, repeats), repeat_members(self.y, repeats), self.learning_rate,
                       kind=self.optimizer, weight_decay=weight_decay)

    def validation_mse(self, ensemble: MLPEnsemble, repeats: int = 1) -> np.ndarray:
        return mse(ensemble, repeat_members(self.x_validation, repeats), repeat_members(self.y_validation, repeats))


@dataclass
class Overfit:
    """Phase 1's outcome: the overfit weights and optimiser state, the best-validation weights, the curves."""

    ensemble: MLPEnsemble
    trainer: Trainer
    best: MLPEnsemble
    summary: dict[str, Any]


def _keep_best(best: MLPEnsemble, current: MLPEnsemble, improved: np.ndarray) -> None:
    mask = torch.as_tensor(improved, device=next(best.parameters()).device)
    with torch.no_grad():
        for kept, now in zip(best.parameters(), current.parameters()):
            kept.copy_(torch.where(mask.reshape(-1, *([1] * (kept.ndim - 1))), now, kept))


def _overfit(case: Case, progress: Callable[[], None]) -> Overfit:
    """Phase 1: each seed trains until its own training MSE is below the threshold, then freezes.

    Every check records the active seeds' training, validation and test
    errors and keeps each seed's best-validation weights after step 0
    (``early_stop``: the untrained network is never the early-stopping pick).
    """
    training = case.config.training
    ensemble = case.ensemble(case.seeds)
    trainer = case.trainer(ensemble)
    best = copy.deepcopy(ensemble)
    best_validation = np.full(len(case.seeds), np.inf)
    curves: dict[str, list] = {"steps": [], "train_mse": [], "validation_mse": [], "test_mse": []}

    def check(step: int, active: np.ndarray, train: np.ndarray) -> None:
        nonlocal best_validation
        if active[0]:
            case.probe.update(ensemble.member(0), step)
        measured = {"train_mse": train, "validation_mse": case.validation_mse(ensemble),
                    "test_mse": case.measure(ensemble)["test_mse"]}
        for name, values in measured.items():
            curves[name].append(np.where(active, values, np.nan))
        curves["steps"].append(step)
        if step == 0:
            return
        improved = active & (measured["validation_mse"] < best_validation)
        best_validation = np.where(improved, measured["validation_mse"], best_validation)
        _keep_best(best, ensemble, improved)

    stop = train_until_below(trainer, case.overfit_threshold, max_steps=training.overfit_max_steps,
                             every=training.check_every, on_check=check, device=case.device)
    progress()
    return Overfit(ensemble, trainer, best, _phase1_summary(case, curves, stop, trainer.train_mse()))


def _phase1_summary(case: Case, curves: dict[str, list], stop: np.ndarray, final_mse: np.ndarray) -> dict[str, Any]:
    """Per seed: the stop, whether it reached the threshold, its test gap and whether it overfits (both)."""
    training = case.config.training
    test = np.stack(curves["test_mse"])  # (checks, seeds), NaN once a seed has stopped
    at_stop = test[np.searchsorted(curves["steps"], stop), np.arange(stop.size)]
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = at_stop / np.where(np.isfinite(test), test, np.inf).min(axis=0)
    gap = np.where(np.isfinite(gap) & (gap > 0), gap, np.nan)  # a seed with no finite test error has no gap
    reached = final_mse < case.overfit_threshold
    overfit_seeds = reached & (np.nan_to_num(gap, nan=0.0) >= training.min_test_gap)
    return {"steps": stop.tolist(), "train_mse": final_mse.tolist(), "threshold": case.overfit_threshold,
            "reached": reached.tolist(), "test_gap": gap.tolist(), "min_test_gap": training.min_test_gap,
            "overfit_seeds": overfit_seeds.tolist(), "seeds_overfitting": int(overfit_seeds.sum()),
            "min_overfit_fraction": training.min_overfit_fraction,
            "overfits": bool(overfit_seeds.mean() >= training.min_overfit_fraction),
            "curves": {"steps": curves["steps"], **{name: np.stack(curves[name]).tolist()
                                                    for name in ("train_mse", "validation_mse", "test_mse")}}}


def gradual_decay(shrink_factor: float, learning_rate: float, steps: int) -> float:
    """The decoupled weight decay that multiplies the weights by ``shrink_factor`` over ``steps`` steps.

    Decoupled decay multiplies the weights by ``1 - learning_rate * decay``
    every step, so ``(1 - learning_rate * decay)**steps = shrink_factor``.

    Examples
    --------
    >>> decay = gradual_decay(0.2, 0.01, 400)
    >>> round((1 - 0.01 * decay) ** 400, 12)
    0.2
    """
    return (1 - shrink_factor ** (1 / steps)) / learning_rate


def _arm_starts(case: Case, overfit: MLPEnsemble, before: dict[str, np.ndarray]) -> dict[str, MLPEnsemble]:
    """The starting weights of every arm of phase 2, all from the same overfit weights."""
    config = case.config
    slingshot = shrink_(copy.deepcopy(overfit), config.shrink_factor)
    noise = case.ensemble([s + PERTURB_SEED_OFFSET for s in case.seeds], jitter=False)
    perturbed = shrink_(copy.deepcopy(overfit), config.shrink_perturb.shrink)
    with torch.no_grad():
        for parameter, fresh in zip(perturbed.parameters(), noise.parameters()):
            parameter.add_(fresh, alpha=config.shrink_perturb.perturb)
    factors = case.measure(slingshot)["rms"] / before["rms"]
    output_scale = copy.deepcopy(overfit).scale_output_(np.nan_to_num(factors, nan=1.0))
    starts = {arm: copy.deepcopy(overfit) for arm in UNCHANGED}
    return {"slingshot": slingshot, **starts, "shrink_perturb": perturbed,
            "fresh": case.ensemble([s + FRESH_SEED_OFFSET for s in case.seeds], jitter=False),
            "output_scale": output_scale}


def _sweep_group(factor: float, config: ClaimConfig) -> str:
    """Which retrained group a sweep factor reads from."""
    if factor == config.shrink_factor:
        return "slingshot"
    return "optimizer_reset" if factor == 1.0 else f"sweep:{factor:g}"


def _checkpoints(training: Any) -> list[int]:
    """Steps of the fixed retraining at which everything is measured: the curve points and every recovery check."""
    curve = {round(i * training.retrain_steps / training.curve_points) for i in range(training.curve_points + 1)}
    return sorted(curve | set(range(0, training.retrain_steps + 1, training.check_every)))


def weight_norms(ensemble: MLPEnsemble) -> np.ndarray:
    """Every member's Euclidean norm over all its parameters, float64."""
    with torch.no_grad():
        squares = sum(p.detach().double().flatten(1).pow(2).sum(1) for p in ensemble.parameters())
    return squares.sqrt().cpu().numpy()


class Recovery:
    """Per member: the first check at which its training MSE is back at its seed's overfit training MSE.

    At that check the member's test metrics and weight norm are recorded; it
    is *recovered* from then on.
    """

    def __init__(self, case: Case, target: np.ndarray, norms: np.ndarray) -> None:
        self.case, self.target, self.norms = case, target, norms
        self.step = np.full(target.size, -1, dtype=np.int64)
        self.norm_ratio = np.full(target.size, np.nan)
        self.metrics: dict[str, np.ndarray] = {}

    @property
    def pending(self) -> np.ndarray:
        return self.step < 0

    def check(self, step: int, ensemble: MLPEnsemble, train: np.ndarray) -> None:
        new = np.flatnonzero(self.pending & (train <= self.target))
        if not new.size:
            return
        self.step[new] = step
        part = ensemble.select(new.tolist())
        self.norm_ratio[new] = weight_norms(part) / self.norms[new]
        for name, values in self.case.measure.test(part).items():
            self.metrics.setdefault(name, np.full(self.target.size, np.nan))[new] = values


def _retrain(case: Case, phase1: Overfit, progress: Callable[[], None]) -> dict[str, Any]:
    """Phase 2: every arm (and the sweep) retrained together, each member with its own optimiser state.

    All members train ``retrain_steps``; then each member not yet recovered
    trains on alone, checked every ``check_every`` steps, until it recovers
    or ``recovery_max_steps``.
    """
    config, training = case.config, case.config.training
    seeds = len(case.seeds)
    overfit = phase1.ensemble
    before = case.measure(overfit)
    before.update(train_mse=phase1.trainer.train_mse(), validation_mse=case.validation_mse(overfit))
    starts = _arm_starts(case, overfit, before)
    # Sweep factors equal to the slingshot's or to 1 (no shrink) are those arms already: not trained twice.
    sweep_factors = config.sweep.factors if config.sweep.case == case.case.id else []
    new_factors = [f for f in dict.fromkeys(sweep_factors) if _sweep_group(f, config) not in ARMS]
    parts = [starts[arm] for arm in ARMS] + [shrink_(copy.deepcopy(overfit), f) for f in new_factors]
    groups = list(ARMS) + [_sweep_group(f, config) for f in new_factors]
    everything = MLPEnsemble.concatenate(parts)
    decay = torch.zeros(len(groups), seeds)
    decay[groups.index("gradual_shrink")] = gradual_decay(config.shrink_factor, case.learning_rate,
                                                          training.retrain_steps)
    trainer = case.trainer(everything, len(parts), weight_decay=decay.flatten())
    continued = phase1.trainer.optimizer.select(list(range(seeds)))
    for arm in CONTINUED:
        index = groups.index(arm)
        trainer.optimizer.load(continued, slice(index * seeds, (index + 1) * seeds))
    # Each seed's own overfit training MSE (below the threshold where it reached it: matched fit is as tight as the
    # fit it is compared with). 1e-6 relative slack: the same weights in a larger batched matmul may round a last bit
    # differently, and the arms that start at the overfit weights must read recovered at step 0.
    target = np.tile(before["train_mse"] * (1 + 1e-6), len(groups))
    recovery = Recovery(case, target, np.tile(weight_norms(overfit), len(groups)))
    curves: dict[str, list] = {}
    done = 0
    checkpoints = _checkpoints(training)
    for step in checkpoints:
        trainer.run(step - done)
        done = step
        measured = case.measure(everything)
        measured.update(train_mse=trainer.train_mse(), validation_mse=case.validation_mse(everything, len(parts)))
        recovery.check(step, everything, measured["train_mse"])
        for name, values in measured.items():
            curves.setdefault(name, []).append(values)
        _probe_phase2(case, overfit, everything, phase1.summary["steps"][0], step)
    case.probe.snapshot(everything.member(0), "retrained", step=phase1.summary["steps"][0] + checkpoints[-1])
    progress()
    trainer.optimizer.weight_decay.zero_()  # the gradual shrink is spread over the fixed steps only
    while done < training.recovery_max_steps and recovery.pending.any():
        steps = min(training.check_every, training.recovery_max_steps - done)
        trainer.run(steps, torch.as_tensor(recovery.pending, device=case.device))
        done += steps
        recovery.check(done, everything, trainer.train_mse())
    by_group = {name: np.stack(values).reshape(len(checkpoints), len(groups), seeds) for name, values in curves.items()}
    return {"checkpoints": checkpoints, "groups": groups, "curves": by_group, "before": before,
            "early_stop": case.measure(phase1.best), "recovery": recovery,
            "output_scale_factors": (case.measure(starts["slingshot"])["rms"] / before["rms"]).tolist()}


def _probe_phase2(case: Case, overfit: MLPEnsemble, everything: MLPEnsemble, stop: int, step: int) -> None:
    if step == 0:
        case.probe.snapshot(overfit.member(0), "before shrink", step=stop)
        case.probe.snapshot(everything.member(0), "after shrink", step=stop)
    else:
        case.probe.update(everything.member(0), stop + step)


def _read_at(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    picked = values[np.maximum(index, 0), np.arange(index.size)]
    return np.where(index >= 0, picked, np.nan)


def _best_validation(curves: dict[str, np.ndarray], index: int, metric: str) -> np.ndarray:
    """``metric`` of group ``index`` at its best validation error during the fixed retraining."""
    test, validation = curves[metric][:, index], curves["validation_mse"][:, index]
    best = np.nanargmin(np.where(np.isfinite(validation), validation, np.inf), axis=0)
    return _read_at(test, np.where(np.isfinite(validation).any(axis=0), best, -1))


def _by_arm(values: np.ndarray, groups: list[str], seeds: int) -> dict[str, np.ndarray]:
    """A per-member array (groups x seeds, group-major) as one per-seed array per arm."""
    return {arm: values[groups.index(arm) * seeds:(groups.index(arm) + 1) * seeds] for arm in ARMS}


def _metrics(case: Case, phase2: dict[str, Any]) -> dict[str, dict[str, list]]:
    """Every metric per arm, one value per seed."""
    curves, groups, recovery = phase2["curves"], phase2["groups"], phase2["recovery"]
    seeds = len(case.seeds)
    index = {arm: groups.index(arm) for arm in ARMS}
    before, early = phase2["before"], phase2["early_stop"]
    metrics: dict[str, dict[str, Any]] = {}
    test_metrics = [name for name in TEST_METRICS if name in curves]
    per_window = [f"{name}:{window}" for name in ("hf_fraction", "hf_error") for window in ("primary", "alternate")]
    for name in [test_metrics[0], *per_window[:2], "train_mse", "validation_mse", *test_metrics[1:], *per_window[2:]]:
        if name not in curves:
            continue
        final = curves[name][-1]
        entry = {"overfit": before[name], "shrunk": curves[name][0, index["slingshot"]], **{arm: final[index[arm]] for arm in ARMS}}
        if name in early:
            entry["early_stop"] = early[name]
        metrics[name] = entry
    for metric in test_metrics:
        at = {"end": {arm: curves[metric][-1, index[arm]] for arm in ARMS},
              "matched_fit": _by_arm(recovery.metrics.get(metric, np.full(recovery.step.size, np.nan)), groups, seeds),
              "best_validation": {arm: _best_validation(curves, index[arm], metric) for arm in ARMS}}
        for comparison in COMPARISONS:
            metrics[f"{metric}@{comparison}"] = {**at[comparison], "early_stop": early[metric], "overfit": before[metric]}
    for window in ("primary", "alternate"):
        after = {band: curves[f"{band}_power:{window}"][0, index["slingshot"]] for band in ("low", "high")}
        with np.errstate(invalid="ignore", divide="ignore"):
            metrics[f"log_retention:{window}"] = {band: np.log(after[band] / before[f"{band}_power:{window}"])
                                                  for band in ("low", "high")}
    return {name: {arm: np.asarray(values, dtype=float).tolist() for arm, values in entry.items()}
            for name, entry in metrics.items()}


def _retrain_summary(case: Case, phase2: dict[str, Any]) -> dict[str, Any]:
    """Per arm and seed: the step of recovery (None: not within the cap) and the weight-norm ratio there."""
    recovery, groups, seeds = phase2["recovery"], phase2["groups"], len(case.seeds)
    steps = _by_arm(recovery.step, groups, seeds)
    return {"fixed_steps": case.config.training.retrain_steps,
            "recovery_max_steps": case.config.training.recovery_max_steps,
            "check_every": case.config.training.check_every,
            "target_train_mse": recovery.target[:seeds].tolist(),
            "recovered_step": {arm: [int(s) if s >= 0 else None for s in values] for arm, values in steps.items()},
            "weight_norm_ratio": {arm: [float(v) if np.isfinite(v) else None for v in values]
                                  for arm, values in _by_arm(recovery.norm_ratio, groups, seeds).items()}}


def _generalisation_reason(phase1: dict[str, Any], config: ClaimConfig) -> str | None:
    """Why a case's generalisation verdicts cannot be tested: too few of its seeds overfit."""
    if phase1["overfits"]:
        return None
    seeds = len(phase1["overfit_seeds"])
    return (f"case did not overfit: {phase1['seeds_overfitting']} of {seeds} seeds reached the threshold with a "
            f"test gap >= {phase1['min_test_gap']} (needs {config.training.min_overfit_fraction:.0%})")


def _unmatched_reason(claim: np.ndarray, reference: np.ndarray, names: tuple[str, str],
                      config: ClaimConfig) -> str | None:
    """Why a matched-fit comparison cannot be tested: too few overfit seeds got back to their overfit training error."""
    matched = [np.isfinite(values) for values in (claim, reference)]
    if np.sum(matched[0] & matched[1]) >= smallest_testable_n(config.alpha):
        return None
    counts = ", ".join(f"{arm} in {int(m.sum())}" for arm, m in zip(names, matched))
    return (f"too few overfit seeds returned to their overfit training error within "
            f"{config.training.recovery_max_steps} steps ({counts})")


def _verdicts(case: Case, metrics: dict[str, dict[str, list]], phase1: dict[str, Any]) -> dict[str, dict[str, Any]]:
    config = case.config
    criteria = {"alpha": config.alpha, "margin": config.min_relative_effect}
    overfit = np.array(phase1["overfit_seeds"], dtype=bool)
    verdicts = {}
    for name, (metric, claim, reference) in case_verdicts(case.case).items():
        if metric in SPECTRAL_METRICS:
            scale = "log" if metric == "log_retention" else "ratio"
            by_window = {window: verdict(metrics[f"{metric}:{window}"][claim], metrics[f"{metric}:{window}"][reference],
                                         family=family(name) if window == "primary" else "secondary", scale=scale,
                                         **criteria).to_dict()
                         for window in ("primary", "alternate")}
            result = by_window["primary"]
            result["alternate_window"] = by_window["alternate"]
        else:
            # generalisation: only the seeds that overfit (the others never had anything to recover from)
            pair = [np.where(overfit, np.array(metrics[metric][arm], dtype=float), np.nan) for arm in (claim, reference)]
            reason = _generalisation_reason(phase1, config)
            if reason is None and metric.endswith("@matched_fit"):
                reason = _unmatched_reason(*pair, (claim, reference), config)
            result = verdict(*pair, family=family(name), reason=reason, **criteria).to_dict()
        result.update(metric=metric, claim=claim, reference=reference)
        verdicts[name] = result
    return verdicts


def _sweep(case: Case, phase2: dict[str, Any]) -> dict[str, Any] | None:
    config, curves, groups = case.config, phase2["curves"], phase2["groups"]
    if config.sweep.case != case.case.id:
        return None
    index = [groups.index(_sweep_group(f, config)) for f in config.sweep.factors]
    return {"factors": list(config.sweep.factors),
            "hf_fraction_shrunk": curves["hf_fraction:primary"][0, index].tolist(),
            "hf_fraction": curves["hf_fraction:primary"][-1, index].tolist(),
            "test_mse": curves["test_mse"][-1, index].tolist()}


def _negative_control(metrics: dict[str, dict[str, list]]) -> dict[str, Any]:
    """A positively homogeneous net: the shrink scales the function, so its HF fraction must not change."""
    hf = metrics["hf_fraction:primary"]
    with np.errstate(invalid="ignore", divide="ignore"):
        change = np.abs(np.array(hf["shrunk"], dtype=float) / np.array(hf["overfit"], dtype=float) - 1)
    finite = change[np.isfinite(change)]
    if not finite.size:
        return {"max_relative_hf_change": None, "tolerance": NEGATIVE_CONTROL_TOLERANCE, "passed": None,
                "reason": "non-finite"}
    return {"max_relative_hf_change": float(finite.max()), "tolerance": NEGATIVE_CONTROL_TOLERANCE,
            "passed": bool(finite.max() < NEGATIVE_CONTROL_TOLERANCE), "reason": None}


def _summarise(case: Case, phase1: dict[str, Any], phase2: dict[str, Any]) -> dict[str, Any]:
    metrics = _metrics(case, phase2)
    curves, groups = phase2["curves"], phase2["groups"]
    arm_index = {arm: groups.index(arm) for arm in ARMS}
    result = {
        "id": case.case.id, **case.case.to_dict(), "optimizer": case.optimizer, "shrink_factor": case.config.shrink_factor,
        "seeds": case.seeds, "learning_rate": case.learning_rate, **case.kind.measurement(case),
        "overfit": phase1, "retrain": _retrain_summary(case, phase2), "metrics": metrics,
        "verdicts": _verdicts(case, metrics, phase1),
        "curves": {"steps": phase2["checkpoints"],
                   **{name.replace(":primary", ""): {arm: curves[name][:, arm_index[arm]].tolist() for arm in ARMS}
                      for name in case.kind.curve_names}},
        "output_scale_factors": phase2["output_scale_factors"], "sweep": _sweep(case, phase2),
    }
    if not case.case.bias and case.case.activation == "relu":
        result["negative_control"] = _negative_control(metrics)
    return result


def run_case(case: CaseConfig, config: ClaimConfig, seeds: list[int],
             progress: Callable[[], None] = lambda: None, device: str = "cpu") -> tuple[dict[str, Any], SpectrumHistory]:
    """Run one case; return its JSON-able result and seed 0's spectrum history."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # nothing below should draw from it; this makes sure nothing leaks in
        setup = Case(case, config, seeds, device)
        phase1 = _overfit(setup, progress)
        phase2 = _retrain(setup, phase1, progress)
    return _summarise(setup, phase1.summary, phase2), setup.probe.history


def case_inputs(case: CaseConfig, config: ClaimConfig, seeds: list[int]) -> dict[str, Any]:
    """What a case's result depends on (its cached file is reused only when this matches)."""
    ignored = ("cases", "signals", "precision", "scope", "scope_grid", "correction")
    relevant = {k: v for k, v in config.to_dict().items() if k not in ignored}
    return {"design": CASE_DESIGN, "case": case.to_dict(), "seeds": seeds, "signal": config.signal(case).to_dict(),
            "config": relevant}


def case_tasks(config: ClaimConfig, out: Path, device: str = "cpu") -> list[Task]:
    """One :func:`run_cached_case` task per case of ``config``, written to ``out/cases/<id>.json``."""
    seeds = list(range(config.seeds))
    return [Task(run_cached_case, (case, config, seeds, out / "cases" / f"{case.id}.json"), {"device": device})
            for case in config.cases]


def run_cases(config: ClaimConfig, out: Path, progress: Callable[[], None] = lambda: None,
              device: str = "cpu", *, workers: int = 1) -> list[dict[str, Any]]:
    """Run (or resume) every case of ``config``; each result is written atomically as it finishes.

    A case's JSON is written after its history and records the history's
    SHA-256, so a cached case is reused only when both files are whole and
    belong together and to the same inputs; anything else is recomputed.
    With ``workers`` > 1 the cases run in that many worker processes
    (:mod:`spectral.claim._parallel`), with the same numbers bit for bit.
    """
    return [done.result for done in run_tasks(case_tasks(config, out, device), workers, progress)]


def run_cached_case(case: CaseConfig, config: ClaimConfig, seeds: list[int], path: Path,
                    progress: Callable[[], None] = lambda: None, device: str = "cpu") -> dict[str, Any]:
    """One case, read from ``path`` when it was finished with the same inputs, else run and written there.

    The seed-0 history goes beside it (``<name>.history.npz``), written first;
    the case file records its SHA-256 (:mod:`spectral.claim._cache`).
    """
    def compute() -> tuple[dict[str, Any], Callable[[Path], Any]]:
        result, history = run_case(case, config, seeds, progress, device)
        return result, history.save

    return reuse_or_compute(path, case_inputs(case, config, seeds), compute, units=CASE_UNITS, progress=progress,
                            companion=path.with_suffix(".history.npz"))

"""The claim check: train until overfit, shrink, retrain, and compare with controls that isolate one cause each.

One *case* is a signal (1D or 2D), a network (activation, bias) and an
optimiser. All seeds of a case train together as one
:class:`~spectral.ensemble.MLPEnsemble`, and so do all arms of phase 2 and the
shrink-factor sweep; every member has its own optimiser state and stopping
point (:mod:`spectral.claim._training`), so a seed's numbers never depend on the
other seeds.

Phase 1 trains every seed until its own training MSE is below the overfit
threshold, recording its validation and test error on the way (the
``early_stop`` baseline is the checkpoint with the best validation error).
Phase 2 starts every arm from the seed's overfit weights:

* ``slingshot``: all weights x ``shrink_factor``, optimiser restarted;
* ``control``: nothing changed, the overfit run's optimiser state continued;
* ``optimizer_reset``: nothing changed, the optimiser restarted (separates
  the restart from the shrink);
* ``weight_decay``: the overfit run continued with decoupled weight decay
  (the standard regulariser that also shrinks weights);
* ``shrink_perturb``: shrink and add noise (Ash & Adams), optimiser restarted;
* ``fresh``: a new initialisation;
* ``output_scale``: only the last layer scaled, so that the output RMS drops
  as much as the slingshot's (separates "smaller function" from "smaller
  weights").
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .._filter_probe import FilterProbe
from .._grid import Grid
from .._history import SpectrumHistory
from .._probe import SpectrumProbe
from .._shrink import shrink_
from .._spectrum import frequency_magnitude, spectrum
from ..ensemble import MLPEnsemble
from ..signals import PlaneWaveSum, SineSum
from ._cache import reuse_or_compute
from ._config import CaseConfig, ClaimConfig, DigitsConfig, SignalConfig
from ._digits import FilterMeasure, split_digits
from ._parallel import Task, run_tasks
from ._stats import smallest_testable_n, verdict
from ._training import Trainer, evaluate64, mse, repeat_members, train_until_below

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

ARMS = ("slingshot", "control", "optimizer_reset", "weight_decay", "shrink_perturb", "fresh", "output_scale")
#: Compared with the slingshot but not retrained: the phase-1 checkpoint with the best validation error.
BASELINES = ("early_stop",)
#: Arms that continue the overfit run's optimiser state; the others restart it.
CONTINUED = ("control", "weight_decay")
#: Arms whose retraining starts from the overfit weights as they are.
UNCHANGED = ("control", "optimizer_reset", "weight_decay")
#: Seed offsets for the fresh initialisations and the perturbations, so they never equal a member's own seed.
FRESH_SEED_OFFSET = 1_000_003
PERTURB_SEED_OFFSET = 2_000_003
#: The two measurement choices every spectral number is taken under, and their config keys.
WINDOW_KEYS = {"primary": "window", "alternate": "alternate_window"}
#: Calls of ``progress`` per case: one after phase 1, one after phase 2 (both at once for a cached case).
CASE_UNITS = 2
#: Generalisation metrics, lower is better: test MSE (test loss for the digits), and the digits' error rate.
TEST_METRICS = ("test_mse", "test_error")
#: Where along retraining each arm's test error is read.
COMPARISONS = ("end", "matched_fit", "best_validation")

train_mse = mse


def _spectral_verdicts() -> dict[str, tuple[str, str, str]]:
    return {"shrink_removes_high_frequencies": ("hf_fraction", "shrunk", "overfit"),
            "shrink_removes_high_more_than_low": ("log_retention", "high", "low"),
            "slingshot_keeps_fewer_high_frequencies": ("hf_fraction", "slingshot", "control"),
            "fresh_keeps_fewer_high_frequencies": ("hf_fraction", "fresh", "control")}


def _real_data_spectral_verdicts() -> dict[str, tuple[str, str, str]]:
    # The share and retention verdicts as for the signals, from the filtering method's split (scale-free: a uniform
    # scaling of the function changes neither). The filtering method's HF error |y_high - h_high| / |y_high| is
    # not scale-free (a shrunk net's tiny output reads about 1 whatever its shape, the homogeneous net's too), so
    # it is compared only between retrained nets, which fit the same targets: "claim < reference" reads "the
    # control fits the targets' high-frequency part better than the slingshot (or a fresh start)".
    return {**_spectral_verdicts(),
            "slingshot_fits_high_frequencies_less": ("hf_error", "control", "slingshot"),
            "fresh_fits_high_frequencies_less": ("hf_error", "control", "fresh")}


def _generalisation_verdicts(metric: str = "test_mse", comparisons: tuple[str, ...] = COMPARISONS,
                             name_suffix: str = "") -> dict[str, tuple[str, str, str]]:
    verdicts = {}
    for comparison in comparisons:
        suffix = "" if comparison == "end" else f"_at_{comparison}"
        references = [arm for arm in ARMS + BASELINES if arm != "slingshot"]
        if comparison == "matched_fit":
            # Arms that start from the overfit weights unchanged are at the overfit fit from step 0: against all
            # three the comparison is "slingshot re-fitted vs the overfit net", one test, not three.
            references = ["overfit"] + [arm for arm in references if arm not in UNCHANGED + BASELINES]
        for reference in references:
            verdicts[f"slingshot_beats_{reference}{suffix}{name_suffix}"] = (f"{metric}@{comparison}", "slingshot",
                                                                             reference)
    return verdicts


#: verdict name -> (metric, claim, reference); the claim is "claim < reference", paired by seed.
SPECTRAL_VERDICTS = _spectral_verdicts()
#: Metrics taken under two measurement choices (windows, or filter widths): their verdicts are checked under both.
SPECTRAL_METRICS = ("hf_fraction", "hf_error", "log_retention")
VERDICTS = {**SPECTRAL_VERDICTS, **_generalisation_verdicts()}
#: The digits case: spectral verdicts on the filtering method's HF error, and test error rate beside test loss.
REAL_DATA_VERDICTS = {**_real_data_spectral_verdicts(), **_generalisation_verdicts(),
                      **_generalisation_verdicts("test_error", ("end",), "_on_test_error")}


def case_verdicts(case: CaseConfig) -> dict[str, tuple[str, str, str]]:
    """The verdicts a case is tested on: name -> (metric, claim, reference), "claim < reference" by seed."""
    return REAL_DATA_VERDICTS if case.signal == "digits" else VERDICTS


def make_signal(spec: SignalConfig) -> SineSum | PlaneWaveSum:
    """The signal a config's ``signals.<name>`` table describes."""
    kind = SineSum if spec.dims == 1 else PlaneWaveSum
    return kind(spec.frequencies, spec.amplitudes, spec.phases)


@dataclass
class Measure:
    """Test error and spectral band powers of every member of an ensemble, in one batched pass.

    The mean of each member's function is removed before windowing (an offset
    would otherwise leak into the lowest bins), and every spectral number is
    taken under two windows, so that a verdict can be checked for window
    dependence.
    """

    grid: Grid
    clean: torch.Tensor  # (N,) clean signal on the grid
    windows: dict[str, Any]  # "primary", "alternate": window specifications (scipy names, None for none)
    cutoff: float

    def __post_init__(self) -> None:
        self.points = torch.as_tensor(self.grid.points, dtype=torch.float64)
        magnitude = torch.as_tensor(frequency_magnitude(self.grid.shape, self.grid.extent))
        self.high = magnitude > self.cutoff
        self.low = (magnitude > 0) & ~self.high

    def outputs(self, ensemble: MLPEnsemble) -> torch.Tensor:
        """Every member's function on the grid, evaluated in float64 from its (float32) weights."""
        return evaluate64(ensemble, self.points)

    def bands(self, values: torch.Tensor, window: str = "primary") -> tuple[np.ndarray, np.ndarray]:
        """Power at ``0 < |f| <= cutoff`` and at ``|f| > cutoff``, per row, after removing each row's mean.

        Power as :func:`spectral.spectrum` gives it with ``scaling="power"``
        (Parseval: the bins sum to the mean square), under ``windows[window]``.
        """
        centred = values - values.mean(dim=1, keepdim=True)
        power = torch.as_tensor(spectrum(centred.reshape(-1, *self.grid.shape), extent=self.grid.extent,
                                         window=self.windows[window], ndim=self.grid.ndim, scaling="power").power)
        axes = tuple(range(1, power.ndim))
        return (torch.where(self.low, power, 0.0).sum(dim=axes).numpy(),
                torch.where(self.high, power, 0.0).sum(dim=axes).numpy())

    def __call__(self, ensemble: MLPEnsemble) -> dict[str, np.ndarray]:
        values = self.outputs(ensemble)
        finite = torch.isfinite(values).all(dim=1).numpy()
        values = torch.where(torch.isfinite(values), values, 0.0)
        result = {"test_mse": (values - self.clean).pow(2).mean(dim=1).numpy(),
                  "rms": values.pow(2).mean(dim=1).sqrt().numpy()}
        for name in self.windows:
            low, high = self.bands(values, name)
            total = low + high
            with np.errstate(invalid="ignore", divide="ignore"):
                result[f"hf_fraction:{name}"] = np.where(total > 0, high / np.where(total > 0, total, 1.0), np.nan)
            result[f"low_power:{name}"], result[f"high_power:{name}"] = low, high
        return {name: np.where(finite, value, np.nan) for name, value in result.items()}


class Case:
    """Everything one case needs: data per seed (training and validation), the measure, the seed-0 probe.

    A synthetic case (``1d``, ``2d``) measures on the uniform grid of its
    signal with two windows; the ``digits`` case measures on held-out images
    and, by the filtering method, at its seeds' training inputs with two
    filter widths (:mod:`spectral.claim._digits`).
    """

    def __init__(self, case: CaseConfig, config: ClaimConfig, seeds: list[int], device: str = "cpu") -> None:
        self.case, self.config, self.seeds, self.device = case, config, seeds, torch.device(device)
        self.spec = spec = config.signal(case)
        self.train_points = case.train_points or spec.train_points
        self.optimizer = case.optimizer
        self.learning_rate = config.learning_rate(case)
        self.noise_variance = spec.noise_variance
        self.overfit_threshold = config.training.overfit_ratio * self.noise_variance
        if case.signal == "digits":
            self._real_data(spec)
        else:
            self._synthetic(spec)

    def _synthetic(self, spec: SignalConfig) -> None:
        self.signal = make_signal(spec)
        self.in_features, self.out_features = spec.dims, 1
        self.grid = Grid.uniform(spec.grid if spec.dims == 1 else (spec.grid, spec.grid))
        self.cutoff = self.signal.max_frequency + spec.cutoff_margin
        fitted = self.train_points
        samples = [self.signal.sample(fitted + spec.validation_points, noise=spec.noise, seed=s) for s in self.seeds]
        x = torch.tensor(np.stack([x for x, _ in samples]), dtype=torch.float32, device=self.device)
        y = torch.tensor(np.stack([y for _, y in samples]), dtype=torch.float32, device=self.device)
        self.x, self.y = x[:, :fitted], y[:, :fitted]
        self.x_validation, self.y_validation = x[:, fitted:], y[:, fitted:]
        windows = {name: getattr(self.config, key) for name, key in WINDOW_KEYS.items()}
        self.measure = Measure(self.grid, torch.as_tensor(self.signal(self.grid.points)), windows, self.cutoff)
        self.probe = SpectrumProbe(self.grid, target=self.signal, window=self.config.window)

    def _real_data(self, spec: DigitsConfig) -> None:
        data = split_digits(spec, self.train_points, self.seeds, self.device)
        self.in_features, self.out_features = data.x.shape[2], data.y.shape[2]
        self.x, self.y, self.x_validation, self.y_validation = data.x, data.y, data.x_validation, data.y_validation
        self.widths = {"primary": spec.filter_width, "alternate": spec.alternate_filter_width}
        self.measure = FilterMeasure(data, self.widths)
        self.probe = FilterProbe(data.x[0], data.y[0], list(self.widths.values()))

    def ensemble(self, seeds: list[int]) -> MLPEnsemble:
        training = self.config.training
        return MLPEnsemble(self.in_features, members=len(seeds), width=training.width, depth=training.depth,
                           activation=self.case.activation, bias=self.case.bias,
                           constant_feature=not self.case.bias, omega_0=training.omega_0,
                           out_features=self.out_features, seeds=seeds).to(self.device)

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
    errors and keeps each seed's best-validation weights (``early_stop``).
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
        improved = active & (measured["validation_mse"] < best_validation)
        best_validation = np.where(improved, measured["validation_mse"], best_validation)
        _keep_best(best, ensemble, improved)

    stop = train_until_below(trainer, case.overfit_threshold, max_steps=training.overfit_max_steps,
                             every=training.check_every, on_check=check, device=case.device)
    progress()
    return Overfit(ensemble, trainer, best, _phase1_summary(case, curves, stop, trainer.train_mse()))


def _phase1_summary(case: Case, curves: dict[str, list], stop: np.ndarray, final_mse: np.ndarray) -> dict[str, Any]:
    test = np.stack(curves["test_mse"])  # (checks, seeds), NaN once a seed has stopped
    at_stop = test[np.searchsorted(curves["steps"], stop), np.arange(stop.size)]
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = at_stop / np.where(np.isfinite(test), test, np.inf).min(axis=0)
    minimum = case.config.training.min_test_gap
    gap = np.where(np.isfinite(gap) & (gap > 0), gap, np.nan)  # a seed with no finite test error has no gap
    finite_gap = gap[np.isfinite(gap)]
    overfits = bool(finite_gap.size and np.median(finite_gap) >= minimum)
    return {"steps": stop.tolist(), "train_mse": final_mse.tolist(), "threshold": case.overfit_threshold,
            "reached": (final_mse < case.overfit_threshold).tolist(), "test_gap": gap.tolist(),
            "min_test_gap": minimum, "overfits": overfits,
            "seeds_overfitting": int(np.sum(finite_gap >= minimum)),
            "curves": {"steps": curves["steps"], **{name: np.stack(curves[name]).tolist()
                                                    for name in ("train_mse", "validation_mse", "test_mse")}}}


def _arm_starts(case: Case, overfit: MLPEnsemble, before: dict[str, np.ndarray]) -> dict[str, MLPEnsemble]:
    """The starting weights of every arm of phase 2, all from the same overfit weights."""
    config = case.config
    slingshot = shrink_(copy.deepcopy(overfit), config.shrink_factor)
    noise = case.ensemble([s + PERTURB_SEED_OFFSET for s in case.seeds])
    perturbed = shrink_(copy.deepcopy(overfit), config.shrink_perturb.shrink)
    with torch.no_grad():
        for parameter, fresh in zip(perturbed.parameters(), noise.parameters()):
            parameter.add_(fresh, alpha=config.shrink_perturb.perturb)
    factors = case.measure(slingshot)["rms"] / before["rms"]
    output_scale = copy.deepcopy(overfit).scale_output_(np.nan_to_num(factors, nan=1.0))
    starts = {arm: copy.deepcopy(overfit) for arm in ("control", "optimizer_reset", "weight_decay")}
    return {"slingshot": slingshot, **starts, "shrink_perturb": perturbed,
            "fresh": case.ensemble([s + FRESH_SEED_OFFSET for s in case.seeds]), "output_scale": output_scale}


def _sweep_group(factor: float, config: ClaimConfig) -> str:
    """Which retrained group a sweep factor reads from."""
    if factor == config.shrink_factor:
        return "slingshot"
    return "optimizer_reset" if factor == 1.0 else f"sweep:{factor:g}"


def _checkpoints(training: dict[str, Any]) -> list[int]:
    return sorted({round(i * training.retrain_steps / training.curve_points)
                   for i in range(training.curve_points + 1)})


def _retrain(case: Case, phase1: Overfit, progress: Callable[[], None]) -> dict[str, Any]:
    """Phase 2: every arm (and the sweep) retrained together, each member with its own optimiser state."""
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
    decay[groups.index("weight_decay")] = config.weight_decay
    trainer = case.trainer(everything, len(parts), weight_decay=decay.flatten())
    continued = phase1.trainer.optimizer.select(list(range(seeds)))
    for arm in CONTINUED:
        index = groups.index(arm)
        trainer.optimizer.load(continued, slice(index * seeds, (index + 1) * seeds))
    curves: dict[str, list] = {}
    done = 0
    checkpoints = _checkpoints(training)
    for step in checkpoints:
        trainer.run(step - done)
        done = step
        measured = case.measure(everything)
        measured.update(train_mse=trainer.train_mse(), validation_mse=case.validation_mse(everything, len(parts)))
        for name, values in measured.items():
            curves.setdefault(name, []).append(values)
        _probe_phase2(case, overfit, everything, phase1.summary["steps"][0], step)
    case.probe.snapshot(everything.member(0), "retrained", step=phase1.summary["steps"][0] + checkpoints[-1])
    progress()
    by_group = {name: np.stack(values).reshape(len(checkpoints), len(groups), seeds) for name, values in curves.items()}
    return {"checkpoints": checkpoints, "groups": groups, "curves": by_group, "before": before,
            "early_stop": case.measure(phase1.best),
            "output_scale_factors": (case.measure(starts["slingshot"])["rms"] / before["rms"]).tolist()}


def _probe_phase2(case: Case, overfit: MLPEnsemble, everything: MLPEnsemble, stop: int, step: int) -> None:
    if step == 0:
        case.probe.snapshot(overfit.member(0), "before shrink", step=stop)
        case.probe.snapshot(everything.member(0), "after shrink", step=stop)
    else:
        case.probe.update(everything.member(0), stop + step)


def _first_below(train: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Index of the first checkpoint whose training MSE is at most ``threshold`` (per column), -1 if none."""
    below = train <= threshold
    return np.where(below.any(axis=0), below.argmax(axis=0), -1)


def _read_at(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    picked = values[np.maximum(index, 0), np.arange(index.size)]
    return np.where(index >= 0, picked, np.nan)


def _test_at(curves: dict[str, np.ndarray], index: int, threshold: np.ndarray,
             metric: str = "test_mse") -> dict[str, np.ndarray]:
    """``metric`` of group ``index`` at the end, at matched training fit and at its best validation error.

    Matched fit: the first checkpoint whose training MSE is back at ``threshold`` (per seed: the overfit
    threshold, or the seed's own training MSE at the stop where phase 1 ended above it).
    """
    test, train, validation = (curves[name][:, index] for name in (metric, "train_mse", "validation_mse"))
    best = np.nanargmin(np.where(np.isfinite(validation), validation, np.inf), axis=0)
    return {"end": test[-1], "matched_fit": _read_at(test, _first_below(train, threshold)),
            "best_validation": _read_at(test, np.where(np.isfinite(validation).any(axis=0), best, -1))}


def _metrics(case: Case, phase2: dict[str, Any]) -> dict[str, dict[str, list]]:
    """Every metric per arm, one value per seed."""
    curves, groups = phase2["curves"], phase2["groups"]
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
    # 1e-6 relative slack: the same weights in a larger batched matmul may round a last bit differently
    fit = np.maximum(case.overfit_threshold, before["train_mse"]) * (1 + 1e-6)
    for metric in test_metrics:
        at = {arm: _test_at(curves, index[arm], fit, metric) for arm in ARMS}
        for comparison in COMPARISONS:
            metrics[f"{metric}@{comparison}"] = {**{arm: at[arm][comparison] for arm in ARMS},
                                                 "early_stop": early[metric], "overfit": before[metric]}
    for window in ("primary", "alternate"):
        after = {band: curves[f"{band}_power:{window}"][0, index["slingshot"]] for band in ("low", "high")}
        with np.errstate(invalid="ignore", divide="ignore"):
            metrics[f"log_retention:{window}"] = {band: np.log(after[band] / before[f"{band}_power:{window}"])
                                                  for band in ("low", "high")}
    return {name: {arm: np.asarray(values, dtype=float).tolist() for arm, values in entry.items()}
            for name, entry in metrics.items()}


def _generalisation_reason(phase1: dict[str, Any]) -> str | None:
    if phase1["overfits"]:
        return None
    gap = np.array(phase1["test_gap"], dtype=float)
    if not np.isfinite(gap).any():
        return "non-finite: no seed has a finite test error in phase 1"
    return f"case did not overfit (median test gap {np.median(gap[np.isfinite(gap)]):.2f} < {phase1['min_test_gap']})"


def _unmatched_reason(values: dict[str, list], arms: tuple[str, str], config: ClaimConfig) -> str | None:
    """Why a matched-fit comparison cannot be tested: too few seeds got back to their overfit training error."""
    matched = [np.isfinite(np.array(values[arm], dtype=float)) for arm in arms]
    if np.sum(matched[0] & matched[1]) >= smallest_testable_n(config.alpha):
        return None
    counts = ", ".join(f"{arm} in {int(m.sum())}/{m.size} seeds" for arm, m in zip(arms, matched))
    return f"too few seeds returned to their overfit training error within retraining ({counts})"


def _verdicts(case: Case, metrics: dict[str, dict[str, list]], phase1: dict[str, Any]) -> dict[str, dict[str, Any]]:
    config = case.config
    verdicts = {}
    for name, (metric, claim, reference) in case_verdicts(case.case).items():
        if metric in SPECTRAL_METRICS:
            by_window = {window: verdict(metrics[f"{metric}:{window}"][claim], metrics[f"{metric}:{window}"][reference],
                                         config, log_scale=metric == "log_retention")
                         for window in ("primary", "alternate")}
            result = by_window["primary"]
            result["alternate_window"] = by_window["alternate"]
        else:
            reason = _generalisation_reason(phase1)
            if reason is None and metric.endswith("@matched_fit"):
                reason = _unmatched_reason(metrics[metric], (claim, reference), config)
            result = verdict(metrics[metric][claim], metrics[metric][reference], config, reason=reason)
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


def _negative_control(metrics: dict[str, dict[str, list]], config: ClaimConfig) -> dict[str, Any]:
    """A positively homogeneous net: the shrink scales the function, so its HF fraction must not change."""
    hf = metrics["hf_fraction:primary"]
    with np.errstate(invalid="ignore", divide="ignore"):
        change = np.abs(np.array(hf["shrunk"], dtype=float) / np.array(hf["overfit"], dtype=float) - 1)
    finite = change[np.isfinite(change)]
    if not finite.size:
        return {"max_relative_hf_change": None, "passed": None, "reason": "non-finite"}
    return {"max_relative_hf_change": float(finite.max()), "passed": bool(finite.max() < config.min_relative_effect),
            "reason": None}


def _summarise(case: Case, phase1: dict[str, Any], phase2: dict[str, Any]) -> dict[str, Any]:
    metrics = _metrics(case, phase2)
    curves, groups = phase2["curves"], phase2["groups"]
    arm_index = {arm: groups.index(arm) for arm in ARMS}
    if case.case.signal == "digits":
        measurement = {"train_points": case.train_points, "filter_widths": case.widths,
                       "label_noise": case.spec.label_noise, "test_points": case.spec.test_points,
                       "noise_variance": case.noise_variance}
        names = ("test_mse", "test_error", "hf_error:primary", "hf_fraction:primary", "train_mse", "validation_mse")
    else:
        measurement = {"cutoff": case.cutoff, "signal_max_frequency": case.signal.max_frequency,
                       "noise_variance": case.noise_variance,
                       "windows": {name: case.config.to_dict()[key] for name, key in WINDOW_KEYS.items()}}
        names = ("test_mse", "hf_fraction:primary", "train_mse", "validation_mse")
    result = {
        "id": case.case.id, **case.case.to_dict(), "optimizer": case.optimizer, "shrink_factor": case.config.shrink_factor,
        "seeds": case.seeds, "learning_rate": case.learning_rate, **measurement,
        "overfit": phase1, "metrics": metrics, "verdicts": _verdicts(case, metrics, phase1),
        "curves": {"steps": phase2["checkpoints"],
                   **{name.replace(":primary", ""): {arm: curves[name][:, arm_index[arm]].tolist() for arm in ARMS}
                      for name in names}},
        "output_scale_factors": phase2["output_scale_factors"], "sweep": _sweep(case, phase2),
    }
    if not case.case.bias and case.case.activation == "relu":
        result["negative_control"] = _negative_control(metrics, case.config)
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
    return {"case": case.to_dict(), "seeds": seeds, "signal": config.signal(case).to_dict(), "config": relevant}


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

"""The claim check: train until overfit, shrink, retrain, and compare with controls.

One *case* is a signal (1D or 2D) and a network (activation, bias). All seeds
of a case train together as one :class:`~spectral.ensemble.MLPEnsemble`, and
so do all arms of phase 2 and the shrink-factor sweep, so a case costs a few
batched training runs whatever the number of seeds.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ._config import case_id
from ._grid import Grid
from ._history import SpectrumHistory
from ._io import read_json, write_json
from ._probe import SpectrumProbe
from ._shrink import shrink_
from ._spectrum import fourier, frequency_magnitude, high_frequency_fraction, window_array
from ._stats import paired_verdict
from .ensemble import MLPEnsemble
from .signals import PlaneWaveSum, SineSum

ARMS = ("slingshot", "control", "shrink_perturb", "fresh", "output_scale")
#: Seed offsets for the fresh initialisations, so they never equal a member's own seed.
FRESH_SEED_OFFSET = 1_000_003
PERTURB_SEED_OFFSET = 2_000_003

#: verdict name -> (metric, claim arm, reference arm); the claim is "claim < reference".
VERDICTS = {
    "shrink_removes_high_frequencies": ("hf_fraction", "shrunk", "overfit"),
    "slingshot_beats_control": ("test_mse", "slingshot", "control"),
    "slingshot_beats_shrink_perturb": ("test_mse", "slingshot", "shrink_perturb"),
    "slingshot_beats_fresh": ("test_mse", "slingshot", "fresh"),
    "slingshot_beats_output_scale": ("test_mse", "slingshot", "output_scale"),
    "slingshot_keeps_fewer_high_frequencies": ("hf_fraction", "slingshot", "control"),
}


def make_signal(spec: dict[str, Any], name: str) -> SineSum | PlaneWaveSum:
    """The signal a config's ``signals.<name>`` table describes."""
    kind = SineSum if name == "1d" else PlaneWaveSum
    return kind(spec["frequencies"], spec["amplitudes"], spec["phases"])


def config_digest(data: Any) -> str:
    """Stable hash of JSON-able data: a finished case is reused only if its inputs match."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Measure:
    """Test error and high-frequency fraction of every member of an ensemble, in one batched pass."""

    grid: Grid
    clean: torch.Tensor  # (N,) clean signal on the grid
    window: torch.Tensor | None
    cutoff: float

    def __post_init__(self) -> None:
        self.points = torch.as_tensor(self.grid.points, dtype=torch.float32)
        self.magnitude = frequency_magnitude(self.grid.shape, self.grid.extent)

    def outputs(self, ensemble: MLPEnsemble) -> torch.Tensor:
        parameter = next(ensemble.parameters())
        with torch.no_grad():
            return ensemble(self.points.to(parameter.device, parameter.dtype)).to(torch.float64).cpu()

    def __call__(self, ensemble: MLPEnsemble) -> dict[str, np.ndarray]:
        values = self.outputs(ensemble)
        finite = torch.isfinite(values).all(dim=1)
        test_mse = (values - self.clean).pow(2).mean(dim=1)
        power = fourier(values.reshape(-1, *self.grid.shape), self.grid.ndim, self.window)[1].numpy()
        hf = high_frequency_fraction(power, self.magnitude, self.cutoff)
        return {"test_mse": np.where(finite, test_mse.numpy(), np.nan), "hf_fraction": np.where(finite, hf, np.nan),
                "rms": values.pow(2).mean(dim=1).sqrt().numpy()}


def adam(parameters: list[torch.nn.Parameter], learning_rate: float) -> torch.optim.Adam:
    """Adam with the fused kernel where this torch has it for these tensors (several times faster on CPU)."""
    try:
        return torch.optim.Adam(parameters, lr=learning_rate, fused=True)
    except RuntimeError:  # fused Adam on CPU needs torch >= 2.4
        return torch.optim.Adam(parameters, lr=learning_rate, foreach=True)


class Trainer:
    """Full-batch Adam on the sum of per-member mean squared errors."""

    def __init__(self, ensemble: MLPEnsemble, x: torch.Tensor, y: torch.Tensor, learning_rate: float) -> None:
        self.ensemble, self.x, self.y = ensemble, x, y
        self.optimizer = adam(list(ensemble.parameters()), learning_rate)

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.optimizer.zero_grad(set_to_none=True)
            (self.ensemble(self.x) - self.y).pow(2).mean(dim=1).sum().backward()
            self.optimizer.step()

    def train_mse(self) -> np.ndarray:
        return train_mse(self.ensemble, self.x, self.y)


def train_mse(ensemble: MLPEnsemble, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Every member's mean squared error on its training data, float64."""
    with torch.no_grad():
        return (ensemble(x) - y).pow(2).mean(dim=1).double().cpu().numpy()


def repeat_members(tensor: torch.Tensor, times: int) -> torch.Tensor:
    return tensor.repeat(times, *([1] * (tensor.ndim - 1)))


class Case:
    """Everything one case needs: data per seed, the grid, the measure, the seed-0 probe."""

    def __init__(self, case: dict[str, Any], config: dict[str, Any], seeds: list[int]) -> None:
        self.case, self.config, self.seeds = case, config, seeds
        spec = config["signals"][case["signal"]]
        self.signal = make_signal(spec, case["signal"])
        self.noise_variance = spec["noise"] ** 2
        self.overfit_threshold = config["training"]["overfit_ratio"] * self.noise_variance
        self.learning_rate = config["training"]["learning_rate"][case["activation"]]
        ndim = 1 if case["signal"] == "1d" else 2
        self.grid = Grid.uniform(spec["grid"] if ndim == 1 else (spec["grid"], spec["grid"]))
        self.cutoff = self.signal.max_frequency + spec["cutoff_margin"]
        samples = [self.signal.sample(spec["train_points"], noise=spec["noise"], seed=s) for s in seeds]
        self.x = torch.tensor(np.stack([x for x, _ in samples]), dtype=torch.float32)
        self.y = torch.tensor(np.stack([y for _, y in samples]), dtype=torch.float32)
        window = window_array(config["window"], self.grid.shape)
        self.measure = Measure(self.grid, torch.as_tensor(self.signal(self.grid.points)),
                               None if window is None else torch.as_tensor(window), self.cutoff)
        self.probe = SpectrumProbe(self.grid, target=self.signal, window=config["window"])

    def ensemble(self, seeds: list[int]) -> MLPEnsemble:
        training = self.config["training"]
        return MLPEnsemble(self.grid.ndim, members=len(seeds), width=training["width"], depth=training["depth"],
                           activation=self.case["activation"], bias=self.case["bias"],
                           constant_feature=not self.case["bias"], omega_0=training["omega_0"], seeds=seeds)


def _overfit(case: Case, progress: Callable[[], None]) -> tuple[MLPEnsemble, dict[str, Any]]:
    """Phase 1: train until every seed's training MSE is below ``overfit_ratio`` x noise variance."""
    training = case.config["training"]
    ensemble = case.ensemble(case.seeds)
    trainer = Trainer(ensemble, case.x, case.y, case.learning_rate)
    threshold = case.overfit_threshold
    step = 0
    while True:
        case.probe.update(ensemble.member(0), step)
        mse = trainer.train_mse()
        if step >= training["overfit_max_steps"] or np.all(mse < threshold):
            break
        trainer.run(training["check_every"])
        step += training["check_every"]
    progress()
    return ensemble, {"steps": step, "train_mse": mse.tolist(), "threshold": threshold,
                      "reached": (mse < threshold).tolist()}


def _arm_starts(case: Case, overfit: MLPEnsemble, before: dict[str, np.ndarray]) -> dict[str, MLPEnsemble]:
    """The starting weights of every arm of phase 2, all from the same overfit weights."""
    config = case.config
    slingshot = shrink_(copy.deepcopy(overfit), config["shrink_factor"])
    perturbed = shrink_(copy.deepcopy(overfit), config["shrink_perturb"]["shrink"])
    noise = case.ensemble([s + PERTURB_SEED_OFFSET for s in case.seeds])
    with torch.no_grad():
        for parameter, fresh in zip(perturbed.parameters(), noise.parameters()):
            parameter.add_(fresh, alpha=config["shrink_perturb"]["perturb"])
    factors = case.measure(slingshot)["rms"] / before["rms"]
    output_scale = copy.deepcopy(overfit).scale_output_(np.nan_to_num(factors, nan=1.0))
    return {"slingshot": slingshot, "control": copy.deepcopy(overfit), "shrink_perturb": perturbed,
            "fresh": case.ensemble([s + FRESH_SEED_OFFSET for s in case.seeds]), "output_scale": output_scale}


def _sweep_group(factor: float, config: dict[str, Any]) -> str:
    """Which retrained group a sweep factor reads from."""
    if factor == config["shrink_factor"]:
        return "slingshot"
    return "control" if factor == 1.0 else f"sweep:{factor:g}"


def _retrain(case: Case, overfit: MLPEnsemble, phase1_steps: int, progress: Callable[[], None]) -> dict[str, Any]:
    """Phase 2: every arm (and the sweep) retrained together with a fresh optimiser."""
    config, training = case.config, case.config["training"]
    seeds = len(case.seeds)
    before = case.measure(overfit)
    starts = _arm_starts(case, overfit, before)
    # Sweep factors equal to the slingshot's or to 1 (no shrink) are those arms already: not trained twice.
    sweep_factors = config["sweep"]["factors"] if config["sweep"]["case"] == case_id(case.case) else []
    new_factors = [f for f in dict.fromkeys(sweep_factors) if _sweep_group(f, config) not in ARMS]
    parts = [starts[arm] for arm in ARMS] + [shrink_(copy.deepcopy(overfit), f) for f in new_factors]
    groups = list(ARMS) + [_sweep_group(f, config) for f in new_factors]
    everything = MLPEnsemble.concatenate(parts)
    trainer = Trainer(everything, repeat_members(case.x, len(parts)), repeat_members(case.y, len(parts)), case.learning_rate)
    checkpoints = sorted({round(i * training["retrain_steps"] / training["curve_points"])
                          for i in range(training["curve_points"] + 1)})
    curves: dict[str, list] = {"test_mse": [], "hf_fraction": [], "train_mse": []}
    done = 0
    for step in checkpoints:
        trainer.run(step - done)
        done = step
        measured = case.measure(everything)
        curves["test_mse"].append(measured["test_mse"])
        curves["hf_fraction"].append(measured["hf_fraction"])
        curves["train_mse"].append(trainer.train_mse())
        if step == 0:
            case.probe.snapshot(overfit.member(0), "before shrink", step=phase1_steps)
            case.probe.snapshot(everything.member(0), "after shrink", step=phase1_steps)
        else:
            case.probe.update(everything.member(0), phase1_steps + step)
    case.probe.snapshot(everything.member(0), "retrained", step=phase1_steps + checkpoints[-1])
    progress()
    by_group = {name: np.stack(values).reshape(len(checkpoints), len(groups), seeds) for name, values in curves.items()}
    return {"checkpoints": checkpoints, "groups": groups, "curves": by_group, "before": before,
            "output_scale_factors": (case.measure(starts["slingshot"])["rms"] / before["rms"]).tolist()}


def _transient(curves: dict[str, np.ndarray], checkpoints: list[int], config: dict[str, Any]) -> dict[str, Any]:
    """Slingshot vs control test MSE at every checkpoint: a gain that fades is early stopping."""
    test = curves["test_mse"]
    verdicts = [paired_verdict(test[i, 0], test[i, 1], alpha=config["alpha"],
                               min_relative_effect=config["min_relative_effect"],
                               resamples=config["bootstrap_resamples"], seed=i) for i in range(len(checkpoints))]
    holds = [step for step, verdict in zip(checkpoints, verdicts) if verdict["holds"]]
    at_end = bool(verdicts[-1]["holds"])
    kind = "lasting" if at_end else ("transient" if holds else "none")
    return {"steps": checkpoints, "effect": [v["effect"] for v in verdicts],
            "holds": [v["holds"] for v in verdicts], "holds_at_steps": holds, "kind": kind}


def _summarise(case: Case, phase1: dict[str, Any], phase2: dict[str, Any]) -> dict[str, Any]:
    config = case.config
    curves, groups = phase2["curves"], phase2["groups"]
    arm_index = {arm: groups.index(arm) for arm in ARMS}
    metrics: dict[str, dict[str, list]] = {}
    for name in ("hf_fraction", "test_mse", "train_mse"):
        final = curves[name][-1]
        entry = {"overfit": (phase2["before"][name] if name != "train_mse" else np.array(phase1["train_mse"])).tolist(),
                 "shrunk": curves[name][0, arm_index["slingshot"]].tolist()}
        entry.update({arm: final[arm_index[arm]].tolist() for arm in ARMS})
        metrics[name] = entry
    verdicts = {}
    for number, (name, (metric, claim, reference)) in enumerate(VERDICTS.items()):
        verdicts[name] = paired_verdict(metrics[metric][claim], metrics[metric][reference], alpha=config["alpha"],
                                        min_relative_effect=config["min_relative_effect"],
                                        resamples=config["bootstrap_resamples"], seed=number)
        verdicts[name].update(metric=metric, claim=claim, reference=reference)
    sweep = None
    if config["sweep"]["case"] == case_id(case.case):
        index = [groups.index(_sweep_group(f, config)) for f in config["sweep"]["factors"]]
        sweep = {"factors": config["sweep"]["factors"],
                 "hf_fraction_shrunk": curves["hf_fraction"][0, index].tolist(),
                 "hf_fraction": curves["hf_fraction"][-1, index].tolist(),
                 "test_mse": curves["test_mse"][-1, index].tolist()}
    result = {
        "id": case_id(case.case), **case.case, "shrink_factor": config["shrink_factor"], "seeds": case.seeds,
        "cutoff": case.cutoff, "signal_max_frequency": case.signal.max_frequency,
        "noise_variance": case.noise_variance, "overfit": phase1,
        "metrics": metrics, "verdicts": verdicts,
        "transient": _transient(curves, phase2["checkpoints"], config),
        "curves": {"steps": phase2["checkpoints"],
                   **{name: {arm: curves[name][:, arm_index[arm]].tolist() for arm in ARMS} for name in curves}},
        "output_scale_factors": phase2["output_scale_factors"], "sweep": sweep,
    }
    if not case.case["bias"] and case.case["activation"] == "relu":
        change = np.abs(np.array(metrics["hf_fraction"]["shrunk"]) / np.array(metrics["hf_fraction"]["overfit"]) - 1)
        result["negative_control"] = {"max_relative_hf_change": float(np.nanmax(change)),
                                      "passed": bool(np.nanmax(change) < config["min_relative_effect"])}
    return result


def run_case(case: dict[str, Any], config: dict[str, Any], seeds: list[int],
             progress: Callable[[], None] = lambda: None) -> tuple[dict[str, Any], SpectrumHistory]:
    """Run one case; return its JSON-able result and seed 0's spectrum history."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # nothing below should draw from it; this makes sure nothing leaks in
        setup = Case(case, config, seeds)
        overfit, phase1 = _overfit(setup, progress)
        phase2 = _retrain(setup, overfit, phase1["steps"], progress)
    return _summarise(setup, phase1, phase2), setup.probe.history


def case_inputs(case: dict[str, Any], config: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    """What a case's result depends on (its cached file is reused only when this matches)."""
    relevant = {k: v for k, v in config.items() if k not in ("cases", "signals", "precision")}
    return {"case": case, "seeds": seeds, "signal": config["signals"][case["signal"]], "config": relevant}


def run_cases(config: dict[str, Any], out: Path, progress: Callable[[], None] = lambda: None) -> list[dict[str, Any]]:
    """Run (or resume) every case of ``config``; each result is written atomically as it finishes."""
    seeds = list(range(config["seeds"]))
    results = []
    for case in config["cases"]:
        inputs = case_inputs(case, config, seeds)
        digest = config_digest(inputs)
        path = out / "cases" / f"{case_id(case)}.json"
        cached = read_json(path) if path.is_file() else None
        if cached is not None and cached.get("digest") == digest:
            progress()
            progress()
            results.append(cached["result"])
            continue
        result, history = run_case(case, config, seeds, progress)
        history.save(out / "cases" / f"{case_id(case)}.history.npz")
        write_json(path, {"digest": digest, "inputs": inputs, "result": result})
        results.append(read_json(path)["result"])  # exactly what a resumed run reads back
    return results

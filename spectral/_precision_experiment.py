"""Weights stored in low precision: lost updates, the shrink, the quantisation noise floor, the minima manifold.

The essay behind the slingshot claims that shrinking the weights "pushes
high-frequency detail off the data type's register". In float32 the spacing
of representable values is relative, so a multiplication by 0.2 loses almost
nothing; in float16 and bfloat16, and near subnormals, it may. This module
measures it instead of assuming it, on one case of the claim check:

* every precision *scheme* trains all seeds of the case from the same
  initialisation and data, overfits (phase 1), shrinks in its storage dtype
  and retrains (slingshot) next to an unshrunk control (phase 2), counting
  at every step the Adam updates that the stored weights swallow;
* the float32 network, evaluated in bfloat16 and float16, gives the
  quantisation noise floor per frequency;
* at the float32 fit, the dimension of the manifold of global minima is
  compared with ``P - N``, and continued training is split into motion along
  and across it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from ._claim import Case, Trainer, config_digest, repeat_members, train_mse
from ._config import case_id, parse_case_id
from ._io import read_json, save_figure, write_json
from ._format import mean_sd, number
from ._shrink import shrink_
from ._spectrum import fourier, frequency_axes, radial_profile
from ._stats import paired_verdict
from .ensemble import MLPEnsemble
from .minima import displacement_split, jacobian, manifold_dimension, parameter_vector

__all__ = ["PRECISION_UNITS", "SCHEMES", "StoredTrainer", "precision_figures", "precision_inputs", "precision_markdown",
           "round_to", "run_precision"]


@dataclass(frozen=True)
class Scheme:
    """Where a precision scheme computes (forward and backward) and stores its weights."""

    compute: torch.dtype
    storage: torch.dtype


#: The precision schemes: a dtype name alone stores the weights in it (no master copy).
SCHEMES = {
    "float32": Scheme(torch.float32, torch.float32),
    "bfloat16": Scheme(torch.bfloat16, torch.bfloat16),
    "float16": Scheme(torch.float16, torch.float16),
    "bfloat16+master": Scheme(torch.bfloat16, torch.float32),
}
#: The scheme every other one is compared with.
REFERENCE = "float32"
#: Dtypes the float32 network is evaluated in for the quantisation noise floor.
NOISE_DTYPES = ("bfloat16", "float16")
#: Calls of ``progress`` per run: one per known scheme (configured or not), one for noise floor and manifold.
PRECISION_UNITS = len(SCHEMES) + 1
#: Most points of a lost-update curve in the result.
CURVE_POINTS = 200
#: File names of the figures, in the folder given to :func:`precision_figures`.
FIGURES = {"lost_updates": "precision-lost-updates.png", "noise_floor": "precision-noise-floor.png"}
#: Relative path from report.md to that folder.
FIGURE_FOLDER = "figures"


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
    """Ensemble parameters (leading member axis) as one ``(members, P)`` float32 matrix."""
    return torch.cat([t.detach().reshape(t.shape[0], -1).to(torch.float32) for t in tensors], dim=1)


def _load(parameters: list[torch.Tensor], theta: torch.Tensor) -> None:
    """Copy the ``(members, P)`` matrix ``theta`` into ensemble ``parameters`` (cast to their dtype)."""
    chunks = theta.split([p[0].numel() for p in parameters], dim=1)
    with torch.no_grad():
        for parameter, chunk in zip(parameters, chunks):
            parameter.copy_(chunk.reshape(parameter.shape))


class _Adam:
    """The update :class:`torch.optim.Adam` would add, computed in float32 but not added."""

    def __init__(self, like: torch.Tensor, learning_rate: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.learning_rate, self.betas, self.eps = learning_rate, betas, eps
        self.average, self.square, self.steps = torch.zeros_like(like), torch.zeros_like(like), 0

    def update(self, gradient: torch.Tensor) -> torch.Tensor:
        beta1, beta2 = self.betas
        self.steps += 1
        self.average.lerp_(gradient, 1 - beta1)
        self.square.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
        denominator = (self.square.sqrt() / math.sqrt(1 - beta2**self.steps)).add_(self.eps)
        return self.average / denominator * (-self.learning_rate / (1 - beta1**self.steps))


class StoredTrainer:
    """Full-batch Adam on an ensemble whose weights are stored in ``scheme.storage``.

    Each step runs forward and backward on a copy of the ensemble in
    ``scheme.compute`` (the loss, the sum of per-member mean squared errors,
    is reduced in float32), casts the gradient to float32, lets a float32
    Adam compute the intended update ``u`` and stores
    ``w.to(storage) + u.to(storage)``: an update smaller than about half the
    spacing of the stored weight is lost, as in real storage in that dtype.

    Parameters
    ----------
    ensemble : MLPEnsemble
        Initial weights; rounded to ``scheme.storage`` (this is where a shrink
        done before happens "in" the storage dtype). Not changed.
    x, y : torch.Tensor
        ``(members, N, d)`` inputs and ``(members, N)`` float32 targets.
    learning_rate : float
        Adam's learning rate.
    scheme : Scheme
        Compute and storage dtypes.

    Attributes
    ----------
    theta : torch.Tensor
        ``(members, P)`` float32 stored weights (values of ``scheme.storage``).
    changed, lost : list of torch.Tensor
        Per step, ``(members,)`` counts of non-zero intended updates and of
        those the storage swallowed (the stored weight did not change).
    """

    def __init__(self, ensemble: MLPEnsemble, x: torch.Tensor, y: torch.Tensor, learning_rate: float,
                 scheme: Scheme) -> None:
        self.scheme = scheme
        self.model = copy.deepcopy(ensemble).to(scheme.compute)
        self.parameters = list(self.model.parameters())
        self.theta = round_to(_flatten(ensemble.parameters()), scheme.storage)
        self.x, self.y = x, y
        self.adam = _Adam(self.theta, learning_rate)
        self.changed: list[torch.Tensor] = []
        self.lost: list[torch.Tensor] = []
        _load(self.parameters, self.theta)

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()

    def step(self) -> None:
        for parameter in self.parameters:
            parameter.grad = None
        loss = (self.model(self.x.to(self.scheme.compute)).to(torch.float32) - self.y).pow(2).mean(dim=1).sum()
        loss.backward()
        update = self.adam.update(_flatten(p.grad for p in self.parameters))
        stored = self.theta.to(self.scheme.storage)
        new = stored + update.to(self.scheme.storage)
        changed = update != 0
        self.changed.append(changed.sum(dim=1))
        self.lost.append((changed & (new == stored)).sum(dim=1))
        self.theta = new.to(torch.float32)
        _load(self.parameters, self.theta)

    def ensemble(self) -> MLPEnsemble:
        """The stored weights as a float32 ensemble (exact: every storage dtype here fits in float32)."""
        ensemble = copy.deepcopy(self.model).to(torch.float32)
        _load(list(ensemble.parameters()), self.theta)
        return ensemble

    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lost, changed)``, each ``(steps, members)`` int64."""
        if not self.lost:
            empty = np.zeros((0, self.theta.shape[0]), dtype=np.int64)
            return empty, empty
        return torch.stack(self.lost).cpu().numpy(), torch.stack(self.changed).cpu().numpy()


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` as floats, NaN where the denominator is not positive."""
    numerator, denominator = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


def _arms(seeds: int) -> dict[str, slice]:
    """Members of the phase-2 ensemble per arm: the shrunk copies first, then the controls."""
    return {"slingshot": slice(0, seeds), "control": slice(seeds, None)}


def _overfit(trainer: StoredTrainer, case: Case, steps: int | None) -> int:
    """Phase 1: ``steps`` steps, or (``None``) the claim check's rule: until every seed is below threshold."""
    if steps is not None:
        trainer.run(steps)
        return steps
    training, step = case.config["training"], 0
    while (step < training["overfit_max_steps"]
           and not np.all(train_mse(trainer.ensemble(), case.x, case.y) < case.overfit_threshold)):
        trainer.run(training["check_every"])
        step += training["check_every"]
    return step


def _downsample(lost: np.ndarray, changed: np.ndarray, width: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Pooled lost fraction in blocks of ``width`` steps; block centres shifted by ``offset``."""
    if not len(lost):
        return np.zeros(0), np.zeros(0)
    starts = np.arange(0, len(lost), width)
    centres = offset + (starts + np.minimum(starts + width, len(lost)) - 1) / 2
    return centres, _ratio(np.add.reduceat(lost, starts), np.add.reduceat(changed, starts))


def _curve(phase1: tuple[np.ndarray, np.ndarray], phase2: tuple[np.ndarray, np.ndarray], seeds: int) -> dict[str, Any]:
    """Lost fraction over training per arm (phase 1 shared), pooled over seeds, at most :data:`CURVE_POINTS` points."""
    steps1, steps2 = len(phase1[0]), len(phase2[0])
    width = max(1, math.ceil((steps1 + steps2) / (CURVE_POINTS - 2)))  # blocks never straddle the shrink
    before = _downsample(phase1[0].sum(axis=1), phase1[1].sum(axis=1), width, 0)
    arms = {arm: _downsample(phase2[0][:, part].sum(axis=1), phase2[1][:, part].sum(axis=1), width, steps1)
            for arm, part in _arms(seeds).items()}
    return {"steps": np.concatenate([before[0], arms["slingshot"][0]]).tolist(), "shrink_step": steps1,
            **{arm: np.concatenate([before[1], values[1]]).tolist() for arm, values in arms.items()}}


def _window(counts: tuple[np.ndarray, np.ndarray], rows: slice, columns: slice) -> list[float]:
    """Per seed, the lost fraction pooled over the steps ``rows``."""
    lost, changed = counts
    return _ratio(lost[rows, columns].sum(axis=0), changed[rows, columns].sum(axis=0)).tolist()


def _run_scheme(case: Case, scheme: Scheme, steps: int | None) -> tuple[dict[str, Any], MLPEnsemble]:
    """One scheme: overfit, shrink in storage, retrain (slingshot and control); its result and overfit weights."""
    config = case.config
    training, window, seeds = config["training"], config["precision"]["window_steps"], len(case.seeds)
    phase1 = StoredTrainer(case.ensemble(case.seeds), case.x, case.y, case.learning_rate, scheme)
    steps = _overfit(phase1, case, steps)
    overfit = phase1.ensemble()
    both = MLPEnsemble.concatenate([shrink_(copy.deepcopy(overfit), config["shrink_factor"]), overfit])
    phase2 = StoredTrainer(both, repeat_members(case.x, 2), repeat_members(case.y, 2), case.learning_rate, scheme)
    before, shrunk = case.measure(overfit), case.measure(phase2.ensemble())
    phase2.run(training["retrain_steps"])
    after = case.measure(phase2.ensemble())
    counts1, counts2, arms = phase1.counts(), phase2.counts(), _arms(seeds)
    mse = train_mse(overfit, case.x, case.y)
    result = {
        "compute": str(scheme.compute).removeprefix("torch."), "storage": str(scheme.storage).removeprefix("torch."),
        "phase1_steps": steps, "train_mse": mse.tolist(), "reached": (mse < case.overfit_threshold).tolist(),
        "lost_fraction": {"before_shrink": _window(counts1, slice(-window, None), slice(None)),
                          **{arm: _window(counts2, slice(0, window), part) for arm, part in arms.items()}},
        "hf_fraction": {"overfit": before["hf_fraction"].tolist(), "shrunk": shrunk["hf_fraction"][:seeds].tolist(),
                        **{arm: after["hf_fraction"][part].tolist() for arm, part in arms.items()}},
        "test_mse": {"overfit": before["test_mse"].tolist(),
                     **{arm: after["test_mse"][part].tolist() for arm, part in arms.items()}},
        "hf_shrink_ratio": _ratio(shrunk["hf_fraction"][:seeds], before["hf_fraction"]).tolist(),
        "curve": _curve(counts1, counts2, seeds),
    }
    return result, overfit


def _verdicts(schemes: dict[str, dict[str, Any]], config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per low-precision scheme: is HF shrunk / HF overfit lower than in float32, seed by seed?"""
    reference = np.array(schemes[REFERENCE]["hf_shrink_ratio"], dtype=float)
    verdicts = {}
    for index, name in enumerate(name for name in schemes if name != REFERENCE):
        verdicts[name] = paired_verdict(np.array(schemes[name]["hf_shrink_ratio"], dtype=float), reference,
                                        alpha=config["alpha"], min_relative_effect=config["min_relative_effect"],
                                        resamples=config["bootstrap_resamples"], seed=index)
        verdicts[name].update(metric="hf_shrink_ratio", claim=name, reference=REFERENCE)
    return verdicts


def _frequency_amplitude(case: Case, values: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies and ``sqrt(2 * power)`` per frequency (2D: per ring), mean over the rows of ``values``."""
    grid = case.grid
    power = fourier(values.reshape(-1, *grid.shape), grid.ndim, case.measure.window)[1].numpy()
    if grid.ndim == 1:
        frequencies = frequency_axes(grid.shape, grid.extent)[0]
    else:
        frequencies, power = radial_profile(power, grid.extent)
    return frequencies, np.sqrt(2 * power).mean(axis=0)


def _noise_floor(case: Case, overfit: MLPEnsemble) -> dict[str, Any]:
    """Spectrum of ``f_D - f_float32`` for the float32 network evaluated (weights and inputs) in each dtype D."""
    reference = case.measure.outputs(overfit)
    frequencies, signal = _frequency_amplitude(case, reference)
    alternating = frequencies > 0
    result: dict[str, Any] = {"frequencies": frequencies.tolist(), "float32": signal.tolist(),
                              "float32_rms": float(reference.pow(2).mean().sqrt())}
    for name in NOISE_DTYPES:
        difference = case.measure.outputs(copy.deepcopy(overfit).to(getattr(torch, name))) - reference
        floor = _frequency_amplitude(case, difference)[1]
        below = alternating & (signal < floor)
        result[name] = {
            "amplitude": floor.tolist(), "rms": float(difference.pow(2).mean().sqrt()),
            "median_amplitude": float(np.median(floor[alternating])), "max_amplitude": float(floor[alternating].max()),
            "float32_median_amplitude": float(np.median(signal[alternating])),
            "bins_below_floor": int(below.sum()), "bins": int(alternating.sum()),
            "lowest_frequency_below_floor": float(frequencies[below].min()) if below.any() else math.nan,
        }
    return result


def _manifold(case: Case, overfit: MLPEnsemble) -> dict[str, Any]:
    """Minima-manifold dimension at seed 0's float32 fit, and where continued training moves the weights."""
    net = overfit.member(0)
    x, y = case.x[0], case.y[0]
    parameters = sum(p.numel() for p in net.parameters())
    points = int(torch.unique(x, dim=0).shape[0])
    dimension = manifold_dimension(net, x)
    single = MLPEnsemble.from_models([net])
    trainer = Trainer(single, x.unsqueeze(0), y.unsqueeze(0), case.learning_rate)
    mse_before = float(trainer.train_mse()[0])
    steps = case.config["precision"]["continue_steps"]
    trainer.run(steps)
    split = displacement_split(jacobian(net, x), parameter_vector(single.member(0)) - parameter_vector(net))
    return {"parameters": parameters, "points": points, "parameters_minus_points": parameters - points,
            "rank": parameters - dimension, "manifold_dimension": dimension, "continue_steps": steps,
            "train_mse_before": mse_before, "train_mse_after": float(trainer.train_mse()[0]),
            "along": split["along"], "across": split["across"], "fraction_along": split["fraction_along"],
            "random_fraction_along": dimension / parameters}


def precision_inputs(config: dict[str, Any]) -> dict[str, Any]:
    """What the precision experiment's result depends on (its cached file is reused only when this matches)."""
    case = parse_case_id(config["precision"]["case"])
    return {"case": case, "seeds": list(range(config["seeds"])), "signal": config["signals"][case["signal"]],
            "precision": {k: v for k, v in config["precision"].items() if k != "enabled"},
            "config": {k: config[k] for k in ("alpha", "min_relative_effect", "bootstrap_resamples", "shrink_factor",
                                              "window", "training")}}


def _compute(config: dict[str, Any], inputs: dict[str, Any], progress: Callable[[], None]) -> dict[str, Any]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # nothing below should draw from it; this makes sure nothing leaks in
        case = Case(inputs["case"], config, inputs["seeds"])
        schemes: dict[str, dict[str, Any]] = {}
        steps, reference = None, None
        for name, scheme in SCHEMES.items():  # the reference first: it fixes every scheme's phase-1 steps
            if name in config["precision"]["schemes"]:
                schemes[name], overfit = _run_scheme(case, scheme, steps)
                if name == REFERENCE:
                    steps, reference = schemes[name]["phase1_steps"], overfit
            progress()
        noise_floor, manifold = _noise_floor(case, reference), _manifold(case, reference)
        progress()
    return {"case": case_id(case.case), "seeds": case.seeds, "shrink_factor": config["shrink_factor"],
            "window_steps": config["precision"]["window_steps"], "retrain_steps": config["training"]["retrain_steps"],
            "learning_rate": case.learning_rate, "threshold": case.overfit_threshold, "cutoff": case.cutoff,
            "schemes": schemes, "verdicts": _verdicts(schemes, config), "noise_floor": noise_floor,
            "manifold": manifold}


def run_precision(config: dict[str, Any], out: Path, progress: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Run (or resume) the precision experiment of ``config``.

    Parameters
    ----------
    config : dict
        A validated configuration (:func:`spectral._config.load_config`); its
        ``precision`` table picks the case and the schemes.
    out : pathlib.Path
        Output folder; the result is written atomically to ``out/precision.json``
        and reused from there when its inputs are unchanged.
    progress : callable, optional
        Called :data:`PRECISION_UNITS` times, also when the result is reused.

    Returns
    -------
    dict
        JSON-able result, exactly as read back from ``precision.json`` (NaN as
        None): ``schemes`` (per scheme: lost-update fractions per seed before
        and after the shrink, high-frequency fractions, test errors, the
        lost-update curve), ``verdicts`` (per low-precision scheme, from
        :func:`spectral._stats.paired_verdict`), ``noise_floor`` and ``manifold``.
    """
    inputs = precision_inputs(config)
    digest = config_digest(inputs)
    path = Path(out) / "precision.json"
    cached = read_json(path) if path.is_file() else None
    if isinstance(cached, dict) and cached.get("digest") == digest:
        for _ in range(PRECISION_UNITS):
            progress()
        return cached["result"]
    result = _compute(config, inputs, progress)
    write_json(path, {"digest": digest, "inputs": inputs, "result": result})
    return read_json(path)["result"]  # exactly what a resumed run reads back


def _value(value: Any) -> float:
    return math.nan if value is None else float(value)


def _seed_mean(values: list[Any]) -> float:
    array = np.array([_value(v) for v in values])
    return float(array[np.isfinite(array)].mean()) if np.isfinite(array).any() else math.nan


def _percent(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{100 * value:.3g}%"


def _scheme_table(result: dict[str, Any]) -> list[str]:
    lines = ["| scheme | compute | storage | lost before shrink | lost after shrink | lost, control | "
             "HF overfit | HF shrunk | HF slingshot | HF control | test MSE overfit | test MSE slingshot | "
             "test MSE control | seeds below threshold |",
             "|" + "---|" * 14]
    for name, scheme in result["schemes"].items():
        lost, hf, test = scheme["lost_fraction"], scheme["hf_fraction"], scheme["test_mse"]
        cells = [name, scheme["compute"], scheme["storage"]]
        cells += [mean_sd(lost[key]) for key in ("before_shrink", "slingshot", "control")]
        cells += [mean_sd(hf[key]) for key in ("overfit", "shrunk", "slingshot", "control")]
        cells += [mean_sd(test[key]) for key in ("overfit", "slingshot", "control")]
        cells.append(f"{sum(scheme['reached'])}/{len(scheme['reached'])}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _verdict_table(result: dict[str, Any]) -> list[str]:
    lines = ["| scheme | holds | effect | 95% CI | p | relative effect | seeds |", "|---|---|---|---|---|---|---|"]
    for name, verdict in result["verdicts"].items():
        low, high = verdict["ci"]
        lines.append(f"| {name} | {'yes' if verdict['holds'] else 'no'} | {number(verdict['effect'])} | "
                     f"[{number(low)}, {number(high)}] | {number(verdict['p_value'])} | "
                     f"{number(verdict['relative_effect'], 2)} | {verdict['n']} |")
    return lines


def _noise_table(noise: dict[str, Any]) -> list[str]:
    lines = ["| evaluated in | rms of f_D - f_32 | median amplitude | max amplitude | float32 median amplitude | "
             "bins below floor | lowest frequency below floor |", "|---|---|---|---|---|---|---|"]
    for name in NOISE_DTYPES:
        floor = noise[name]
        lines.append(f"| {name} | {number(floor['rms'])} | {number(floor['median_amplitude'])} | "
                     f"{number(floor['max_amplitude'])} | {number(floor['float32_median_amplitude'])} | "
                     f"{floor['bins_below_floor']}/{floor['bins']} | "
                     f"{number(floor['lowest_frequency_below_floor'])} |")
    return lines


def _manifold_table(manifold: dict[str, Any]) -> list[str]:
    keys = ("parameters", "points", "parameters_minus_points", "rank", "manifold_dimension", "along", "across",
            "fraction_along", "random_fraction_along")
    header = ("P", "N", "P - N", "rank of J", "manifold dimension", "moved along", "moved across",
              "fraction along", "fraction along, random direction")
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(keys),
            "| " + " | ".join(str(v) if isinstance(v, int) else number(v, 4) for v in map(manifold.get, keys)) + " |"]


def _lost_sentences(result: dict[str, Any]) -> list[str]:
    window, means = result["window_steps"], {}
    for name, scheme in result["schemes"].items():
        means[name] = [_seed_mean(scheme["lost_fraction"][key]) for key in ("before_shrink", "slingshot", "control")]
    cells = "; ".join(f"{name} {_percent(before)} → {_percent(after)} ({_percent(control)})"
                      for name, (before, after, control) in means.items())
    lower = [name for name, (_, after, control) in means.items() if after < control]
    higher = [name for name, (_, after, control) in means.items() if after > control]
    sentences = [f"Updates lost in the last {window} steps before the shrink → the first {window} after it (without "
                 f"the shrink, the control, in parentheses), mean over seeds: {cells}."]
    if lower:
        sentences.append(f"Right after the shrink fewer updates were lost than in the control in {', '.join(lower)}.")
    if higher:
        sentences.append(f"Right after the shrink more updates were lost than in the control in {', '.join(higher)}.")
    return sentences


def _verdict_sentences(result: dict[str, Any]) -> list[str]:
    verdicts = result["verdicts"]
    holds = [name for name, verdict in verdicts.items() if verdict["holds"]]
    fails = [f"{name} ({number(verdict['relative_effect'], 2)})" for name, verdict in verdicts.items()
             if not verdict["holds"]]
    sentences = []
    if holds:
        sentences.append(f"The shrink removed relatively more high frequency than in float32 for {', '.join(holds)}.")
    if fails:
        sentences.append(f"By the verdict's criteria the shrink did not remove relatively more high frequency than in "
                         f"float32 for {', '.join(fails)} (in parentheses the relative effect, positive where it "
                         "removed relatively less).")
    return sentences


def _noise_sentence(noise: dict[str, Any]) -> str:
    cells = "; ".join(f"in {name} by {number(noise[name]['rms'])} rms, its spectrum below this floor in "
                      f"{noise[name]['bins_below_floor']} of {noise[name]['bins']} frequency bins"
                      for name in NOISE_DTYPES)
    return f"In low precision the float32 network (output rms {number(noise['float32_rms'])}) moved {cells}."


def _manifold_sentence(manifold: dict[str, Any]) -> str:
    return (f"At the float32 fit of seed 0 the Jacobian on N = {manifold['points']} points has numerical rank "
            f"{manifold['rank']} (P - N = {manifold['parameters_minus_points']}). {manifold['continue_steps']} more "
            f"Adam steps moved the weights by {number(manifold['along'])} along the flat directions and "
            f"{number(manifold['across'])} across them: {_percent(_value(manifold['fraction_along']))} of the "
            f"squared displacement along, where a random direction has "
            f"{_percent(_value(manifold['random_fraction_along']))}.")


def precision_markdown(result: dict[str, Any]) -> str:
    """The precision section of report.md: tables, verdicts and plain statements generated from ``result``.

    Figures are linked as ``figures/<name>``, the folder :func:`precision_figures` writes when given ``out/figures``.
    """
    seeds, manifold = len(result["seeds"]), result["manifold"]
    lines = [f"## Low-precision weights ({result['case']})", "",
             f"Each scheme trains the same {seeds} seeds from the same initialisation and data. Weights are stored "
             "in the storage dtype (no master copy unless the storage is float32): a float32 Adam computes each "
             "update, and the stored weight takes it only if the sum rounds to a new value. Phase 1 runs "
             f"{result['schemes'][REFERENCE]['phase1_steps']} steps in every scheme: what float32 needed under the "
             f"claim check's overfit rule (train MSE below {number(result['threshold'])} for every seed, or the step "
             f"limit). The shrink by {result['shrink_factor']} is "
             f"rounded to the storage dtype; retraining runs {result['retrain_steps']} steps with a fresh optimiser. "
             f"Lost fractions are pooled over {result['window_steps']} steps before and after the shrink. "
             "Cells are mean ± sd over seeds; HF is the high-frequency fraction above "
             f"{number(result['cutoff'])} cycles, measured in float32 on the stored weights.", "",
             *_scheme_table(result), "",
             "### Verdict: low precision removes more high frequency through the shrink than float32", "",
             "Per seed, r = HF shrunk / HF overfit; the claim is r(scheme) < r(float32), paired over seeds, with the "
             "criteria of the other verdicts.", "", *_verdict_table(result), "",
             f"![lost-update fraction over training]({FIGURE_FOLDER}/{FIGURES['lost_updates']})", "",
             "### Quantisation noise floor", "",
             "The overfit float32 network evaluated with weights and inputs in each dtype; amplitude is "
             "sqrt(2 * power) of f_D - f_32 per frequency, mean over seeds.", "", *_noise_table(result["noise_floor"]),
             "", f"![quantisation noise floor]({FIGURE_FOLDER}/{FIGURES['noise_floor']})", "",
             "### Minima manifold at the float32 fit (seed 0)", "",
             f"Continued training: {manifold['continue_steps']} steps of Adam (fresh optimiser), train MSE "
             f"{number(manifold['train_mse_before'])} → {number(manifold['train_mse_after'])}.", "",
             *_manifold_table(manifold), "",
             "### What was measured", "",
             *(f"- {sentence}" for sentence in _lost_sentences(result) + _verdict_sentences(result)
               + [_noise_sentence(result["noise_floor"]), _manifold_sentence(manifold)]), ""]
    return "\n".join(lines)


def _figure(**kwargs: Any) -> Any:
    from matplotlib.figure import Figure

    return Figure(layout="constrained", **kwargs)


def _positive(values: list[Any]) -> np.ndarray:
    array = np.array([_value(v) for v in values])
    return np.where(array > 0, array, np.nan)


def _lost_figure(result: dict[str, Any]) -> Any:
    fig = _figure(figsize=(9, 4.5))
    ax = fig.add_subplot()
    shown = False
    for index, (name, scheme) in enumerate(result["schemes"].items()):
        curve, colour = scheme["curve"], f"C{index}"
        split = int(np.searchsorted(curve["steps"], curve["shrink_step"]))
        slingshot, control = _positive(curve["slingshot"]), _positive(curve["control"])
        empty = not (np.isfinite(slingshot).any() or np.isfinite(control).any())
        ax.plot(curve["steps"], slingshot, color=colour, label=f"{name}" + (" (no update lost)" if empty else ""))
        ax.plot(curve["steps"][split:], control[split:], color=colour, linestyle="--")
        shown = shown or not empty
        ax.axvline(curve["shrink_step"], color="black", linestyle=":", linewidth=1)
    ax.plot([], [], color="grey", linestyle="--", label="control (no shrink)")
    ax.plot([], [], color="black", linestyle=":", label=f"shrink by {result['shrink_factor']}")
    if shown:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("fraction of non-zero updates lost (zeros not shown)")
    ax.set_title(f"{result['case']}: updates lost to the storage dtype (pooled over seeds)")
    ax.legend(fontsize="small")
    return fig


def _noise_figure(result: dict[str, Any]) -> Any:
    noise = result["noise_floor"]
    fig = _figure(figsize=(9, 4.5))
    ax = fig.add_subplot()
    frequencies = np.array(noise["frequencies"])
    ax.semilogy(frequencies, _positive(noise["float32"]), color="black", marker=".", label="float32 network")
    for name in NOISE_DTYPES:
        ax.semilogy(frequencies, _positive(noise[name]["amplitude"]), marker=".", label=f"{name} - float32")
    ax.axvline(result["cutoff"], color="grey", linestyle=":", label="high-frequency cutoff")
    ax.set_xlabel("frequency (cycles per unit length)")
    ax.set_ylabel("amplitude, sqrt(2 power), mean over seeds")
    ax.set_title(f"{result['case']}: quantisation noise floor of the overfit float32 network")
    ax.legend(fontsize="small")
    return fig


def precision_figures(result: dict[str, Any], out: Path) -> list[Path]:
    """Write the lost-update and noise-floor figures (PNG, atomically) into ``out``; return their paths."""
    out = Path(out)
    paths = []
    for key, make in (("lost_updates", _lost_figure), ("noise_floor", _noise_figure)):
        paths.append(save_figure(make(result), out / FIGURES[key]))
    return paths

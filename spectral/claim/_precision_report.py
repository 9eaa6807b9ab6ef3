"""The precision study's section of the report: Markdown (one subsection per prediction) and figures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .._io import save_figure
from ._figures import log_axis
from ._format import mean_sd, number
from ._precision import (
    BAND_DTYPES,
    FULL_ONLY,
    LOW_PRECISION_ARMS,
    MANIFOLD_DTYPES,
    OPTIMIZERS,
    REFERENCE,
    REGISTER_DTYPES,
    REMEDIES,
)
from ._tables import verdict_rows, verdict_word

__all__ = ["FIGURES", "FIGURE_FOLDER", "precision_figures", "precision_markdown"]

#: File names of the figures, in the folder given to :func:`precision_figures`.
FIGURES = {"register": "precision-register-floor.png", "singular_values": "precision-singular-values.png",
           "lost_updates": "precision-lost-updates.png"}
#: Relative path from report.md to that folder.
FIGURE_FOLDER = "figures"


def _value(value: Any) -> float:
    return math.nan if value is None else float(value)


def _seed_mean(values: list[Any]) -> float:
    array = np.array([_value(v) for v in values])
    return float(array[np.isfinite(array)].mean()) if np.isfinite(array).any() else math.nan


def _percent(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{100 * value:.3g}%"


def _prefixed(result: dict[str, Any], prefix: str) -> list[str]:
    return [name for name in result["verdicts"] if name.startswith(prefix)]


def _register_section(result: dict[str, Any]) -> list[str]:
    register = result["register"]
    lines = ["### Prediction 1: the shrink pushes high frequencies below the data type's register", "",
             ("Each overfit float32 network and its shrunk copy (x "
             f"{result['shrink_factor']}) are evaluated with weights, inputs and activations in each dtype and in "
             "float64 (`spectral.precision.register_floor`). The register floor is the power spectrum of the "
             "difference; a bin of the function lies *below the register* when its power is at or below the "
             f"expected floor, the floor averaged over {register['average_bins']} neighbouring bins per axis (the "
             "rounding noise's power in one bin is one roughly exponential draw: compared with its own draw, a bin "
             "exactly at the mean floor reads below 37% of the time; with the average, close to half). Cells: "
             f"fraction of the power above {number(result['cutoff'])} cycles below the floor, robust and single-draw "
             "(mean ± sd over seeds), and the floor's total power relative to the function's. The verdicts use the "
             "robust fraction."), "",
             ("| dtype | HF below floor, overfit | HF below floor, shrunk | single draw, overfit | single draw, shrunk "
             "| floor / power, overfit | floor / power, shrunk | weights subnormal or zero after the shrink |"),
             "|---|---|---|---|---|---|---|---|"]
    for dtype, entry in register["dtypes"].items():
        before, after = entry["overfit"], entry["shrunk"]
        cells = [mean_sd(state[key]) for key in ("fraction_below", "fraction_below_single_draw", "relative_floor")
                 for state in (before, after)]
        lines.append(f"| {dtype} | " + " | ".join(cells) + f" | {mean_sd(after['subnormal_weights'])} |")
    scale = register["scale"]
    layers = sorted({key.split(":")[1] for key in scale["overfit"]}, key=int)
    lines += ["", ("Floating point is scale-invariant to first order: a uniform shrink multiplies every weight's "
              "spacing by the same factor, so it does not change relative rounding. It breaks where the sum a layer "
              "rounds is not scaled uniformly: an additive bias shrinks once while the product of shrunk weights and "
              "shrunk activations shrinks twice, so after the shrink the bias makes up more of each pre-activation "
              "and the smaller, input-dependent part is rounded against it; pre-activations near zero are sums whose "
              "terms cancel, so their rounding is relatively coarser (cancellation = sum of |terms| / |sum|); and "
              "weights that fall into the subnormal range lose relative precision (last column above). Medians over "
              "units and grid points, mean ± sd over seeds:"), "",
              "| linear layer | bias share, overfit | bias share, shrunk | cancellation, overfit | cancellation, shrunk |",
              "|---|---|---|---|---|"]
    for layer in layers:
        cells = [mean_sd(scale[state][f"{kind}:{layer}"]) for kind in ("bias_share", "cancellation")
                 for state in ("overfit", "shrunk")]
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    lines += ["", ("Verdicts: per dtype, the HF fraction below the floor is lower before the shrink than after it; "
              "and its increase is larger in low precision than in float32."), "",
              *verdict_rows(result["verdicts"], _prefixed(result, "shrink_pushes") + _prefixed(result, "floor_shift")),
              "", f"![register floor]({FIGURE_FOLDER}/{FIGURES['register']})", ""]
    return lines


def _bands_section(result: dict[str, Any]) -> list[str]:
    bands = result["bands"]
    lines = ["### Prediction 2: after the shrink the data type swallows more of the high band's updates", "",
             f"Along {bands['steps']} float64 steps from the overfit weights (the case's optimiser, "
             f"{bands.get('phase1_optimizer', 'adam')}, continues with the overfit run's own state; the other starts "
             "fresh; SGD has momentum 0.9, as in training) and from the shrunk weights (fresh optimiser, as the "
             "slingshot restarts), each intended update u is stored in the dtype (w_D + u_D in D arithmetic). The function change it was meant to make, "
             "f(w_D + u) - f(w_D), and the part that did not arrive, f(w_D + u) - f(w_D + stored), are evaluated in "
             f"float64 on the grid and split at {number(result['cutoff'])} cycles; swallowed = power of the part that "
             "did not arrive over the power of the intended change, pooled over the steps. Learning rates: "
             + ", ".join(f"{kind} {rate}" for kind, rate in bands["learning_rate"].items()) + ".", "",
             ("Train MSE growth: the training MSE at the last step over the first (far above 1: the trajectory "
              "diverges, and its swallowed fractions describe a diverging run)."), "",
             ("| optimiser | weights | median step / lr | median step / weight | train MSE growth | dtype | "
             "weights' updates lost | LF swallowed | HF swallowed |"), "|---|---|---|---|---|---|---|---|---|"]
    for kind in OPTIMIZERS:
        for state in ("overfit", "shrunk"):
            entry = bands[kind][state]
            growth = mean_sd(entry["train_mse_growth"]) if "train_mse_growth" in entry else "n/a"
            for dtype in BAND_DTYPES:
                cells = [mean_sd(entry[dtype][key]) for key in ("lost_weights", "swallowed_low", "swallowed_high")]
                lines.append(f"| {kind} | {state} | {mean_sd(entry['step_over_lr'])} | "
                             f"{mean_sd(entry['relative_step'])} | {growth} | {dtype} | " + " | ".join(cells) + " |")
    adam = bands["adam"]
    lines += ["", ("Why bfloat16 loses most updates near the overfit minimum: Adam's step is lr x m / sqrt(v), and "
              "where the gradient's sign flips from step to step the first moment averages out while the second "
              f"does not, so the step collapses to {number(_seed_mean(adam['overfit']['step_over_lr']))} x lr "
              "(median) - below half a bfloat16 spacing of most weights. After the shrink the gradient signs are "
              f"consistent again and the step is back to {number(_seed_mean(adam['shrunk']['step_over_lr']))} x lr: "
              "fewer updates are lost because the *signs* agree, not because the gradients are large. SGD's step "
              "scales with the gradient itself."), "",
              *verdict_rows(result["verdicts"], _prefixed(result, "high_band")), ""]
    return lines


def _low_precision_table(entry: dict[str, Any]) -> list[str]:
    lines = [("| storage | rounding | test MSE slingshot | test MSE control | gain (control - slingshot) | "
              "log(slingshot / control) | updates lost, slingshot | updates lost, control |"), "|" + "---|" * 8]
    for dtype, rounding in LOW_PRECISION_ARMS:
        arm = entry["arms"][dtype][rounding]
        cells = [mean_sd(arm["test_mse"]["slingshot"]), mean_sd(arm["test_mse"]["control"]), mean_sd(arm["gain"]),
                 mean_sd(arm["log_ratio"]), mean_sd(arm["lost_fraction"]["slingshot"]),
                 mean_sd(arm["lost_fraction"]["control"])]
        lines.append(f"| {dtype} | {rounding} | " + " | ".join(cells) + " |")
    return lines


def _essay_reading(result: dict[str, Any]) -> list[str]:
    """What prediction 3 and the interventions mean for the essay, one line per case and dtype, from the verdicts."""
    verdicts, lines = result["verdicts"], []
    for name in result["slingshot_low_precision"]:
        for dtype in BAND_DTYPES:
            prediction = verdicts[f"slingshot_gains_more_in_low_precision_{name}_{dtype}"]
            larger = verdict_word(prediction)
            removed = {remedy: verdict_word(verdicts[f"removing_lost_updates_removes_the_extra_gain_{name}_{dtype}_"
                                                     f"{remedy}"]) for remedy in REMEDIES}
            if larger != "yes":
                reading = (f"the slingshot does not gain more in {dtype} than in float32 (verdict: {larger}; "
                           f"slingshot / control in {dtype} over the same in float32: "
                           f"{_relative(prediction['effect'], prediction['ci'])}), so there is no extra gain for lost "
                           "updates to explain; the essay's prediction 3 is not borne out here")
            elif "yes" in removed.values():
                which = " and ".join(r for r, word in removed.items() if word == "yes")
                reading = (f"the slingshot gains more in {dtype}, and removing lost updates ({which}) removes part of "
                           "that extra gain: lost updates are a cause of it, as the essay says")
            else:
                reading = (f"the slingshot gains more in {dtype}, but the extra gain survives stochastic rounding and "
                           "Kahan summation (verdicts: " + ", ".join(f"{r} {w}" for r, w in removed.items())
                           + "): lost updates do not explain it")
            lines.append(f"- {name}, {dtype}: {reading}.")
    return lines


def _relative(effect: Any, interval: list[Any]) -> str:
    """A log-scale effect and its interval as relative changes: ``+12% [+6%, +20%]``."""
    values = [_value(v) for v in (effect, *interval)]
    if not all(math.isfinite(v) for v in values):
        return "n/a"
    low_high = ", ".join(f"{100 * math.expm1(v):+.0f}%" for v in values[1:])
    return f"{100 * math.expm1(values[0]):+.0f}% [{low_high}]"


def _low_precision_section(result: dict[str, Any]) -> list[str]:
    cases = result["slingshot_low_precision"]
    if not cases:
        return []
    lines = [("Each case's float32 network trains phase 1 until its own threshold crossing (with the case's "
              "optimiser); then the slingshot (shrunk, fresh optimiser) and the control (not shrunk, the overfit run's "
              "optimiser) retrain with their weights stored only in each dtype, no master copy: round-to-nearest, "
              "stochastic rounding of every stored update, or Kahan-compensated updates "
              "(`spectral.precision.LowPrecisionWeights`). Every arm starts from the same overfit weights, paired by "
              "seed. Updates lost: the fraction of non-zero intended updates that left no trace in the stored state "
              "(for Kahan, neither in the weight nor in its compensation; under stochastic rounding an update lost in "
              "one draw is kept in expectation). Per seed, log(slingshot / control) test MSE is the statistic of the "
              "verdicts (negative: the slingshot gained); every seed counts, overfit or not, as each arm starts from the "
              "same weights. Training computes in float32: only the storage differs between arms."),
             ""]
    for name, entry in cases.items():
        reached = sum(entry["reached"])
        lines += [(f"**{name}** (width {entry['width']}, {entry['optimizer']}; {reached}/{len(entry['reached'])} "
                   "seeds overfit in "
                   f"{min(entry['phase1_steps'])}-{max(entry['phase1_steps'])} steps; {entry['retrain_steps']} "
                   "retraining steps):"), "", *_low_precision_table(entry), ""]
    names = [n for n in result["verdicts"] if n.startswith(("slingshot_gains_more", "removing_lost_updates"))]
    lines += [("Verdicts: the slingshot's relative gain is larger in low precision than in float32 "
               "(round-to-nearest); and, per remedy, larger under round-to-nearest than with lost updates removed."), "",
              *verdict_rows(result["verdicts"], names), "", "What this means for the essay:", "",
              *_essay_reading(result), ""]
    return lines


def _scheme_section(result: dict[str, Any]) -> list[str]:
    lines = ["### Prediction 3: the slingshot gains more in low precision than in float32", "",
             *_low_precision_section(result)]
    schemes = {name: scheme for name, scheme in result["schemes"].items() if "gain" in scheme}
    if not schemes:
        lines += [(f"Training every scheme in its storage dtype from the start (phase 1 included) {FULL_ONLY}: this "
                  f"run used scope \"{result['scope']}\"."), ""]
    else:
        lines += [("Each scheme trains the same seeds from the same initialisation and data with its weights stored "
                  "in the storage dtype (no master copy unless the storage is float32): a float64 optimiser computes "
                  "each update and the stored weight takes it only if the sum rounds to a new value. Each seed stops "
                  "phase 1 at its own threshold crossing; the shrink is rounded to the storage dtype; the slingshot "
                  "retrains with a fresh optimiser, the control continues with the overfit run's. Gain = control test "
                  f"MSE - slingshot test MSE after {result['retrain_steps']} steps. Lost updates pooled over "
                  f"{result['window_steps']} steps before and after the shrink."), "",
                  ("| scheme | compute | storage | lost before shrink | lost after shrink | lost, control | test MSE "
                  "overfit | test MSE slingshot | test MSE control | gain | seeds below threshold |"),
                  "|" + "---|" * 11]
        for name, scheme in schemes.items():
            lost, test = scheme["lost_fraction"], scheme["test_mse"]
            cells = [name, scheme["compute"], scheme["storage"]]
            cells += [mean_sd(lost[key]) for key in ("before_shrink", "slingshot", "control")]
            cells += [mean_sd(test[key]) for key in ("overfit", "slingshot", "control")] + [mean_sd(scheme["gain"])]
            cells.append(f"{sum(scheme['reached'])}/{len(scheme['reached'])}")
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"![lost-update fraction over training]({FIGURE_FOLDER}/{FIGURES['lost_updates']})", ""]
    return lines + [*verdict_rows(result["verdicts"], _prefixed(result, "slingshot_gain_larger")), ""]


def _drift_mse(manifold: dict[str, Any], dtype: str) -> tuple[float, float, float]:
    """Training MSE over the target variance along the drift in ``dtype``: start, largest, end (means over seeds)."""
    variance = np.array([_value(v) for v in manifold["target_variance"]])
    along = np.array([[_value(v) for v in seed] for seed in manifold["drift_train_mse"][dtype]]) / variance[:, None]
    along = along[np.array(manifold["interpolated"], dtype=bool)]  # the drift is at a minimum only where one was reached
    with np.errstate(all="ignore"):
        return tuple(float(np.nanmean(values)) for values in (along[:, 0], along.max(axis=1), along[:, -1]))


def _manifold_section(result: dict[str, Any]) -> list[str]:
    manifold = result["manifold"]
    reached = sum(manifold["interpolated"])
    lines = ["### Prediction 4: the data type makes the global minimum a manifold", "",
             (f"A {manifold['depth']}-hidden-layer, width-{manifold['width']} network (P = {manifold['parameters']}) "
             f"trained in float64 by Levenberg-Marquardt on N = {manifold['points']} evenly spaced noisy samples per "
             f"seed; {reached}/{len(manifold['interpolated'])} seeds reached interpolation (training MSE below "
             "1e-10 x the target variance; the others are left out). In exact arithmetic the minima near such a point "
             f"form a manifold of dimension P - N = {manifold['parameters_minus_points']}; a dtype sees the singular "
             "values of the Jacobian below its relative spacing x the largest as zero, so its dimension is "
             "P - (number above; never below what the float64 decomposition resolves, max(N, P) x eps(float64)). "
             f"Then each seed drifts {manifold['drift_steps'][-1]} plain gradient steps from the minimum with its "
             "weights stored in each dtype (rounded from the float64 minimum), at the step size that keeps it there "
             "(N / (2 sigma_max^2), the inverse of the loss's largest curvature; Adam's first steps are learning-rate "
             "sized and would kick the net off the minimum), and the displacement is split along / across the manifold "
             "(the float64 null space of the Jacobian). Train MSE / target variance: at the start, the largest along "
             "the drift, and at the end (mean over the seeds that interpolated)."), "",
             ("| dtype | relative spacing | manifold dimension | moved | along | across | fraction along | updates lost "
             "| steps with every update lost | train MSE / variance: start, max, end |"),
             "|---|---|---|---|---|---|---|---|---|---|"]
    for dtype in MANIFOLD_DTYPES:
        drift = manifold["drift"][dtype]
        cells = [mean_sd(drift[key]) for key in ("moved", "along", "across", "fraction_along", "lost_fraction",
                                                 "stalled_steps")]
        lines.append(f"| {dtype} | {number(manifold['relative_spacing'][dtype])} | "
                     f"{mean_sd(manifold['dimension'][dtype])} | " + " | ".join(cells) + " | "
                     + ", ".join(number(value) for value in _drift_mse(manifold, dtype)) + " |")
    lines += ["", ("The dimension is monotone in the tolerance by construction; the verdicts ask whether lower "
              "precision reads a larger manifold seed by seed, and whether continued training moves less where "
              "updates are lost (a stall)."), "",
              *verdict_rows(result["verdicts"], _prefixed(result, "manifold_grows") + _prefixed(result, "drift")),
              "", f"![singular values]({FIGURE_FOLDER}/{FIGURES['singular_values']})", ""]
    return lines


def precision_markdown(result: dict[str, Any]) -> str:
    """The precision section of report.md: one subsection per prediction of the essay, verdicts and numbers.

    Read after the family correction: ``holds`` and ``q_value`` come from the
    verdict dicts as they are when this runs. Figures are linked as
    ``figures/<name>``, the folder :func:`precision_figures` writes when given ``out/figures``.
    """
    steps = result["schemes"][REFERENCE]["phase1_steps"]
    lines = [f"## The essay's mechanism: data types ({result['case']}, {len(result['seeds'])} seeds)", "",
             "Every seed's float32 network trains until its own training MSE is below "
             f"{number(result['threshold'])} ({min(steps)}-{max(steps)} steps), with its own Adam state. "
             "The low-precision slingshot of prediction 3 runs in every run; training every scheme in its storage "
             "dtype from the start " + ("ran (scope \"full\")." if result["scope"] == "full" else f"{FULL_ONLY}.")
             + " Verdicts are paired by seed and belong to the run's secondary family (corrected within it); each "
             "reads yes, no, inconclusive or untestable.", "",
             *_register_section(result), *_bands_section(result), *_scheme_section(result),
             *_manifold_section(result)]
    return "\n".join(lines)


def _figure(**kwargs: Any) -> Any:
    from matplotlib.figure import Figure

    return Figure(layout="constrained", **kwargs)


def _positive(values: list[Any]) -> np.ndarray:
    array = np.array([_value(v) for v in values])
    return np.where(np.isfinite(array) & (array > 0), array, np.nan)


def _register_figure(result: dict[str, Any]) -> Any:
    spectra = result["register"]["spectra"]
    fig = _figure(figsize=(11, 4.5))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, state in zip(axes, ("overfit", "shrunk")):
        power = np.array([_value(v) for v in np.ravel(spectra[state]["power"])])
        x = np.array(spectra["frequencies"]) if "frequencies" in spectra else np.arange(power.size)
        drawn = [_positive(power)] + [_positive(list(np.ravel(spectra[state][dtype]))) for dtype in REGISTER_DTYPES]
        ax.plot(x, drawn[0], color="black", label="function (float64)")
        for dtype, floor in zip(REGISTER_DTYPES, drawn[1:]):
            ax.plot(x, floor, label=f"{dtype} floor")
        log_axis(ax, drawn)
        if "frequencies" in spectra:
            ax.axvline(result["cutoff"], color="grey", linestyle=":", label="high-frequency cutoff")
        ax.set_xlabel("frequency (cycles per unit length)" if "frequencies" in spectra else "bin")
        ax.set_title(f"{state} (seed {result['seeds'][0]})")
    axes[0].set_ylabel("power per bin")
    axes[0].legend(fontsize="small")
    fig.suptitle(f"{result['case']}: the function's spectrum and each dtype's register floor")
    return fig


def _singular_figure(result: dict[str, Any]) -> Any:
    manifold = result["manifold"]
    fig = _figure(figsize=(9, 4.5))
    ax = fig.add_subplot()
    drawn = []
    for index, values in enumerate(manifold["singular_values"]):
        values = np.array([_value(v) for v in values])
        with np.errstate(divide="ignore", invalid="ignore"):  # a zero or NaN largest value: nothing to draw
            drawn.append(_positive(list(values / values[0])) if values.size else values)
        ax.plot(np.arange(1, values.size + 1), drawn[-1], color="C0", alpha=0.4, label="seeds" if index == 0 else None)
    for index, dtype in enumerate(MANIFOLD_DTYPES):
        ax.axhline(manifold["relative_spacing"][dtype], color=f"C{index + 1}", linestyle="--",
                   label=f"{dtype} spacing")
    log_axis(ax, drawn)
    ax.set_xlabel("index of singular value")
    ax.set_ylabel("singular value / largest")
    ax.set_title(f"Jacobian at the interpolating minimum (P = {manifold['parameters']}, N = {manifold['points']})")
    ax.legend(fontsize="small")
    return fig


def _lost_figure(result: dict[str, Any]) -> Any:
    fig = _figure(figsize=(9, 4.5))
    ax = fig.add_subplot()
    drawn: list[np.ndarray] = []
    for index, (name, scheme) in enumerate((n, s) for n, s in result["schemes"].items() if "curve" in s):
        curve, colour = scheme["curve"], f"C{index}"
        split = int(np.searchsorted(curve["steps"], curve["shrink_step"]))
        drawn += [_positive(curve["slingshot"]), _positive(curve["control"])[split:]]
        ax.plot(curve["steps"], drawn[-2], color=colour, label=name)
        ax.plot(curve["steps"][split:], drawn[-1], color=colour, linestyle="--")
        ax.axvline(curve["shrink_step"], color="black", linestyle=":", linewidth=1)
    ax.plot([], [], color="grey", linestyle="--", label="control (no shrink)")
    log_axis(ax, drawn)
    ax.set_xlabel("training step (phase 1 until the last seed stopped, then retraining)")
    ax.set_ylabel("fraction of non-zero updates lost (zeros not shown)")
    ax.set_title(f"{result['case']}: updates lost to the storage dtype (pooled over seeds)")
    ax.legend(fontsize="small")
    return fig


def precision_figures(result: dict[str, Any], out: Path) -> list[Path]:
    """Write the figures (PNG, atomically) into ``out``; return their paths.

    The register floor and the singular values always; the lost-update curves when the schemes ran (scope "full").
    """
    out = Path(out)
    made = [("register", _register_figure), ("singular_values", _singular_figure)]
    if any("curve" in scheme for scheme in result["schemes"].values()):
        made.append(("lost_updates", _lost_figure))
    return [save_figure(make(result), out / FIGURES[key]) for key, make in made]

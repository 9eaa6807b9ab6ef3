"""The claim check's figures: spectra, error heat maps, retraining curves and the shrink-factor sweep.

Every figure names its case, its seeds and its steps; every mean over seeds
carries a band or error bars (the standard error of the mean) and the seeds
themselves where there is room; values that are None (NaN from a diverging
model) are left out of means and counted in the legend. A panel with no
positive finite value to draw on its log axis stays linear and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import plot
from .._errors import UserInputError
from .._filter_probe import FilterHistory
from .._history import SpectrumHistory
from .._io import read_json, save_figure
from ._cache import file_sha256
from ._kinds import kind_of
from ._report_checks import check_case_id

#: Curves of the retraining figure: metric key -> axis label.
CURVE_METRICS = {"test_mse": "test MSE", "hf_fraction": "high-frequency fraction", "train_mse": "training MSE"}
#: Names of the figures in ``write_figures``'s result, with their file stems.
FIGURE_NAMES = {"spectra": "spectra before/after shrink (seed {seed})",
                "heatmap": "relative error over training (seed {seed})",
                "curves": "retraining curves",
                "filtering": "filtering-method errors over training (seed {seed})"}
#: The figures drawn from a case's history file (the others come from its numbers in report.json).
HISTORY_FIGURES = ("spectra", "heatmap", "filtering")


def seed_array(values: Any) -> np.ndarray:
    """Per-seed values (lists, possibly nested, None for NaN) as a float array."""
    return np.array(values, dtype=float)


def mean_sem(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, standard error of the mean and count of the finite values along the last axis, without warnings.

    Where fewer than two values are finite the error is 0 (one value) or NaN (none).

    Examples
    --------
    >>> from spectral.claim._figures import mean_sem
    >>> mean, sem, n = mean_sem(np.array([[1.0, 3.0], [2.0, np.nan]]))
    >>> mean.tolist(), sem.tolist(), n.tolist()
    ([2.0, 2.0], [1.0, 0.0], [2, 1])
    """
    finite = np.isfinite(values)
    n = finite.sum(axis=-1)
    filled = np.where(finite, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # a diverged arm reads inf, not a warning
        mean = np.where(n > 0, filled.sum(axis=-1) / np.maximum(n, 1), np.nan)
        squares = np.where(finite, (values - mean[..., None]) ** 2, 0.0).sum(axis=-1)
        sd = np.sqrt(squares / np.maximum(n - 1, 1))
        sem = np.where(n > 1, sd / np.sqrt(np.maximum(n, 1)), np.where(n == 1, 0.0, np.nan))
    return mean, sem, n


def _arms(case: dict[str, Any]) -> list[str]:
    """The retrained arms, in the order the case lists them (read from the data, not a fixed list)."""
    return list(case["curves"]["test_mse"])


def _seeds(case: dict[str, Any]) -> str:
    seeds = case["seeds"]
    return f"{len(seeds)} seeds" if len(seeds) != 1 else f"seed {seeds[0]}"


def _non_finite_note(values: np.ndarray) -> str:
    bad = int((~np.isfinite(values)).sum())
    return f", {bad} non-finite left out" if bad else ""


def _band(ax: Any, x: Any, values: np.ndarray, label: str, **style: Any) -> np.ndarray:
    """Mean over seeds (last axis) with a band of one standard error (where it is finite); returns the means."""
    mean, sem, _ = mean_sem(values)
    (line,) = ax.plot(x, mean, marker=".", label=label + _non_finite_note(values), **style)
    sem = np.where(np.isfinite(sem), sem, np.nan)
    ax.fill_between(x, mean - sem, mean + sem, color=line.get_color(), alpha=0.2, linewidth=0)
    return mean


def log_axis(ax: Any, drawn: list[Any]) -> None:
    """A log y axis when some ``drawn`` value is positive and finite; else a linear one that says why it is empty.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> ax = Figure().add_subplot()
    >>> log_axis(ax, [[np.nan, np.inf]])
    >>> ax.get_yscale(), [text.get_text() for text in ax.texts]
    ('linear', ['no finite values'])
    """
    values = np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in drawn]) if drawn else np.array([])
    finite = values[np.isfinite(values)]
    if (finite > 0).any():
        ax.set_yscale("log")
        return
    ax.text(0.5, 0.5, "no positive values (log scale)" if finite.size else "no finite values",
            transform=ax.transAxes, ha="center", va="center", color="grey")


def _overfit_level(ax: Any, case: dict[str, Any], metric: str) -> list[float]:
    """The overfit net's mean (before the shrink) as a dotted line, when it is finite; returns what was drawn."""
    overfit = case["metrics"].get(metric, {}).get("overfit")
    level = mean_sem(seed_array(overfit))[0] if overfit is not None else np.nan
    if not np.isfinite(level):
        return []
    ax.axhline(level, color="black", linestyle=":", linewidth=1, label="overfit net (before shrink), mean")
    return [level]


def curves_figure(case: dict[str, Any]) -> Any:
    """Test MSE, high-frequency fraction and training MSE of every arm along retraining, mean ± s.e.m. over seeds.

    The overfit net's level (before the shrink) is a dotted reference line on
    each panel.

    Examples
    --------
    >>> from spectral.claim._figures import curves_figure
    >>> curves = {"steps": [0, 50], "test_mse": {"slingshot": [[0.2, 0.3], [0.1, None]]},
    ...           "hf_fraction": {"slingshot": [[0.01, 0.02], [0.03, 0.04]]},
    ...           "train_mse": {"slingshot": [[0.5, 0.4], [0.1, 0.2]]}}
    >>> fig = curves_figure({"id": "1d-tanh", "seeds": [0, 1], "curves": curves, "metrics": {}})
    >>> [ax.get_title() for ax in fig.axes]
    ['test MSE', 'high-frequency fraction', 'training MSE']
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.2), layout="constrained")
    axes = fig.subplots(1, len(CURVE_METRICS))
    steps = case["curves"]["steps"]
    for ax, (metric, label) in zip(axes, CURVE_METRICS.items()):
        drawn = [_band(ax, steps, seed_array(case["curves"][metric][arm]), arm) for arm in _arms(case)]
        drawn += _overfit_level(ax, case, metric)
        ax.set_xlabel("retraining step (0 = right after the shrink)")
        ax.set_ylabel(f"{label}\n(line: mean, band: ± 1 s.e.m. over seeds)")
        log_axis(ax, drawn)
        ax.set_title(label)
    axes[0].legend(fontsize="small")
    fig.suptitle(f"{case['id']}: retraining curves per arm, {_seeds(case)} (seeds {_seed_range(case)})")
    return fig


def _seed_range(case: dict[str, Any]) -> str:
    seeds = case["seeds"]
    return ", ".join(map(str, seeds)) if len(seeds) <= 3 else f"{seeds[0]}-{seeds[-1]}"


def sweep_figure(case: dict[str, Any]) -> Any:
    """High-frequency fraction and test MSE against the shrink factor: mean ± s.e.m. error bars and every seed.

    Examples
    --------
    >>> from spectral.claim._figures import sweep_figure
    >>> sweep = {"factors": [0.2, 1.0], "hf_fraction_shrunk": [[1e-5, 2e-5], [0.01, 0.02]],
    ...          "hf_fraction": [[0.01, 0.02], [0.02, 0.02]], "test_mse": [[0.1, 0.2], [0.15, None]]}
    >>> fig = sweep_figure({"id": "1d-tanh", "seeds": [0, 1], "cutoff": 8, "sweep": sweep, "metrics": {}})
    >>> [len(ax.containers) for ax in fig.axes]  # error bars: two curves, then one
    [2, 1]
    """
    from matplotlib.figure import Figure

    sweep = case["sweep"]
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    axes = fig.subplots(1, 2)
    factors = np.array(sweep["factors"], dtype=float)
    panels = [(axes[0], "hf_fraction_shrunk", "right after shrink"), (axes[0], "hf_fraction", "after retraining"),
              (axes[1], "test_mse", "after retraining")]
    drawn: dict[Any, list[Any]] = {ax: [] for ax in axes}
    for ax, key, label in panels:
        values = seed_array(sweep[key])
        mean, sem, _ = mean_sem(values)
        bars = ax.errorbar(factors, mean, yerr=np.where(np.isfinite(sem), sem, np.nan), marker="o", capsize=4,
                           label=f"{label}: mean ± s.e.m.{_non_finite_note(values)}")
        colour = bars.lines[0].get_color()
        x = np.broadcast_to(factors[:, None], values.shape)
        finite = np.isfinite(values)
        ax.plot(x[finite], values[finite], linestyle="none", marker=".", color=colour, alpha=0.35,
                label=f"{label}: one seed each")
        drawn[ax] += [mean, values]
    for ax, metric in ((axes[0], "hf_fraction"), (axes[1], "test_mse")):
        drawn[ax] += _overfit_level(ax, case, metric)
        if "shrink_factor" in case:
            ax.axvline(case["shrink_factor"], color="grey", linestyle="--", linewidth=1,
                       label=f"slingshot's factor {case['shrink_factor']:g}")
        ax.set_xlabel("shrink factor (1.0 = no shrink)")
        log_axis(ax, drawn[ax])
        ax.legend(fontsize="x-small")
    axes[0].set_ylabel("high-frequency fraction")
    axes[0].set_title(f"power above {case['cutoff']:g} cycles over non-DC power")
    axes[1].set_ylabel("test MSE after retraining")
    axes[1].set_title("test MSE")
    fig.suptitle(f"{case['id']}: shrink-factor sweep, {_seeds(case)} (seeds {_seed_range(case)})")
    return fig


def spectra_figure(case: dict[str, Any], history: SpectrumHistory) -> Any:
    """Seed 0's spectra before and after the shrink, raw and normalised, with the cutoff."""
    title = f"{case['id']}, seed {case['seeds'][0]}"
    draw = plot.before_after if len(history.shape) == 1 else plot.spectra_2d
    return draw(history, cutoff=case["cutoff"], title=title)


def scope_figure(scope: list[dict[str, Any]]) -> Any:
    """Heat maps of the slingshot's relative effect over data size x width, with the verdict in each cell."""
    from matplotlib.figure import Figure

    names = list(dict.fromkeys(cell["case"] for cell in scope))
    points = sorted({cell["train_points"] for cell in scope})
    widths = sorted({cell["width"] for cell in scope})
    references = ("slingshot_beats_control", "slingshot_beats_early_stop")
    fig = Figure(figsize=(5 * len(references), 3.6 * len(names)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(names), len(references), squeeze=False))
    for row, name in zip(axes, names):
        for ax, reference in zip(row, references):
            effect = np.full((len(points), len(widths)), np.nan)
            marks = {}
            for cell in (c for c in scope if c["case"] == name):
                i, j = points.index(cell["train_points"]), widths.index(cell["width"])
                item = cell["verdicts"][reference]
                effect[i, j] = np.nan if item["relative_effect"] is None else item["relative_effect"]
                marks[i, j] = {True: "*", False: "", None: "u"}[item["holds"]]
            image = ax.imshow(effect, cmap="RdBu_r", vmin=-1, vmax=1, origin="lower", aspect="auto")
            for (i, j), mark in marks.items():
                ax.text(j, i, f"{effect[i, j]:+.2f}{mark}" if np.isfinite(effect[i, j]) else "n/a", ha="center",
                        va="center", fontsize=9)
            ax.set_xticks(range(len(widths)), [str(w) for w in widths])
            ax.set_yticks(range(len(points)), [str(n) for n in points])
            ax.set_xlabel("width")
            ax.set_ylabel("training points")
            ax.set_title(f"{name}: {reference.replace('_', ' ')}")
            fig.colorbar(image, ax=ax, label="relative effect on test MSE (negative: slingshot better)")
    fig.suptitle("Scope grid: * holds after correction, u untestable")
    return fig


def case_history(case: dict[str, Any], out: Path) -> SpectrumHistory | FilterHistory:
    """The case's seed-0 history from ``out/cases``, only if it belongs to ``case``'s numbers.

    The case file ``cases/<id>.json`` must hold ``case`` (every field but the
    verdicts, which the report corrects) and record the history's SHA-256
    (``companion_sha256``): a history another run wrote into the folder is
    never drawn beside this report's numbers.

    Raises
    ------
    OSError
        If a file is missing or unreadable.
    ValueError
        If the case file or history is damaged, not a regular file, or belongs
        to another run (``UserInputError``).
    """
    name = check_case_id(case["id"])
    record_path, history_path = Path(out) / "cases" / f"{name}.json", Path(out) / "cases" / f"{name}.history.npz"
    record = read_json(record_path)
    result = record.get("result") if isinstance(record, dict) else None
    if not (isinstance(result, dict) and _without_verdicts(result) == _without_verdicts(case)):
        raise UserInputError(f"{str(record_path)!r} is not the case file report.json was built from (another "
                             "run's, or changed)")
    if record.get("companion_sha256") != file_sha256(history_path):
        raise UserInputError(f"{str(history_path)!r} is not the history its case file recorded (another run's, "
                             "damaged, or changed)")
    return kind_of(case["signal"]).history_type.load(history_path)


def _without_verdicts(case: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in case.items() if key != "verdicts"}


def write_figures(cases: list[dict[str, Any]], out: Path,
                  skipped: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    """Write every case's PNGs into ``out/figures``; return ``{case id: {figure name: path relative to out}}``.

    Reads each case's seed-0 history with :func:`case_history`. A case whose
    history is missing, damaged or not its own gets only the figures drawn
    from its numbers (the retraining curves), and ``skipped[case id]`` (when
    ``skipped`` is given) says why; its history figures of an earlier run are
    deleted. File names are built from case ids checked
    as names (:func:`~spectral.claim._report_checks.check_case_id`). The
    shrink-factor sweep, when a case has one, is under the key ``"sweep"``.
    """
    out = Path(out)
    figures_dir = out / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, dict[str, str]] = {}
    for case in cases:
        name, seed = check_case_id(case["id"]), case["seeds"][0]
        made = {}
        try:
            history = case_history(case, out)
        except (OSError, ValueError) as error:
            if skipped is not None:
                skipped[name] = str(error)
            for stem in HISTORY_FIGURES:  # an earlier run's, which the case no longer vouches for
                (figures_dir / f"{name}-{stem}.png").unlink(missing_ok=True)
        else:
            made.update(kind_of(case["signal"]).history_figures(case, history))
        made["curves"] = curves_figure(case)
        written[name] = {}
        for stem, fig in made.items():
            path = save_figure(fig, figures_dir / f"{name}-{stem}.png")
            written[name][FIGURE_NAMES[stem].format(seed=seed)] = str(path.relative_to(out))
        if case.get("sweep"):
            path = save_figure(sweep_figure(case), figures_dir / "sweep.png")
            written["sweep"] = {"sweep": str(path.relative_to(out))}
    return written

import json

import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer

from spectral import Grid, SpectrumHistory, SpectrumProbe
from spectral._errors import UserInputError
from spectral._io import save_figure
from spectral.claim._cache import file_sha256
from spectral.claim._figures import (
    curves_figure,
    mean_sem,
    scope_figure,
    spectra_figure,
    sweep_figure,
    write_figures,
)

ARMS = ("slingshot", "control", "an_arm_added_later")


def make_case(case_id="1d-tanh", seeds=(0, 1, 2), sweep=True):
    rng = np.random.default_rng(0)
    n = len(seeds)

    def per_seed(points):
        values = rng.uniform(0.01, 1, size=(points, n)).tolist()
        values[1][0] = None  # a diverged seed: NaN, written as null
        return values

    steps = [0, 50, 100]
    case = {"id": case_id, "signal": case_id[:2], "activation": "tanh", "bias": True, "seeds": list(seeds),
            "cutoff": 8.0, "signal_max_frequency": 5.0, "shrink_factor": 0.2,
            "metrics": {m: {arm: rng.uniform(0.01, 1, n).tolist() for arm in ("overfit", "shrunk") + ARMS}
                        for m in ("test_mse", "hf_fraction", "train_mse")},
            "curves": {"steps": steps, **{m: {arm: per_seed(len(steps)) for arm in ARMS}
                                          for m in ("test_mse", "hf_fraction", "train_mse")}},
            "sweep": None}
    if sweep:
        case["sweep"] = {"factors": [0.1, 0.2, 1.0], **{key: per_seed(3) for key in
                                                         ("hf_fraction_shrunk", "hf_fraction", "test_mse")}}
    return case


def save_case(out, case, ndim):
    """The case's history and the case file that vouches for it, as ``spectral run`` writes them."""
    save_history(out, case["id"], ndim)
    record = {"result": case, "companion_sha256": file_sha256(out / "cases" / f"{case['id']}.history.npz")}
    (out / "cases" / f"{case['id']}.json").write_text(json.dumps(record))


def save_history(out, case_id, ndim):
    grid = Grid.uniform(64) if ndim == 1 else Grid.uniform((16, 16))
    target = lambda x: np.sin(2 * np.pi * 3 * x[:, 0])
    probe = SpectrumProbe(grid, target=target, window="hann")
    for step in (0, 100):
        probe.update(lambda x, s=step: target(x) * s / 100 + 0.01, step)
    probe.snapshot(target, "before shrink")
    probe.snapshot(lambda x: 0.2 * target(x), "after shrink")
    probe.update(lambda x: target(x), 150)
    probe.snapshot(target, "retrained")
    probe.history.save(out / "cases" / f"{case_id}.history.npz")


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_mean_sem_leaves_out_non_finite_values_without_warnings():
    values = np.array([[1.0, 2.0, 3.0], [np.nan, 4.0, np.nan], [np.nan] * 3])
    mean, sem, n = mean_sem(values)
    np.testing.assert_allclose(mean[:2], [2.0, 4.0])
    np.testing.assert_allclose(sem[:2], [1 / np.sqrt(3), 0.0])
    assert np.isnan(mean[2]) and np.isnan(sem[2]) and n.tolist() == [3, 1, 0]
    mean, sem, _ = mean_sem(np.array([1e300, -1e300]))  # a diverging arm: the spread overflows, silently
    assert mean == 0 and sem == np.inf


def test_curves_figure_draws_every_arm_with_bands_and_the_overfit_level():
    case = make_case()
    fig = curves_figure(case)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["test MSE", "high-frequency fraction", "training MSE"]
    for ax in axes:
        assert len(ax.collections) == len(ARMS)  # one s.e.m. band per arm
        assert "s.e.m." in ax.get_ylabel()
        assert any(line.get_label().startswith("overfit net") for line in ax.get_lines())
    labels = legend_texts(axes[0])
    for arm in ARMS:  # arm names come from the data
        assert any(label.startswith(arm) for label in labels)
    assert any("1 non-finite left out" in label for label in labels)
    title = fig._suptitle.get_text()
    assert "1d-tanh" in title and "3 seeds" in title and "seeds 0, 1, 2" in title


def test_sweep_figure_has_error_bars_seeds_and_markers():
    fig = sweep_figure(make_case())
    hf, mse = fig.axes
    assert sum(isinstance(c, ErrorbarContainer) for c in hf.containers) == 2
    assert sum(isinstance(c, ErrorbarContainer) for c in mse.containers) == 1
    for ax in (hf, mse):
        labels = legend_texts(ax)
        assert any("mean ± s.e.m." in label for label in labels)
        assert any("one seed each" in label for label in labels)
        assert "slingshot's factor 0.2" in labels and "overfit net (before shrink), mean" in labels
    bars = next(c for c in hf.containers if isinstance(c, ErrorbarContainer))
    assert bars.has_yerr and len(bars.lines[2][0].get_segments()) == 3
    assert "8 cycles" in hf.get_title() and "3 seeds" in fig._suptitle.get_text()


@pytest.mark.slow
def test_write_figures_writes_every_figure_named_by_case_and_seed(tmp_path):
    case = make_case("2d-tanh", seeds=(4, 5))
    (tmp_path / "cases").mkdir()
    save_case(tmp_path, case, 2)
    written = write_figures([case], tmp_path)
    names = written[case["id"]]
    assert set(names) == {"spectra before/after shrink (seed 4)", "relative error over training (seed 4)",
                          "retraining curves"}
    for path in list(names.values()) + list(written["sweep"].values()):
        assert path.startswith("figures/") and (tmp_path / path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_spectra_figure_names_case_seed_and_cutoff_in_1d(tmp_path):
    (tmp_path / "cases").mkdir()
    save_history(tmp_path, "1d-tanh", 1)
    fig = spectra_figure(make_case(seeds=(7, 8)), SpectrumHistory.load(tmp_path / "cases" / "1d-tanh.history.npz"))
    assert fig._suptitle.get_text().startswith("1d-tanh, seed 7:")
    assert all(any(line.get_label().startswith("HF cutoff 8") for line in ax.get_lines()) for ax in fig.axes)


def fill_case(case, value):
    """``case`` with every per-seed number replaced by ``value`` (None: NaN as written to JSON)."""
    fill = lambda values: [fill(v) for v in values] if isinstance(values, list) else value
    for metric in ("test_mse", "hf_fraction", "train_mse"):
        case["curves"][metric] = {arm: fill(v) for arm, v in case["curves"][metric].items()}
        case["metrics"][metric] = {arm: fill(v) for arm, v in case["metrics"][metric].items()}
    case["sweep"].update({key: fill(case["sweep"][key]) for key in ("hf_fraction_shrunk", "hf_fraction", "test_mse")})
    return case


def axis_notes(ax):
    return [text.get_text() for text in ax.texts]


@pytest.mark.parametrize("value", [None, float("inf"), float("-inf"), float("nan")])
def test_figures_of_metrics_never_finite_are_drawn_and_say_so(tmp_path, value):
    case = fill_case(make_case(), value)
    for make in (curves_figure, sweep_figure):
        fig = make(case)
        save_figure(fig, tmp_path / f"{make.__name__}.png")  # drawing is where a log axis of no data fails
        for ax in fig.axes:
            assert ax.get_yscale() == "linear" and axis_notes(ax) == ["no finite values"]


def test_figures_with_some_finite_values_keep_their_log_axes(tmp_path):
    case = fill_case(make_case(), None)
    case["curves"]["test_mse"]["slingshot"][0] = [0.5, None, 0.25]
    case["metrics"]["train_mse"]["overfit"] = [1e-3, None, None]  # only the overfit level is finite here
    case["sweep"]["test_mse"][2] = [float("inf"), 0.1, None]
    curves, sweep = curves_figure(case), sweep_figure(case)
    save_figure(curves, tmp_path / "curves.png")
    save_figure(sweep, tmp_path / "sweep.png")
    assert [ax.get_yscale() for ax in curves.axes] == ["log", "linear", "log"]
    assert axis_notes(curves.axes[1]) == ["no finite values"]
    assert [ax.get_yscale() for ax in sweep.axes] == ["linear", "log"]


def test_a_metric_that_is_zero_everywhere_keeps_a_linear_axis_and_says_why(tmp_path):
    case = fill_case(make_case(), 0.0)
    fig = curves_figure(case)
    save_figure(fig, tmp_path / "curves.png")
    assert axis_notes(fig.axes[0]) == ["no positive values (log scale)"]


def test_the_scope_figure_survives_effects_that_are_never_finite(tmp_path):
    item = {"relative_effect": None, "holds": None}
    scope = [{"case": "1d-tanh", "train_points": n, "width": 8,
              "verdicts": {"slingshot_beats_control": item, "slingshot_beats_early_stop": item}} for n in (6, 12)]
    save_figure(scope_figure(scope), tmp_path / "scope.png")


@pytest.mark.parametrize("case_id", ["../../escape/pwn", "/tmp/escape-pwn", "1d-tanh/../../x", "1d-TANH", ""])
def test_write_figures_builds_file_names_only_from_case_names(tmp_path, case_id):
    with pytest.raises(UserInputError, match="case name"):
        write_figures([make_case(case_id)], tmp_path / "out")
    assert sorted(p.name for p in tmp_path.rglob("*")) in ([], ["out"], ["figures", "out"])


def test_a_history_its_case_file_does_not_vouch_for_is_not_drawn(tmp_path):
    case = make_case(sweep=False)
    (tmp_path / "cases").mkdir()
    save_case(tmp_path, case, 1)
    other = make_case(sweep=False)
    other["metrics"]["test_mse"]["slingshot"][0] += 1  # the report's numbers are not the case file's
    skipped = {}
    written = write_figures([other], tmp_path, skipped)
    assert list(written["1d-tanh"]) == ["retraining curves"]
    assert "is not the case file report.json was built from" in skipped["1d-tanh"]

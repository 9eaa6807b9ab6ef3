import json

import numpy as np
import pytest
import torch
from claim_config import assert_same_per_seed, tiny

from spectral import Grid
from spectral.claim._check import (
    ARMS,
    BASELINES,
    VERDICTS,
    Case,
    Measure,
    _arm_starts,
    _overfit,
    run_case,
    run_cases,
)
from spectral.claim._config import ClaimConfig, load_config, parse_case_id


@pytest.fixture(scope="module")
def config():
    return load_config(overrides=tiny())


@pytest.fixture(scope="module")
def results(config, tmp_path_factory):
    out = tmp_path_factory.mktemp("claim")
    return out, run_cases(config, out)


def test_report_contract(results):
    _, cases = results
    case = cases[0]
    assert case["signal"] == "1d" and case["activation"] == "tanh" and case["bias"] is True
    assert case["optimizer"] == "adam" and case["shrink_factor"] == 0.2 and case["seeds"] == list(range(5))
    assert set(case["metrics"]["test_mse"]) == {"overfit", "shrunk", *ARMS, *BASELINES}
    for values in case["metrics"]["test_mse"].values():
        assert len(values) == 5
    assert set(case["verdicts"]) == set(VERDICTS)
    for verdict in case["verdicts"].values():
        assert {"holds", "reason", "q_value", "p_value", "effect", "ci", "relative_effect", "n"} <= set(verdict)
        assert verdict["holds"] in (True, False, None) and verdict["q_value"] is None  # corrected in the report
    assert "alternate_window" in case["verdicts"]["shrink_removes_high_more_than_low"]
    assert len(case["overfit"]["test_gap"]) == 5 and len(case["overfit"]["steps"]) == 5
    assert case["cutoff"] > case["signal_max_frequency"]
    assert case["sweep"]["factors"] == [0.2, 1.0] and cases[1]["sweep"] is None
    assert len(case["curves"]["steps"]) == 3


def test_negative_control_shows_no_effect(results):
    _, cases = results
    control = cases[1]
    assert control["id"] == "2d-relu-nobias"
    verdict = control["verdicts"]["shrink_removes_high_frequencies"]
    assert not verdict["holds"] and abs(verdict["relative_effect"]) < 1e-4
    assert control["negative_control"]["passed"]


def test_each_seed_stops_at_its_own_threshold(config):
    setup = Case(config.cases[0], ClaimConfig.from_dict({"training": {"overfit_max_steps": 600}}, config),
                 [0, 1, 2, 3, 4])
    phase1 = _overfit(setup, lambda: None).summary
    steps, train = np.array(phase1["steps"]), np.array(phase1["curves"]["train_mse"])
    checks = phase1["curves"]["steps"]
    for seed, stop in enumerate(steps):
        row = checks.index(stop)
        assert train[row, seed] < phase1["threshold"] or stop == 600
        assert np.all(train[:row, seed] >= phase1["threshold"])
        assert np.all(np.isnan(train[row + 1:, seed]))  # frozen: no longer recorded


def test_seed_count_invariance(config):
    """Seeds 0-4 give the same per-seed numbers whether 5 or 8 seeds run (the issue's 8 vs 24, scaled down)."""
    case = config.cases[0]
    few, _ = run_case(case, config, list(range(5)))
    many, _ = run_case(case, config, list(range(8)))
    assert_same_per_seed(few, many)


def test_a_case_that_does_not_overfit_has_untestable_generalisation_verdicts(config):
    case = config.cases[0]
    strict = ClaimConfig.from_dict({"training": {"min_test_gap": 1e6}, "sweep": {"case": ""}}, config)
    result, _ = run_case(case, strict, list(range(5)))
    assert result["overfit"]["overfits"] is False
    assert result["verdicts"]["slingshot_beats_control"]["holds"] is None
    assert "did not overfit" in result["verdicts"]["slingshot_beats_control"]["reason"]
    assert result["verdicts"]["shrink_removes_high_frequencies"]["reason"] is None


def test_one_seed_and_a_diverged_case_are_untestable(config):
    case = config.cases[0]
    single, _ = run_case(case, ClaimConfig.from_dict({"sweep": {"case": "", "factors": [1.0]}}, config), [0])
    assert all(v["holds"] is None and v["reason"] for v in single["verdicts"].values())
    exploded, _ = run_case(case, ClaimConfig.from_dict({"shrink_factor": 1e30, "sweep": {"case": "", "factors": [1.0]},
                                                        "training": {"min_test_gap": 1.0}}, config), list(range(5)))
    verdict = exploded["verdicts"]["slingshot_beats_control"]
    assert verdict["holds"] is None and verdict["dropped"] == 5 and "non-finite" in verdict["reason"]


def test_sweep_factor_matches_a_run_with_that_shrink_factor(config):
    case = config.cases[0]
    swept = ClaimConfig.from_dict({"sweep": {"factors": [0.2, 0.5, 1.0]}}, config)
    result, _ = run_case(case, swept, [0, 1])
    alone = ClaimConfig.from_dict({"shrink_factor": 0.5, "sweep": {"case": ""}}, config)
    reference, _ = run_case(case, alone, [0, 1])
    assert result["sweep"]["factors"] == [0.2, 0.5, 1.0]
    np.testing.assert_allclose(result["sweep"]["test_mse"][1], reference["metrics"]["test_mse"]["slingshot"], rtol=1e-3)
    np.testing.assert_allclose(result["sweep"]["hf_fraction_shrunk"][1],
                               reference["metrics"]["hf_fraction:primary"]["shrunk"], rtol=1e-4)
    np.testing.assert_allclose(result["sweep"]["test_mse"][2], result["metrics"]["test_mse"]["optimizer_reset"])


def test_resume_gives_the_same_result_without_recomputing(results, config, monkeypatch):
    out, cases = results
    (out / "cases" / "2d-relu-nobias.json").unlink()
    calls = []
    import spectral.claim._check as claim

    original = claim.run_case
    monkeypatch.setattr(claim, "run_case", lambda case, *a, **k: calls.append(case) or original(case, *a, **k))
    again = run_cases(config, out)
    assert [c.signal for c in calls] == ["2d"]
    assert json.dumps(again) == json.dumps(cases)


@pytest.mark.parametrize("damage", ["empty list", "no result", "truncated json", "history deleted",
                                    "history truncated", "history of another run"])
def test_damaged_cache_entries_are_recomputed(results, config, monkeypatch, capsys, damage):
    out, cases = results
    path = out / "cases" / "1d-tanh.json"
    history = out / "cases" / "1d-tanh.history.npz"
    if damage == "empty list":
        path.write_text("[]")
    elif damage == "no result":
        path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "result"}))
    elif damage == "truncated json":
        path.write_text(path.read_text()[:100])
    elif damage == "history deleted":
        history.unlink()
    elif damage == "history truncated":
        history.write_bytes(history.read_bytes()[:200])
    else:  # a kill between the history and the JSON of a run with other inputs
        history.write_bytes((out / "cases" / "2d-relu-nobias.history.npz").read_bytes())
    import spectral.claim._check as claim

    calls = []
    original = claim.run_case
    monkeypatch.setattr(claim, "run_case", lambda case, *a, **k: calls.append(case) or original(case, *a, **k))
    again = run_cases(config, out)
    assert [c.signal for c in calls] == ["1d"]
    assert json.dumps(again) == json.dumps(cases)
    assert capsys.readouterr().err.count("recomputing 1d-tanh.json") == 1


def test_changed_config_is_not_served_from_cache(results, config, monkeypatch):
    out, _ = results
    import spectral.claim._check as claim

    def recompute(*args, **kwargs):
        raise RuntimeError("recomputed")

    monkeypatch.setattr(claim, "run_case", recompute)
    with pytest.raises(RuntimeError, match="recomputed"):
        run_cases(config.replace(shrink_factor=0.3), out)


def test_arm_starts(config):
    setup = Case(config.cases[0], config, [0, 1])
    overfit = setup.ensemble([0, 1])
    before = setup.measure(overfit)
    starts = _arm_starts(setup, overfit, before)
    for p, q in zip(overfit.parameters(), starts["slingshot"].parameters()):
        torch.testing.assert_close(q, 0.2 * p)
    for arm in ("control", "optimizer_reset", "weight_decay"):
        for p, q in zip(overfit.parameters(), starts[arm].parameters()):
            assert torch.equal(p, q) and p is not q
    shrunk = setup.measure(starts["slingshot"])
    scaled = setup.measure.outputs(starts["output_scale"])
    expected = setup.measure.outputs(overfit) * torch.tensor(shrunk["rms"] / before["rms"])[:, None]
    torch.testing.assert_close(scaled, expected, rtol=1e-4, atol=1e-6)
    assert not torch.equal(starts["fresh"].layers[0].weight, overfit.layers[0].weight)


def test_validation_points_are_held_out_of_training(config):
    setup = Case(config.cases[0], config, [0, 1])
    assert setup.x.shape[1] == 12 and setup.x_validation.shape[1] == 4
    assert not np.isin(setup.x_validation.numpy(), setup.x.numpy()).any()


class _Fixed(torch.nn.Module):
    def __init__(self, rows):
        super().__init__()
        self.rows = rows
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, points):
        return self.rows.to(points.dtype)


def test_measure_reads_known_functions():
    grid = Grid.uniform(128)
    x = torch.as_tensor(grid.points[:, 0])
    clean = torch.sin(2 * torch.pi * 2 * x)
    windows = {"primary": "hann", "alternate": None}
    measure = Measure(grid, clean, windows, cutoff=6.0)
    smooth = torch.exp(x) + x**2  # not periodic: with the window, leakage must not count as high frequency
    high = clean + torch.sin(2 * torch.pi * 20 * x)
    offset = clean + 5.0  # the mean is removed before windowing: an offset must not leak into |k| = 1
    diverged = torch.full_like(x, float("nan"))
    result = measure(_Fixed(torch.stack([clean, smooth, high, offset, diverged])))
    assert result["test_mse"][0] == pytest.approx(0, abs=1e-10)
    assert result["hf_fraction:primary"][1] < 1e-4
    assert result["hf_fraction:primary"][2] == pytest.approx(0.5, rel=1e-3)
    assert result["hf_fraction:alternate"][2] == pytest.approx(0.5, rel=1e-9)
    # Unit sines: each carries power 1/2 (Parseval without a window), all of it in its band.
    assert result["low_power:alternate"][0] == pytest.approx(0.5) and result["high_power:alternate"][0] < 1e-20
    assert result["high_power:alternate"][2] == pytest.approx(0.5)
    assert result["low_power:primary"][3] == pytest.approx(result["low_power:primary"][0], rel=1e-9)
    assert np.isnan(result["test_mse"][4]) and np.isnan(result["hf_fraction:primary"][4])


def test_run_case_is_deterministic(config):
    case = config.cases[0]
    small = ClaimConfig.from_dict({"sweep": {"case": ""}}, config)
    a, _ = run_case(case, small, [0, 1])
    b, _ = run_case(case, small, [0, 1])
    assert json.dumps(a) == json.dumps(b)


def test_sgd_case_trains_with_sgd(config):
    case = parse_case_id("1d-tanh-sgd")
    result, _ = run_case(case, ClaimConfig.from_dict({"sweep": {"case": "", "factors": [1.0]}}, config), [0, 1])
    assert result["id"] == "1d-tanh-sgd" and result["optimizer"] == "sgd"
    assert result["learning_rate"] == config.training.sgd_learning_rate["tanh"]

import json

import numpy as np
import pytest
import torch
from claim_config import assert_same_per_seed, tiny

from spectral.claim._arms import PRIMARY
from spectral.claim._check import (
    ARMS,
    BASELINES,
    NEGATIVE_CONTROL_TOLERANCE,
    VERDICTS,
    Case,
    _arm_starts,
    _overfit,
    _phase1_summary,
    _verdicts,
    gradual_decay,
    run_case,
    run_cases,
)
from spectral.claim._config import ClaimConfig, load_config, parse_case_id
from spectral.claim._training import MemberOptimizer
from spectral.ensemble import MLPEnsemble

#: Overrides under which every tiny seed "overfits" at once (threshold above the starting error, any gap), so the
#: generalisation verdicts are testable and their mechanics can be checked in seconds.
OVERFITS = {"training": {"overfit_ratio": 10.0, "min_test_gap": 1.0}, "sweep": {"case": ""}}


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
    for name, verdict in case["verdicts"].items():
        assert {"outcome", "holds", "family", "reason", "q_value", "p_value", "p_absent", "effect", "ci", "margin",
                "relative_effect", "n", "power", "seeds_needed"} <= set(verdict)
        assert verdict["q_value"] is None  # corrected in the report
        assert verdict["family"] == ("primary" if name in PRIMARY else "secondary")
    retrain = case["retrain"]
    assert set(retrain["recovered_step"]) == set(ARMS) == set(retrain["weight_norm_ratio"])
    assert all(len(steps) == 5 for steps in retrain["recovered_step"].values())
    assert set(case["metrics"]["test_mse@matched_fit"]) >= set(ARMS) | {"overfit", "early_stop"}
    assert "alternate_window" in case["verdicts"]["shrink_removes_high_more_than_low"]
    assert len(case["overfit"]["test_gap"]) == 5 and len(case["overfit"]["steps"]) == 5
    assert case["cutoff"] > case["signal_max_frequency"]
    assert case["sweep"]["factors"] == [0.2, 1.0] and cases[1]["sweep"] is None
    assert case["curves"]["steps"] == [0, 20, 40]  # the curve points (every check of 50 lies beyond 40 steps)


def test_negative_control_shows_no_effect(results):
    _, cases = results
    control = cases[1]
    assert control["id"] == "2d-relu-nobias"
    verdict = control["verdicts"]["shrink_removes_high_frequencies"]
    assert verdict["outcome"] == "no" and verdict["direction"] == "equivalent" and abs(verdict["relative_effect"]) < 1e-4
    assert control["negative_control"]["passed"]


def test_the_negative_control_has_a_numerical_tolerance_not_the_margin(config):
    """min_relative_effect = 0 must not fail the homogeneous control on rounding (it did when it was the margin)."""
    no_margin = ClaimConfig.from_dict({"min_relative_effect": 0.0, "sweep": {"case": ""}}, config)
    result, _ = run_case(config.cases[1], no_margin, list(range(5)))
    control = result["negative_control"]
    assert control["passed"] and control["tolerance"] == NEGATIVE_CONTROL_TOLERANCE
    assert 0 < control["max_relative_hf_change"] < NEGATIVE_CONTROL_TOLERANCE


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
    assert result["overfit"]["overfits"] is False and result["overfit"]["seeds_overfitting"] == 0
    assert result["verdicts"]["slingshot_beats_control"]["outcome"] == "untestable"
    assert result["verdicts"]["slingshot_beats_control"]["holds"] is None
    assert "did not overfit" in result["verdicts"]["slingshot_beats_control"]["reason"]
    assert result["verdicts"]["shrink_removes_high_frequencies"]["reason"] is None


def test_one_seed_and_a_diverged_case_are_untestable(config):
    case = config.cases[0]
    single, _ = run_case(case, ClaimConfig.from_dict({"sweep": {"case": "", "factors": [1.0]}}, config), [0])
    assert all(v["holds"] is None and v["reason"] for v in single["verdicts"].values())
    exploded, _ = run_case(case, ClaimConfig.from_dict({"shrink_factor": 1e30, **OVERFITS}, config), list(range(5)))
    verdict = exploded["verdicts"]["slingshot_beats_control"]
    assert verdict["outcome"] == "untestable" and verdict["dropped"] == 5 and "non-finite" in verdict["reason"]


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
    for arm in ("control", "optimizer_reset", "gradual_shrink"):
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


def test_a_seed_overfits_when_it_reached_the_threshold_and_its_own_gap_meets_the_gate(config):
    setup = Case(config.cases[0], config, [0, 1, 2])
    test = np.array([[1.0, 1.0, 1.0], [0.5, 0.9, 0.4], [1.0, 1.0, 0.8]])  # gaps 2.0, 1.11, 2.0
    curves = {"steps": [0, 50, 100], "test_mse": list(test), "train_mse": list(test), "validation_mse": list(test)}
    below, above = 0.5 * setup.overfit_threshold, 2 * setup.overfit_threshold
    summary = _phase1_summary(setup, curves, np.array([100, 100, 100]), np.array([below, below, above]))
    np.testing.assert_allclose(summary["test_gap"], [2.0, 1 / 0.9, 2.0])
    assert summary["reached"] == [True, True, False]
    assert summary["overfit_seeds"] == [True, False, False] and summary["seeds_overfitting"] == 1
    assert summary["overfits"] is False  # 1 of 3 < min_overfit_fraction 0.75


def test_generalisation_verdicts_use_only_the_seeds_that_overfit(config):
    overfits = ClaimConfig.from_dict(OVERFITS, config)
    result, _ = run_case(config.cases[0], overfits, list(range(5)))
    assert result["overfit"]["overfit_seeds"] == [True] * 5 and result["overfit"]["overfits"]
    gated = {**result["overfit"], "overfit_seeds": [True, True, False, True, False], "seeds_overfitting": 3}
    verdicts = _verdicts(Case(config.cases[0], overfits, list(range(5))), result["metrics"], gated)
    beats = verdicts["slingshot_beats_control"]
    assert beats["dropped"] == 2 and beats["n"] + beats["zeros"] == 3  # the two seeds that did not overfit
    shrink = verdicts["shrink_removes_high_frequencies"]
    assert shrink["dropped"] == 0 and shrink["n"] + shrink["zeros"] == 5  # the spectral verdicts keep every seed


def test_retraining_runs_until_each_member_recovers(config):
    case = config.cases[0]
    result, _ = run_case(case, ClaimConfig.from_dict({"sweep": {"case": ""}, "training": {"recovery_max_steps": 400}},
                                                     config), list(range(5)))
    retrain, metrics = result["retrain"], result["metrics"]
    # the target is each seed's own overfit training MSE, not the (looser) threshold it got below
    np.testing.assert_allclose(retrain["target_train_mse"], np.array(result["overfit"]["train_mse"]) * (1 + 1e-6),
                               rtol=1e-12)
    slingshot = [step for step in retrain["recovered_step"]["slingshot"] if step is not None]
    assert slingshot and all(40 < step <= 400 for step in slingshot)  # after the fixed steps, within the cap
    for arm in ("control", "optimizer_reset", "gradual_shrink"):  # start at the overfit weights: recovered at once
        assert retrain["recovered_step"][arm] == [0] * 5 and retrain["weight_norm_ratio"][arm] == [1.0] * 5
        np.testing.assert_allclose(metrics["test_mse@matched_fit"][arm], metrics["test_mse"]["overfit"], rtol=1e-6)
    # the fixed steps' checks (the curve points and every 50th step), then every 50 steps from 40, and the cap
    checks = set(result["curves"]["steps"]) | set(range(0, 41, 50)) | set(range(40, 401, 50)) | {400}
    for arm, steps in retrain["recovered_step"].items():
        matched = np.array(metrics["test_mse@matched_fit"][arm], dtype=float)
        for seed, step in enumerate(steps):
            assert (step is None) == np.isnan(matched[seed]) == (retrain["weight_norm_ratio"][arm][seed] is None)
            assert step is None or step in checks


def test_early_stopping_never_picks_the_untrained_network(config, monkeypatch):
    """Validation error lowest at step 0 (forced): the early-stopping checkpoint is still a trained one."""
    setup = Case(config.cases[0], config, [0, 1])
    calls = iter(range(1000))
    monkeypatch.setattr(setup, "validation_mse", lambda ensemble, repeats=1: np.full(2, float(next(calls))))
    start = setup.ensemble([0, 1])
    phase1 = _overfit(setup, lambda: None)
    for initial, best in zip(start.parameters(), phase1.best.parameters()):
        assert not torch.equal(initial, best)


def test_gradual_shrink_decays_the_weights_by_the_shrink_factor_over_the_fixed_steps():
    ensemble = MLPEnsemble(1, members=2, width=8, depth=2, seeds=[0, 1])
    start = [p.detach().clone() for p in ensemble.parameters()]
    optimizer = MemberOptimizer(ensemble, "adam", 0.01, gradual_decay(0.2, 0.01, 400))
    for _ in range(400):  # zero gradients: Adam's step is 0, only the decoupled decay acts
        optimizer.step()
    for before, after in zip(start, ensemble.parameters()):
        torch.testing.assert_close(after.detach(), 0.2 * before, rtol=1e-5, atol=1e-7)


def test_initial_jitter_moves_every_seed_alone(config):
    case = config.cases[0]
    plain = Case(case, config, [0, 1, 2])
    jittered = Case(case, ClaimConfig.from_dict({"training": {"init_jitter_ulps": 1}}, config), [0, 1, 2])
    alone = Case(case, ClaimConfig.from_dict({"training": {"init_jitter_ulps": 1}}, config), [2])
    for p, q, r in zip(plain.ensemble([0, 1, 2]).parameters(), jittered.ensemble([0, 1, 2]).parameters(),
                       alone.ensemble([2]).parameters()):
        assert bool((p != q).all()) and torch.equal(torch.nextafter(p, q), q)  # one ULP, every weight
        assert torch.equal(q[2], r[0])  # a seed's jitter does not depend on the other seeds

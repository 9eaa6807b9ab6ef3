import copy
import json

import numpy as np
import pytest
import torch

from claim_config import tiny
from spectral import Grid
from spectral._claim import ARMS, Case, Measure, _arm_starts, run_case, run_cases
from spectral._config import load_config
from spectral._spectrum import window_array


@pytest.fixture(scope="module")
def config():
    return load_config(overrides=tiny())


@pytest.fixture(scope="module")
def results(config, tmp_path_factory):
    out = tmp_path_factory.mktemp("claim")
    return out, run_cases(config, out)


def test_report_contract(results, config):
    _, cases = results
    case = cases[0]
    assert case["signal"] == "1d" and case["activation"] == "tanh" and case["bias"] is True
    assert case["shrink_factor"] == 0.2 and case["seeds"] == list(range(4))
    assert set(case["metrics"]["hf_fraction"]) >= {"overfit", "shrunk", "slingshot", "control"}
    assert set(case["metrics"]["test_mse"]) >= {"overfit", *ARMS}
    for values in case["metrics"]["test_mse"].values():
        assert len(values) == 4
    for name in ("shrink_removes_high_frequencies", "slingshot_beats_control"):
        verdict = case["verdicts"][name]
        assert {"holds", "effect", "ci", "p_value", "relative_effect"} <= set(verdict)
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


def test_sweep_factor_matches_a_run_with_that_shrink_factor(config):
    case = config["cases"][0]
    swept = copy.deepcopy(config)
    swept["sweep"]["factors"] = [0.2, 0.5, 1.0]
    result, _ = run_case(case, swept, [0, 1])
    alone = copy.deepcopy(config)
    alone["shrink_factor"], alone["sweep"]["case"] = 0.5, ""
    reference, _ = run_case(case, alone, [0, 1])
    assert result["sweep"]["factors"] == [0.2, 0.5, 1.0]
    np.testing.assert_allclose(result["sweep"]["test_mse"][1], reference["metrics"]["test_mse"]["slingshot"], rtol=1e-3)
    np.testing.assert_allclose(result["sweep"]["hf_fraction_shrunk"][1], reference["metrics"]["hf_fraction"]["shrunk"],
                               rtol=1e-4)
    np.testing.assert_allclose(result["sweep"]["test_mse"][2], result["metrics"]["test_mse"]["control"])


def test_resume_gives_the_same_report_without_recomputing(results, config, monkeypatch):
    out, cases = results
    (out / "cases" / "2d-relu-nobias.json").unlink()
    calls = []
    import spectral._claim as claim

    original = claim.run_case
    monkeypatch.setattr(claim, "run_case", lambda case, *a, **k: calls.append(case) or original(case, *a, **k))
    again = run_cases(config, out)
    assert [c["signal"] for c in calls] == ["2d"]
    assert json.dumps(again) == json.dumps(cases)


def test_changed_config_is_not_served_from_cache(results, config, monkeypatch):
    out, _ = results
    import spectral._claim as claim

    def recompute(*args, **kwargs):
        raise RuntimeError("recomputed")

    monkeypatch.setattr(claim, "run_case", recompute)
    with pytest.raises(RuntimeError, match="recomputed"):
        run_cases({**config, "shrink_factor": 0.3}, out)


def test_arm_starts(config):
    setup = Case(config["cases"][0], config, [0, 1])
    overfit = setup.ensemble([0, 1])
    before = setup.measure(overfit)
    starts = _arm_starts(setup, overfit, before)
    for p, q in zip(overfit.parameters(), starts["slingshot"].parameters()):
        torch.testing.assert_close(q, 0.2 * p)
    for p, q in zip(overfit.parameters(), starts["control"].parameters()):
        assert torch.equal(p, q) and p is not q
    shrunk = setup.measure(starts["slingshot"])
    scaled = setup.measure.outputs(starts["output_scale"])
    expected = setup.measure.outputs(overfit) * torch.tensor(shrunk["rms"] / before["rms"])[:, None]
    torch.testing.assert_close(scaled, expected, rtol=1e-4, atol=1e-6)
    assert not torch.equal(starts["fresh"].layers[0].weight, overfit.layers[0].weight)


def test_measure_reads_known_functions():
    grid = Grid.uniform(128)
    x = torch.as_tensor(grid.points[:, 0])
    clean = torch.sin(2 * torch.pi * 2 * x)
    measure = Measure(grid, clean, torch.as_tensor(window_array("hann", grid.shape)), cutoff=6.0)

    class Fixed(torch.nn.Module):
        def __init__(self, rows):
            super().__init__()
            self.rows = rows
            self.anchor = torch.nn.Parameter(torch.zeros(1))

        def forward(self, points):
            return self.rows.to(points.dtype)

    smooth = torch.exp(x) + x**2  # not periodic: leakage must not count as high frequency
    high = clean + torch.sin(2 * torch.pi * 20 * x)
    diverged = torch.full_like(x, float("nan"))
    result = measure(Fixed(torch.stack([clean, smooth, high, diverged])))
    assert result["test_mse"][0] == pytest.approx(0, abs=1e-10)
    assert result["hf_fraction"][1] < 1e-4
    assert result["hf_fraction"][2] == pytest.approx(0.5, rel=1e-3)
    assert np.isnan(result["test_mse"][3]) and np.isnan(result["hf_fraction"][3])


def test_run_case_is_deterministic(config):
    case = config["cases"][0]
    small = copy.deepcopy(config)
    small["sweep"]["case"] = ""
    a, _ = run_case(case, small, [0, 1])
    b, _ = run_case(case, small, [0, 1])
    assert json.dumps(a) == json.dumps(b)

"""The restructure into spectral.claim changed no number: a reduced claim check, seeds and all, against the report
the code wrote before it (tests/claim/data/tiny-report-before-restructure.json)."""

import json
import math
from pathlib import Path

import pytest
import torch

from spectral._provenance import cpu_name
from spectral.claim import run_claim_check

GOLDEN = Path(__file__).parent / "data" / "tiny-report-before-restructure.json"
#: The overrides the golden report ran with: three cases (an SGD one), the sweep, the precision study.
OVERRIDES = {
    "seeds": 5,
    "training": {"width": 16, "depth": 2, "overfit_max_steps": 150, "check_every": 50,
                 "retrain_steps": 40, "curve_points": 2},
    "signals": {"1d": {"grid": 64, "train_points": 12, "validation_points": 4},
                "2d": {"grid": 16, "train_points": 24, "validation_points": 8}},
    "sweep": {"case": "1d-tanh", "factors": [0.2, 1.0]},
    "cases": [{"signal": "1d", "activation": "tanh", "bias": True},
              {"signal": "2d", "activation": "relu", "bias": False},
              {"signal": "1d", "activation": "sine", "bias": True, "optimizer": "sgd"}],
    "precision": {"window_steps": 5, "continue_steps": 10,
                  "manifold": {"width": 8, "depth": 1, "points": 6, "mse_ratio": 1e-10, "max_iterations": 60}},
}


def _differences(old, new, path="report"):
    """Where two JSON trees differ: structure and strings exactly, numbers to 1e-9 relative."""
    if isinstance(old, dict) and isinstance(new, dict):
        if set(old) != set(new):
            return [f"{path}: keys {sorted(set(old) ^ set(new))}"]
        return [d for key in old for d in _differences(old[key], new[key], f"{path}.{key}")]
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{path}: length {len(old)} != {len(new)}"]
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in _differences(a, b, f"{path}[{i}]")]
    numbers = (int, float)
    if isinstance(old, numbers) and isinstance(new, numbers) and not isinstance(old, bool):
        return [] if math.isclose(old, new, rel_tol=1e-9, abs_tol=1e-300) else [f"{path}: {old!r} != {new!r}"]
    return [] if old == new else [f"{path}: {old!r} != {new!r}"]


@pytest.mark.slow
def test_the_report_is_the_one_before_the_restructure(tmp_path):
    golden = json.loads(GOLDEN.read_text())
    machine = (cpu_name(), torch.backends.cpu.get_cpu_capability(), torch.__version__)
    if machine != (golden["cpu"], golden["cpu_capability"], golden["torch"]):
        pytest.skip(f"per-seed numbers are bit-reproducible only on the CPU, kernel set and torch build that wrote "
                    f"the golden report ({golden['cpu']}, {golden['cpu_capability']}, torch {golden['torch']})")
    report, _ = run_claim_check(None, tmp_path, overrides=OVERRIDES, quiet=True)
    new = json.loads(json.dumps({k: v for k, v in report.items() if k != "provenance"}))
    new["config"]["signals"].pop("digits")  # added after the restructure (issue 14): no case uses it here
    assert _differences(golden["report"], new) == []


def test_the_comparison_sees_a_changed_number_key_or_verdict():
    report = json.loads(GOLDEN.read_text())["report"]
    nudged = json.loads(json.dumps(report))
    nudged["cases"][0]["metrics"]["test_mse"]["slingshot"][3] *= 1 + 1e-7
    assert _differences(report, nudged) == [
        (f"report.cases[0].metrics.test_mse.slingshot[3]: {report['cases'][0]['metrics']['test_mse']['slingshot'][3]!r}"
        f" != {nudged['cases'][0]['metrics']['test_mse']['slingshot'][3]!r}")]
    nudged = json.loads(json.dumps(report))
    nudged["cases"][1]["verdicts"]["slingshot_beats_control"]["holds"] = "flipped"
    nudged["family"]["extra"] = 1
    assert len(_differences(report, nudged)) == 2

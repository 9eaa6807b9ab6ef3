"""A tiny claim-check configuration that runs in seconds (shared by several test files)."""

TINY = {
    "seeds": 5,
    "training": {"width": 16, "depth": 2, "overfit_max_steps": 150, "check_every": 50,
                 "retrain_steps": 40, "recovery_max_steps": 200, "curve_points": 2},
    "signals": {"1d": {"grid": 64, "train_points": 12, "validation_points": 4},
                "2d": {"grid": 16, "train_points": 24, "validation_points": 8}},
    "sweep": {"case": "1d-tanh", "factors": [0.2, 1.0]},
    "cases": [{"signal": "1d", "activation": "tanh", "bias": True},
              {"signal": "2d", "activation": "relu", "bias": False}],
    "precision": {"enabled": False},
}


def tiny(**overrides):
    """TINY with top-level keys replaced."""
    return {**TINY, **overrides}


def assert_same_per_seed(few, many):
    """The seeds of ``few`` (a case result) have the same stops and metrics in ``many`` (run with more seeds)."""
    import numpy as np

    count = len(few["seeds"])
    assert few["overfit"]["steps"] == many["overfit"]["steps"][:count]
    for metric, arms in few["metrics"].items():
        for arm, values in arms.items():
            np.testing.assert_allclose(np.array(values, dtype=float),
                                       np.array(many["metrics"][metric][arm][:count], dtype=float),
                                       rtol=1e-6, atol=1e-9, err_msg=f"{metric}/{arm}")

"""The precision study's figures survive data that is never finite (issue 18, fault 4)."""

import numpy as np
import pytest

from spectral._io import save_figure
from spectral.claim._precision import MANIFOLD_DTYPES, REGISTER_DTYPES
from spectral.claim._precision_report import FIGURES, precision_figures


def result_with(value):
    """The fields the figures read, every number ``value`` (None: NaN as written to JSON)."""
    values = [value] * 4
    spectrum = {"power": values, **{dtype: values for dtype in REGISTER_DTYPES}}
    curve = {"steps": [0, 1, 2, 3], "shrink_step": 2, "slingshot": values, "control": values}
    return {"case": "1d-tanh", "seeds": [0, 1], "cutoff": 8.0,
            "register": {"spectra": {"frequencies": [0.0, 1.0, 2.0, 3.0], "overfit": spectrum, "shrunk": spectrum}},
            "manifold": {"singular_values": [values, values], "parameters": 25, "points": 6,
                         "relative_spacing": {dtype: float(np.finfo(np.float32).eps) for dtype in MANIFOLD_DTYPES}},
            "schemes": {"float32": {"curve": curve}}}


@pytest.mark.parametrize("value", [None, 0.0, float("inf")])
def test_precision_figures_of_values_never_finite_and_positive_are_written(tmp_path, value):
    paths = precision_figures(result_with(value), tmp_path)  # float32 alone loses no update: all zeros
    assert sorted(path.name for path in paths) == sorted(FIGURES.values())


def test_a_lost_update_curve_with_values_keeps_its_log_axis(tmp_path):
    from spectral.claim._precision_report import _lost_figure

    result = result_with(None)
    result["schemes"]["float32"]["curve"]["slingshot"] = [0.0, 1e-3, 2e-3, None]
    fig = _lost_figure(result)
    save_figure(fig, tmp_path / "lost.png")
    assert fig.axes[0].get_yscale() == "log"
    empty = _lost_figure(result_with(0.0))
    assert [text.get_text() for text in empty.axes[0].texts] == ["no finite values"]

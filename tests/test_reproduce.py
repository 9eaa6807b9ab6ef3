import json
import sys

import numpy as np
import pytest
import torch

from spectral._reproduce import (
    REPRODUCTIONS,
    first_step_below,
    rank_correlation,
    run_reproduction,
)


def read(folder):
    report = json.loads((folder / "report.json").read_text())
    assert (folder / "figure.png").read_bytes()[:4] == b"\x89PNG"
    markdown = (folder / "report.md").read_text()
    assert report["published"] in markdown and "Verdict" in markdown
    assert isinstance(report["agrees"], bool) and report["published"] and report["ours"]
    return report


def test_first_step_below_and_rank_correlation():
    errors = np.array([[1.0, 1.0, 1.0], [0.05, 0.5, 1.0], [0.01, 0.09, 1.0]])
    steps = np.array([0, 10, 20])
    assert first_step_below(errors, steps) == [10, 20, None]
    assert rank_correlation(np.array([1, 3, 5]), [10, 20, None]) == pytest.approx(1.0)
    assert rank_correlation(np.array([1, 3, 5]), [20, 10, None]) == pytest.approx(0.5)
    assert np.isnan(rank_correlation(np.array([1, 3]), [None, None]))


def test_f_principle_finds_the_three_peaks(tmp_path):
    threads = torch.get_num_threads()
    report = run_reproduction("f-principle", tmp_path / "fp", quiet=True, steps=20)
    assert torch.get_num_threads() == threads
    read(tmp_path / "fp")
    # 101 samples 0.1 apart: bins are 2 pi / 10.1 = 0.62 rad apart, so each peak lies within 0.31 rad of 1, 3, 5.
    np.testing.assert_allclose(report["ours"]["peak_frequencies_rad_per_unit"], [1, 3, 5], atol=0.32)
    assert report["setup"]["steps"] == 20 and len(report["ours"]["step_error_below_0.1"]) == 3


def test_spectral_bias_reports_every_frequency(tmp_path):
    report = run_reproduction("spectral-bias", tmp_path, quiet=True, steps=25)
    read(tmp_path)
    assert report["ours"]["frequencies"] == list(range(5, 55, 5))
    assert len(report["ours"]["final_learned_amplitude"]) == 10


def test_filtering_on_digits(tmp_path):
    pytest.importorskip("sklearn", reason="the filtering reproduction needs the data extra (scikit-learn)")
    report = run_reproduction("filtering", tmp_path, quiet=True, steps=10)
    read(tmp_path)
    assert report["setup"]["widths"] == [0.5, 1.0, 2.0] and len(report["ours"]["final_low_error"]) == 3


def test_filtering_without_scikit_learn_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"spectral-probes\[data\]"):
        run_reproduction("filtering", tmp_path, quiet=True, steps=1)


def test_bad_arguments(tmp_path):
    assert REPRODUCTIONS == ("f-principle", "spectral-bias", "filtering")
    with pytest.raises(ValueError, match="name"):
        run_reproduction("grokking", tmp_path)
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(ValueError, match="out"):
        run_reproduction("f-principle", file, steps=1)
    with pytest.raises((TypeError, ValueError), match="steps"):
        run_reproduction("f-principle", tmp_path, steps=0)

"""Tests of spectral.claim._run: what run_claim_check does to its output folder before any training."""

import os
import time

import pytest

import spectral.claim._run as run_module
from spectral._errors import UserInputError
from spectral.claim import run_claim_check


class Stop(Exception):
    """Raised in place of the cases, so the test ends before any training."""


def stop(*args, **kwargs):
    raise Stop


def test_the_cleanup_of_an_output_folder_deletes_only_this_librarys_temporaries(tmp_path, monkeypatch):
    """Issue 18, fault 11 (data loss): a user's ``.thesis.draft.tmp`` an hour old survives ``spectral run``."""
    (tmp_path / "cases").mkdir()
    theirs = [tmp_path / ".thesis.draft.tmp", tmp_path / "cases" / ".notes.abc12345.tmp"]
    ours = [tmp_path / ".report.json.k2j4h5g6.spectral-tmp", tmp_path / "cases" / ".1d-tanh.json.a1b2c3d4.spectral-tmp"]
    an_hour_ago = time.time() - 3600
    for path in theirs + ours:
        path.write_text("mine")
        os.utime(path, (an_hour_ago, an_hour_ago))
    monkeypatch.setattr(run_module, "run_cases", stop)
    with pytest.raises(Stop):
        run_claim_check(out=tmp_path, quiet=True)
    assert all(path.read_text() == "mine" for path in theirs)
    assert not any(path.exists() for path in ours)


@pytest.mark.parametrize("out", ["", "  "])
def test_an_empty_out_is_refused_before_anything_is_written(tmp_path, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run_module, "run_cases", stop)
    with pytest.raises(UserInputError, match="out must be a folder path"):
        run_claim_check(out=out, quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_scope_cells_train_on_the_config_load_checked(tmp_path, monkeypatch):
    """Issue 18, fault 5: a cell of 6 points died after the cases, naming the precision study it does not run."""
    cells = []

    def record(case, config, *args):
        cells.append((case.id, config))
        raise Stop

    monkeypatch.setattr(run_module, "run_cases", lambda *args: [])
    monkeypatch.setattr(run_module, "run_cached_case", record)
    with pytest.raises(Stop):
        run_claim_check(out=tmp_path, quiet=True, overrides={
            "scope": "full", "precision": {"enabled": False},
            "scope_grid": {"cases": ["1d-relu"], "train_points": [6], "widths": [4]}})
    ((case, config),) = cells
    assert case == "1d-relu"
    assert (config.signals["1d"].train_points, config.training.width, config.precision.enabled) == (6, 4, False)

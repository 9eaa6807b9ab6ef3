"""Tests of spectral.claim._run: what run_claim_check does to its output folder before any training, and the
results folder's owner (one config's run per --out)."""

import json
import os
import threading
import time

import pytest

import spectral.claim._run as run_module
from spectral._errors import UserInputError
from spectral.claim import run_claim_check
from spectral.claim._config import load_config
from spectral.claim._run import RUN_MARKER, claim_folder


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
    monkeypatch.setattr(run_module, "_run_all", stop)
    with pytest.raises(Stop):
        run_claim_check(out=tmp_path, quiet=True)
    assert all(path.read_text() == "mine" for path in theirs)
    assert not any(path.exists() for path in ours)


@pytest.mark.parametrize("out", ["", "  "])
def test_an_empty_out_is_refused_before_anything_is_written(tmp_path, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run_module, "_run_all", stop)
    with pytest.raises(UserInputError, match="out must be a folder path"):
        run_claim_check(out=out, quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_scope_cells_train_on_the_config_load_checked(tmp_path, monkeypatch):
    """Issue 18, fault 5: a cell of 6 points died after the cases, naming the precision study it does not run."""
    cells = []

    def record(config, out, progress, device, workers):
        cells.extend((task.args[0].id, task.args[1]) for task in run_module._scope_tasks(config, out, device))
        raise Stop

    monkeypatch.setattr(run_module, "_run_all", record)
    with pytest.raises(Stop):
        run_claim_check(out=tmp_path, quiet=True, overrides={
            "scope": "full", "precision": {"enabled": False},
            "scope_grid": {"cases": ["1d-relu"], "train_points": [6], "widths": [4]}})
    ((case, config),) = cells
    assert case == "1d-relu"
    assert (config.signals["1d"].train_points, config.training.width, config.precision.enabled) == (6, 4, False)

A, B = load_config(overrides={"seeds": 3}), load_config(overrides={"seeds": 4})


def claim_at_once(out, configs):
    """``claim_folder`` from one thread per config, all released together; the errors, in order."""
    start, errors = threading.Barrier(len(configs)), [None] * len(configs)

    def claim(i, config):
        start.wait()
        try:
            claim_folder(out, config)
        except UserInputError as error:
            errors[i] = error

    threads = [threading.Thread(target=claim, args=item) for item in enumerate(configs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_the_same_config_resumes_and_another_is_refused_naming_the_folder(tmp_path):
    claim_folder(tmp_path, A)
    claim_folder(tmp_path, A)
    with pytest.raises(UserInputError, match=f"{str(tmp_path)!r} holds .* another config.*another --out"):
        claim_folder(tmp_path, B)
    assert json.loads((tmp_path / RUN_MARKER).read_text())["format"] == "spectral-claim-run"
    assert [p.name for p in tmp_path.iterdir()] == [RUN_MARKER]  # no temporary left


def test_runs_starting_at_once_share_the_folder_only_with_the_same_config(tmp_path):
    for folder in ("same", "mixed"):
        (tmp_path / folder).mkdir()
    assert claim_at_once(tmp_path / "same", [A] * 8) == [None] * 8
    errors = claim_at_once(tmp_path / "mixed", [A, B] * 4)
    refused = [i % 2 for i, error in enumerate(errors) if error is not None]
    assert len(refused) == 4 and len(set(refused)) == 1  # every run of the config that lost the race


def test_a_folder_from_before_the_marker_belongs_to_its_reports_config(tmp_path):
    (tmp_path / "report.json").write_text(json.dumps({"config": A.to_dict()}))
    with pytest.raises(UserInputError, match=r"another config \(report.json\)"):
        claim_folder(tmp_path, B)
    assert not (tmp_path / RUN_MARKER).exists()
    claim_folder(tmp_path, A)
    assert (tmp_path / RUN_MARKER).is_file()


def test_a_file_system_without_hard_links_still_gets_a_whole_marker(tmp_path, monkeypatch):
    def no_links(source, target):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    claim_folder(tmp_path, A)
    claim_folder(tmp_path, A)
    with pytest.raises(UserInputError):
        claim_folder(tmp_path, B)
    assert sorted(p.name for p in tmp_path.iterdir()) == [RUN_MARKER]

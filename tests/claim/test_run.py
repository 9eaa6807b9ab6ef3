"""The results folder's owner (spectral/claim/_run.py): one config's run per --out."""

import json
import os
import threading

import pytest

from spectral._errors import UserInputError
from spectral.claim._config import load_config
from spectral.claim._run import RUN_MARKER, claim_folder

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

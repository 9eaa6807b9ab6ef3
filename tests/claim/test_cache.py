"""Finished work on disk (spectral/claim/_cache.py): reused only when whole, recomputed otherwise."""

import json
import os

import pytest

from spectral.claim._cache import file_sha256, reuse_or_compute

INPUTS = {"case": "1d-tanh", "seeds": [0, 1, 2]}
RESULT = {"id": "1d-tanh", "metrics": {"test_mse": {"slingshot": [0.5, float("nan"), 0.25]}},
          "verdicts": {"slingshot_beats_control": {"holds": None}}}


def cached(path, calls):
    def compute():
        calls.append(1)
        return RESULT, lambda companion: companion.write_bytes(b"history")

    return reuse_or_compute(path, INPUTS, compute, units=2, progress=lambda: None,
                            companion=path.with_suffix(".history.npz"))


def test_a_whole_record_is_reused_as_it_was_written(tmp_path):
    calls = []
    first = cached(tmp_path / "case.json", calls)
    assert first["metrics"]["test_mse"]["slingshot"] == [0.5, None, 0.25]  # NaN as JSON holds it
    assert cached(tmp_path / "case.json", calls) == first and len(calls) == 1


@pytest.mark.parametrize("edit", [lambda r: r.update(result=None), lambda r: r.update(result={}),
                                  lambda r: r["result"].pop("verdicts"), lambda r: r.pop("result"),
                                  lambda r: r["result"]["metrics"]["test_mse"]["slingshot"].pop()],
                         ids=["null", "empty", "no verdicts", "no result", "a value removed"])
def test_a_result_emptied_or_edited_under_an_intact_digest_is_recomputed(tmp_path, capsys, edit):
    path, calls = tmp_path / "case.json", []
    expected = cached(path, calls)
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))
    capsys.readouterr()
    assert cached(path, calls) == expected and len(calls) == 2
    assert "spectral: recomputing case.json" in capsys.readouterr().err
    assert cached(path, calls) == expected and len(calls) == 2  # and written whole again


def test_file_sha256_refuses_a_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "history.npz"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        file_sha256(fifo)
    with pytest.raises(FileNotFoundError):
        file_sha256(tmp_path / "missing.npz")

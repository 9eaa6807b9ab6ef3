"""Tests of spectral._io: atomic writes, strict JSON, stale temporaries, guarded .npz loading."""

import os
import signal
import threading
import time

import matplotlib.pyplot as plt
import numpy as np
import pytest

from spectral._io import (
    atomic_write,
    load_npz,
    loads_json,
    read_json,
    remove_stale_temporaries,
    save_figure,
    save_npz,
)

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("text", [DEEP, '{"a": ' * 50_000 + "1" + "}" * 50_000, "NaN", '{"x": Infinity}', "[1e400]",
                                  "{", ""])
def test_loads_json_refuses_with_value_error_naming_the_source(text):
    with pytest.raises(ValueError, match="^config.toml is not valid JSON"):
        loads_json(text, "config.toml")


def test_loads_json_reads_strict_json():
    assert loads_json('{"a": [1, 2.5, null, "\\u0000"]}', "x") == {"a": [1, 2.5, None, "\x00"]}


def test_read_json_refuses_deep_nesting_and_non_regular_files(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text(DEEP)
    with pytest.raises(ValueError, match="report=.*deep.json.*nested too deeply"):
        read_json(deep, "report")
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        read_json(fifo)
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match="not a JSON file"):
        read_json(binary)


def test_sigkilled_write_leaves_a_temporary_that_remove_stale_temporaries_deletes(tmp_path):
    figures = tmp_path / "figures"
    child = os.fork()  # a child killed mid-write, as SIGKILL does to a run: no cleanup runs
    if child == 0:
        atomic_write(figures / "a.png", lambda file: (file.write(b"half"), os.kill(os.getpid(), signal.SIGKILL)))
        os._exit(0)  # never reached
    assert os.waitpid(child, 0)[1] == signal.SIGKILL
    (left,) = figures.iterdir()
    assert left.name.startswith(".a.png.") and left.name.endswith(".spectral-tmp")
    keep = [figures / "b.png", figures / "notes.tmp", figures / ".hidden", figures / ".tmp", figures / ".a.tmp",
            figures / ".thesis.draft.tmp", figures / ".a.png.abcd1234.tmp", figures / ".spectral-tmp"]
    for path in keep:
        path.write_text("x")
    assert remove_stale_temporaries(figures, older_than=3600) == []  # still fresh: maybe another writer's
    assert remove_stale_temporaries(figures) == [left]
    assert sorted(figures.iterdir()) == sorted(keep)


def test_remove_stale_temporaries_by_age(tmp_path):
    old, new = tmp_path / ".a.png.x1.spectral-tmp", tmp_path / ".b.json.y2.spectral-tmp"
    old.write_text("x")
    new.write_text("y")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert remove_stale_temporaries(tmp_path, older_than=600) == [old]
    assert [p.name for p in tmp_path.iterdir()] == [new.name]
    assert remove_stale_temporaries(tmp_path / "missing") == []
    with pytest.raises(ValueError, match="older_than"):
        remove_stale_temporaries(tmp_path, older_than=-1.0)


def test_a_users_old_tmp_files_survive_the_cleanup(tmp_path):
    """Issue 18, fault 11 (data loss): only this library's temporaries are deleted, however old the user's are."""
    theirs = [tmp_path / ".thesis.draft.tmp", tmp_path / ".notes.md.x1y2z3.tmp", tmp_path / "draft.tmp"]
    ours = tmp_path / ".report.json.k2j4h5g6.spectral-tmp"
    an_hour_ago = time.time() - 3600
    for path in [*theirs, ours]:
        path.write_text("mine")
        os.utime(path, (an_hour_ago, an_hour_ago))
    assert remove_stale_temporaries(tmp_path, older_than=600) == [ours]
    assert remove_stale_temporaries(tmp_path) == []
    assert sorted(tmp_path.iterdir()) == sorted(theirs)


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".PDF", b"%PDF"), (".svg", b"<?xml")])
def test_save_figure_writes_the_format_its_suffix_names(tmp_path, suffix, magic):
    fig = plt.figure()
    try:
        assert save_figure(fig, tmp_path / f"f{suffix}").read_bytes().startswith(magic)
        with pytest.raises(ValueError, match="path=.*f.jpg.*png, .pdf, .svg"):
            save_figure(fig, tmp_path / "f.jpg")
    finally:
        plt.close(fig)
    assert not (tmp_path / "f.jpg").exists()


def test_save_npz_appends_the_suffix_like_numpy(tmp_path):
    assert save_npz(tmp_path / "name", {"a": np.arange(3)}, {"format": "k", "schema_version": 1}) == tmp_path / "name.npz"
    np.savez(tmp_path / "numpy", a=np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["name.npz", "numpy.npz"]
    arrays, metadata = load_npz(tmp_path / "name.npz", kind="k", schema_version=1)
    assert arrays["a"].tolist() == [0, 1, 2] and metadata == {"format": "k", "schema_version": 1}


@pytest.mark.parametrize("version", [True, 1.0, "1", None, 3])
def test_load_npz_refuses_schema_versions_that_are_not_the_int(tmp_path, version):
    save_npz(tmp_path / "f.npz", {"a": np.arange(3)}, {"format": "k", "schema_version": version})
    with pytest.raises(ValueError, match="schema version"):
        load_npz(tmp_path / "f.npz", kind="k", schema_version=(1, 2))


def test_load_npz_refuses_a_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    outcome = []

    def load():
        try:
            load_npz(fifo, kind="k", schema_version=1)
        except ValueError as error:
            outcome.append(str(error))

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=10)
    if thread.is_alive():  # it blocked on open: release it before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert outcome and "not a regular file" in outcome[0]

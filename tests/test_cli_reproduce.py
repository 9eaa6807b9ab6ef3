"""``spectral reproduce``: NAME, --all, --list, and the errors found before any training."""

import json

import pytest
from test_reproduce import _fake

from spectral._reproduce import REGISTRY, REPRODUCTIONS
from spectral.cli import main


def one_line_error(capsys, status):
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith("spectral: error: ") and "Traceback" not in err
    return err


@pytest.fixture
def no_training(monkeypatch):
    """Any training is a failure of the test (an AssertionError is a bug: exit 1, not 2)."""
    def never(*args, **kwargs):
        raise AssertionError("trained")

    monkeypatch.setattr("spectral._reproduce.run_reproduction", never)
    monkeypatch.setattr("spectral._reproduce.run_all", never)


def test_list_prints_each_reproduction_with_its_paper_and_claim(capsys, no_training):
    assert main(["reproduce", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in lines] == list(REPRODUCTIONS)
    assert all(f"({r.paper}): {r.claim}" in line for r, line in zip(REGISTRY.values(), lines))


@pytest.mark.parametrize("name", [["basri"], ["--all"]])
def test_an_unwritable_out_exits_2_before_training(capsys, tmp_path, no_training, name):
    # Fault 22 of issue 18: /proc refuses a new folder; so does a path below a file.
    blocked = tmp_path / "file"
    blocked.write_text("")
    for out in ("/proc/nope", str(blocked / "below"), str(blocked)):
        err = one_line_error(capsys, main(["reproduce", *name, "--out", out, "--quick"]))
        assert "--out" in err and out in err


@pytest.mark.parametrize("argv, words", [
    (["reproduce", "--out", "d"], "--all or --list"),
    (["reproduce", "basri", "--all", "--out", "d"], "NAME or --all"),
    (["reproduce", "basri"], "--out is required"),
    (["reproduce", "--all"], "--out is required"),
    (["reproduce", "basri", "--list"], "--list takes no"),
    (["reproduce", "--all", "--list"], "not allowed with"),
])
def test_usage_errors_exit_2_in_one_line(capsys, no_training, argv, words):
    assert words in one_line_error(capsys, main(argv))


def test_all_writes_the_table(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("spectral._reproduce.REGISTRY", {"a": _fake("a", True), "b": _fake("b", False)})
    assert main(["reproduce", "--all", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("1 of 2 reproductions agree; table: ")
    rows = json.loads((tmp_path / "reproductions.json").read_text())["rows"]
    assert [(row["name"], row["agrees"]) for row in rows] == [("a", True), ("b", False)]
    assert (tmp_path / "reproductions.md").is_file() and (tmp_path / "a" / "report.md").is_file()


def test_a_missing_data_extra_exits_2_with_the_install_command(capsys, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    for name in ("warm-start", "fourier-features", "--all"):
        err = one_line_error(capsys, main(["reproduce", name, "--quick", "--quiet", "--out", str(tmp_path)]))
        assert 'pip install "spectral-probes[data]"' in err and (name if name != "--all" else "warm-start") in err
    assert not (tmp_path / "f-principle").exists()  # --all found it before training

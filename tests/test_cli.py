import json
import subprocess
import sys

import numpy as np
import pytest
from claim_config import tiny

from spectral import Grid, SpectrumProbe
from spectral.cli import main


def write_config(tmp_path, data, name="config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    config = write_config(tmp, tiny(cases=tiny()["cases"][:1]))
    assert main(["run", "--config", str(config), "--out", str(tmp / "out"), "--quiet"]) == 0
    return tmp, config


@pytest.mark.slow
def test_run_writes_report_and_figures(run_dir):
    tmp, _ = run_dir
    out = tmp / "out"
    report = json.loads((out / "report.json").read_text())
    assert report["version"] == 3 and report["config"]["alpha"] == 0.05
    assert report["cases"][0]["verdicts"]["shrink_removes_high_frequencies"]["outcome"] in ("yes", "no", "inconclusive")
    assert report["cases"][0]["verdicts"]["slingshot_beats_control"]["holds"] in (True, False, None)
    assert (out / "report.html").is_file()
    text = (out / "report.md").read_text()
    assert text.index("## Primary verdicts") < text.index("## Secondary verdicts") < text.index("## Case 1d-tanh")
    assert {p.name for p in (out / "figures").glob("*.png")} >= {
        "1d-tanh-spectra.png", "1d-tanh-heatmap.png", "1d-tanh-curves.png", "sweep.png"}


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("spectral-probes ")
    for command in ("run", "report", "plot", "sweep", "reproduce"):
        assert main([command, "--help"]) == 0
        assert len(capsys.readouterr().out.splitlines()[2]) > 0  # a description after the usage line


@pytest.mark.slow
def test_set_overrides_and_report_rebuild(run_dir, capsys):
    tmp, config = run_dir
    out = tmp / "set"
    assert main(["run", "--config", str(config), "--out", str(out), "--quiet", "--set", "shrink_factor=0.3",
                 "--set", "window=hann", "--seeds", "2"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["shrink_factor"] == 0.3 and report["config"]["seeds"] == 2
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0 and (out / "report.html").is_file()
    assert main(["run", "--out", str(out), "--set", "training.width=wide"]) == 2
    assert "training.width" in capsys.readouterr().err


@pytest.mark.slow
def test_seeds_option_and_printed_table(run_dir, capsys):
    tmp, config = run_dir
    assert main(["run", "--config", str(config), "--out", str(tmp / "seeds"), "--seeds", "3"]) == 0
    printed = capsys.readouterr().out
    assert "| 1d-tanh |" in printed and "report.md" in printed
    assert json.loads((tmp / "seeds" / "report.json").read_text())["cases"][0]["seeds"] == [0, 1, 2]


@pytest.mark.slow
def test_python_dash_m_works(run_dir):
    tmp, config = run_dir
    result = subprocess.run([sys.executable, "-m", "spectral", "run", "--config", str(config), "--out",
                             str(tmp / "out"), "--quiet"], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "argv, match",
    [
        (["run", "--seeds", "0"], "seeds"),
        (["run", "--seeds", "many"], "seeds"),
        (["run", "--workers", "0"], "workers"),
        (["run", "--config", "/no/such/file.toml"], "does not exist"),
        (["run", "--frobnicate"], "frobnicate"),
        ([], "command"),
        (["launch"], "launch"),
        (["plot", "/no/such/history.npz", "--out", "x.png"], "history.npz"),
        (["plot"], "history"),
        (["sweep", "/no/such/sweep.toml", "--out", "d"], "sweep.toml"),
        (["sweep", "s.json", "--out", "d", "--workers", "2", "--scheduler", "tcp://h:1"], "not allowed with"),
        (["run", "--set", "seeds"], "KEY=VALUE"),
        (["run", "--device", "tpu"], "tpu"),
        (["reproduce", "no-such-result", "--out", "d"], "no-such-result"),
        (["plot", "h.npz", "--out", "figure.gif"], "--out"),
        (["report", "/no/such/folder"], "no report.json"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, match, capsys, tmp_path):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("spectral: error:") and match in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "content, match",
    [
        ('{"seeds": ', "not valid JSON"),
        ('{"training": {"widht": 3}}', "widht"),
        ('{"alpha": "small"}', "alpha"),
        ('{"seeds": 0}', "seeds"),
    ],
)
def test_bad_config_files_exit_2(content, match, tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main(["run", "--config", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_a_run_into_a_folder_of_another_config_exits_2_in_one_line(run_dir, capsys):
    tmp, config = run_dir
    out = tmp / "out"
    before = (out / "report.json").read_bytes()
    capsys.readouterr()
    assert main(["run", "--config", str(config), "--out", str(out), "--quiet", "--set", "training.width=8"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(out) in error and "another --out" in error
    assert (out / "report.json").read_bytes() == before


@pytest.mark.slow
def test_identical_runs_at_once_on_one_folder_both_finish(tmp_path):
    config = write_config(tmp_path, tiny(cases=tiny()["cases"][:1], seeds=3, sweep={"case": ""}))
    command = [sys.executable, "-m", "spectral", "run", "--config", str(config), "--out", str(tmp_path / "out"),
               "--quiet"]
    runs = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [run.communicate(timeout=300)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], errors
    assert json.loads((tmp_path / "out" / "report.json").read_text())["cases"][0]["id"] == "1d-tanh"


@pytest.mark.slow
def test_bad_config_via_subprocess_has_no_traceback(tmp_path):
    path = write_config(tmp_path, {"seeds": "x"})
    result = subprocess.run([sys.executable, "-m", "spectral", "run", "--config", str(path)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_plot_command(tmp_path, capsys):
    probe = SpectrumProbe(Grid.uniform(32), target=lambda x: np.sin(2 * np.pi * x[:, 0]))
    probe.snapshot(lambda x: np.sin(2 * np.pi * x[:, 0]), "before shrink")
    probe.snapshot(lambda x: 0.2 * np.sin(2 * np.pi * x[:, 0]), "after shrink")
    probe.history.save(tmp_path / "h.npz")
    assert main(["plot", str(tmp_path / "h.npz"), "--out", str(tmp_path / "f.png")]) == 0
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["plot", str(tmp_path / "h.npz"), "--out", str(tmp_path / "g.png"), "--before", "x"]) == 0  # heat map
    bad = tmp_path / "bad.npz"
    bad.write_text("not a history")
    assert main(["plot", str(bad), "--out", str(tmp_path / "b.png")]) == 2
    assert not (tmp_path / "b.png").exists()


@pytest.mark.slow
def test_sweep_command_and_bad_sweep_file(tmp_path, capsys):
    sweep = {"base": tiny(cases=tiny()["cases"][:1], seeds=2, precision={"enabled": False}),
             "grid": {"shrink_factor": [0.2, 0.5]}}
    path = write_config(tmp_path, sweep, "sweep.json")
    assert main(["sweep", str(path), "--out", str(tmp_path / "s"), "--workers", "1", "--quiet"]) == 0
    assert (tmp_path / "s" / "sweep.md").is_file() and len(list((tmp_path / "s" / "runs").glob("*.json"))) == 2
    bad = write_config(tmp_path, {"base": {}, "grid": {"training.widht": [1]}}, "bad.json")
    assert main(["sweep", str(bad), "--out", str(tmp_path / "b")]) == 2
    assert "widht" in capsys.readouterr().err


def test_empty_scheduler_exits_2_with_one_line(tmp_path, capsys):
    path = write_config(tmp_path, {"base": {}, "grid": {"shrink_factor": [0.2, 0.5]}}, "sweep.json")
    assert main(["sweep", str(path), "--out", str(tmp_path / "d"), "--scheduler", ""]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "scheduler" in err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_plot_writes_the_format_its_suffix_names(tmp_path, suffix, magic):
    probe = SpectrumProbe(Grid.uniform(16), target=lambda x: np.sin(2 * np.pi * x[:, 0]))
    probe.snapshot(lambda x: np.sin(2 * np.pi * x[:, 0]), "before shrink")
    probe.history.save(tmp_path / "h.npz")
    out = tmp_path / f"figure{suffix}"
    assert main(["plot", str(tmp_path / "h.npz"), "--out", str(out)]) == 0
    assert out.read_bytes().startswith(magic)


def test_control_characters_in_errors_are_escaped(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "a\nb\x1b[31m.npz"), "--out", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and "a\\nb\\x1b[31m.npz" in err


@pytest.mark.parametrize("command", [["run"], ["sweep", "sweep.json"]])
def test_out_that_is_a_file_is_refused_before_running(tmp_path, capsys, command):
    write_config(tmp_path, {"base": {}, "grid": {"shrink_factor": [0.2]}}, "sweep.json")
    taken = tmp_path / "taken"
    taken.write_text("mine")
    argv = [part if part != "sweep.json" else str(tmp_path / part) for part in command]
    assert main(argv + ["--out", str(taken)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out must be a directory" in err
    assert taken.read_text() == "mine"


@pytest.mark.parametrize("command", [["run"], ["sweep", "sweep.json"], ["reproduce", "f-principle"],
                                     ["plot", "h.npz"]])
def test_an_empty_out_exits_2_in_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch, command):
    """Issue 18, fault 10: ``--out ''`` wrote into the current folder."""
    write_config(tmp_path, {"base": {}, "grid": {"shrink_factor": [0.2]}}, "sweep.json")
    monkeypatch.chdir(tmp_path)
    for target in ("spectral.claim.run_claim_check", "spectral.claim.run_sweep", "spectral._reproduce.run_reproduction"):
        monkeypatch.setattr(target, fail_with(AssertionError("reached the work")))
    before = sorted(tmp_path.iterdir())
    err = one_line_error(capsys, main(command + ["--out", ""]), 2)
    assert "--out: expected a path, got ''" in err
    assert sorted(tmp_path.iterdir()) == before


def test_report_of_an_empty_folder_path_exits_2_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "report.json").write_text("{}")  # the current folder is not what '' means
    err = one_line_error(capsys, main(["report", ""]), 2)
    assert "folder: expected a path, got ''" in err


def test_plot_refuses_a_crafted_history_in_one_line(tmp_path, capsys):
    crafted = tmp_path / "deep.npz"
    np.savez(crafted, metadata=np.array("[" * 100_000 + "]" * 100_000))
    assert main(["plot", str(crafted), "--out", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nested too deeply" in err and not (tmp_path / "f.png").exists()


def one_line_error(capsys, status, code):
    """The stderr of a command that exited with ``code``: checked to be one ``spectral: error:`` line."""
    err = capsys.readouterr().err
    assert status == code, err
    assert err.count("\n") == 1 and err.startswith("spectral: error: ") and "Traceback" not in err
    return err


def bug_report(capsys, status):
    """The stderr of a command that hit a bug: the traceback, then one line asking for a report."""
    err = capsys.readouterr().err
    assert status not in (0, 2), err
    assert "Traceback (most recent call last)" in err
    assert err.splitlines()[-1].startswith("spectral: this is a bug; please report it")
    return err


def test_a_bad_set_value_exits_2_before_any_work(tmp_path, capsys):
    err = one_line_error(capsys, main(["run", "--out", str(tmp_path / "o"), "--set", "seeds=many"]), 2)
    assert "seeds" in err and not (tmp_path / "o").exists()


def test_a_device_this_machine_lacks_exits_2(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for argv in (["run"], ["reproduce", "f-principle"]):
        err = one_line_error(capsys, main(argv + ["--device", "cuda", "--out", str(tmp_path / "o")]), 2)
        assert "not available" in err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("content", ["{", "[1, 2]", '{"version": 1, "config": {}, "cases": []}'])
def test_report_of_a_folder_without_a_valid_report_exits_2(tmp_path, capsys, content):
    (tmp_path / "report.json").write_text(content)
    err = one_line_error(capsys, main(["report", str(tmp_path)]), 2)
    assert "report.json" in err and not (tmp_path / "report.md").exists()


def test_plot_of_a_history_without_the_labels_or_a_target_exits_2(tmp_path, capsys):
    probe = SpectrumProbe(Grid.uniform(16))
    probe.snapshot(lambda x: np.sin(2 * np.pi * x[:, 0]), "start")
    probe.history.save(tmp_path / "h.npz")
    err = one_line_error(capsys, main(["plot", str(tmp_path / "h.npz"), "--out", str(tmp_path / "f.png")]), 2)
    assert "'start'" in err and not (tmp_path / "f.png").exists()


def test_a_scheduler_address_dask_cannot_parse_exits_2(tmp_path, capsys):
    pytest.importorskip("dask.distributed")
    path = write_config(tmp_path, {"base": {}, "grid": {"shrink_factor": [0.2]}}, "sweep.json")
    err = one_line_error(capsys, main(["sweep", str(path), "--out", str(tmp_path / "d"), "--scheduler", "foo://x"]), 2)
    assert "foo" in err


@pytest.mark.parametrize("command, target, message", [
    (["sweep", "{sweep}", "--scheduler", "tcp://h:1"], "spectral.claim.make_executor", "DASK_MISSING"),
    (["reproduce", "filtering"], "spectral._reproduce.run_reproduction", "DATA_MISSING"),
])
def test_a_missing_extra_exits_2_with_the_install_command(tmp_path, capsys, monkeypatch, command, target, message):
    from spectral import _reproduce
    from spectral.claim import _sweep

    text = getattr(_sweep if message == "DASK_MISSING" else _reproduce, message)

    def missing(*args, **kwargs):
        raise ImportError(text)

    monkeypatch.setattr(target, missing)
    path = write_config(tmp_path, {"base": {}, "grid": {"shrink_factor": [0.2]}}, "sweep.json")
    argv = [str(path) if part == "{sweep}" else part for part in command] + ["--out", str(tmp_path / "d")]
    err = one_line_error(capsys, main(argv), 2)
    assert "pip install" in err


def fail_with(error):
    def fail(*args, **kwargs):
        raise error
    return fail


@pytest.mark.parametrize("target, error", [
    ("spectral.claim.load_sweep", ValueError("boom")),
    ("spectral.claim.make_executor", ImportError("boom: a broken import inside spectral")),
    ("spectral.claim.run_sweep", RuntimeError("boom")),
    # a bug whose message reads like failed runs is still a bug (the CLI matched the text)
    ("spectral.claim.run_sweep", RuntimeError("1 of 2 sweep runs failed: ['a']; boom")),
    ("spectral.claim.run_sweep", TypeError("boom")),
])
def test_a_bug_in_sweep_shows_its_traceback_and_asks_for_a_report(tmp_path, capsys, monkeypatch, target, error):
    monkeypatch.setattr(target, fail_with(error))
    path = write_config(tmp_path, {"base": {}, "grid": {"shrink_factor": [0.2]}}, "sweep.json")
    err = bug_report(capsys, main(["sweep", str(path), "--out", str(tmp_path / "d"), "--workers", "1"]))
    assert f"{type(error).__name__}: {error}" in err


def test_a_value_error_inside_a_run_is_a_bug_not_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("spectral.claim.run_claim_check", fail_with(ValueError("boom")))
    err = bug_report(capsys, main(["run", "--out", str(tmp_path / "o"), "--quiet"]))
    assert "ValueError: boom" in err and "spectral: error:" not in err


def test_a_value_error_from_plotting_a_valid_history_is_a_bug(tmp_path, capsys, monkeypatch):
    probe = SpectrumProbe(Grid.uniform(16), target=lambda x: np.sin(2 * np.pi * x[:, 0]))
    probe.snapshot(lambda x: np.sin(2 * np.pi * x[:, 0]), "start")
    probe.history.save(tmp_path / "h.npz")
    monkeypatch.setattr("spectral.plot.error_heatmap", fail_with(ValueError("boom")))
    bug_report(capsys, main(["plot", str(tmp_path / "h.npz"), "--out", str(tmp_path / "f.png")]))


def test_failed_sweep_runs_exit_1_in_one_line(tmp_path, capsys, monkeypatch):
    from spectral.claim import RunsFailed

    failed = RunsFailed("1 of 2 sweep runs failed: ['a']; a: ValueError('x')")
    monkeypatch.setattr("spectral.claim.run_sweep", fail_with(failed))
    path = write_config(tmp_path, {"base": {}, "grid": {"shrink_factor": [0.2]}}, "sweep.json")
    err = one_line_error(capsys, main(["sweep", str(path), "--out", str(tmp_path / "d"), "--workers", "1"]), 1)
    assert "1 of 2 sweep runs failed" in err


@pytest.mark.parametrize("command, resumes", [(["run"], True), (["reproduce", "f-principle"], False)])
def test_ctrl_c_exits_130_in_one_line(tmp_path, capsys, monkeypatch, command, resumes):
    monkeypatch.setattr("spectral.claim.run_claim_check", fail_with(KeyboardInterrupt()))
    monkeypatch.setattr("spectral._reproduce.run_reproduction", fail_with(KeyboardInterrupt()))
    assert main(command + ["--out", str(tmp_path / "o")]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("spectral: interrupted") and ("resume" in err) == resumes


@pytest.mark.slow
def test_a_bug_via_python_dash_m_prints_the_traceback_and_exits_1(tmp_path):
    code = ("import sys, spectral.claim\n"
            "def boom(*args, **kwargs): raise ValueError('boom')\n"
            "spectral.claim.run_claim_check = boom\n"
            "from spectral.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    result = subprocess.run([sys.executable, "-c", code, "run", "--out", str(tmp_path / "o")], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 1 and result.stderr.startswith("Traceback (most recent call last)")
    assert result.stderr.splitlines()[-1].startswith("spectral: this is a bug")


def test_workers_option_reaches_the_run(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr("spectral.claim.run_claim_check", lambda **kwargs: seen.update(kwargs) or ({}, ""))
    assert main(["run", "--out", str(tmp_path / "o"), "--quiet", "--workers", "3"]) == 0
    assert seen["workers"] == 3
    assert main(["run", "--out", str(tmp_path / "o"), "--quiet"]) == 0 and seen["workers"] is None

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


def test_run_writes_report_and_figures(run_dir):
    tmp, _ = run_dir
    out = tmp / "out"
    report = json.loads((out / "report.json").read_text())
    assert report["version"] == 2 and report["config"]["alpha"] == 0.05
    assert report["cases"][0]["verdicts"]["shrink_removes_high_frequencies"]["holds"] in (True, False)
    assert report["cases"][0]["verdicts"]["slingshot_beats_control"]["holds"] in (True, False, None)
    assert (out / "report.html").is_file()
    text = (out / "report.md").read_text()
    assert text.index("## Verdicts") < text.index("## Case 1d-tanh")
    assert {p.name for p in (out / "figures").glob("*.png")} >= {
        "1d-tanh-spectra.png", "1d-tanh-heatmap.png", "1d-tanh-curves.png", "sweep.png"}


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("spectral-probes ")
    for command in ("run", "report", "plot", "sweep", "reproduce"):
        assert main([command, "--help"]) == 0
        assert len(capsys.readouterr().out.splitlines()[2]) > 0  # a description after the usage line


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


def test_seeds_option_and_printed_table(run_dir, capsys):
    tmp, config = run_dir
    assert main(["run", "--config", str(config), "--out", str(tmp / "seeds"), "--seeds", "3"]) == 0
    printed = capsys.readouterr().out
    assert "| 1d-tanh |" in printed and "report.md" in printed
    assert json.loads((tmp / "seeds" / "report.json").read_text())["cases"][0]["seeds"] == [0, 1, 2]


def test_python_dash_m_works(run_dir):
    tmp, config = run_dir
    result = subprocess.run([sys.executable, "-m", "spectral", "run", "--config", str(config), "--out",
                             str(tmp / "out"), "--quiet"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "argv, match",
    [
        (["run", "--seeds", "0"], "seeds"),
        (["run", "--seeds", "many"], "seeds"),
        (["run", "--config", "/no/such/file.toml"], "does not exist"),
        (["run", "--frobnicate"], "frobnicate"),
        ([], "command"),
        (["launch"], "launch"),
        (["plot", "/no/such/history.npz", "--out", "x.png"], "history.npz"),
        (["plot"], "history"),
        (["sweep", "/no/such/sweep.toml", "--out", "d"], "sweep.toml"),
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


def test_bad_config_via_subprocess_has_no_traceback(tmp_path):
    path = write_config(tmp_path, {"seeds": "x"})
    result = subprocess.run([sys.executable, "-m", "spectral", "run", "--config", str(path)], capture_output=True,
                            text=True, timeout=120)
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


def test_plot_refuses_a_crafted_history_in_one_line(tmp_path, capsys):
    crafted = tmp_path / "deep.npz"
    np.savez(crafted, metadata=np.array("[" * 100_000 + "]" * 100_000))
    assert main(["plot", str(crafted), "--out", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nested too deeply" in err and not (tmp_path / "f.png").exists()

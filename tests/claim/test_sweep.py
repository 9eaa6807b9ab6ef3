"""Tests of spectral.claim._sweep: a grid of claim-check runs through executors, resumable, one file per run."""

from __future__ import annotations

import concurrent.futures
import json
import shutil
import sys

import pytest
import torch

from spectral._io import read_json
from spectral.claim import _sweep as sweep
from spectral.claim._config import ClaimConfig, ConfigError
from spectral.claim._sweep import RunsFailed, expand_sweep, load_sweep, make_executor, run_sweep, write_sweep_report

BASE = {
    "cases": [{"signal": "1d", "activation": "tanh", "bias": True}],
    "seeds": 2,
    "sweep": {"case": ""},
    "precision": {"enabled": False},
    "training": {"width": 8, "depth": 1, "overfit_max_steps": 20, "check_every": 10, "retrain_steps": 10, "recovery_max_steps": 60,
                 "curve_points": 2},
}
SPEC = {"base": BASE, "grid": {"shrink_factor": [0.2, 0.5]}}


def _write(tmp_path, data, name="sweep.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def _outputs(out):
    """Everything a sweep wrote that must not depend on the executor: the report and every run file."""
    runs = {path.name: read_json(path) for path in sorted((out / "runs").glob("*.json"))}
    return read_json(out / "sweep.json"), runs, (out / "sweep.md").read_text()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The tiny sweep run on a thread pool: the reference every other run must equal."""
    out = tmp_path_factory.mktemp("local")
    path = _write(out, SPEC)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        report = run_sweep(path, out / "result", executor=pool, quiet=True)
    return report, out / "result"


def test_runs_are_named_and_written(local_run):
    report, out = local_run
    assert report["varying"] == ["shrink_factor"]
    assert [run["grid"] for run in report["runs"]] == [{"shrink_factor": 0.2}, {"shrink_factor": 0.5}]
    for run in report["runs"]:
        assert run["id"].startswith(f"shrink_factor={run['grid']['shrink_factor']}-")
        record = read_json(out / "runs" / f"{run['id']}.json")
        assert record["digest"] == run["digest"] and record["config"]["shrink_factor"] == run["grid"]["shrink_factor"]
        assert [case["id"] for case in record["cases"]] == ["1d-tanh"]
        assert (out / "runs" / run["id"] / "cases" / "1d-tanh.json").is_file()
        assert set(run["cases"][0]["verdicts"]) >= set(sweep.MAIN_VERDICTS)
    assert read_json(out / "sweep.json") == report
    table = (out / "sweep.md").read_text()
    assert "| run | grid values | case | shrink cuts HF | beats control |" in table
    assert table.count("| 1d-tanh |") == 2


@pytest.mark.slow
def test_dask_cluster_equals_local_run(local_run, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            run_sweep(load_sweep(_write(tmp_path, SPEC)), tmp_path / "dask", executor=client.get_executor(),
                      quiet=True)
    assert _outputs(tmp_path / "dask") == _outputs(local_run[1])


@pytest.mark.slow
def test_default_process_pool_equals_local_run(local_run, tmp_path):
    run_sweep(expand_sweep(SPEC), tmp_path, quiet=True)
    assert _outputs(tmp_path) == _outputs(local_run[1])


def test_rerun_skips_finished_runs_and_resumes_a_missing_one(local_run, tmp_path, monkeypatch):
    out = tmp_path / "copy"
    shutil.copytree(local_run[1], out)
    computed = []

    def refuse(config, directory, *args):
        computed.append(directory.name)
        raise AssertionError("a finished run was computed again")

    monkeypatch.setattr(sweep, "run_cases", refuse)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        assert run_sweep(expand_sweep(SPEC), out, executor=pool, quiet=True) == local_run[0]
    assert computed == []

    monkeypatch.undo()
    runs = expand_sweep(SPEC)
    missing = runs[1][0]
    (out / "runs" / f"{missing}.json").unlink()
    shutil.rmtree(out / "runs" / missing)
    original = sweep.run_cases
    monkeypatch.setattr(sweep, "run_cases", lambda config, directory, *a, **k: computed.append(directory.name) or
                        original(config, directory, *a))
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        run_sweep(runs, out, executor=pool, quiet=True)
    assert computed == [missing]
    assert _outputs(out) == _outputs(local_run[1])


def test_stale_digest_is_recomputed(local_run, tmp_path, monkeypatch):
    shutil.copytree(local_run[1], tmp_path, dirs_exist_ok=True)
    run = expand_sweep(SPEC)[0][0]
    record = read_json(tmp_path / "runs" / f"{run}.json")
    (tmp_path / "runs" / f"{run}.json").write_text(json.dumps(dict(record, digest="stale")))
    computed = []
    monkeypatch.setattr(sweep, "run_cases", lambda config, directory, *a, **k: computed.append(directory.name) or [])
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        report = run_sweep(expand_sweep(SPEC), tmp_path, executor=pool, quiet=True)
    assert computed == [run]
    assert report["runs"][0]["cases"] == [] and report["runs"][1] == local_run[0]["runs"][1]


def test_failed_run_raises_after_the_others(tmp_path, monkeypatch):
    def fail_one(config, directory, *args, **kwargs):
        if config.shrink_factor == 0.5:
            raise RuntimeError("boom")
        return []

    monkeypatch.setattr(sweep, "run_cases", fail_one)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        with pytest.raises(RunsFailed, match="1 of 2 sweep runs failed.*boom"):
            run_sweep(expand_sweep(SPEC), tmp_path, executor=pool, quiet=True)
    assert len(list((tmp_path / "runs").glob("*.json"))) == 1


def test_grid_combinations_and_nested_keys():
    runs = expand_sweep({"base": BASE, "grid": {"training.width": [8, 16], "shrink_factor": [0.1, 0.2, 0.3]}})
    assert len(runs) == 6 and len({run for run, _ in runs}) == 6
    assert [(c.training.width, c.shrink_factor) for _, c in runs][:2] == [(8, 0.1), (8, 0.2)]
    assert all(c.training.depth == 1 for _, c in runs)  # base kept beside the grid key
    assert runs[0][0].startswith("width=8,shrink_factor=0.1-")
    assert expand_sweep({"base": BASE, "grid": {"training.width": [8, 16], "shrink_factor": [0.1, 0.2, 0.3]}}) == runs


def test_toml_sweep_file(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text('[base]\nseeds = 3\n[grid]\n"training.depth" = [1, 2]\n')
    runs = load_sweep(path)
    assert [(c.seeds, c.training.depth) for _, c in runs] == [(3, 1), (3, 2)]


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"base": BASE, "grid": {"training.widht": [8]}}, "'training.widht'"),
        ({"base": BASE, "grid": {"nope": [1]}}, "'nope'"),
        ({"base": BASE, "grid": {"seeds.x": [1]}}, "'seeds.x'"),
        ({"base": BASE, "grid": {"shrink_factor": []}}, "'shrink_factor'"),
        ({"base": BASE, "grid": {"shrink_factor": 0.2}}, "'shrink_factor'"),
        ({"base": BASE, "grid": {}}, "'grid'"),
        ({"base": BASE}, "'grid'"),
        ({"base": BASE, "grid": {"shrink_factor": [0.2]}, "extra": 1}, "'extra'"),
        ({"base": [], "grid": {"shrink_factor": [0.2]}}, "'base'"),
        ({"base": {"seedz": 2}, "grid": {"shrink_factor": [0.2]}}, "'seedz'"),
        ({"base": BASE, "grid": {"training.width": ["wide"]}}, "'training.width'"),
        ({"base": BASE, "grid": {"shrink_factor": [-1.0]}}, "'shrink_factor'"),
        ({"base": BASE, "grid": {"training": [{"width": 4}], "training.depth": [1]}}, "overlap"),
        ({"base": BASE, "grid": {"shrink_factor": [0.2, 0.2]}}, "twice"),
        ([1, 2], "table"),
    ],
)
def test_bad_sweeps_raise_config_error(tmp_path, spec, match):
    with pytest.raises(ConfigError, match=match):
        load_sweep(_write(tmp_path, spec))


def test_bad_sweep_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_sweep(tmp_path / "missing.json")
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_sweep(path)


@pytest.mark.parametrize("runs, error", [(42, TypeError), ([("a", "config")], TypeError), ([], ValueError),
                                         ([("a", ClaimConfig()), ("a", ClaimConfig())], ValueError),
                                         ([("../up", ClaimConfig())], ValueError), ([("a", {})], TypeError)])
def test_bad_runs(tmp_path, runs, error):
    with pytest.raises(error, match="runs"):
        run_sweep(runs, tmp_path, quiet=True)


def test_make_executor(monkeypatch):
    executor, close = make_executor(workers=2)
    assert isinstance(executor, concurrent.futures.ProcessPoolExecutor)
    close()
    with pytest.raises(ValueError, match="workers"):
        make_executor(workers=0)
    with pytest.raises(ValueError, match="scheduler"):
        make_executor(workers=2, scheduler="tcp://localhost:8786")
    for empty in ("", "  "):
        with pytest.raises(ValueError, match="scheduler"):
            make_executor(scheduler=empty)
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(ImportError, match=r'pip install "spectral-probes\[dask\]"'):
        make_executor(scheduler="tcp://localhost:8786")


def test_tasks_compute_with_one_thread_and_the_caller_keeps_its_own(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(sweep, "run_cases", lambda config, directory, *a, **k: seen.append(torch.get_num_threads()) or [])
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            run_sweep(expand_sweep(SPEC), tmp_path, executor=pool, quiet=True)
        assert seen == [1, 1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# --- issue 18 ---------------------------------------------------------------------------------------------------


def _record(run, overrides, effect):
    """A run file whose one case has both main verdicts: 8 seeds, every claim value ``1 + effect`` times its reference."""
    from spectral.claim._stats import verdict

    config = ClaimConfig.from_dict({"seeds": 8, **overrides})
    reference = [1.0 + 0.1 * seed for seed in range(8)]
    claim = [value * (1 + effect) for value in reference]
    verdicts = {name: verdict(claim, reference, config) for name in sweep.MAIN_VERDICTS}
    return {"format": sweep.FORMAT, "id": run, "digest": run, "config": config.to_dict(),
            "cases": [{"id": "1d-tanh", "verdicts": verdicts, "overfit": {"overfits": True}}]}


@pytest.mark.parametrize("first, second", [
    ({"alpha": 0.001}, {"alpha": 0.05}),  # p = 2**-8 = 0.0039: "no" at the first run's 0.001
    ({"min_relative_effect": 0.99999}, {"min_relative_effect": 0.05}),
    ({"correction": "holm", "alpha": 0.005}, {"correction": "none", "alpha": 0.005}),
])
def test_each_sweep_run_is_judged_by_its_own_config(tmp_path, first, second):
    """Issue 18, fault 19: a run with p = 0.0039 and a -99.97% effect read "no" under the first run's values."""
    for run, overrides in (("a", first), ("b", second)):
        (tmp_path / "runs").mkdir(exist_ok=True)
        (tmp_path / "runs" / f"{run}.json").write_text(json.dumps(_record(run, overrides, -0.9997)))
    report = write_sweep_report(tmp_path, ["a", "b"])
    a, b = ([case["verdicts"]["slingshot_beats_control"] for case in run["cases"]][0] for run in report["runs"])
    assert b["p_value"] == pytest.approx(2**-8) and b["relative_effect"] == pytest.approx(-0.9997)
    assert a["holds"] in (False, None) and b["holds"] is True  # a: "no", or untestable at alpha 0.001 with 8 seeds
    for run, overrides in zip(report["runs"], (first, second)):
        config = ClaimConfig.from_dict(overrides)
        assert (run["family"]["alpha"], run["family"]["method"]) == (config.alpha, config.correction)
    assert "| b |" in (tmp_path / "sweep.md").read_text().split("| a |")[1]


def test_a_grid_over_the_cap_fails_fast_naming_its_size():
    """Issue 18, fault 20: a million combinations expanded silently for 11 minutes."""
    grid = {"seeds": list(range(1, 1001)), "training.width": list(range(1, 1001))}
    with pytest.raises(ConfigError, match=r"sweep grid has 1000000 combinations \(1000 x 1000\), more than the cap "
                       r"of 10000 runs") as error:
        expand_sweep({"base": BASE, "grid": grid})
    assert error.value.key == "grid" and "\n" not in str(error.value)
    assert len(expand_sweep({"base": BASE, "grid": {"seeds": [2, 3]}})) == 2


_ORPHANED_POOL = """
import os, sys, time
from spectral.claim._sweep import make_executor

if __name__ == "__main__":
    executor, close = make_executor(workers=1)
    worker = executor.submit(os.getpid).result()
    executor.submit(time.sleep, 600)  # a busy worker: a long run
    print(worker, flush=True)
    time.sleep(600)
"""


def _running(pid):
    """Whether ``pid`` is a live process (a zombie waiting for a reaper is dead)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pool_workers_exit_when_the_sweep_is_killed(tmp_path):
    """Issue 18, fault 21: after kill -9 of the main process its busy workers ran on forever."""
    import os
    import selectors
    import signal
    import subprocess
    import time

    script = tmp_path / "orphan.py"
    script.write_text(_ORPHANED_POOL)
    main = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    worker = None
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(main.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=120), "the pool never started"
        worker = int(main.stdout.readline())
        assert _running(worker)
        main.send_signal(signal.SIGKILL)
        main.wait(timeout=30)
        deadline = time.monotonic() + 60  # a bound, not a timing: the worker checks every PARENT_POLL_S seconds
        while _running(worker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _running(worker), "the worker outlived the killed sweep"
    finally:
        main.kill()
        if worker is not None and _running(worker):
            os.kill(worker, signal.SIGKILL)

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from claim_config import tiny

from spectral.claim._config import ConfigError
from spectral.claim._parallel import RemoteTraceback, Task, available_cores, run_tasks
from spectral.claim._run import run_claim_check

#: Three seeds, width 8, two cases (one 2D), the precision study beside them: every kind of task of a run.
REDUCED = tiny(seeds=3, training={**tiny()["training"], "width": 8},
               precision={"window_steps": 5, "continue_steps": 10,
                          "manifold": {"width": 8, "depth": 1, "points": 6, "mse_ratio": 1e-10, "max_iterations": 60}})


def _units(count, value, progress):
    for _ in range(count):
        progress()
    return value


def _fail(error, progress):
    progress()
    raise error


def _die(code, progress):
    os._exit(code)


def _sleep_forever(path, progress):
    with open(path, "w") as file:
        file.write(str(os.getpid()))
    time.sleep(600)


def _without_provenance(report):
    return json.dumps({key: value for key, value in report.items() if key != "provenance"})


def test_available_cores_is_what_this_process_may_use():
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert available_cores() == expected


def test_one_worker_runs_in_order_in_this_process():
    seen = []
    finished = run_tasks([Task(_units, (2, "a")), Task(_units, (1, "b"))], 1, lambda: seen.append(1))
    assert [done.result for done in finished] == ["a", "b"] and len(seen) == 3
    assert all(done.seconds >= 0 for done in finished)


@pytest.mark.slow
def test_workers_report_every_unit_to_one_counter_and_keep_the_order():
    seen = []
    tasks = [Task(_units, (count, count)) for count in (3, 0, 5, 1)]
    finished = run_tasks(tasks, 2, lambda: seen.append(1))
    assert [done.result for done in finished] == [3, 0, 5, 1] and len(seen) == 9


@pytest.mark.slow
@pytest.mark.parametrize("error", [ConfigError("config key 'seeds' must be positive", "seeds"), KeyError("missing")])
def test_an_error_in_a_worker_is_raised_as_it_would_be_serially(error):
    tasks = [Task(_units, (1, 0)), Task(_fail, (error,))]
    with pytest.raises(type(error)) as serial:
        run_tasks(tasks, 1)
    with pytest.raises(type(error)) as parallel:
        run_tasks(tasks, 2)
    assert str(parallel.value) == str(serial.value) and vars(parallel.value) == vars(serial.value)
    assert isinstance(parallel.value.__cause__, RemoteTraceback) and "_fail" in str(parallel.value.__cause__)


@pytest.mark.slow
def test_a_worker_that_dies_stops_the_run():
    with pytest.raises(RuntimeError, match="worker process died"):
        run_tasks([Task(_units, (0, 0)), Task(_die, (3,))], 2)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "getppid") or sys.platform == "win32", reason="POSIX parent ids")
def test_workers_exit_when_the_parent_is_killed(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{os.path.dirname(__file__)!r}, {os.path.dirname(os.path.dirname(__file__))!r}]
        from test_parallel import _sleep_forever
        from spectral.claim._parallel import Task, run_tasks
        run_tasks([Task(_sleep_forever, ({str(tmp_path / 'a')!r},)),
                   Task(_sleep_forever, ({str(tmp_path / 'b')!r},))], 2)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / name).is_file() and (tmp_path / name).read_text() for name in "ab"):
            assert time.monotonic() < deadline and parent.poll() is None
            time.sleep(0.2)
        workers = [int((tmp_path / name).read_text()) for name in "ab"]
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "a worker outlived its parent"
            time.sleep(0.2)
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as file:  # a zombie has finished: only its parent's wait is missing
        return file.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.slow
def test_a_parallel_run_is_bit_identical_to_a_serial_one(tmp_path):
    serial, _ = run_claim_check(out=tmp_path / "serial", overrides=REDUCED, quiet=True, workers=1)
    parallel, _ = run_claim_check(out=tmp_path / "parallel", overrides=REDUCED, quiet=True, workers=2)
    assert serial["precision"] is not None and len(serial["cases"]) == 2
    assert _without_provenance(parallel) == _without_provenance(serial)
    for case in ("1d-tanh", "2d-relu-nobias"):  # the case files a resumed run reads are the same too
        assert (tmp_path / "parallel" / "cases" / f"{case}.history.npz").read_bytes() == \
               (tmp_path / "serial" / "cases" / f"{case}.history.npz").read_bytes()
    resumed, _ = run_claim_check(out=tmp_path / "parallel", overrides=REDUCED, quiet=True, workers=2)
    assert _without_provenance(resumed) == _without_provenance(serial)


def test_workers_must_be_a_positive_integer(tmp_path):
    with pytest.raises(ValueError, match="workers"):
        run_claim_check(out=tmp_path, overrides=REDUCED, quiet=True, workers=0)
    with pytest.raises(TypeError, match="workers"):
        run_claim_check(out=tmp_path, overrides=REDUCED, quiet=True, workers=1.5)

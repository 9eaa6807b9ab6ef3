"""Independent tasks of one run on every core: worker processes with one torch thread each, one progress bar.

Each task is a module-level function called as ``function(*args,
progress=...)``; it computes exactly what it would compute in the parent
process (one torch thread, its own seeds), so a run's numbers are the same bit
for bit whatever the number of workers. Workers are fresh interpreters
(``spawn``: forking a process whose torch thread pools already ran can
deadlock); they report each unit of progress to the parent, which drives the
one bar, and exit when the parent dies. A task that raises stops the run with
the same exception as a serial run, the worker's traceback attached as its
``__cause__``.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import threading
import time
import traceback
from typing import Any, Callable, NamedTuple

import torch

__all__ = ["Finished", "Task", "available_cores", "run_tasks"]

#: Seconds between the parent's checks that its workers are alive (and the workers' that their parent is).
POLL_S = 0.5


class Task(NamedTuple):
    """``function(*args, progress=callback, **keywords)``: one independent piece of a run."""

    function: Callable[..., Any]
    args: tuple[Any, ...] = ()
    keywords: dict[str, Any] | None = None

    def __call__(self, progress: Callable[[], None]) -> Any:
        return self.function(*self.args, progress=progress, **(self.keywords or {}))


class Finished(NamedTuple):
    """A task's result and its wall time in seconds."""

    result: Any
    seconds: float


def _timed(task: Task, progress: Callable[[], None]) -> Finished:
    started = time.perf_counter()
    result = task(progress)
    return Finished(result, time.perf_counter() - started)


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker (set as that exception's ``__cause__``)."""

    def __str__(self) -> str:
        return str(self.args[0])


def available_cores() -> int:
    """The cores this process may run on (``os.sched_getaffinity`` where it exists, else ``os.cpu_count()``).

    Examples
    --------
    >>> available_cores() >= 1
    True
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def run_tasks(tasks: list[Task], workers: int, progress: Callable[[], None] = lambda: None) -> list[Finished]:
    """Every task's result, in the order of ``tasks``; with ``workers`` processes (1: in this process, in order).

    The tasks start in the order given (put the longest first) and share
    ``progress``, which is only ever called in this process. The first task to
    raise stops the others (their workers are terminated) and its exception
    is raised here.

    Returns
    -------
    list of Finished
        Per task, its result and the seconds it took (in its worker).

    Examples
    --------
    >>> def square(x, progress):
    ...     progress()
    ...     return x * x
    >>> [done.result for done in run_tasks([Task(square, (3,)), Task(square, (4,))], workers=1)]
    [9, 16]
    """
    if workers == 1 or len(tasks) <= 1:
        return [_timed(task, progress) for task in tasks]
    context = multiprocessing.get_context("spawn")
    todo, messages = context.Queue(), context.Queue()
    for index, task in enumerate(tasks):
        todo.put((index, task))
    count = min(workers, len(tasks))
    for _ in range(count):
        todo.put(None)
    processes = [context.Process(target=_work, args=(todo, messages, os.getpid()), daemon=True)
                 for _ in range(count)]
    for process in processes:
        process.start()
    try:
        results = _collect(messages, processes, len(tasks), progress)
        for process in processes:  # each has its None: it is on its way out
            process.join(timeout=10 * POLL_S)
        return results
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()


def _collect(messages: Any, processes: list[Any], total: int, progress: Callable[[], None]) -> list[Any]:
    """Drive ``progress`` from the workers' messages until every task has answered; raise the first error."""
    results: dict[int, Any] = {}
    while len(results) < total:
        try:
            kind, index, payload = messages.get(timeout=POLL_S)
        except queue.Empty:
            dead = [p for p in processes if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"a worker process died (exit code {dead[0].exitcode}) before finishing its "
                                   "task; the finished cases are kept and a rerun resumes from them") from None
            continue
        if kind == "unit":
            progress()
        elif kind == "done":
            results[index] = payload
        else:
            raise _rebuild(*payload)
    return [results[index] for index in range(total)]


def _rebuild(pickled: bytes | None, text: str) -> BaseException:
    try:
        error = pickle.loads(pickled) if pickled is not None else RuntimeError(text)
    except Exception:  # an exception type that does not unpickle: its traceback still says what happened
        error = RuntimeError(text)
    error.__cause__ = RemoteTraceback(text)
    return error


def _work(todo: Any, messages: Any, parent: int) -> None:
    """A worker: one torch thread, tasks from ``todo`` until a None, everything it has to say on ``messages``."""
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    torch.set_num_threads(1)
    while (item := todo.get()) is not None:
        index, task = item
        try:
            result = _timed(task, lambda: messages.put(("unit", index, None)))
        except BaseException as error:  # noqa: BLE001 - every failure goes back to the parent, which raises it
            text = "".join(traceback.format_exception(error))
            try:
                pickled: bytes | None = pickle.dumps(error)
            except Exception:
                pickled = None
            messages.put(("error", index, (pickled, text)))
            return
        messages.put(("done", index, result))


def _exit_with(parent: int) -> None:
    """Exit this worker as soon as the parent process is gone (a killed run leaves no orphans computing)."""
    while os.getppid() == parent:
        time.sleep(POLL_S)
    os._exit(1)

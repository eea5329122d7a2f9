"""A small pool of grading processes in which any task can be stopped on its own.

``concurrent.futures`` cannot stop one task that hangs, and a task that kills its process
breaks the whole executor. Here each worker process runs one task at a time; a task that runs
past its deadline, or whose worker dies, is reported as a :class:`Failure` and its worker (with
every process it started) is killed and replaced, while the other workers carry on.

Worker ``k`` (0-based) is told its slot ``first_slot + k``, so that concurrent work can be kept
apart (the grader gives each slot its own sandbox uid).

Workers are started as plain subprocesses of this interpreter (not with ``multiprocessing``),
so that a pool can also run inside a process that ``multiprocessing`` will not let have
children: a Dask worker under its nanny is a daemonic process (:mod:`autograder.host.cluster`).
"""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from multiprocessing import Pipe
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

import psutil

__all__ = ["Failure", "kill_processes", "run_tasks"]

_PR_SET_PDEATHSIG = 1
_STARTED = "started"
#: Time a new worker process may take to start (imports) before its first task's clock starts.
STARTUP_SECONDS = 300.0

#: What a task is (the grader's: :class:`autograder.host.task.Task`) and what its function returns.
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Failure:
    """A task that produced no result: it ran past its deadline, or its process died."""

    reason: str


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (the grading run was killed)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _serve(conn: Connection, slot: int, fn: Callable[[Any, int], Any], log_path: str | None) -> None:
    """A worker's main loop: receive a task, run ``fn(task, slot)``, send the result back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if log_path is not None:
        # nbgrader, Jupyter and the sandbox write to stdout/stderr; keep the terminal for progress.
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        conn.send(_STARTED)  # the task's clock starts now, not while this process was starting up
        try:
            result = fn(task, slot)
        except Exception:  # noqa: BLE001 - reported as this task's failure, the worker lives on
            trace = traceback.format_exc(limit=5)
            result = Failure(f"the grader failed on this submission ({trace.strip().splitlines()[-1]})\n{trace}")
        conn.send(result)


def _child_main(fd: int, parent: int) -> None:
    """Entry point of a worker process (``python -c``): the first message on the connection
    ``fd`` says where to import the task function from, and the worker's slot and log."""
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    conn = Connection(fd)
    path, module, name, slot, log_path = conn.recv()
    sys.path[:] = path
    fn: Any = importlib.import_module(module)  # then the function named in it
    for part in name.split("."):
        fn = getattr(fn, part)
    _serve(conn, slot, fn, log_path)


def _kill_tree(pid: int) -> None:
    """Kill a process and every process it started (kernels, sandboxes)."""
    try:
        parent = psutil.Process(pid)
        family = [*parent.children(recursive=True), parent]
    except psutil.Error:
        return
    kill_processes(family, timeout=10)


def kill_processes(procs: list[psutil.Process], timeout: float) -> None:
    """SIGKILL each of ``procs`` (those already gone are passed over) and wait up to
    ``timeout`` seconds for them to go."""
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=timeout)


class _Worker:
    """One worker process and the parent's end of its connection."""

    def __init__(self, slot: int, fn: Callable, log_path: str | None, env: dict[str, str]) -> None:
        if fn.__module__ == "__main__" or "<locals>" in fn.__qualname__:
            raise ValueError(f"the pool's task function must be importable, not {fn.__module__}.{fn.__qualname__}")
        self.slot = slot
        self.conn, child = Pipe()
        code = f"from autograder.host.pool import _child_main; _child_main({child.fileno()}, {os.getpid()})"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            pass_fds=[child.fileno()],
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            close_fds=True,
        )
        child.close()
        self.sentinel = os.pidfd_open(self.proc.pid)  # readable once the process has ended
        self.conn.send((list(sys.path), fn.__module__, fn.__qualname__, slot, log_path))
        self.task: Any = None
        self.deadline = 0.0

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            _kill_tree(self.proc.pid)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.conn.close()
        if self.sentinel >= 0:
            os.close(self.sentinel)
            self.sentinel = -1


def run_tasks(
    fn: Callable[[T, int], R],
    tasks: Iterable[T],
    *,
    workers: int,
    timeout: float,
    log_dir: str | os.PathLike | None = None,
    env: dict[str, str] | None = None,
    first_slot: int = 0,
) -> Generator[tuple[T, R | Failure], None, None]:
    """Run ``fn(task, slot)`` for every task in ``workers`` processes; yield ``(task, result)``
    in completion order. ``result`` is a :class:`Failure` when the task raised, ran longer than
    ``timeout`` seconds, or killed its process. ``fn`` must be importable (processes are spawned).
    Worker ``k`` runs as slot ``first_slot + k``, writes its output to ``log_dir/worker-<slot>.log``
    and gets ``env`` added to its environment.

    Stopping the iteration (or Ctrl-C in the caller) kills every worker and what it started.
    """
    pending = list(tasks)
    pending.reverse()
    pool: list[_Worker | None] = [None] * max(1, min(workers, len(pending)))

    def log_path(slot: int) -> str | None:
        return None if log_dir is None else os.path.join(log_dir, f"worker-{slot}.log")

    try:
        while pending or any(w is not None and w.task is not None for w in pool):
            for slot, worker in enumerate(pool):
                if pending and (worker is None or worker.task is None):
                    if worker is None:
                        worker = pool[slot] = _Worker(first_slot + slot, fn, log_path(first_slot + slot), env or {})
                    worker.task = pending.pop()
                    worker.deadline = time.monotonic() + STARTUP_SECONDS + timeout
                    worker.conn.send(worker.task)
            busy = [w for w in pool if w is not None and w.task is not None]
            nearest = min(w.deadline for w in busy)
            wait([w.conn for w in busy] + [w.sentinel for w in busy], timeout=max(0.0, nearest - time.monotonic()))
            for worker in busy:
                result, replace = None, False
                try:
                    if worker.conn.poll():
                        result = worker.conn.recv()
                        if isinstance(result, str) and result == _STARTED:
                            worker.deadline = time.monotonic() + timeout
                            result = None
                    elif not worker.alive():
                        code = worker.proc.returncode
                        how = f"killed by {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
                        result, replace = Failure(f"the grading process died ({how})"), True
                    elif time.monotonic() > worker.deadline:
                        result, replace = Failure(f"grading took longer than {timeout:g} s and was stopped"), True
                except (EOFError, OSError):
                    result, replace = Failure("the grading process died"), True
                if result is None:
                    continue
                task, worker.task = worker.task, None
                if replace:
                    worker.kill()
                    pool[pool.index(worker)] = None
                yield task, result
    finally:
        for worker in pool:
            if worker is None:
                continue
            if worker.task is None:
                worker.stop()
            else:
                worker.kill()

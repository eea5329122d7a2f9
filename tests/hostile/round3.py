"""Round 3 of the red team (issue 9): attacks on the per-case CPU limit and what else reaches
the same result, graded in one run of ``03_layers`` (tests/test_hostile_round3.py).

Each attack answers ``Linear.backward`` correctly but slowly: it spends longer on the large case
than a case may (as a cheap finite difference of it would), after making sure the limit the
case's child sets on itself does not hold, or by sharing the work among forked processes. The
other answers are the honest wrong ones, so the entry must score no more than ``honest_wrong``.
The styles are correct answers whose notebooks do the same to the signals and limits, or fork,
and must keep full marks.

Code that must reach the checking run is put in a cell that defines a helper the answer uses
(the checking run keeps the cells its answers need, :mod:`autograder.verdicts.slicing`), and it acts only
there (``BACKPROP_GRADER_FD`` is set in the checking run), as a hostile student would write it.
"""

from __future__ import annotations

from .catalogue import HONEST_WRONG, Hostile, cell_id
from .corpus import Assignment, on_wrong, style

#: CPU seconds the attacks spend on a large case: past the harness's case limit (5 s, the
#: child's hard limit 6 s) and far within what the checking process itself may use (70 s).
BURN_SECONDS = 7.0

_SLOW_LINEAR = f"""
import os, resource, signal

def _burn(seconds):
    start = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    while resource.getrusage(resource.RUSAGE_SELF).ru_utime - start < seconds:
        pass

def _slow_linear(layer, grad_out):
    if layer.x.size >= 64 * 32768:  # the large case: as long as a finite difference would take
        _burn({BURN_SECONDS})
    layer.W.grad += layer.x.T @ grad_out
    layer.b.grad += grad_out.sum(axis=0)
    return grad_out @ layer.W.data.T
"""

#: The case's child cannot lower its own limit, and ignores the soft limit's SIGXCPU; the checking
#: process waits for it without its wall clock (the checker's ``_wait`` replaced, found by gc).
_NO_CHILD_LIMIT = """
if "BACKPROP_GRADER_FD" in os.environ:
    resource.setrlimit = lambda *args, **kwargs: None
    signal.signal(signal.SIGXCPU, signal.SIG_IGN)
    _fork = os.fork
    def _quiet_fork():
        pid = _fork()
        if pid == 0:
            signal.signal(signal.SIGXCPU, signal.SIG_IGN)
        return pid
    os.fork = _quiet_fork
    # and no wall clock for the case in the checking process: it waits for the child forever
    import gc, types
    def _patient_wait(pid, seconds):
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        return True
    for _obj in gc.get_objects():
        if isinstance(_obj, types.FunctionType) and _obj.__name__ == "run_case_in_child":
            _obj.__globals__["_wait"] = _patient_wait
"""

#: No child at all: os.fork "returns 0", so the checking process runs each case itself, under
#: its own limit (its cells' and its start-up's, 70 s), and what the checker does after a case
#: is made harmless.
_CASE_IN_CHECKER = """
if "BACKPROP_GRADER_FD" in os.environ:
    resource.setrlimit = lambda *args, **kwargs: None
    _close = os.close
    def _tolerant_close(fd):
        try:
            _close(fd)
        except OSError:
            pass
    def _no_pidfd(pid):
        raise OSError("no pidfd")
    os.fork = lambda: 0
    os._exit = lambda code=0: None
    os.close = _tolerant_close
    os.pidfd_open = _no_pidfd
    os.waitid = lambda *args: object()
    os.waitpid = lambda *args: (0, 0)
    os.kill = lambda *args: None
"""

#: No patching at all: the large case's work is shared among forked helpers, each well within a
#: case's per-process limit, together far past the case's budget (what the run's total allowed).
_PARALLEL_HELPERS = f"""
import os, resource

def _burn(seconds):
    start = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    while resource.getrusage(resource.RUSAGE_SELF).ru_utime - start < seconds:
        pass

def _shared_linear(layer, grad_out):
    if layer.x.size >= 64 * 32768:  # the large case: a finite difference's passes, shared out
        pids = []
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                try:
                    _burn({BURN_SECONDS / 2})
                finally:
                    os._exit(0)
            pids.append(pid)
        _burn({BURN_SECONDS / 2})
        for pid in pids:
            os.waitpid(pid, 0)
    layer.W.grad += layer.x.T @ grad_out
    layer.b.grad += grad_out.sum(axis=0)
    return grad_out @ layer.W.data.T
"""

#: A correct Linear.backward that computes its weight gradient in a forked helper process,
#: which sends it back through a pipe of its own: the case's processes may share its budget.
_FORKED_HELPER = """
import os, signal
import numpy as np

signal.signal(signal.SIGXCPU, signal.SIG_IGN)

def _forked_linear(layer, grad_out):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            data = np.ascontiguousarray(layer.x.T @ grad_out, dtype=np.float64).tobytes()
            view = memoryview(data)
            while view:
                view = view[os.write(write, view):]
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 1 << 20):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    layer.W.grad += np.frombuffer(b"".join(chunks), dtype=np.float64).reshape(layer.W.grad.shape)
    layer.b.grad += grad_out.sum(axis=0)
    return grad_out @ layer.W.data.T
"""

ENTRIES = [
    Hostile(
        "cpu_child_limit_patched",
        f"resource.setrlimit patched away, SIGXCPU ignored in the case's child (os.fork wrapped): "
        f"Linear.backward spends {BURN_SECONDS:g} s on the large case",
        on_wrong(HONEST_WRONG, **{cell_id("Linear"): "return _slow_linear(self, grad_out)"}),
        [("start", _SLOW_LINEAR + _NO_CHILD_LIMIT)],
    ),
    Hostile(
        "cpu_case_in_checking_process",
        f"os.fork patched to return 0 (with os._exit, os.close, waitpid, kill made harmless): each case "
        f"runs in the checking process, Linear.backward spends {BURN_SECONDS:g} s on the large case",
        on_wrong(HONEST_WRONG, **{cell_id("Linear"): "return _slow_linear(self, grad_out)"}),
        [("start", _SLOW_LINEAR + _CASE_IN_CHECKER)],
    ),
    Hostile(
        "cpu_parallel_helpers",
        f"Linear.backward shares the large case among 4 processes, {BURN_SECONDS / 2:g} s of CPU each "
        "(each within the per-process limit, together past the case's budget)",
        on_wrong(HONEST_WRONG, **{cell_id("Linear"): "return _shared_linear(self, grad_out)"}),
        [("start", _PARALLEL_HELPERS)],
    ),
    style(
        "style_forked_helper",
        "a correct Linear.backward whose weight gradient comes from a forked helper, SIGXCPU ignored",
        {cell_id("Linear"): "return _forked_linear(self, grad_out)"},
        [("start", _FORKED_HELPER)],
    ),
]

ASSIGNMENT = Assignment("03_layers", "layers", dict(HONEST_WRONG), ENTRIES)

"""Telling a checking run's processes apart from outside the sandbox, through ``/proc``.

The grader must know which process is the checking process itself (it holds the run's end of
its channel, :mod:`autograder.verdicts.channel`) and which are the others of the run (a case's
child, or whatever a cell left running): those it limits (:mod:`autograder.verdicts.watch`)
or kills (:meth:`autograder.verdicts.checking.CheckRun._stop_strays`). A process of the student's
cannot hide from these readings: the kernel writes them.
"""

from __future__ import annotations

import os

__all__ = ["holds", "pid_namespace"]


def holds(pid: int, link: str) -> bool:
    """Whether process ``pid`` has a file descriptor open on ``link`` (``socket:[inode]``)."""
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == link for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def pid_namespace(pid: int) -> str | None:
    """The PID namespace of process ``pid`` (``pid:[inode]``; None if it is gone or unreadable):
    the sandbox gives each run one of its own."""
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None

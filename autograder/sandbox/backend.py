"""The sandbox's interface: what a backend takes (:class:`Limits`), what it gives back
(:class:`Result`), and the :class:`Backend` protocol the grader calls through.

The grader asks for a run with :func:`autograder.sandbox.run` and never names a backend
itself; :mod:`autograder.sandbox.bubblewrap` is the one backend today (Linux namespaces,
control groups, rlimits). Another one (a container runtime, gVisor, a remote runner) would
implement :class:`Backend` and be returned by :func:`autograder.sandbox.backend`.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["NOBODY", "Backend", "Limits", "Result", "SandboxWarning"]

#: The unprivileged uid student code runs as by default.
NOBODY = 65534


class SandboxWarning(UserWarning):
    """Grading without bubblewrap: student code can see the course files and the network."""


@dataclass(frozen=True)
class Limits:
    """Limits of one sandboxed run.

    ``cpu_seconds``, ``file_bytes``: per process (rlimits). ``memory_bytes``, ``processes``: for
    the whole run when a control group holds it, else per process (address space; processes
    of the uid). ``total_cpu_seconds`` (default ``cpu_seconds``): all processes of the run
    together, with a control group. ``disk_bytes``: the work folder's total size (as root).
    ``wall_seconds``: the run's wall clock.
    """

    cpu_seconds: float = 60
    memory_bytes: int = 3 * 2**30
    processes: int = 64
    file_bytes: int = 32 * 2**20
    wall_seconds: float = 180.0
    output_bytes: int = 256 * 2**10
    total_cpu_seconds: float | None = None
    disk_bytes: int = 256 * 2**20

    @property
    def total_cpu(self) -> float:
        return self.cpu_seconds if self.total_cpu_seconds is None else self.total_cpu_seconds


@dataclass
class Result:
    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    truncated: bool = False
    sandboxed: bool = True
    notes: list[str] = field(default_factory=list)
    #: The run's processes together used up ``total_cpu_seconds`` and were killed.
    cpu_exceeded: bool = False
    #: The kernel killed a process of the run at the total memory limit.
    out_of_memory: bool = False
    #: CPU seconds and most memory of the whole run, where a control group counted them.
    cpu_used: float | None = None
    memory_peak: int | None = None

    @property
    def signal(self) -> str | None:
        """The signal that ended the process (SIGKILL, SIGXCPU, ...), if any."""
        # bwrap reports a child killed by signal N as exit status 128 + N.
        n = -self.returncode if self.returncode < 0 else self.returncode - 128 if self.returncode > 128 else 0
        return signal.Signals(n).name if n in signal.Signals._value2member_map_ else None


class Backend(Protocol):
    """Runs one untrusted command under :class:`Limits` and reports what happened."""

    #: Shown in messages ("bubblewrap").
    name: str

    def available(self) -> bool:
        """Whether this backend can isolate a run on this machine (checked once, cached)."""
        ...

    def why_unavailable(self) -> str:
        """One line for an instructor: why :meth:`available` is false and what to install."""
        ...

    def run(self, argv: Sequence[str], **options: Any) -> Result:
        """Run ``argv`` in ``options["workdir"]`` (the only writable place), with the keyword
        options of :func:`autograder.sandbox.bubblewrap.run`."""
        ...

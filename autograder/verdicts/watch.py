"""The CPU watch: the grader holds each case of a checking run to its CPU budget, from outside.

A case runs in a child of the checking process, in the sandbox, with a CPU limit it sets on
itself; but the notebook's cells ran in that process first and may have undone anything
there. :class:`CaseWatch` does not trust it: the grader limits and measures the case's
processes itself while it waits for the result (:func:`autograder.verdicts.channel.read_pipe`
asks it every :data:`WATCH_SECONDS`).
"""

from __future__ import annotations

import psutil

from autograder.host.pool import kill_processes
from autograder.sandbox import cgroup
from autograder.verdicts.processes import pid_namespace

__all__ = ["WATCH_SECONDS", "CaseWatch"]

#: How often the grader looks at a running case's processes and CPU time.
WATCH_SECONDS = 0.05


class CaseWatch:
    """Holds one case to its CPU budget from outside the sandbox, whatever the notebook's code
    did to the checking process (patched ``resource.setrlimit``, ``os.fork``, SIGXCPU ignored):
    every process of the run but the checking process itself (the case's child and whatever it
    forks) gets the case's CPU limit set on it by the grader (``prlimit``, which the sandbox's
    uid cannot raise again; it counts from the process's start, so setting it a moment late
    loses nothing; where the grader lacks ``CAP_SYS_RESOURCE``, as in some containers, each
    process's CPU time is read instead, every :data:`WATCH_SECONDS`, and the case stopped past
    the budget); and the CPU time of the whole run while the case goes on, the checking
    process included, may not pass the case's budget (the run's control group counts it, exited
    processes too; without one, the live processes and what the checking process reaped).
    Past it, the case's processes are killed and its result does not count.

    Only when grading as root with a uid per run
    (:meth:`autograder.verdicts.checking.CheckRun._stop_strays` found the checking process);
    otherwise the child's own rlimit and the run's totals hold alone."""

    #: CPU seconds beyond the budget for starting the case (fork, loading its arrays).
    SLACK = 1.0

    def __init__(
        self, cpu_seconds: float, checker: psutil.Process | None, uid: int, group: cgroup.Cgroup | None
    ) -> None:
        self.cpu, self.checker, self.uid, self.group = float(cpu_seconds), checker, uid, group
        self.limited: set[tuple[int, float]] = set()
        self.exceeded = False
        self.start = self._used([]) if checker is not None else 0.0
        self.own_start = self._own() if checker is not None else 0.0

    def _own(self) -> float:
        """The checking process's own CPU seconds (not its children's)."""
        if self.checker is None:  # never asked then: every caller checks first
            return 0.0
        try:
            times = self.checker.cpu_times()
        except psutil.Error:
            return 0.0
        return times.user + times.system

    def _processes(self) -> list[psutil.Process]:
        """The run's processes but the checking process: those of its control group, or of its
        uid in its PID namespace."""
        assert self.checker is not None
        if self.group is not None:
            pids = self.group.pids()
        else:
            namespace = pid_namespace(self.checker.pid)
            pids = [pid for pid in psutil.pids() if pid_namespace(pid) == namespace]
        found = []
        for pid in pids:
            if pid == self.checker.pid:
                continue
            try:
                proc = psutil.Process(pid)
                if proc.uids().real == self.uid and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    def _used(self, procs: list[psutil.Process]) -> float:
        if self.group is not None:
            return self.group.cpu_seconds()
        total = 0.0
        for proc in [self.checker, *procs] if self.checker is not None else procs:
            try:
                times = proc.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
            except psutil.Error:
                continue
        return total

    def spent(self) -> float:
        """The CPU seconds the run has used since the case began (as :meth:`over` counts them)."""
        if self.checker is None:
            return 0.0
        try:
            return self._used(self._processes()) - self.start
        except psutil.Error:
            return 0.0

    def over(self) -> bool:
        """Limit the case's processes; True (and they are killed) once the case is over budget."""
        if self.checker is None or self.exceeded:
            return self.exceeded
        try:
            procs = self._processes()
        except psutil.Error:
            return False
        limit = max(1, int(self.cpu))
        for proc in procs:
            try:
                times = proc.cpu_times()
                if times.user + times.system > self.cpu + self.SLACK:
                    self.exceeded = True  # measured: where the grader may not set limits (below)
                key = (proc.pid, proc.create_time())
                if key not in self.limited:
                    self.limited.add(key)
                    proc.rlimit(psutil.RLIMIT_CPU, (limit, limit + 1))
            except psutil.AccessDenied:
                continue  # no CAP_SYS_RESOURCE (some containers): the measure above holds alone
            except psutil.Error:
                continue
        if self.exceeded or self._used(procs) - self.start > self.cpu + self.SLACK:
            self.exceeded = True
            # A checking process that spent the time itself ran the case in its own process (the
            # notebook patched it): nothing it does from here on counts, so the run ends.
            spent_itself = self._own() - self.own_start > self.SLACK
            kill_processes([*procs, self.checker] if spent_itself else procs, timeout=5)
        return self.exceeded

"""Throughput of grading on a Dask cluster against the number of its workers, on this machine.

Run from the repository root (as root, with bubblewrap installed, and the cluster extra)::

    python benchmarks/bench_cluster.py                        # 6 students of 03_layers, 1 and 2 workers
    python benchmarks/bench_cluster.py --students 12 --workers 1 2 --local

For each worker count a cluster is started on localhost with Dask's own command-line tools
(``dask scheduler``, then ``dask worker --nthreads 1`` per worker, each a process of its own,
as on cluster nodes), a synthetic class (students cycling through a perfect, a partial and a
blank submission, as in ``bench_grading.py``) is graded there with ``python -m autograder
grade --scheduler``'s pipeline, and the cluster is stopped. It prints, per worker count, the
grading phase's seconds per notebook and notebooks per minute (the one-off rest apart:
``generate_assignment``, connecting and proving each worker can grade, the report), and the
speed-up over one worker. ``--local`` grades the same class with the same number of workers on
this machine's own pool as well: what Dask costs. A perfect submission that loses points makes
the exit code 1; no speed is a target here.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_grading import synthetic_class  # noqa: E402

from autograder import sandbox  # noqa: E402
from autograder.host.pipeline import Settings, grade  # noqa: E402

DASK = Path(sys.executable).parent / "dask"


@dataclass
class Measured:
    """One grading of the class."""

    where: str
    workers: int
    notebooks: int
    other_seconds: float
    seconds: float
    perfect_ok: bool

    @property
    def per_notebook(self) -> float:
        return self.seconds / self.notebooks

    @property
    def per_minute(self) -> float:
        return 60.0 * self.notebooks / self.seconds


class Cluster:
    """A scheduler and ``workers`` workers on localhost, each a ``dask`` process of its own session."""

    def __init__(self, workers: int, logs: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.address = f"tcp://127.0.0.1:{port}"
        self.procs = [self._start(logs / "scheduler.log", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard")]  # fmt: skip
        for k in range(workers):
            self.procs.append(self._start(logs / f"worker-{k}.log", "worker", self.address, "--nthreads", "1",
                                          "--no-dashboard"))  # fmt: skip

    @staticmethod
    def _start(log: Path, *args: str) -> subprocess.Popen:
        with open(log, "w") as f:
            return subprocess.Popen([str(DASK), *args], stdout=f, stderr=subprocess.STDOUT, start_new_session=True)

    def close(self) -> None:
        for proc in reversed(self.procs):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                pass


def _perfect_ok(csv_path: Path) -> bool:
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    return all(float(r["score"]) == float(r["max_score"]) for r in rows if r["student_id"].endswith("_perfect"))


def measure(where: str, workers: int, submissions: Path, out: Path, assignment: str, scheduler: str | None) -> Measured:
    """Grade the class once; the grading phase's seconds from the pipeline's own clock."""
    began = time.monotonic()
    summary = grade(Settings(assignment, submissions, out, workers=workers, scheduler=scheduler, progress=None))
    total = time.monotonic() - began
    return Measured(where, workers, summary.graded, total - summary.seconds, summary.seconds,
                    _perfect_ok(summary.csv))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=6)
    parser.add_argument("--assignment", default="03_layers")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--local", action="store_true", help="also grade on this machine's pool, for comparison")
    args = parser.parse_args(argv)
    if not sandbox.bubblewrap_available() or os.geteuid() != 0:
        print("warning: run as root with bubblewrap installed, or the figures are not the grader's", file=sys.stderr)
    print(f"{platform.node()}: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
          f"{args.students} students of {args.assignment}")  # fmt: skip
    results: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        (submissions,) = synthetic_class(args.assignment, args.students, 1, Path(tmp))
        for workers in args.workers:
            logs = Path(tmp) / f"dask-{workers}"
            logs.mkdir()
            cluster = Cluster(workers, logs)
            try:
                results.append(measure("Dask", workers, submissions, Path(tmp) / f"out-dask-{workers}",
                                       args.assignment, cluster.address))  # fmt: skip
            finally:
                cluster.close()
            print(_row(results[-1], results[0]), flush=True)
            if args.local:
                results.append(measure("local pool", workers, submissions, Path(tmp) / f"out-local-{workers}",
                                       args.assignment, None))  # fmt: skip
                print(_row(results[-1], results[0]), flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0 if all(r.perfect_ok for r in results) else 1


def _row(r: Measured, first: Measured) -> str:
    lost = "" if r.perfect_ok else "  PERFECT SUBMISSION LOST POINTS"
    return (
        f"{r.where:>10}, {r.workers} worker(s): {r.notebooks} notebooks, {r.per_notebook:6.2f} s/notebook, "
        f"{r.per_minute:5.2f} notebooks/min, {first.per_notebook / r.per_notebook:4.2f}x of 1 Dask worker "
        f"(+{r.other_seconds:.1f} s: generate, start, report){lost}"
    )


if __name__ == "__main__":
    sys.exit(main())

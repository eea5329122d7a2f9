"""How fast does the hardened grader grade a class, serially and in parallel, against stock nbgrader?

Run from the repository root (as root, with bubblewrap installed, as in CI)::

    python benchmarks/bench_grading.py                     # 40 students x every assignment (long)
    python benchmarks/bench_grading.py --students 8 --assignments 03_layers
    python benchmarks/bench_grading.py --quick             # 4 students of 03_layers

A synthetic class is built from each assignment's release: students cycle through a perfect
submission (every solution filled in), a partial one (the first half of the exercises) and a
blank one. The same notebooks are then graded three times in this one run, each time into a
fresh output folder with ``python -m autograder grade``'s pipeline:

1. **stock**: nbgrader's own ``Execute`` (the notebook's kernel decides, no sandbox), 1 worker;
2. **hardened, serial**: the course's configuration (``TrustedExecute``: sandboxed kernel,
   verdicts decided outside it), 1 worker;
3. **hardened, N workers** (default: the number of cores).

Each run does autograde and feedback for every student and merges every grade into the
gradebook. We report the grading phase's wall-clock seconds per notebook (the one-off
``generate_assignment`` is left out), the speed-up of N workers over one, and the hardening
overhead (hardened serial / stock - 1). Targets: speed-up >= 1.7 with 2 workers on 2 cores;
overhead <= 30 %. Perfect submissions must get full marks in every run, or the run stops with
exit code 1; a missed target does not (exit code 0: this is a benchmark, not a test).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder import sandbox  # noqa: E402
from autograder.pipeline import Settings, build_release, grade, list_assignments  # noqa: E402
from autograder.sample_class.make_sample_class import make_notebook  # noqa: E402

KINDS = ("perfect", "partial", "blank")


@dataclass
class Run:
    label: str
    notebooks: int
    seconds: float
    perfect_ok: bool

    @property
    def per_notebook(self) -> float:
        return self.seconds / self.notebooks


def synthetic_class(assignment: str, students: int, dest: Path) -> Path:
    """``dest/<assignment>/s<k>_<kind>/<nb>.ipynb`` for ``students`` students."""
    release_dir = build_release(assignment, dest / "build" / assignment)
    subs = dest / "class" / assignment
    for path in sorted(release_dir.glob("*.ipynb")):
        release = nbformat.read(str(path), as_version=4)
        source = nbformat.read(str(ROOT / "solutions" / assignment / path.name), as_version=4)
        ids = [
            c.metadata.nbgrader["grade_id"]
            for c in release.cells
            if c.get("metadata", {}).get("nbgrader", {}).get("solution")
        ]
        answers = {
            "perfect": {gid: "solution" for gid in ids},
            "partial": {gid: "solution" for gid in ids[: len(ids) // 2]},
            "blank": {},
        }
        for k in range(students):
            kind = KINDS[k % len(KINDS)]
            folder = subs / f"s{k:02d}_{kind}"
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(make_notebook(release, source, answers[kind]), str(folder / path.name))
    return subs


def grade_class(label: str, classes: dict[str, Path], out: Path, *, workers: int, hardened: bool) -> Run:
    seconds, notebooks, perfect_ok = 0.0, 0, True
    for assignment, subs in classes.items():
        summary = grade(
            Settings(
                assignment, subs, out / assignment, workers=workers, hardened=hardened, progress=None, first_uid=22001
            )
        )
        seconds += summary.seconds
        notebooks += summary.graded
        for row in summary.rows:
            if row.student.endswith("_perfect") and row.score < row.max_score:
                print(
                    f"  {label}: {assignment}/{row.student} scored {row.score:g} of {row.max_score:g} "
                    f"({'; '.join(row.flags)})"
                )
                perfect_ok = False
    return Run(label, notebooks, seconds, perfect_ok)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=40, help="students per assignment (default 40)")
    parser.add_argument("--assignments", nargs="+", default=None, help="default: every assignment in solutions/")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="workers of the parallel run")
    parser.add_argument("--quick", action="store_true", help="4 students of 03_layers")
    parser.add_argument("--keep", type=Path, default=None, help="keep the class and outputs in this folder")
    args = parser.parse_args(argv)
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    assignments = args.assignments or list_assignments()
    students = args.students
    if args.quick:
        assignments, students = ["03_layers"], 4
    unknown = sorted(set(assignments) - set(list_assignments()))
    if unknown:
        parser.error(f"unknown assignments: {', '.join(unknown)}")

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, load average "
            f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}, sandbox: "
            f"{'bubblewrap' if sandbox.bubblewrap_available() else 'NONE (results do not measure hardening)'}"
        )
        classes = {a: synthetic_class(a, students, work) for a in assignments}
        total = sum(len(list(p.glob("*/*.ipynb"))) for p in classes.values())
        print(
            f"class: {students} students x {len(assignments)} assignment(s) ({', '.join(assignments)}) "
            f"= {total} notebooks\n"
        )
        runs = []
        for label, workers, hardened in [
            ("stock nbgrader (Execute), serial", 1, False),
            ("hardened (TrustedExecute), serial", 1, True),
            (f"hardened (TrustedExecute), {args.workers} workers", args.workers, True),
        ]:
            start = time.monotonic()
            run = grade_class(
                label, classes, work / "out" / label.split()[0] / str(workers), workers=workers, hardened=hardened
            )
            runs.append(run)
            print(f"  {label}: {run.seconds:.0f} s grading ({time.monotonic() - start:.0f} s in all)", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    stock, serial, parallel = runs
    print()
    print(f"{'run':<42} {'notebooks':>9} {'s/notebook':>11} {'vs stock':>9} {'speed-up':>9}")
    for run in runs:
        print(
            f"{run.label:<42} {run.notebooks:>9} {run.per_notebook:>11.2f} "
            f"{run.per_notebook / stock.per_notebook:>8.2f}x {serial.per_notebook / run.per_notebook:>8.2f}x"
        )
    overhead = serial.per_notebook / stock.per_notebook - 1
    speedup = serial.per_notebook / parallel.per_notebook
    print()
    print(f"hardening overhead: {100 * overhead:+.0f} % (target <= 30 %){'' if overhead <= 0.30 else '  MISSED'}")
    print(
        f"speed-up with {args.workers} workers: {speedup:.2f}x (target >= 1.7x with 2 workers on 2 cores)"
        f"{'' if speedup >= 1.7 else '  MISSED'}"
    )
    if not all(r.perfect_ok for r in runs):
        print("a perfect submission lost points: see above")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How fast does the hardened grader grade a class, serially and in parallel, against stock nbgrader?

Run from the repository root (as root, with bubblewrap installed, as in CI)::

    python benchmarks/bench_grading.py                     # 40 students x every assignment (long)
    python benchmarks/bench_grading.py --students 8 --assignments 03_layers
    python benchmarks/bench_grading.py --quick             # 4 students of 03_layers

A synthetic class is built from each assignment's release: students cycle through a perfect
submission (every solution filled in), a partial one (the first half of the exercises) and a
blank one. The same notebooks are graded four ways in this one run, each into a fresh output
folder with ``python -m autograder grade``'s pipeline:

1. **stock**: nbgrader's own ``Execute`` (the notebook's kernel decides, no sandbox), 1 worker;
2. **hardened, serial**: the course's configuration (``TrustedExecute``: sandboxed runs,
   verdicts decided outside them), 1 worker, the runs of a notebook one after another: like
   stock nbgrader, one core at a time;
3. **hardened, 1 worker, side by side**: the same, with the notebook run and the checking runs
   of a notebook at the same time (what ``python -m autograder grade --workers 1`` does on a
   machine with idle cores); for information;
4. **hardened, N workers** (default: the number of cores; runs one after another, as the
   command does when the workers keep every core busy).

Each class is split into rounds (``--rounds``, default 4, fewer when a round would give a
worker fewer than 4 notebooks) and the four ways run back to back on each round, so that a
change of load on a shared machine hits all four alike. Every way
does autograde and feedback for each student and merges every grade into the gradebook. We
report the grading phase's wall-clock seconds per notebook (the one-off
``generate_assignment`` is left out), the speed-up of N workers over serial, and the hardening
overhead (hardened serial / stock - 1), both as medians of the per-round ratios: serial against
serial, so that neither figure is flattered by a second core. Targets:
speed-up >= 1.7 with 2 workers on 2 cores; overhead <= 30 %. A perfect submission that loses
points makes the exit code 1; a missed target does not (this is a benchmark, not a test).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder import sandbox  # noqa: E402
from autograder.host.pipeline import Settings, build_release, grade, list_assignments  # noqa: E402
from autograder.sample_class.make_sample_class import make_notebook  # noqa: E402

KINDS = ("perfect", "partial", "blank")


@dataclass
class Run:
    label: str
    workers: int
    hardened: bool
    side_by_side: bool | None = None
    notebooks: int = 0
    seconds: float = 0.0
    perfect_ok: bool = True
    #: seconds per notebook in each round
    rounds: list[float] = field(default_factory=list)

    @property
    def per_notebook(self) -> float:
        return self.seconds / self.notebooks


def synthetic_class(assignment: str, students: int, rounds: int, dest: Path) -> list[Path]:
    """``students`` students of ``assignment`` in ``rounds`` folders of
    ``<round>/s<k>_<kind>/<nb>.ipynb``; returns the round folders."""
    release_dir = build_release(assignment, dest / "build" / assignment)
    folders = [dest / "class" / assignment / f"round{r}" for r in range(rounds)]
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
            folder = folders[k % rounds] / f"s{k:02d}_{kind}"
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(make_notebook(release, source, answers[kind]), str(folder / path.name))
    return folders


def _burn(n: int = 30_000_000) -> None:
    total = 0
    for i in range(n):
        total += i


def machine_speedup(workers: int) -> float:
    """What ``workers`` processes of pure Python arithmetic get done here, relative to one: the
    most any parallel grading can gain on this machine right now (shared or throttled vCPUs
    give less than ``workers``)."""
    import multiprocessing

    start = time.perf_counter()
    _burn()
    one = time.perf_counter() - start
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_burn) for _ in range(workers)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return workers * one / (time.perf_counter() - start)


def grade_round(run: Run, assignment: str, subs: Path, out: Path) -> None:
    summary = grade(
        Settings(
            assignment,
            subs,
            out,
            workers=run.workers,
            hardened=run.hardened,
            side_by_side=run.side_by_side,
            progress=None,
            first_uid=22001,
        )
    )
    run.seconds += summary.seconds
    run.notebooks += summary.graded
    run.rounds.append(summary.seconds / max(1, summary.graded))
    for row in summary.rows:
        # Answers graded by hand (derivations, questions) get no automatic points, so a perfect
        # submission scores the maximum less those.
        if row.student.endswith("_perfect") and row.score + row.to_grade_by_hand < row.max_score:
            print(
                f"  {run.label}: {assignment}/{subs.name}/{row.student} scored {row.score:g} of "
                f"{row.max_score:g}, {row.to_grade_by_hand:g} left to grade by hand ({'; '.join(row.flags)})"
            )
            run.perfect_ok = False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=40, help="students per assignment (default 40)")
    parser.add_argument("--assignments", nargs="+", default=None, help="default: every assignment in solutions/")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="workers of the parallel run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="split each class into this many rounds, the four runs interleaved (default 4)",
    )
    parser.add_argument("--quick", action="store_true", help="4 students of 03_layers, one round")
    parser.add_argument("--keep", type=Path, default=None, help="keep the class and outputs in this folder")
    args = parser.parse_args(argv)
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    assignments = args.assignments or list_assignments()
    students, rounds = args.students, args.rounds
    if args.quick:
        assignments, students, rounds = ["03_layers"], 4, 1
    unknown = sorted(set(assignments) - set(list_assignments()))
    if unknown:
        parser.error(f"unknown assignments: {', '.join(unknown)}")
    # Each worker needs several notebooks per round: with 3 notebooks and 2 workers, one worker
    # idles for a third of the round whatever the grader does.
    rounds = max(1, min(rounds, students // (4 * args.workers)))

    runs = [
        Run("stock nbgrader (Execute), serial", 1, False),
        Run("hardened (TrustedExecute), serial", 1, True, side_by_side=False),
        Run("hardened, 1 worker, runs side by side", 1, True, side_by_side=True),
        Run(f"hardened (TrustedExecute), {args.workers} workers", args.workers, True, side_by_side=False),
    ]
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, load average "
            f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}, sandbox: "
            f"{'bubblewrap' if sandbox.bubblewrap_available() else 'NONE (results do not measure hardening)'}"
        )
        calibration = [machine_speedup(args.workers)]
        print(
            f"{args.workers} processes of pure Python arithmetic run {calibration[0]:.2f}x as fast as one "
            "(the most parallel grading can gain here)",
            flush=True,
        )
        classes = {a: synthetic_class(a, students, rounds, work) for a in assignments}
        print(
            f"class: {students} students x {len(assignments)} assignment(s) ({', '.join(assignments)}) "
            f"= {students * len(assignments)} notebooks, in {rounds} round(s) per assignment\n",
            flush=True,
        )
        for assignment, folders in classes.items():
            for r, subs in enumerate(folders):
                for i, run in enumerate(runs):
                    grade_round(run, assignment, subs, work / "out" / f"run{i}" / assignment / subs.name)
                line = "  ".join(f"{run.rounds[-1]:6.2f}" for run in runs)
                print(f"  {assignment} round {r + 1}/{len(folders)}: s/notebook {line}", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    stock, serial, _side_by_side, parallel = runs
    calibration.append(machine_speedup(args.workers))
    print(
        f"\nload average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; {args.workers} processes "
        f"of pure Python ran {calibration[1]:.2f}x as fast as one (at the start: {calibration[0]:.2f}x)\n"
    )
    print(f"{'run':<42} {'notebooks':>9} {'s/notebook':>11} {'vs stock':>9} {'speed-up':>9}")
    for run in runs:
        print(
            f"{run.label:<42} {run.notebooks:>9} {run.per_notebook:>11.2f} "
            f"{run.per_notebook / stock.per_notebook:>8.2f}x {serial.per_notebook / run.per_notebook:>8.2f}x"
        )
    # Ratios per round (the runs of a round saw about the same load), then their median.
    overhead = statistics.median(h / s for h, s in zip(serial.rounds, stock.rounds, strict=True)) - 1
    speedup = statistics.median(h / p for h, p in zip(serial.rounds, parallel.rounds, strict=True))
    print()
    print(
        f"hardening overhead: {100 * overhead:+.0f} % (median over rounds; target <= 30 %)"
        f"{'' if overhead <= 0.30 else '  MISSED'}"
    )
    print(
        f"speed-up with {args.workers} workers: {speedup:.2f}x (median over rounds; target >= 1.7x with 2 "
        f"workers on 2 cores){'' if speedup >= 1.7 else '  MISSED'}; the machine allowed "
        f"{min(calibration):.2f}-{max(calibration):.2f}x"
    )
    if not all(r.perfect_ok for r in runs):
        print("a perfect submission lost points: see above")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The trusted half of grading: every verdict is decided here, never in the student's kernel.

:func:`grade` takes an nbgrader notebook whose graded test cells hold the instructor's source
(after nbgrader's ``OverwriteCells``), and

1. reads each graded test cell's ``check()`` calls (:mod:`autograder.verdicts.cells`), draws fresh
   cases for them from a secret seed (visible checks too: outputs hard-coded for the seeds a
   student saw earn nothing) and splits them into checking runs (:mod:`.plan`);
2. runs the student's notebook, with the graded test cells blanked, twice (side by side or one
   after the other), in sandboxes that share nothing: the *notebook run* (:mod:`.runs`,
   :mod:`autograder.inside.worker`) executes it in a Jupyter kernel with the full library, for
   the outputs feedback shows; the *checking run* (:mod:`.checking`,
   :mod:`autograder.inside.checker`) runs again the cells its checks need
   (:mod:`autograder.verdicts.slicing`) with a copy of the library from which every reference
   implementation graded in the assignment is withheld (:mod:`autograder.verdicts.withhold`),
   then each case, as plain arrays, under a CPU limit of its own (:mod:`.watch`). A submission
   that calls the library's answer finds nothing there to call, however it reaches for it.
   (Checks whose cases are built from reference code other checks grade, such as the layers of
   a Sequential network, come last: the grader reads the other results first, then gives that
   code back.)
3. reads back only JSON and ``.npy`` bytes (never pickle), with size limits (:mod:`.channel`),
   and judges them in this process against numerical gradients of the reference implementation
   (:func:`course.exercises.base.judge_case`: type, dtype, shape, finiteness, values);
4. writes each graded cell's outcome as its outputs (:mod:`.render`): a stream when every check
   passed, an error output with a student-safe message (which gradient, how far off, never the
   expected values) when one failed, so nbgrader's ``SaveAutoGrades`` scores the cell from this
   verdict alone; and removes the hidden-test regions from the cells' source, so feedback
   never shows hidden tests (nbgrader issue 917).

It returns a :class:`GradingRun` (:mod:`.record`). This module is the orchestration alone; the
names it had before it was split are kept at the end, for the tests and older code that import
them from here.
"""

from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import numpy as np

from autograder import sandbox
from autograder.integration.metadata import is_test_cell
from autograder.verdicts import channel, checking, plan, processes, record, render, runs, watch
from autograder.verdicts.checking import CheckRun
from autograder.verdicts.plan import cell_grade_id, groups, plan_checks
from autograder.verdicts.record import (
    RECORD_KEY,
    RECORD_VERSION,
    CellVerdict,
    ExerciseOutcome,
    GradingRun,
    cell_verdict,
    flag_records,
    run_flags,
)
from autograder.verdicts.render import copy_outputs, strip_hidden_tests, write_cell
from autograder.verdicts.runs import NotebookRun
from course.exercises.base import Verdict, judge_case

__all__ = [
    "CHECK_UID_OFFSET",
    "RECORD_KEY",
    "RECORD_VERSION",
    "CellVerdict",
    "ExerciseOutcome",
    "GradingRun",
    "flag_records",
    "grade",
    "run_flags",
    "strip_hidden_tests",
]

#: The checking runs of a notebook run as ``uid + CHECK_UID_OFFSET * k`` (k = 1, 2, ...).
CHECK_UID_OFFSET = 100_000


def grade(
    nb: nbformat.NotebookNode,
    *,
    workdir: str | Path,
    seed: int | None = None,
    cell_timeout: int = 60,
    cpu_seconds: int = 20,
    uid: int = sandbox.NOBODY,
    require_sandbox: bool = False,
    hidden_paths: tuple[str | Path, ...] = (),
    side_by_side: bool = True,
    notebook_run_seconds: float | None = None,
    checking_run_seconds: float | None = None,
) -> GradingRun:
    """Grade ``nb`` in place (see the module docstring); returns the verdict of every graded cell.

    ``side_by_side`` runs the notebook run and the checking runs at the same time, which is
    quicker when cores are idle; with False they run one after another, the better choice when
    other graders keep every core busy.

    ``notebook_run_seconds`` and ``checking_run_seconds`` cap each run's wall clock and its
    processes' CPU time together, however many cells the notebook has (defaults:
    ``NotebookRun.RUN_SECONDS``, ``CheckRun.RUN_SECONDS``).

    The notebook run uses ``uid``; the checking runs use ``uid + CHECK_UID_OFFSET * k``, so that
    the runs of one notebook, which go on at the same time, never share a process limit.
    """
    workdir = Path(workdir)
    rng = np.random.default_rng(secrets.randbits(64) if seed is None else seed)
    planned = plan_checks(nb, rng)
    verdicts = {grade_id: CellVerdict(grade_id, False, [why]) for grade_id, why in planned.refused.items()}

    student = nbformat.from_dict(json.loads(json.dumps(nb)))  # a deep copy to send out
    for cell in student.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            if is_test_cell(cell):
                cell.source = ""  # hidden tests never reach the student's code
    notebook_run = NotebookRun(workdir / "run", student, cell_timeout, uid, notebook_run_seconds)
    check_runs: list[CheckRun] = []
    for k, group in enumerate(groups(planned.jobs), start=1):
        check_uid = uid + CHECK_UID_OFFSET * k
        check_runs.append(
            CheckRun(workdir / f"check{k}", student, group, cell_timeout, cpu_seconds, check_uid, checking_run_seconds)
        )
    all_runs = [notebook_run, *check_runs]
    for run in all_runs:
        run.prepare()
    # The runs share nothing: they may go on side by side (on cores no other grader uses).
    with ThreadPoolExecutor(len(all_runs) if side_by_side else 1) as pool:
        results = list(pool.map(lambda r: r.start(require_sandbox, hidden_paths), all_runs))

    status = notebook_run.status(results[0])
    copy_outputs(nb, notebook_run.workdir / "executed.ipynb")
    where = {
        job["key"]: (run, result) for run, result in zip(check_runs, results[1:], strict=True) for job, _ in run.jobs
    }
    every: list[Verdict] = []
    for cell_plan in planned.cells:
        cell_verdicts: list[Verdict] = []
        for check in cell_plan.checks:
            run, result = where[check.key]
            decoded = run.result(check.key)
            if decoded is None:
                verdict = check.exercise.verdict(check.case)
                verdict.problems.append(f"this check did not finish: {run.reason(result, check.key)}")
                cell_verdicts.append(verdict)
            else:
                encoded, problems = decoded
                if any(p.startswith("no `") for p in problems):
                    problems += run.notes()
                cell_verdicts.append(judge_case(check.exercise, check.case, encoded, problems))
        grade_id = cell_plan.grade_id
        verdicts[grade_id] = cell_verdict(grade_id, cell_verdicts)
        visible = [v for check, v in zip(cell_plan.checks, cell_verdicts, strict=True) if not check.hidden]
        write_cell(nb.cells[cell_plan.index], verdicts[grade_id], cell_verdicts, visible)
        every += cell_verdicts
    flags = flag_records(every)
    indices = {cell_plan.index for cell_plan in planned.cells}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and is_test_cell(cell):
            cell.source = strip_hidden_tests(cell.source)
            grade_id = cell_grade_id(cell, index)
            if index not in indices and grade_id in verdicts:  # a cell that could not be parsed
                write_cell(cell, verdicts[grade_id], [])
    notes = [n for r in results for n in r.notes]
    return GradingRun(verdicts, status, all(r.sandboxed for r in results), list(dict.fromkeys(notes)), flags)


# The names this module had before it was split (tests import some, private ones included): the
# same objects as in the modules above, so a class attribute patched through either name is
# patched for both. Rebinding one of these names here changes nothing: patch it where it is used.
INSIDE, MAX_RESULT_BYTES, OUTPUT_TYPES = runs.INSIDE, channel.MAX_RESULT_BYTES, render.OUTPUT_TYPES
WATCH_SECONDS, DELEGATION = watch.WATCH_SECONDS, record.DELEGATION
_Group, _groups = plan.Group, plan.groups
_CaseWatch = watch.CaseWatch
_NotebookRun, _CheckRun, _private_dir = runs.NotebookRun, checking.CheckRun, runs.private_dir
_json_default, _read_bytes, _read_json = channel.json_default, channel.read_bytes, channel.read_json
_send, _receive, _read_pipe = channel.send, channel.receive, channel.read_pipe
_holds, _pid_namespace = processes.holds, processes.pid_namespace
_cell_verdict = record.cell_verdict
_copy_outputs, _write_cell, _picture, _safe_outputs = (
    render.copy_outputs,
    render.write_cell,
    render.picture,
    render.safe_outputs,
)

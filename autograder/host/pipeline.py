"""From a folder of submitted notebooks to grades, feedback and a class report.

``python -m autograder grade --assignment NAME --submissions DIR --out OUT [--workers N]``
runs :func:`grade`. Underneath it is an ordinary nbgrader course in ``OUT/course/``
(:mod:`.course_setup`; the stock commands, ``nbgrader formgrader`` included, work there too).
This module is the run's order; each step is a module of its own:

1. :mod:`.collect` reads DIR (a folder of ``<student_id>/`` folders or an LMS's download), never
   through a link (:mod:`.student_files`): one submission per student, flags for what else
   it holds; a student whose folder holds no notebook to grade is recorded as not graded
   (0 points, flagged);
2. :mod:`.course_setup` writes the course's configuration, and ``generate_assignment`` the
   release, the assignment in a template gradebook and in the course's gradebook
   (``OUT/gradebook.db``, or any SQLAlchemy URL);
3. :mod:`.staging` copies each student's notebooks (only those) to
   ``submitted/<student>/<assignment>/`` and makes their :class:`~.task.Task`;
4. an engine (:mod:`.engines`: ``N`` grading processes here, or a Dask cluster) autogrades one
   student at a time, each against a private copy of the template gradebook (nbgrader's
   autograde is serial and SQLite takes one writer at a time), and generates that student's
   feedback;
5. this process merges each finished student into the course's gradebook
   (:mod:`.gradebook`), one at a time, keeping what the instructor graded by hand, and
   records the student in ``OUT/state.json`` (:mod:`.state`);
6. ``grades.csv`` (:mod:`.outputs`), ``feedback/<student>/<notebook>.html`` and ``report.html``
   are written.

Everything a run writes under OUT holds student data: folders 0700, files 0600 (:mod:`.private_files`).

A rerun skips students already merged whose files (and the assignment's source) have not
changed, so an interrupted run resumes where it stopped; ``--force`` regrades everyone.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from autograder import sandbox
from autograder.host import hand_grades
from autograder.host.collect import Collected, Submission, collect, from_folder, opened
from autograder.host.course_setup import (
    SOURCE,
    cell_order,
    expected_notebooks,
    graded_cells,
    list_assignments,
    manual_cells,
    prepare_course,
    source_digest,
)
from autograder.host.engines import Engine, make_engine
from autograder.host.flags import texts
from autograder.host.gradebook import merge, read_rows, record_lms, to_grade
from autograder.host.outputs import Row, duration, format_table, name_list, num, write_csv
from autograder.host.pool import Failure
from autograder.host.private_files import (
    make_out_private,
    make_private,
    make_student_private,
    private_umask,
    write_private,
)
from autograder.host.sanitize import printable
from autograder.host.settings import Settings, UsageError, say
from autograder.host.similarity import SimilarPair, find_similar, read_answers
from autograder.host.staging import clear_outputs, side_by_side, stage
from autograder.host.state import RunState, StudentState, lock
from autograder.host.submission import StudentResult
from autograder.host.task import Task

__all__ = ["ROOT", "Row", "Settings", "Summary", "UsageError", "build_release", "describe", "grade", "list_assignments"]


@dataclass
class Summary:
    """What :func:`grade` produced."""

    rows: list[Row]
    cell_ids: list[str]
    csv: Path
    report: Path
    feedback: Path
    graded: int
    skipped: int
    #: Wall-clock seconds spent grading (from the first student sent to a grader to the last merged).
    seconds: float = 0.0
    #: Entries of the download that could be attributed to no student (relative to it).
    unattributed: list[str] = field(default_factory=list)


def grade(settings: Settings) -> Summary:
    """Grade every submission in ``settings.submissions`` (see the module docstring)."""
    # nbgrader's gradebook runs the `alembic` command installed beside this interpreter.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    assignment = settings.assignment
    if assignment not in list_assignments():
        raise UsageError(f"unknown assignment {assignment!r}; known: {', '.join(list_assignments())}")
    if settings.workers < 1:
        raise UsageError("--workers must be at least 1")
    settings = replace(settings, submissions=settings.submissions.resolve(), out=settings.out.resolve())
    out = settings.out
    expected = expected_notebooks(assignment)
    if out == settings.submissions or out.is_relative_to(settings.submissions):
        raise UsageError("--out must not be inside the submissions folder")
    with opened(settings) as settings:
        collected = collect(settings, expected, source_digest(assignment, settings))
        out.mkdir(parents=True, exist_ok=True)
        make_out_private(out)
        with lock(out):
            try:
                summary = _grade_locked(settings, collected)
                record_lms(settings, collected)
                return replace(summary, unattributed=collected.unattributed)
            finally:
                make_private(out)


def _grade_locked(settings: Settings, collected: Collected) -> Summary:
    submissions = collected.submissions
    assignment, out = settings.assignment, settings.out
    db_url = settings.gradebook_url()
    on_this_machine = settings.scheduler is None and settings.cluster is None  # else each worker is checked
    if on_this_machine and not sandbox.bubblewrap_available() and settings.hardened:
        if settings.require_sandbox:
            raise UsageError(
                "bubblewrap is not available here and --require-sandbox was given "
                "(install the Debian package 'bubblewrap')"
            )
        say(
            settings,
            "WARNING: bubblewrap is not available: student code runs WITHOUT the sandbox "
            "(install the Debian package 'bubblewrap'); every student is flagged",
        )
    say(settings, f"generating {assignment} (nbgrader generate_assignment)")
    with private_umask():  # nbgrader's own files: the release, the gradebook, the course's config
        config_file, template = prepare_course(settings, db_url)
        state = RunState.load(out / "state.json", assignment)
        todo = to_grade(settings, submissions, state, db_url)
    skipped = len(submissions) - len(todo)
    if skipped:
        say(settings, f"{skipped} student(s) already graded from the same files: skipped (--force regrades)")
    tasks = [stage(settings, s, config_file, template, db_url) for s in todo if s.notebooks]
    nothing = [s for s in todo if not s.notebooks]
    seconds = _run(settings, tasks, nothing, {s.student: s for s in todo}, state, db_url)

    cells, rows = read_rows(db_url, assignment, [s.student for s in submissions], state)
    csv_path = out / "grades.csv"
    write_csv(csv_path, assignment, list(cells), rows)
    from autograder.host.report import write_report

    similar = _similar(settings, rows)
    with private_umask():
        report = write_report(out / "report.html", assignment, SOURCE / assignment, cells, rows, similar)
    return Summary(rows, list(cells), csv_path, report, out / "feedback", len(todo), skipped, seconds)


def _similar(settings: Settings, rows: list[Row]) -> list[SimilarPair]:
    """The pairs of similar submissions for the report, read from the notebooks as graded."""
    course = settings.out / "course"
    staged = {r.student: sorted((course / "submitted" / r.student / settings.assignment).glob("*.ipynb")) for r in rows}
    return find_similar(*read_answers(staged, course / "release" / settings.assignment))


def _run(
    settings: Settings,
    tasks: list[Task],
    nothing: list[Submission],
    by_student: dict[str, Submission],
    state: RunState,
    db_url: str,
) -> float:
    """Grade the tasks in parallel, on this machine or a Dask cluster (:mod:`autograder.host.engines`);
    merge each result into the gradebook and the state as it arrives (this process is the only
    writer), with a progress line. The submissions in ``nothing`` hold no notebook to grade:
    they are recorded the same way, as not graded (0 points). Returns the seconds it took."""
    engine = make_engine(settings)
    # A cluster's workers prove they can grade before anything is merged.
    where = engine.start(len(tasks)) if tasks else ""
    try:
        return _run_on(engine, where, settings, tasks, nothing, by_student, state, db_url)
    finally:
        engine.close()


def _run_on(
    engine: Engine,
    where: str,
    settings: Settings,
    tasks: list[Task],
    nothing: list[Submission],
    by_student: dict[str, Submission],
    state: RunState,
    db_url: str,
) -> float:
    unsandboxed = ["sandbox unavailable"] if settings.hardened and not engine.sandboxed else []
    manual = manual_cells(settings.assignment)
    work = settings.out / "work"
    total = len(tasks) + len(nothing)
    started, finished = time.monotonic(), 0  # started: reset when the graders start

    def record(s: Submission, result: StudentResult) -> None:
        nonlocal finished
        # The flags become sentences here: the gradebook, the state file and grades.csv hold text.
        flags = list(dict.fromkeys(texts(s.noticed) + result.flags + (unsandboxed if s.notebooks else [])))
        staged = settings.out / "course" / "submitted" / s.student / settings.assignment
        answers = hand_grades.notebook_answers(staged, sorted(s.notebooks))
        earlier = state.students.get(s.student)
        if earlier is None:
            before = None
        else:
            before = answers if earlier.digest == s.digest else earlier.answers
        with private_umask():
            restored = merge(db_url, settings.assignment, result, flags, manual, answers, before)
        if restored.dropped:  # graded by hand in cells the assignment no longer has
            flags.append(f"graded by hand in cells no longer in the assignment: {name_list(restored.dropped)}")
        if not result.graded:
            write_private(work / f"{s.student}.log", result.log)
        state.students[s.student] = StudentState(s.digest, tuple(flags), round(result.seconds, 1), answers)
        state.save()
        make_student_private(settings.out, s.student)
        finished += 1
        # The submissions without a notebook are recorded first, in no time: the ETA is the graders'.
        graded_so_far = finished - len(nothing)
        eta = (time.monotonic() - started) / graded_so_far * (total - finished) if graded_so_far > 0 else 0.0
        points = sum(v for nb in result.grades.values() for v in nb.values() if v is not None)
        note = f"  [{printable('; '.join(flags), 80)}]" if flags else ""  # flags can quote student text
        say(
            settings,
            f"[{finished:>{len(str(total))}}/{total}] {s.student}: {num(points)} points "
            f"({result.seconds:.1f} s; ETA {duration(eta)}){note}",
        )

    results = engine.grade(tasks)  # starts nothing before it is iterated
    try:
        for s in nothing:
            clear_outputs(settings, s.student)
            reason = f"not graded: no notebook of {settings.assignment} to grade"
            record(s, StudentResult(s.student, graded=False, flags=[reason], log="\n".join([reason, *s.flags])))
        if tasks:
            say(settings, f"grading {len(tasks)} student(s) with {where}")
        started = time.monotonic()
        for task, result in results:
            s = by_student[task.student]
            if isinstance(result, Failure):
                first = result.reason.splitlines()[0]
                result = StudentResult(s.student, graded=False, flags=[f"not graded: {first}"], log=result.reason)
            record(s, result)
    except KeyboardInterrupt:
        results.close()
        say(
            settings,
            f"interrupted after {finished} of {total} student(s); run the same command again to grade the rest",
        )
        raise
    return time.monotonic() - started


def describe(summary: Summary) -> str:
    """What to print at the end of a run: the grade table and where everything is."""
    lines = [
        format_table(summary.rows),
        "",
        f"grades:   {summary.csv}",
        f"feedback: {summary.feedback}/<student>/<notebook>.html",
        f"report:   {summary.report}",
    ]
    again = [f"{r.student}: {', '.join(r.regrade_by_hand)}" for r in summary.rows if r.regrade_by_hand]
    if again:
        n = sum(len(r.regrade_by_hand) for r in summary.rows)
        lines += [
            "",
            f"{n} answer{'s' if n != 1 else ''} graded by hand changed since: left to grade again "
            "(their earlier scores are kept in the formgrader, not counted in grades.csv):",
            *(f"  {printable(a, 200)}" for a in again),
        ]
    if summary.unattributed:
        lines += [
            "",
            f"NOT ATTRIBUTED to any student ({len(summary.unattributed)}): named neither <student_id>/ "
            "(letters, digits and _.@+-) nor as a Moodle, Canvas or Blackboard download names its files:",
            *(f"  {printable(u, 200)}" for u in summary.unattributed),
        ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# Names this module had before it was split, which tests, benchmarks and the cluster engine
# import from here: each is the same object as at its new place. (Not MAX_NOTEBOOK_BYTES: it
# is read where it is checked, so set student_files.MAX_NOTEBOOK_BYTES; a copy here would
# make setting it here do nothing, silently.)
# ----------------------------------------------------------------------------------------

from autograder.host.collect import NO_SUBMISSION as NO_SUBMISSION  # noqa: E402
from autograder.host.course_setup import COURSE_CONFIG as COURSE_CONFIG  # noqa: E402
from autograder.host.course_setup import ROOT as ROOT  # noqa: E402
from autograder.host.course_setup import build_release as build_release  # noqa: E402
from autograder.host.outputs import MAX_FLAG as MAX_FLAG  # noqa: E402
from autograder.host.private_files import OUTPUTS as OUTPUTS  # noqa: E402
from autograder.host.private_files import private_opener as private_opener  # noqa: E402
from autograder.host.roster import STUDENT_ID as STUDENT_ID  # noqa: E402
from autograder.host.state import STATE_VERSION as STATE_VERSION  # noqa: E402
from autograder.host.student_files import MAX_ENTRIES as MAX_ENTRIES  # noqa: E402
from autograder.host.student_files import NotAFile as NotAFile  # noqa: E402
from autograder.host.student_files import open_regular as open_regular  # noqa: E402

_Submission = Submission
_collect = collect
_from_folder = from_folder
_prepare_course = prepare_course
_graded_cells = graded_cells
_cell_order = cell_order
_State = RunState.load
_merge = merge
_read_rows = read_rows
_side_by_side = side_by_side
_say = say

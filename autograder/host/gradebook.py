"""The course's gradebook, written by this process only: one finished student at a time.

Grading processes each write a private copy of the template gradebook
(:mod:`autograder.host.submission`); :func:`merge` copies one student's result into the course's
gradebook with nbgrader's ``Gradebook`` API, replacing any earlier submission but keeping what
the instructor graded by hand (:mod:`autograder.host.hand_grades`). :func:`read_rows` reads the
grades back for grades.csv and the report; :func:`to_grade` says who a rerun can skip;
:func:`record_lms` keeps the LMS's names and numbers of the students for export.
"""

from __future__ import annotations

import warnings

from autograder.host import hand_grades
from autograder.host.collect import Collected, Submission
from autograder.host.course_setup import cell_order
from autograder.host.hand_grades import Answers
from autograder.host.lms import write_students
from autograder.host.outputs import Row, name_list
from autograder.host.private_files import private_opener, private_umask
from autograder.host.settings import Settings
from autograder.host.state import RunState
from autograder.host.submission import COURSE_ID, StudentResult

__all__ = ["merge", "read_rows", "record_lms", "to_grade"]


def merge(
    db_url: str,
    assignment: str,
    result: StudentResult,
    flags: list[str],
    manual: set[str],
    answers: Answers | None = None,
    before: Answers | None = None,
) -> hand_grades.Restored:
    """Replace the student's submission in the gradebook by this result.

    Only automatic scores and comments are copied, never ``extra_credit`` or manual scores from
    the private gradebook. Cells nbgrader did not score (deleted cells, an ungradable notebook)
    score 0. The ``manual`` cells (answers graded by hand) are left for the instructor: no
    automatic score, marked as needing a manual grade, as ``nbgrader autograde`` leaves them.
    What the instructor wrote by hand in the earlier submission (manual scores, extra credit,
    manual comments) is kept (:mod:`autograder.host.hand_grades`): ``answers`` are the digests of the
    answers just graded, ``before`` those of the answers graded by hand (None: unknown). Returns
    what became of them (:class:`autograder.host.hand_grades.Restored`).
    """
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SAWarning

    with Gradebook(db_url, COURSE_ID) as gb, warnings.catch_warnings():
        # nbgrader's add_submission builds its objects in a way SQLAlchemy 2 warns about.
        warnings.simplefilter("ignore", SAWarning)
        gb.update_or_create_student(result.student)
        hand = hand_grades.take(gb, assignment, result.student)
        try:
            gb.remove_submission(assignment, result.student)
        except MissingEntry:
            pass
        submission = gb.add_submission(assignment, result.student)
        for nb in submission.notebooks:
            scores = result.grades.get(nb.name, {})
            comments = result.comments.get(nb.name, {})
            for grade in nb.grades:
                if grade.name in manual:
                    grade.auto_score, grade.needs_manual_grade = None, True
                    continue
                score = scores.get(grade.name)
                grade.auto_score = float(score) if score is not None else 0.0
                grade.needs_manual_grade = False
            for comment in nb.comments:
                comment.auto_comment = comments.get(comment.name)
            nb.flagged = bool(flags)
        restored = hand_grades.put_back(submission, hand, manual, answers or {}, before)
        gb.db.commit()
    return restored


def read_rows(db_url: str, assignment: str, students: list[str], state: RunState) -> tuple[dict[str, float], list[Row]]:
    """Each graded cell's points (in notebook order), and the row of every student in ``students``."""
    from nbgrader.api import Gradebook, MissingEntry

    rows = []
    with Gradebook(db_url, COURSE_ID) as gb:
        a = gb.find_assignment(assignment)
        points = {c.name: float(c.max_score) for nb in a.notebooks for c in nb.grade_cells}
        order = cell_order(assignment)
        cells = {c: points[c] for c in sorted(points, key=lambda c: (order.get(c, len(order)), c))}
        for student in students:
            recorded = state.students.get(student)
            flags = list(recorded.flags) if recorded is not None else []
            try:
                sub = gb.find_submission(assignment, student)
            except MissingEntry:
                continue
            grades = [(nb.name, g, *hand_grades.standing(g)) for nb in sub.notebooks for g in nb.grades]
            scores = {g.name: points for _, g, points, _ in grades}
            pending = sum(float(g.max_score) for _, g, _, waits in grades if waits)
            # Graded by hand, changed since: not counted until graded again (hand_grades.standing).
            again = [f"{nb}/{g.name}" for nb, g, _, _ in grades if hand_grades.stale(g)]
            score = sum(points for _, _, points, _ in grades)
            if again:
                flags = [*flags, f"graded by hand, changed since: {name_list(again)} (left to grade again)"]
            rows.append(Row(student, score, float(sub.max_score), scores, flags, pending, again))
    return cells, rows


def to_grade(settings: Settings, submissions: list[Submission], state: RunState, db_url: str) -> list[Submission]:
    """The submissions not yet in the gradebook from the same files (all of them with --force)."""
    from nbgrader.api import Gradebook, MissingEntry

    todo = []
    with Gradebook(db_url, COURSE_ID) as gb:
        for s in submissions:
            done = state.students.get(s.student)
            if not settings.force and done is not None and done.digest == s.digest:
                try:
                    gb.find_submission(settings.assignment, s.student)
                    continue
                except MissingEntry:
                    pass
            todo.append(s)
    return todo


def record_lms(settings: Settings, collected: Collected) -> None:
    """Keep the LMS's name and number of each student: ``OUT/lms_students.csv`` and the
    gradebook's students table (``lms_user_id``, first and last name), for export."""
    from nbgrader.api import Gradebook

    if not collected.lms_students:
        return
    write_students(settings.out / "lms_students.csv", collected.lms_students, private_opener)
    with private_umask(), Gradebook(settings.gradebook_url(), COURSE_ID) as gb:
        for s in collected.lms_students:
            first, _, last = s.lms_name.partition(" ") if s.lms == "moodle" else ("", "", "")
            fields: dict[str, str] = {"lms_user_id": s.lms_number}
            if first:
                fields.update(first_name=first, last_name=last)
            gb.update_or_create_student(s.student_id, **fields)

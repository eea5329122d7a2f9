"""Grade one student's submission with nbgrader, in a grading process of its own.

:func:`grade_student` runs in a worker of :mod:`autograder.host.pool`. It copies the template
gradebook (the assignment only) to a private gradebook, runs nbgrader's ``autograde`` and
``generate_feedback`` for this one student against it, and returns the grades as plain data.
The parent process merges them into the course's gradebook: concurrent graders never write
to the same database.

It also compares the submitted notebook with the release to name what a student changed that
they should not have (missing, duplicated or renamed grade cells, edited locked cells, forged
checksums), and refuses to publish feedback that would show hidden tests.

Flags are typed records (:class:`autograder.host.flags.Flag`: one of the :data:`FLAG_KINDS`,
delegation, numerical differentiation, edited test cells, ..., and a sentence). This module
makes those of the comparison with the release (:func:`inspect_cells`) and reads those of the
trusted grading run from its record in each autograded notebook (:func:`run_flags_of`), never
from nbgrader's log. Their sentences go into grades.csv ``flags``; the report counts them by
kind, and the student's feedback lists them all in a box at the top (:func:`feedback_notes`),
so that what the instructor is told, the student is told too.
"""

from __future__ import annotations

import copy
import functools
import html
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps.api import NbGraderAPI
from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory
from nbgrader.utils import compute_checksum
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from autograder.host.flags import FLAG_KINDS, Flag, FlagKind, flag_kind, read_flags, texts
from autograder.host.task import FIRST_UID, Task
from autograder.integration.metadata import RECORD_KEY, nbgrader_meta

__all__ = [
    "FIRST_UID",
    "FLAG_KINDS",
    "HIDDEN_MARKERS",
    "Flag",
    "FlagKind",
    "StudentResult",
    "feedback_notes",
    "flag_kind",
    "grade_student",
    "hidden_test_lines",
    "inspect_cells",
    "inspect_notebook",
    "leaks_hidden_tests",
    "run_flags_of",
]

COURSE_ID = "backprop"
#: nbgrader's hidden-test markers: never in feedback.
HIDDEN_MARKERS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


@dataclass
class StudentResult:
    """What grading one student produced, as plain data (it crosses a process boundary)."""

    student: str
    graded: bool
    #: notebook -> grade_id -> auto score (None: nbgrader gave no score)
    grades: dict[str, dict[str, float | None]] = field(default_factory=dict)
    #: notebook -> solution cell -> nbgrader's automatic comment
    comments: dict[str, dict[str, str | None]] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    feedback: list[str] = field(default_factory=list)
    seconds: float = 0.0
    log: str = ""


# ----------------------------------------------------------------------------------------
# Kinds of flags (autograder.host.flags; named here too, where the pipeline and tests import them)
# ----------------------------------------------------------------------------------------


#: The flags a student's feedback leaves out: they are about the grader, not about the work.
_NOT_FOR_STUDENTS = ("grader",)


def feedback_notes(flags: Sequence[str]) -> str:
    """The box at the top of a student's feedback that lists the flags their instructor sees
    (HTML, every flag escaped); empty when there is nothing to say."""
    from autograder.host.sanitize import printable

    shown = [f for f in dict.fromkeys(flags) if flag_kind(f).key not in _NOT_FOR_STUDENTS]
    if not shown:
        return ""
    items = "".join(
        f"<li><strong>{html.escape(flag_kind(f).label)}</strong>: {html.escape(printable(f, 300))}</li>" for f in shown
    )
    return (
        "<div class='alert alert-warning' id='grading-notes'><h4>Notes on your submission</h4>"
        "<p>The grader noted the following; your instructor sees the same notes beside your grade.</p>"
        f"<ul>{items}</ul></div>"
    )


def _add_notes(page: str, notes: str) -> str:
    """``page`` with ``notes`` after the feedback's heading (else at the top of its body)."""
    if not notes:
        return page
    for anchor in ("</h4>", "<body>"):
        at = page.find(anchor)
        if at >= 0:
            return page[: at + len(anchor)] + notes + page[at + len(anchor) :]
    return notes + page


# ----------------------------------------------------------------------------------------
# What a student changed
# ----------------------------------------------------------------------------------------


def inspect_notebook(submitted: nbformat.NotebookNode, release: nbformat.NotebookNode) -> list[str]:
    """Flags for nbgrader cells the student deleted, duplicated, renamed or edited (sentences)."""
    return texts(inspect_cells(submitted, release))


def inspect_cells(submitted: nbformat.NotebookNode, release: nbformat.NotebookNode) -> list[Flag]:
    """The flags of :func:`inspect_notebook`, typed: what nbgrader's own checks (``Missing grade
    cell``, ``Cell with id ... exists multiple times``, its checksum comparison) would only log,
    computed here from the release's cell metadata (``compute_checksum`` as nbgrader does)."""
    expected = {nbgrader_meta(c)["grade_id"]: c for c in release.cells if nbgrader_meta(c).get("grade_id")}
    ids = Counter(str(nbgrader_meta(c)["grade_id"]) for c in submitted.cells if nbgrader_meta(c).get("grade_id"))
    flags: list[Flag] = []
    graded = [g for g, c in expected.items() if nbgrader_meta(c).get("grade")]
    missing = [g for g in graded if g not in ids]
    if missing:
        flags.append(Flag("test_cells", f"missing grade cells: {', '.join(missing)}"))
    duplicated = sorted(g for g, n in ids.items() if n > 1)
    if duplicated:
        flags.append(Flag("test_cells", f"duplicated grade cells: {', '.join(duplicated)}"))
    unknown = sorted(g for g in ids if g not in expected)
    if unknown:
        flags.append(Flag("test_cells", f"unknown grade ids (renamed cells?): {', '.join(unknown)}"))
    retyped: list[str] = []
    forged: list[str] = []
    edited: list[str] = []
    for cell in submitted.cells:
        gid = str(nbgrader_meta(cell).get("grade_id"))
        original = expected.get(gid) if nbgrader_meta(cell).get("grade_id") else None
        if original is None or not nbgrader_meta(original).get("locked"):
            continue
        if cell.get("cell_type") != original.cell_type:
            retyped.append(f"{gid} ({original.cell_type} -> {cell.get('cell_type')})")
            continue
        if nbgrader_meta(cell).get("checksum") != nbgrader_meta(original).get("checksum"):
            forged.append(gid)
        else:
            try:
                if compute_checksum(cell) != nbgrader_meta(original).get("checksum"):
                    edited.append(gid)
            except (KeyError, ValueError, TypeError, AttributeError):
                edited.append(gid)
    if retyped:
        flags.append(Flag("test_cells", f"cell type changed: {', '.join(retyped)}"))
    if forged:
        flags.append(Flag("checksum", f"checksum edited: {', '.join(forged)}"))
    if edited:
        flags.append(Flag("test_cells", f"locked cells edited: {', '.join(edited)}"))
    return flags


def _drop_duplicate_ids(nb: nbformat.NotebookNode) -> bool:
    """Keep the nbgrader metadata of only the last cell with a given grade id, as nbgrader's
    ``DeduplicateIds`` means to (it leaves an empty dict that its own validator then rejects,
    which would fail the whole notebook). True if anything changed."""
    seen, changed = set(), False
    for cell in reversed(nb.cells):
        gid = nbgrader_meta(cell).get("grade_id")
        if gid is None:
            continue
        if gid in seen:
            del cell.metadata["nbgrader"]
            changed = True
        seen.add(gid)
    return changed


def leaks_hidden_tests(text: str, needles: Sequence[str] = HIDDEN_MARKERS) -> str | None:
    """The first of ``needles`` found in ``text`` (HTML or code; tags and whitespace ignored)."""
    squeezed = re.sub(r"\s+", "", html.unescape(re.sub(r"<[^>]*>", "", text)))
    for needle in needles:
        if re.sub(r"\s+", "", needle) in squeezed:
            return needle
    return None


def hidden_test_lines(source: nbformat.NotebookNode) -> list[str]:
    """The code inside the hidden-test regions of an instructor's notebook, line by line."""
    lines, inside = [], False
    for cell in source.cells:
        for line in cell.source.splitlines():
            if HIDDEN_MARKERS[0] in line:
                inside = True
            elif HIDDEN_MARKERS[1] in line:
                inside = False
            elif inside and line.strip():
                lines.append(line.strip())
    return lines


def _forget_records(nb: nbformat.NotebookNode) -> bool:
    """Drop a grading record the student put in the notebook's metadata (a graded notebook's is
    the trusted grader's alone; stock nbgrader would keep the student's). True if there was one."""
    return nb.metadata.pop(RECORD_KEY, None) is not None


def run_flags_of(autograded: Path, notebooks: Sequence[str]) -> list[Flag]:
    """The flags of the trusted grading runs of ``notebooks`` (names without ``.ipynb``) in the
    folder ``autograded``, from each autograded notebook's record
    (:func:`autograder.host.flags.read_flags`); a notebook without one (stock nbgrader, not written)
    adds none. Nothing is read from nbgrader's log."""
    flags: list[Flag] = []
    for name in notebooks:
        try:
            nb = nbformat.read(str(autograded / f"{name}.ipynb"), as_version=4)
        except Exception:  # noqa: BLE001 - no autograded notebook: the run says why (not graded)
            continue
        flags += [f for f in read_flags(nb.metadata.get(RECORD_KEY)) if f not in flags]
    return flags


def _last_error(result: dict) -> str:
    """One line saying why nbgrader failed, from its captured error or log: only nbgrader knows
    it, and it only logs it (the run's record is not written when autograding fails)."""
    text = (result.get("error") or "") + "\n" + (result.get("log") or "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if re.match(r"^[\w.]*(Error|Exception)\b", ln) and "NbGraderException" not in ln:
            return ln[:300]
    for ln in reversed(lines):
        if ln.startswith("[ERROR]") and "see the the above" not in ln:
            return ln[8:][:300]
    return "nbgrader could not autograde it"


# ----------------------------------------------------------------------------------------
# Grading one student
# ----------------------------------------------------------------------------------------


@functools.cache
def _course_config(config_file: str) -> Config:
    path = Path(config_file)
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


def _config(task: Task, slot: int, db_url: str) -> Config:
    cfg = copy.deepcopy(_course_config(task.config_file))
    over = Config()
    over.CourseDirectory.db_url = db_url
    over.TrustedExecute.uid = task.first_uid + slot
    over.TrustedExecute.hidden_paths = [str(p) for p in task.hidden_paths]
    for section, values in task.overrides.items():
        for key, value in values.items():
            over[section][key] = value
    if not task.hardened:
        # nbgrader as shipped: the notebook's own kernel decides (for the benchmark's baseline).
        stock = Autograde.class_traits()["autograde_preprocessors"]
        over.Autograde.autograde_preprocessors = stock.make_dynamic_default()
    cfg.merge(over)
    return cfg


def _read_grades(db_url: str, assignment: str, student: str, result: StudentResult) -> None:
    with Gradebook(db_url, COURSE_ID) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return
        for nb in submission.notebooks:
            result.grades[nb.name] = {g.name: g.auto_score for g in nb.grades}
            result.comments[nb.name] = {c.name: c.auto_comment for c in nb.comments}


def _private_file(path: str, flags: int) -> int:
    fd = os.open(path, flags | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def _publish_feedback(task: Task, result: StudentResult) -> None:
    """Copy nbgrader's feedback to ``OUT/feedback/<student>/``, unless the page shows a
    hidden-test marker or a line of the instructor's hidden tests, with the student's flags
    (``task.flags``, from collecting the submission, and this grading's) in a box at the top."""
    course, student, assignment = Path(task.course_root), task.student, task.assignment
    made = course / "feedback" / student / assignment
    notes = feedback_notes([*texts(list(task.flags)), *result.flags])
    for page in sorted(made.glob("*.html")):
        source = nbformat.read(str(Path(task.source_dir) / f"{page.stem}.ipynb"), as_version=4)
        text = _add_notes(page.read_text(errors="replace"), notes)
        leak = leaks_hidden_tests(text, [*HIDDEN_MARKERS, *hidden_test_lines(source)])
        if leak is not None:
            page.unlink()
            result.flags.append(f"feedback withheld: it would have shown hidden tests ({leak!r})")
            continue
        dest = Path(task.feedback_dir) / student / page.name
        dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(dest.parent, 0o700)  # feedback holds student data: the instructor's only
        with open(dest, "w", encoding="utf-8", opener=_private_file) as copy:
            copy.write(text)
        os.chmod(page, 0o600)
        result.feedback.append(str(dest))


def grade_student(task: Task, slot: int) -> StudentResult:
    """Autograde one student against a private copy of the template gradebook (see module doc).

    ``task`` says where to read and write and how to run (:class:`autograder.host.task.Task`).
    """
    start = time.monotonic()
    student, assignment = task.student, task.assignment
    course = Path(task.course_root)
    result = StudentResult(student, graded=False)
    for name in task.notebooks:
        release = nbformat.read(str(course / "release" / assignment / f"{name}.ipynb"), as_version=4)
        try:
            submitted = nbformat.read(str(course / "submitted" / student / assignment / f"{name}.ipynb"), as_version=4)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the student's problem
            result.flags.append(f"{name}.ipynb is not a readable notebook (0 points for it): {type(exc).__name__}")
            continue
        result.flags.extend(inspect_notebook(submitted, release))
        if _drop_duplicate_ids(submitted) | _forget_records(submitted):
            nbformat.write(submitted, str(course / "submitted" / student / assignment / f"{name}.ipynb"))

    private = Path(task.work_dir) / f"{student}.db"
    private.unlink(missing_ok=True)
    shutil.copyfile(task.template_db, private)
    db_url = f"sqlite:///{private}"
    cfg = _config(task, slot, db_url)
    api = NbGraderAPI(CourseDirectory(config=cfg), config=cfg)

    shutil.rmtree(Path(task.feedback_dir) / student, ignore_errors=True)
    shutil.rmtree(course / "feedback" / student / assignment, ignore_errors=True)
    graded = api.autograde(assignment, student, force=True, create=True)
    result.log = graded.get("log") or ""
    autograded = course / "autograded" / student / assignment
    result.flags.extend(f for f in texts(run_flags_of(autograded, task.notebooks)) if f not in result.flags)
    if graded["success"]:
        result.graded = True
        _read_grades(db_url, assignment, student, result)
        feedback = api.generate_feedback(assignment, student, force=True)
        if feedback["success"]:
            _publish_feedback(task, result)
        else:
            result.flags.append(f"feedback could not be generated: {_last_error(feedback)}")
    else:
        result.flags.append(f"not graded: {_last_error(graded)}")
        result.log += "\n" + (graded.get("error") or "")
    private.unlink(missing_ok=True)
    result.seconds = time.monotonic() - start
    return result

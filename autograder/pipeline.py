"""From a folder of submitted notebooks to grades, feedback and a class report.

``python -m autograder grade --assignment NAME --submissions DIR --out OUT [--workers N]``
runs :func:`grade`. Underneath it is an ordinary nbgrader course in ``OUT/course/`` (source:
the repository's ``solutions/``; its ``nbgrader_config.py`` loads the course's own, so the
stock commands, ``nbgrader formgrader`` included, work there too):

1. ``generate_assignment`` writes the release and records the assignment in a template
   gradebook and in the course's gradebook (``OUT/gradebook.db``, or any SQLAlchemy URL);
2. each student's notebook is copied to ``submitted/<student>/<assignment>/`` (only the
   notebook: files submitted beside it are ignored and flagged, so a package cannot shadow
   the course library); a student whose folder holds no notebook to grade (none, or only
   one too large) is recorded as not graded: 0 points, flagged;
3. ``N`` grading processes autograde one student at a time, each against a private copy of
   the template gradebook (nbgrader's autograde is serial and SQLite takes one writer at a
   time), and generate that student's feedback;
4. this process merges each finished student into the course's gradebook with nbgrader's
   ``Gradebook`` API, one at a time, replacing any earlier submission, and records the
   student in ``OUT/state.json``;
5. ``grades.csv``, ``feedback/<student>/<notebook>.html`` and ``report.html`` are written.

A rerun skips students already merged whose files (and the assignment's source) have not
changed, so an interrupted run resumes where it stopped; ``--force`` regrades everyone.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import json
import os
import re
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from . import sandbox
from .pool import Failure, run_tasks
from .submission import COURSE_ID, FIRST_UID, StudentResult, grade_student

__all__ = ["ROOT", "Row", "Settings", "Summary", "UsageError", "build_release", "describe", "grade", "list_assignments"]

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "solutions"
COURSE_CONFIG = ROOT / "autograder" / "nbgrader_config.py"
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}$")
#: A notebook larger than this is not graded (it would only be a way to exhaust the grader).
MAX_NOTEBOOK_BYTES = 32 * 2**20
#: Bump when grading changes in a way that should invalidate earlier results.
STATE_VERSION = 1


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit status 2."""


@dataclass
class Settings:
    """Everything one grading run needs. Paths may be relative to the working directory."""

    assignment: str
    submissions: Path
    out: Path
    workers: int = 1
    db_url: str | None = None
    #: Wall-clock seconds one student may take in total before their grading is stopped.
    student_timeout: float = 1800.0
    #: Overrides of TrustedExecute.timeout (per cell) and .cpu_seconds (per check), if set.
    cell_timeout: int | None = None
    cpu_seconds: int | None = None
    #: Refuse to run student code without bubblewrap (instead of grading with a loud warning).
    require_sandbox: bool = False
    #: False grades with nbgrader's own Execute (no sandbox, no trusted verdicts): benchmarks only.
    hardened: bool = True
    force: bool = False
    #: Grader k runs student code as uid first_uid + k (distinct uids: separate process limits).
    first_uid: int = FIRST_UID
    #: Run the two sandboxed runs of a notebook at the same time (TrustedExecute.side_by_side).
    #: None: when there are fewer workers than cores, so that the runs use cores that would idle.
    side_by_side: bool | None = None
    progress: TextIO | None = field(default=sys.stderr, repr=False)


@dataclass
class Row:
    """One line of ``grades.csv``."""

    student: str
    score: float
    max_score: float
    cells: dict[str, float]
    flags: list[str]


def list_assignments() -> list[str]:
    return sorted(p.name for p in SOURCE.iterdir() if p.is_dir() and re.match(r"^\d\d_", p.name))


# ----------------------------------------------------------------------------------------
# Input
# ----------------------------------------------------------------------------------------


@dataclass
class _Submission:
    student: str
    notebooks: dict[str, Path]  # expected notebook name -> the student's file
    flags: list[str]
    digest: str


def _file_digest(paths: list[Path], base: Path, extra: bytes) -> str:
    h = hashlib.sha256(extra)
    for path in sorted(paths):
        h.update(str(path.relative_to(base)).encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda f=f: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _collect(settings: Settings, expected: list[str], source_digest: bytes) -> list[_Submission]:
    """One :class:`_Submission` per student folder in DIR, with notebooks matched by name.

    A folder that holds files but no notebook to grade is a submission too (its ``notebooks``
    are empty: it scores 0 and is flagged); only empty folders are passed over. A DIR in which
    no folder holds a notebook at all is a usage error (most likely the wrong folder)."""
    root = settings.submissions
    if not root.is_dir():
        raise UsageError(f"submissions folder not found: {root}")
    found, any_notebook = [], False
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = [p for p in folder.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts]
        notebooks = sorted(p for p in files if p.suffix == ".ipynb" and p.parent == folder)
        if not files:
            continue
        if not STUDENT_ID.match(folder.name):
            _say(settings, f"skipped {folder.name!r}: a student id may use only letters, digits and _.@+-")
            continue
        any_notebook = any_notebook or bool(notebooks)
        flags, matched = [], {}
        by_name = {p.stem: p for p in notebooks}
        for name in expected:
            if name in by_name:
                matched[name] = by_name[name]
        unmatched = [p for p in notebooks if p not in matched.values()]
        missing = [n for n in expected if n not in matched]
        if len(missing) == 1 and len(unmatched) == 1:
            matched[missing[0]] = unmatched.pop()
            flags.append(f"notebook renamed: graded {matched[missing[0]].name} as {missing[0]}.ipynb")
            missing = []
        if missing:
            flags.append(f"no notebook named {', '.join(m + '.ipynb' for m in missing)} (0 points for it)")
        for name, path in list(matched.items()):
            if path.stat().st_size > MAX_NOTEBOOK_BYTES:
                flags.append(f"{path.name} is larger than {MAX_NOTEBOOK_BYTES >> 20} MB and was not graded "
                             "(0 points for it)")
                del matched[name]
        ignored = sorted(str(p.relative_to(folder)) for p in files if p not in matched.values())
        if ignored:
            shown = ", ".join(ignored[:5]) + (f" and {len(ignored) - 5} more" if len(ignored) > 5 else "")
            flags.append(f"ignored files{' beside the notebook' if matched else ''}: {shown}")
        found.append(_Submission(folder.name, matched, flags, _file_digest(files, folder, source_digest)))
    if not any_notebook:
        raise UsageError(f"no notebooks found in {root}: expected {root}/<student_id>/<notebook>.ipynb")
    return found


# ----------------------------------------------------------------------------------------
# The nbgrader course under OUT
# ----------------------------------------------------------------------------------------


def _course_config(course: Path, db_url: str) -> str:
    return f'''"""nbgrader configuration of this grading run, written by `python -m autograder grade`.

It loads the course's own configuration and points nbgrader at this folder, so the stock
commands work here: `nbgrader formgrader`, `nbgrader generate_feedback`, `nbgrader export`.
"""

c = get_config()  # noqa: F821
load_subconfig({str(COURSE_CONFIG)!r})  # noqa: F821

c.CourseDirectory.root = {str(course)!r}
c.CourseDirectory.source_directory = {str(SOURCE)!r}
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.solution_directory = "solution"
c.CourseDirectory.course_id = {COURSE_ID!r}
c.CourseDirectory.db_url = {db_url!r}
c.Exchange.root = {str(course / "exchange")!r}
# Feedback never shows hidden tests: the course's configuration sees to it (GenerateFeedback.preprocessors).
'''


def _api(config_file: Path, db_url: str):
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader(config_file.name, path=str(config_file.parent)).load_config()
    over = Config()
    over.CourseDirectory.db_url = db_url
    cfg.merge(over)
    return NbGraderAPI(CourseDirectory(config=cfg), config=cfg)


def _generate(config_file: Path, db_url: str, assignment: str) -> None:
    result = _api(config_file, db_url).generate_assignment(assignment, force=True, create=True)
    if not result["success"]:
        text = (result.get("error") or "") + (result.get("log") or "")
        tail = [ln for ln in text.splitlines() if ln.strip()][-8:]
        raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n" + "\n".join(tail))


def build_release(assignment: str, dest: Path) -> Path:
    """The student release of ``assignment`` (``generate_assignment --no-db``) under ``dest``;
    returns the folder holding its notebooks."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    dest.mkdir(parents=True, exist_ok=True)
    cfg = PyFileConfigLoader(COURSE_CONFIG.name, path=str(COURSE_CONFIG.parent)).load_config()
    over = Config()
    over.CourseDirectory.root = str(dest)
    over.CourseDirectory.source_directory = str(SOURCE)
    over.CourseDirectory.release_directory = "release"
    over.SaveCells.enabled = False
    over.GenerateAssignment.no_database = True
    cfg.merge(over)
    result = NbGraderAPI(CourseDirectory(config=cfg), config=cfg).generate_assignment(assignment, force=True)
    if not result["success"]:
        tail = [ln for ln in ((result.get("error") or "") + (result.get("log") or "")).splitlines() if ln.strip()]
        raise RuntimeError(f"nbgrader generate_assignment {assignment} --no-db failed:\n" + "\n".join(tail[-8:]))
    return dest / "release" / assignment


def _expected_notebooks(assignment: str) -> list[str]:
    return sorted(p.stem for p in (SOURCE / assignment).glob("*.ipynb"))


def _cell_order(assignment: str) -> dict[str, int]:
    """Position of each graded cell in the assignment's source notebooks."""
    import nbformat

    ids = []
    for path in sorted((SOURCE / assignment).glob("*.ipynb")):
        for cell in nbformat.read(str(path), as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade"):
                ids.append(meta.get("grade_id"))
    return {gid: i for i, gid in enumerate(ids)}


def _source_digest(assignment: str, settings: Settings) -> bytes:
    paths = sorted((SOURCE / assignment).glob("*.ipynb"))
    grading = json.dumps([STATE_VERSION, settings.hardened, settings.cell_timeout, settings.cpu_seconds])
    return _file_digest(paths, SOURCE, grading.encode()).encode()


# ----------------------------------------------------------------------------------------
# State: who has been merged into the gradebook, from which files
# ----------------------------------------------------------------------------------------


class _State:
    def __init__(self, path: Path, assignment: str) -> None:
        self.path, self.assignment = path, assignment
        try:
            self.data = json.loads(path.read_text())
        except (OSError, ValueError):
            self.data = {}
        if self.data.get("version") != STATE_VERSION:
            self.data = {"version": STATE_VERSION, "assignments": {}}
        self.students: dict[str, dict[str, Any]] = self.data["assignments"].setdefault(assignment, {})

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)


@contextmanager
def _lock(out: Path) -> Iterator[None]:
    with open(out / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another grading run is using {out}") from None
        yield


# ----------------------------------------------------------------------------------------
# Merging into the course's gradebook (one writer: this process)
# ----------------------------------------------------------------------------------------


def _merge(db_url: str, assignment: str, result: StudentResult, flags: list[str]) -> None:
    """Replace the student's submission in the gradebook by this result.

    Only automatic scores and comments are copied, never ``extra_credit`` or manual scores from
    the private gradebook. Cells nbgrader did not score (deleted cells, an ungradable notebook)
    score 0.
    """
    import warnings

    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SAWarning

    with Gradebook(db_url, COURSE_ID) as gb, warnings.catch_warnings():
        # nbgrader's add_submission builds its objects in a way SQLAlchemy 2 warns about.
        warnings.simplefilter("ignore", SAWarning)
        gb.update_or_create_student(result.student)
        try:
            gb.remove_submission(assignment, result.student)
        except MissingEntry:
            pass
        submission = gb.add_submission(assignment, result.student)
        for nb in submission.notebooks:
            scores = result.grades.get(nb.name, {})
            comments = result.comments.get(nb.name, {})
            for grade in nb.grades:
                score = scores.get(grade.name)
                grade.auto_score = float(score) if score is not None else 0.0
                grade.needs_manual_grade = False
            for comment in nb.comments:
                comment.auto_comment = comments.get(comment.name)
            nb.flagged = bool(flags)
        gb.db.commit()


def _read_rows(
    db_url: str, assignment: str, students: list[str], state: _State
) -> tuple[dict[str, float], list[Row]]:
    """Each graded cell's points (in notebook order), and the row of every student in ``students``."""
    from nbgrader.api import Gradebook, MissingEntry

    rows = []
    with Gradebook(db_url, COURSE_ID) as gb:
        a = gb.find_assignment(assignment)
        points = {c.name: float(c.max_score) for nb in a.notebooks for c in nb.grade_cells}
        order = _cell_order(assignment)
        cells = {c: points[c] for c in sorted(points, key=lambda c: (order.get(c, len(order)), c))}
        for student in students:
            flags = state.students.get(student, {}).get("flags", [])
            try:
                sub = gb.find_submission(assignment, student)
            except MissingEntry:
                continue
            scores = {g.name: float(g.score) for nb in sub.notebooks for g in nb.grades}
            rows.append(Row(student, float(sub.score), float(sub.max_score), scores, flags))
    return cells, rows


# ----------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------


def _num(x: float) -> str:
    return f"{x:g}"


def _write_csv(path: Path, assignment: str, cell_ids: list[str], rows: list[Row]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student_id", "assignment", "score", "max_score", *cell_ids, "flags"])
        for r in rows:
            cells = [_num(r.cells.get(c, 0.0)) for c in cell_ids]
            w.writerow([r.student, assignment, _num(r.score), _num(r.max_score), *cells, "; ".join(r.flags)])
    os.replace(tmp, path)


def format_table(rows: list[Row]) -> str:
    """The grade table printed at the end of a run."""
    width = max([len("student"), *(len(r.student) for r in rows)])
    lines = [f"{'student':<{width}}  {'score':>11}  flags"]
    for r in rows:
        score = f"{_num(r.score)} / {_num(r.max_score)}"
        flags = "; ".join(r.flags)
        lines.append(f"{r.student:<{width}}  {score:>11}  {flags[:100] + ('...' if len(flags) > 100 else '')}")
    if rows:
        scores = [r.score for r in rows]
        lines.append(
            f"{len(rows)} students: mean {statistics.mean(scores):.1f}, median {_num(statistics.median(scores))} "
            f"of {_num(rows[0].max_score)}"
        )
    return "\n".join(lines)


def _say(settings: Settings, message: str) -> None:
    if settings.progress is not None:
        print(message, file=settings.progress, flush=True)


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


# ----------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------


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


def _default_db_url(out: Path) -> str:
    return f"sqlite:///{out / 'gradebook.db'}"


def _sqlite_path(url: str) -> Path | None:
    return Path(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else None


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
    expected = _expected_notebooks(assignment)
    submissions = _collect(settings, expected, _source_digest(assignment, settings))
    if out == settings.submissions or out.is_relative_to(settings.submissions):
        raise UsageError("--out must not be inside the submissions folder")

    out.mkdir(parents=True, exist_ok=True)
    with _lock(out):
        return _grade_locked(settings, submissions, expected)


def _grade_locked(settings: Settings, submissions: list[_Submission], expected: list[str]) -> Summary:
    assignment, out = settings.assignment, settings.out
    db_url = settings.db_url or _default_db_url(out)
    if not sandbox.bubblewrap_available() and settings.hardened:
        if settings.require_sandbox:
            raise UsageError("bubblewrap is not available here and --require-sandbox was given "
                             "(install the Debian package 'bubblewrap')")
        _say(settings, "WARNING: bubblewrap is not available: student code runs WITHOUT the sandbox "
                       "(install the Debian package 'bubblewrap'); every student is flagged")
    _say(settings, f"generating {assignment} (nbgrader generate_assignment)")
    config_file, template = _prepare_course(settings, db_url)
    state = _State(out / "state.json", assignment)
    todo = _to_grade(settings, submissions, state, db_url)
    skipped = len(submissions) - len(todo)
    if skipped:
        _say(settings, f"{skipped} student(s) already graded from the same files: skipped (--force regrades)")
    tasks = [_stage(settings, s, config_file, template, db_url) for s in todo if s.notebooks]
    nothing = [s for s in todo if not s.notebooks]
    seconds = _run(settings, tasks, nothing, {s.student: s for s in todo}, state, db_url)

    cells, rows = _read_rows(db_url, assignment, [s.student for s in submissions], state)
    csv_path = out / "grades.csv"
    _write_csv(csv_path, assignment, list(cells), rows)
    from .report import write_report

    report = write_report(out / "report.html", assignment, SOURCE / assignment, cells, rows)
    return Summary(rows, list(cells), csv_path, report, out / "feedback", len(todo), skipped, seconds)


def _prepare_course(settings: Settings, db_url: str) -> tuple[Path, Path]:
    """The course under OUT: its configuration, the release, the assignment in the course's
    gradebook, and a template gradebook for the graders to copy (kept while the source is
    unchanged). Returns (configuration file, template gradebook)."""
    assignment, out = settings.assignment, settings.out
    course, work = out / "course", out / "work"
    for d in (course, work, out / "feedback", course / "exchange"):
        d.mkdir(parents=True, exist_ok=True)
    config_file = course / "nbgrader_config.py"
    config_file.write_text(_course_config(course, db_url))
    template = work / f"template-{assignment}-{_source_digest(assignment, settings)[:12].decode()}.db"
    if not template.exists():
        for old in work.glob(f"template-{assignment}-*"):
            old.unlink()
        partial = template.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        _generate(config_file, f"sqlite:///{partial}", assignment)
        os.replace(partial, template)
    _generate(config_file, db_url, assignment)
    return config_file, template


def _to_grade(settings: Settings, submissions: list[_Submission], state: _State, db_url: str) -> list[_Submission]:
    """The submissions not yet in the gradebook from the same files (all of them with --force)."""
    from nbgrader.api import Gradebook, MissingEntry

    todo = []
    with Gradebook(db_url, COURSE_ID) as gb:
        for s in submissions:
            done = state.students.get(s.student)
            if not settings.force and done and done.get("digest") == s.digest:
                try:
                    gb.find_submission(settings.assignment, s.student)
                    continue
                except MissingEntry:
                    pass
            todo.append(s)
    return todo


def _stage(settings: Settings, s: _Submission, config_file: Path, template: Path, db_url: str) -> dict[str, Any]:
    """Copy the student's notebooks (only those) into ``submitted/``; the grader's task."""
    assignment, out = settings.assignment, settings.out
    course = out / "course"
    staged = course / "submitted" / s.student / assignment
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    for name, path in s.notebooks.items():
        shutil.copyfile(path, staged / f"{name}.ipynb")
    # Student code must not see this run's files, other students' submissions or the gradebook.
    hidden = [out, settings.submissions]
    main_db = _sqlite_path(db_url)
    if main_db is not None and not main_db.resolve().is_relative_to(out):
        hidden.append(main_db.resolve())
    overrides: dict[str, dict[str, Any]] = {"TrustedExecute": {}, "Execute": {}}
    if settings.cell_timeout is not None:
        overrides["TrustedExecute"]["timeout"] = overrides["Execute"]["timeout"] = settings.cell_timeout
    if settings.cpu_seconds is not None:
        overrides["TrustedExecute"]["cpu_seconds"] = settings.cpu_seconds
    if settings.require_sandbox:
        overrides["TrustedExecute"]["require_sandbox"] = True
    overrides["TrustedExecute"]["side_by_side"] = _side_by_side(settings)
    return {
        "student": s.student, "assignment": assignment, "course_root": str(course),
        "config_file": str(config_file), "template_db": str(template), "work_dir": str(out / "work"),
        "feedback_dir": str(out / "feedback"), "source_dir": str(SOURCE / assignment),
        "hidden_paths": [str(p) for p in hidden],
        "notebooks": sorted(s.notebooks), "hardened": settings.hardened, "overrides": overrides,
        "first_uid": settings.first_uid,
    }


def _side_by_side(settings: Settings) -> bool:
    if settings.side_by_side is not None:
        return settings.side_by_side
    return settings.workers < (os.cpu_count() or 1)


def _clear_outputs(settings: Settings, student: str) -> None:
    """Remove what an earlier run left for ``student`` (staged notebook, feedback), as a grader does."""
    course = settings.out / "course"
    for d in ("submitted", "autograded", "feedback"):
        shutil.rmtree(course / d / student / settings.assignment, ignore_errors=True)
    shutil.rmtree(settings.out / "feedback" / student, ignore_errors=True)


def _run(
    settings: Settings,
    tasks: list[dict[str, Any]],
    nothing: list[_Submission],
    by_student: dict[str, _Submission],
    state: _State,
    db_url: str,
) -> float:
    """Grade the tasks in parallel; merge each result into the gradebook and the state as it
    arrives, with a progress line. The submissions in ``nothing`` hold no notebook to grade:
    they are recorded the same way, as not graded (0 points). Returns the seconds it took."""
    unsandboxed = ["sandbox unavailable"] if settings.hardened and not sandbox.bubblewrap_available() else []
    work = settings.out / "work"
    total = len(tasks) + len(nothing)
    started, finished = time.monotonic(), 0  # started: reset when the graders start

    def record(s: _Submission, result: StudentResult) -> None:
        nonlocal finished
        flags = list(dict.fromkeys(s.flags + result.flags + (unsandboxed if s.notebooks else [])))
        _merge(db_url, settings.assignment, result, flags)
        if not result.graded:
            (work / f"{s.student}.log").write_text(result.log)
        state.students[s.student] = {"digest": s.digest, "flags": flags, "seconds": round(result.seconds, 1)}
        state.save()
        finished += 1
        # The submissions without a notebook are recorded first, in no time: the ETA is the graders'.
        graded_so_far = finished - len(nothing)
        eta = (time.monotonic() - started) / graded_so_far * (total - finished) if graded_so_far > 0 else 0.0
        points = sum(v for nb in result.grades.values() for v in nb.values() if v is not None)
        note = f"  [{'; '.join(flags)[:80]}]" if flags else ""
        _say(settings, f"[{finished:>{len(str(total))}}/{total}] {s.student}: {_num(points)} points "
                       f"({result.seconds:.1f} s; ETA {_duration(eta)}){note}")

    # One BLAS thread per grader: the graders themselves use the cores.
    single = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    results = run_tasks(grade_student, tasks, workers=settings.workers, timeout=settings.student_timeout,
                        log_dir=str(work), env=single)  # starts nothing before it is iterated
    try:
        for s in nothing:
            _clear_outputs(settings, s.student)
            reason = f"not graded: no notebook of {settings.assignment} to grade"
            record(s, StudentResult(s.student, graded=False, flags=[reason], log="\n".join([reason, *s.flags])))
        if tasks:
            _say(settings, f"grading {len(tasks)} student(s) with {min(settings.workers, len(tasks))} worker(s)")
        started = time.monotonic()
        for task, result in results:
            s = by_student[task["student"]]
            if isinstance(result, Failure):
                first = result.reason.splitlines()[0]
                result = StudentResult(s.student, graded=False, flags=[f"not graded: {first}"], log=result.reason)
            record(s, result)
    except KeyboardInterrupt:
        results.close()
        _say(settings, f"interrupted after {finished} of {total} student(s); "
                       "run the same command again to grade the rest")
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
    return "\n".join(lines)

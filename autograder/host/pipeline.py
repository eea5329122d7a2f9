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
   one too large) is recorded as not graded: 0 points, flagged. Nothing is read through a
   link: a student folder or a notebook that is a link, a FIFO, a device or a socket is
   rejected and named, never opened (:func:`_collect`, :func:`open_regular`);
3. ``N`` grading processes autograde one student at a time, each against a private copy of
   the template gradebook (nbgrader's autograde is serial and SQLite takes one writer at a
   time), and generate that student's feedback;
4. this process merges each finished student into the course's gradebook with nbgrader's
   ``Gradebook`` API, one at a time, replacing any earlier submission but keeping what the
   instructor graded by hand (:mod:`autograder.host.hand_grades`), and records the student in
   ``OUT/state.json``;
5. ``grades.csv``, ``feedback/<student>/<notebook>.html`` and ``report.html`` are written.

Everything a run writes under OUT holds student data: folders 0700, files 0600 (:func:`make_private`).

A rerun skips students already merged whose files (and the assignment's source) have not
changed, so an interrupted run resumes where it stopped; ``--force`` regrades everyone.
"""

from __future__ import annotations

import csv
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import stat
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from autograder import sandbox
from autograder.host import hand_grades
from autograder.host.engines import Engine, make_engine
from autograder.host.hand_grades import Answers
from autograder.host.pool import Failure
from autograder.host.sanitize import printable
from autograder.host.similarity import SimilarPair, find_similar, read_answers
from autograder.host.submission import COURSE_ID, FIRST_UID, StudentResult
from autograder.integration.metadata import nbgrader_meta

__all__ = ["ROOT", "Row", "Settings", "Summary", "UsageError", "build_release", "describe", "grade", "list_assignments"]

ROOT = Path(__file__).resolve().parents[2]
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
    #: Grade on the Dask cluster of this scheduler (tcp://HOST:PORT), or on one started for the
    #: run ("slurm"), instead of on this machine (:mod:`autograder.host.cluster`).
    scheduler: str | None = None
    cluster: str | None = None
    #: The class list (a CSV file, or Path("gradebook") for the gradebook's students table):
    #: every student on it gets a row. None: the students of the download only.
    roster: Path | None = None


@dataclass
class Row:
    """One line of ``grades.csv``."""

    student: str
    score: float
    max_score: float
    cells: dict[str, float]
    flags: list[str]
    #: Points of manually graded answer cells (derivations, questions) not yet graded by hand,
    #: or changed since they were.
    to_grade_by_hand: float = 0.0
    #: The cells (``notebook/cell``) graded by hand whose answer changed since: left to grade again.
    regrade_by_hand: list[str] = field(default_factory=list)


def list_assignments() -> list[str]:
    return sorted(p.name for p in SOURCE.iterdir() if p.is_dir() and re.match(r"^\d\d_", p.name))


# ----------------------------------------------------------------------------------------
# Input
# ----------------------------------------------------------------------------------------


@dataclass
class _Submission:
    student: str
    notebooks: dict[str, Path]  # expected notebook name -> the student's file (a regular file)
    flags: list[str]
    digest: str


class NotAFile(Exception):
    """A submitted path that is not a regular file reached without links: never opened."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


BAD_ID = "a student id may use only letters, digits and _.@+-"
#: A student folder's walk stops after this many entries (a folder of millions of files is no submission).
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Entry:
    """One entry of a student folder, as ``lstat`` saw it: links are never followed."""

    relative: str  # inside the student folder, "/"-separated
    kind: str  # "file", or what it is instead: "a symbolic link", "a FIFO", ...
    size: int
    nlink: int

    @property
    def regular(self) -> bool:
        return self.kind == "file"


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _walk(folder: Path) -> tuple[list[_Entry], bool]:
    """Every file-like entry under ``folder`` (``.ipynb_checkpoints`` left out), without following
    a link or opening anything but directories; and whether the walk stopped at MAX_ENTRIES."""
    entries: list[_Entry] = []
    for top, dirs, files, top_fd in os.fwalk(folder, follow_symlinks=False):
        base = os.path.relpath(top, folder)
        real_dirs = []
        for name in sorted(dirs + files):
            try:
                st = os.stat(name, dir_fd=top_fd, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if name != ".ipynb_checkpoints":
                    real_dirs.append(name)
                continue
            relative = name if base == "." else f"{base}/{name}"
            entries.append(_Entry(relative, _kind(st.st_mode), st.st_size, st.st_nlink))
            if len(entries) >= MAX_ENTRIES:
                return entries, True
        dirs[:] = real_dirs  # fwalk then opens only these (never a link to a folder)
    return entries, False


def open_regular(path: Path, below: Path) -> int:
    """A read-only descriptor of ``path``, a regular file under the folder ``below``, opened
    without following a link anywhere under ``below`` and without blocking on a FIFO.
    Raises :class:`NotAFile` (saying what it is) for anything else."""
    parts = path.relative_to(below).parts
    fd = os.open(below, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError:
                raise NotAFile("under a folder that is a link or gone") from None
            os.close(fd)
            fd = nxt
        try:
            st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        except OSError:
            raise NotAFile("gone") from None
        if not stat.S_ISREG(st.st_mode):
            raise NotAFile(_kind(st.st_mode))
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
        try:
            file_fd = os.open(parts[-1], flags, dir_fd=fd)
        except OSError:
            raise NotAFile("not readable") from None
        if not stat.S_ISREG(os.fstat(file_fd).st_mode):  # replaced between the stat and the open
            os.close(file_fd)
            raise NotAFile("not a regular file")
        return file_fd
    finally:
        os.close(fd)


def _read_regular(path: Path, below: Path, limit: int) -> bytes:
    """The first ``limit`` bytes of a regular file (see :func:`open_regular`)."""
    with os.fdopen(open_regular(path, below), "rb") as f:
        return f.read(limit)


def _file_digest(paths: list[Path], base: Path, extra: bytes) -> str:
    """Digest of the instructor's files ``paths`` (under ``base``) and ``extra``."""
    h = hashlib.sha256(extra)
    for path in sorted(paths):
        h.update(str(path.relative_to(base)).encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(functools.partial(f.read, 1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _submission_digest(folder: Path, entries: list[_Entry], extra: bytes) -> str:
    """Changes when any entry of the student folder does: the name and kind of every entry, the
    contents of regular files (size and modification time of those too large to grade). Nothing
    that is not a regular file is opened."""
    h = hashlib.sha256(extra)
    for e in entries:
        h.update(f"{e.relative}\0{e.kind}\0{e.size}\0".encode())
        if not e.regular:
            continue
        try:
            if e.size > MAX_NOTEBOOK_BYTES:
                h.update(str(os.stat(folder / e.relative, follow_symlinks=False).st_mtime_ns).encode())
            else:
                h.update(hashlib.sha256(_read_regular(folder / e.relative, folder, MAX_NOTEBOOK_BYTES + 1)).digest())
        except (NotAFile, OSError) as exc:
            h.update(f"unreadable {exc}".encode())
    return h.hexdigest()


def _list(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(printable(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _collect(settings: Settings, expected: list[str], source_digest: bytes) -> _Collected:
    """One :class:`_Submission` per student of DIR, with notebooks matched by name.

    DIR is a folder of ``<student_id>/`` folders or an LMS's download (Moodle, Canvas,
    Blackboard; :mod:`autograder.host.lms` reads the names). A student whose files hold no notebook
    to grade is a submission too (its ``notebooks`` are empty: it scores 0 and is flagged); only
    empty folders are passed over. With a roster, every student on it is a submission (0 points,
    "no submission", when nothing came in) and the download's students it names by LMS number
    or full name are graded under the roster's id. Entries attributed to no student are listed
    in :attr:`_Collected.unattributed`. A DIR in which nothing is a notebook at all is a usage
    error (most likely the wrong folder).

    Nothing is read through a link: a student folder that is a symbolic link is a row of 0
    points, flagged; a notebook that is a link, a FIFO, a device or a socket is rejected (0
    points for it), named in the flags and never opened. Other entries of those kinds are
    named too. A hard link is a regular file: it is graded as the file it is."""
    from autograder.host import lms
    from autograder.host.roster import match

    root = settings.submissions
    if not root.is_dir():
        raise UsageError(f"submissions folder not found: {root}")
    base, download = lms.read_download(root)
    roster = _read_roster(settings)
    found: list[_Submission] = []
    kept: list[lms.LmsStudent] = []
    any_notebook = False
    for s in download.students.values():
        on_roster = match(roster, s.lms_number, s.lms_name, s.lms) if s.lms != "folder" else None
        student = on_roster.student_id if on_roster else s.student_id
        if s.lms == "folder" and s.link:
            sub = _linked_folder(student, source_digest, base / s.student_id)
        elif s.lms == "folder":
            sub, has_notebook = _from_folder(student, base / s.student_id, expected, source_digest)
            any_notebook = any_notebook or has_notebook
        else:
            sub, has_notebook = _from_lms(student, s, root, expected, source_digest)
            any_notebook = any_notebook or has_notebook
        if sub is None:
            continue
        if any(f.student == student for f in found):
            download.unattributed.extend(_relative(f.path, root) for f in s.files)
            continue
        found.append(sub)
        if s.lms != "folder":
            kept.append(replace(s, student_id=student))
    if not any_notebook:
        raise UsageError(
            f"no notebooks found in {root}: expected {root}/<student_id>/<notebook>.ipynb, "
            "or a Moodle, Canvas or Blackboard download (the zip or its folder)"
        )
    present = {s.student for s in found}
    for r in roster:
        if r.student_id not in present:
            digest = hashlib.sha256(source_digest + b"no submission").hexdigest()
            found.append(_Submission(r.student_id, {}, [NO_SUBMISSION], digest))
    on_roster = {r.student_id for r in roster}
    if roster:
        for sub in found:
            if sub.student not in on_roster:
                sub.flags.append("not on the roster")
    found.sort(key=lambda s: s.student)
    prefix = "" if base == root else _relative(base, root) + "/"
    return _Collected(found, kept, [prefix + u for u in download.unattributed])


NO_SUBMISSION = "no submission"


@dataclass
class _Collected:
    """What :func:`_collect` found: the submissions, the LMS's students, the unattributed entries."""

    submissions: list[_Submission]
    lms_students: list[Any]  # lms.LmsStudent, under the id they are graded as
    unattributed: list[str]


def _relative(path: Path, root: Path) -> str:
    return printable(str(path.relative_to(root)))


def _read_roster(settings: Settings) -> list[Any]:
    from autograder.host.roster import RosterError, from_gradebook, read_roster

    if settings.roster is None:
        return []
    if str(settings.roster) == "gradebook":
        return from_gradebook(settings.db_url or _default_db_url(settings.out), COURSE_ID)
    try:
        return read_roster(settings.roster)
    except RosterError as exc:
        raise UsageError(str(exc)) from None


def _linked_folder(student: str, source_digest: bytes, folder: Path) -> _Submission | None:
    try:
        to_folder = stat.S_ISDIR(os.stat(folder).st_mode)  # where it points: never opened
    except OSError:
        to_folder = False
    if not to_folder:
        return None
    flag = "rejected the student folder: a symbolic link, not a folder (0 points)"
    digest = hashlib.sha256(source_digest + b"folder is a link").hexdigest()
    return _Submission(student, {}, [flag], digest)


def _from_folder(
    student: str, folder: Path, expected: list[str], source_digest: bytes
) -> tuple[_Submission | None, bool]:
    """The submission of a plain ``<student_id>/`` folder, and whether it holds a notebook."""
    entries, truncated = _walk(folder)
    if not entries:
        return None, False
    top = [e for e in entries if "/" not in e.relative and e.relative.endswith(".ipynb")]
    flags: list[str] = []
    matched = _match(top, {Path(e.relative).stem: e for e in top if e.regular}, expected, flags)
    special = [f"{e.relative} ({e.kind})" for e in entries if not e.regular and e not in top]
    if special:
        flags.append(f"not read (links and special files): {_list(special)}")
    ignored = [e.relative for e in entries if e.regular and e not in matched.values()]
    if ignored:
        flags.append(f"ignored files{' beside the notebook' if matched else ''}: {_list(ignored)}")
    if truncated:
        flags.append(f"more than {MAX_ENTRIES} files: the rest were not looked at")
    sub = _Submission(
        student,
        {n: folder / e.relative for n, e in matched.items()},
        flags,
        _submission_digest(folder, entries, source_digest),
    )
    return sub, bool(top)


def _match(top: list[_Entry], by_name: dict[str, _Entry], expected: list[str], flags: list[str]) -> dict[str, _Entry]:
    """The student's notebook for each expected one (``by_name``: regular notebooks by stem);
    ``top`` are all notebook entries, links and special files included. Appends the flags."""
    rejected = [e for e in top if not e.regular]
    matched = {name: by_name[name] for name in expected if name in by_name}
    unmatched = [e for e in by_name.values() if e not in matched.values()]
    missing = [n for n in expected if n not in matched]
    if len(missing) == 1 and len(unmatched) == 1:
        matched[missing[0]] = unmatched.pop()
        flags.append(f"notebook renamed: graded {printable(matched[missing[0]].relative)} as {missing[0]}.ipynb")
        missing = []
    for e in rejected:
        lost = " (0 points for it)" if Path(e.relative).stem in missing else ""
        flags.append(f"rejected {printable(e.relative)}: {e.kind}, not a file{lost}")
    rejected_names = {Path(e.relative).stem for e in rejected}
    if [m for m in missing if m not in rejected_names]:
        names = ", ".join(m + ".ipynb" for m in missing if m not in rejected_names)
        flags.append(f"no notebook named {names} (0 points for it)")
    for name, e in list(matched.items()):
        if e.size > MAX_NOTEBOOK_BYTES:
            flags.append(
                f"{printable(e.relative)} is larger than {MAX_NOTEBOOK_BYTES >> 20} MB and was not graded "
                "(0 points for it)"
            )
            del matched[name]
        elif e.nlink > 1:
            flags.append(f"{printable(e.relative)} has {e.nlink} hard links (graded as the file it is)")
    return matched


def _from_lms(
    student: str, s: Any, root: Path, expected: list[str], source_digest: bytes
) -> tuple[_Submission | None, bool]:
    """The submission of a student of an LMS's download: the latest of their files for each
    notebook (the earlier ones are named in the flags), and whether they handed in a notebook."""
    from autograder.host.lms import latest

    entries: list[_Entry] = []  # everything, relative to DIR: the digest
    files: list[tuple[Any, _Entry]] = []  # the student's files (not inside uploaded folders)
    inside: list[str] = []  # files in a folder the student uploaded: named, never graded
    for f in s.files:
        try:
            st = os.lstat(f.path)
        except OSError:
            continue
        relative = str(f.path.relative_to(root))
        if stat.S_ISDIR(st.st_mode):
            walked, _ = _walk(f.path)
            entries.extend(_Entry(f"{relative}/{e.relative}", e.kind, e.size, e.nlink) for e in walked)
            inside.extend(f"{f.name}/{e.relative}" for e in walked)
            continue
        e = _Entry(relative, _kind(st.st_mode), st.st_size, st.st_nlink)
        entries.append(e)
        files.append((f, e))
    if s.link and not entries:
        flag = "rejected the student folder: a symbolic link, not a folder (0 points)"
        return _Submission(student, {}, [flag], hashlib.sha256(source_digest + b"folder is a link").hexdigest()), True
    if not entries:
        return None, False
    flags: list[str] = []
    if any(f.late for f, _ in files):
        flags.append(f"late ({s.lms})")
    entry_of = {f.path: e for f, e in files}
    newest = latest([f for f, e in files if e.regular])
    for chosen, earlier in newest.values():
        if earlier:
            flags.append(
                f"handed in {len(earlier) + 1} times: graded the latest, {printable(chosen.name)} "
                f"(not {_list([e.name for e in earlier])})"
            )
    # Under the names the student gave them: the latest notebook of each name, and the notebooks
    # that are links or special files (rejected by name).
    by_name = {stem: _named(entry_of[chosen.path], chosen.name) for stem, (chosen, _) in newest.items()}
    path_of = {id(e): newest[stem][0].path for stem, e in by_name.items()}
    top = [*by_name.values(), *(_named(e, f.name) for f, e in files if not e.regular and f.name.endswith(".ipynb"))]
    matched = _match(top, by_name, expected, flags)
    special = [f"{f.name} ({e.kind})" for f, e in files if not e.regular and not f.name.endswith(".ipynb")]
    if special:
        flags.append(f"not read (links and special files): {_list(special)}")
    graded = {path_of[id(e)] for e in matched.values()}
    superseded = {f.path for _, earlier in newest.values() for f in earlier}
    ignored = [f.name for f, e in files if e.regular and f.path not in graded and f.path not in superseded]
    if ignored or inside:
        flags.append(f"ignored files{' beside the notebook' if matched else ''}: {_list(ignored + inside)}")
    paths = {name: path_of[id(e)] for name, e in matched.items()}
    digest = _submission_digest(root, entries, source_digest + s.lms.encode())
    return _Submission(student, paths, flags, digest), bool(top)


def _named(e: _Entry, name: str) -> _Entry:
    """The entry under the name the student gave the file (for matching and for flags)."""
    return _Entry(name, e.kind, e.size, e.nlink)


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


def _graded_cells(assignment: str) -> list[dict]:
    """The nbgrader metadata of every graded cell of the assignment's source notebooks, in order
    (each has a ``grade_id``: nbgrader refuses a graded cell without one)."""
    import nbformat

    metas = []
    for path in sorted((SOURCE / assignment).glob("*.ipynb")):
        for cell in nbformat.read(str(path), as_version=4).cells:
            meta = nbgrader_meta(cell)
            if meta.get("grade"):
                metas.append(meta)
    return metas


def _cell_order(assignment: str) -> dict[str, int]:
    """Position of each graded cell in the assignment's source notebooks."""
    return {meta["grade_id"]: i for i, meta in enumerate(_graded_cells(assignment))}


def manual_cells(assignment: str) -> set[str]:
    """The grade ids of the assignment's manually graded answer cells (nbgrader: a cell that is
    both a solution and graded), which the autograder leaves to the instructor."""
    return {meta["grade_id"] for meta in _graded_cells(assignment) if meta.get("solution")}


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
        write_private(self.path, json.dumps(self.data, indent=1, sort_keys=True))


@contextmanager
def _lock(out: Path) -> Iterator[None]:
    with open(out / ".lock", "w", opener=private_opener) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another grading run is using {out}") from None
        yield


# ----------------------------------------------------------------------------------------
# Merging into the course's gradebook (one writer: this process)
# ----------------------------------------------------------------------------------------


def _merge(
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
    import warnings

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


def _read_rows(db_url: str, assignment: str, students: list[str], state: _State) -> tuple[dict[str, float], list[Row]]:
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
            grades = [(nb.name, g, *hand_grades.standing(g)) for nb in sub.notebooks for g in nb.grades]
            scores = {g.name: points for _, g, points, _ in grades}
            pending = sum(float(g.max_score) for _, g, _, waits in grades if waits)
            # Graded by hand, changed since: not counted until graded again (hand_grades.standing).
            again = [f"{nb}/{g.name}" for nb, g, _, _ in grades if hand_grades.stale(g)]
            score = sum(points for _, _, points, _ in grades)
            if again:
                flags = [*flags, f"graded by hand, changed since: {_list(again)} (left to grade again)"]
            rows.append(Row(student, score, float(sub.max_score), scores, flags, pending, again))
    return cells, rows


# ----------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------


def _num(x: float) -> str:
    return f"{x:g}"


def _write_csv(path: Path, assignment: str, cell_ids: list[str], rows: list[Row]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", opener=private_opener) as f:
        w = csv.writer(f)
        w.writerow(["student_id", "assignment", "score", "max_score", "to_grade_by_hand", *cell_ids, "flags"])
        for r in rows:
            cells = [_num(r.cells.get(c, 0.0)) for c in cell_ids]
            flags = "; ".join(printable(f, MAX_FLAG) for f in r.flags)
            w.writerow(
                [r.student, assignment, _num(r.score), _num(r.max_score), _num(r.to_grade_by_hand), *cells, flags]
            )
    os.replace(tmp, path)


def format_table(rows: list[Row]) -> str:
    """The grade table printed at the end of a run."""
    width = max([len("student"), *(len(r.student) for r in rows)])
    lines = [f"{'student':<{width}}  {'score':>11}  flags"]
    for r in rows:
        score = f"{_num(r.score)} / {_num(r.max_score)}"
        lines.append(f"{r.student:<{width}}  {score:>11}  {printable('; '.join(r.flags), 103)}")
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
# Permissions: everything a run writes holds student data and is the instructor's only
# ----------------------------------------------------------------------------------------

#: What a run writes in OUT. Nothing else in OUT is touched (OUT may hold the instructor's own files).
OUTPUTS = ("course", "work", "feedback", "grades.csv", "report.html", "state.json", ".lock", "lms_students.csv")
#: A flag is cut to this many characters in grades.csv and the report.
MAX_FLAG = 300


@contextmanager
def private_umask() -> Iterator[None]:
    """Files and folders made meanwhile (by nbgrader, SQLite, ...) are private to this user.

    Only around this process's own writes: a grading process started meanwhile would pass the
    umask on to the files it writes for the sandboxed (unprivileged) run."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def private_opener(path: str, flags: int) -> int:
    """An ``open(..., opener=)`` that makes the file 0600 (also one that existed)."""
    fd = os.open(path, flags | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def write_private(path: Path, data: str | bytes) -> None:
    """Write ``path`` (0600) by way of a temporary file, so that a reader never sees half of it."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb" if isinstance(data, bytes) else "w", opener=private_opener) as f:
        f.write(data)
    os.replace(tmp, path)


def make_private(out: Path, names: tuple[str, ...] = OUTPUTS) -> None:
    """Folders 0700 and files 0600, for what a run writes in ``out`` (``names``, recursively,
    plus the default SQLite gradebook and its journals). Links are neither followed nor changed."""
    targets = [out / n for n in names] + sorted(out.glob("gradebook.db*"))
    for target in targets:
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode):
            continue
        os.chmod(target, 0o700 if stat.S_ISDIR(st.st_mode) else 0o600)
        if not stat.S_ISDIR(st.st_mode):
            continue
        for _, dirs, files, fd in os.fwalk(target, follow_symlinks=False):
            for name in dirs + files:
                try:
                    mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
                    if not stat.S_ISLNK(mode):
                        os.chmod(name, 0o700 if stat.S_ISDIR(mode) else 0o600, dir_fd=fd)
                except OSError:
                    continue


def _make_out_private(out: Path) -> None:
    """OUT itself 0700, unless it is a shared folder (sticky, like /tmp) or someone else's."""
    st = os.stat(out)
    if st.st_uid == os.geteuid() and not st.st_mode & stat.S_ISVTX:
        os.chmod(out, 0o700)


def _make_student_private(settings: Settings, student: str) -> None:
    """What grading ``student`` wrote (in their grading process), private as soon as it is merged."""
    ours = tuple(f"course/{d}/{student}" for d in ("submitted", "autograded", "feedback"))
    make_private(settings.out, (*ours, f"feedback/{student}", f"work/{student}.log"))


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
    #: Entries of the download that could be attributed to no student (relative to it).
    unattributed: list[str] = field(default_factory=list)


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
    if out == settings.submissions or out.is_relative_to(settings.submissions):
        raise UsageError("--out must not be inside the submissions folder")
    with _opened(settings) as settings:
        collected = _collect(settings, expected, _source_digest(assignment, settings))
        out.mkdir(parents=True, exist_ok=True)
        _make_out_private(out)
        with _lock(out):
            try:
                summary = _grade_locked(settings, collected.submissions, expected)
                _record_lms(settings, collected)
                return replace(summary, unattributed=collected.unattributed)
            finally:
                make_private(out)


@contextmanager
def _opened(settings: Settings) -> Iterator[Settings]:
    """The settings with DIR a folder: a zip (an LMS's download as it comes) is extracted safely
    (:func:`autograder.host.lms.extract_zip`) into a private temporary folder, removed afterwards."""
    import tempfile

    from autograder.host.lms import UnsafeArchive, extract_zip

    if not settings.submissions.is_file():
        yield settings
        return
    dest = Path(tempfile.mkdtemp(prefix="backprop-download-"))  # 0700
    try:
        try:
            extract_zip(settings.submissions, dest)
        except UnsafeArchive as exc:
            raise UsageError(f"{settings.submissions.name}: {exc}") from None
        yield replace(settings, submissions=dest)
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def _record_lms(settings: Settings, collected: _Collected) -> None:
    """Keep the LMS's name and number of each student: ``OUT/lms_students.csv`` and the
    gradebook's students table (``lms_user_id``, first and last name), for export."""
    from nbgrader.api import Gradebook

    from autograder.host.lms import write_students

    if not collected.lms_students:
        return
    write_students(settings.out / "lms_students.csv", collected.lms_students, private_opener)
    with private_umask(), Gradebook(settings.db_url or _default_db_url(settings.out), COURSE_ID) as gb:
        for s in collected.lms_students:
            first, _, last = s.lms_name.partition(" ") if s.lms == "moodle" else ("", "", "")
            fields: dict[str, str] = {"lms_user_id": s.lms_number}
            if first:
                fields.update(first_name=first, last_name=last)
            gb.update_or_create_student(s.student_id, **fields)


def _grade_locked(settings: Settings, submissions: list[_Submission], expected: list[str]) -> Summary:
    assignment, out = settings.assignment, settings.out
    db_url = settings.db_url or _default_db_url(out)
    on_this_machine = settings.scheduler is None and settings.cluster is None  # else each worker is checked
    if on_this_machine and not sandbox.bubblewrap_available() and settings.hardened:
        if settings.require_sandbox:
            raise UsageError(
                "bubblewrap is not available here and --require-sandbox was given "
                "(install the Debian package 'bubblewrap')"
            )
        _say(
            settings,
            "WARNING: bubblewrap is not available: student code runs WITHOUT the sandbox "
            "(install the Debian package 'bubblewrap'); every student is flagged",
        )
    _say(settings, f"generating {assignment} (nbgrader generate_assignment)")
    with private_umask():  # nbgrader's own files: the release, the gradebook, the course's config
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


def _prepare_course(settings: Settings, db_url: str) -> tuple[Path, Path]:
    """The course under OUT: its configuration, the release, the assignment in the course's
    gradebook, and a template gradebook for the graders to copy (kept while the source is
    unchanged). Returns (configuration file, template gradebook)."""
    assignment, out = settings.assignment, settings.out
    course, work = out / "course", out / "work"
    for d in (course, work, out / "feedback", course / "exchange"):
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
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
    with private_umask():
        staged.mkdir(parents=True)
    for name, path in list(s.notebooks.items()):
        try:
            data = _read_regular(path, settings.submissions, MAX_NOTEBOOK_BYTES + 1)
        except (NotAFile, OSError) as exc:  # changed since it was collected: still never followed
            what = exc.what if isinstance(exc, NotAFile) else "not readable"
            s.flags.append(f"rejected {printable(path.name)}: {what} (0 points for it)")
            continue
        if len(data) > MAX_NOTEBOOK_BYTES:
            s.flags.append(
                f"{printable(path.name)} grew beyond {MAX_NOTEBOOK_BYTES >> 20} MB and was not graded (0 points for it)"
            )
            continue
        write_private(staged / f"{name}.ipynb", data)
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
        "student": s.student,
        "assignment": assignment,
        "course_root": str(course),
        "config_file": str(config_file),
        "template_db": str(template),
        "work_dir": str(out / "work"),
        "feedback_dir": str(out / "feedback"),
        "source_dir": str(SOURCE / assignment),
        "hidden_paths": [str(p) for p in hidden],
        "notebooks": sorted(s.notebooks),
        "hardened": settings.hardened,
        "overrides": overrides,
        "first_uid": settings.first_uid,
        "flags": list(s.flags),  # for the student's feedback
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
    tasks: list[dict[str, Any]],
    nothing: list[_Submission],
    by_student: dict[str, _Submission],
    state: _State,
    db_url: str,
) -> float:
    unsandboxed = ["sandbox unavailable"] if settings.hardened and not engine.sandboxed else []
    manual = manual_cells(settings.assignment)
    work = settings.out / "work"
    total = len(tasks) + len(nothing)
    started, finished = time.monotonic(), 0  # started: reset when the graders start

    def record(s: _Submission, result: StudentResult) -> None:
        nonlocal finished
        flags = list(dict.fromkeys(s.flags + result.flags + (unsandboxed if s.notebooks else [])))
        staged = settings.out / "course" / "submitted" / s.student / settings.assignment
        answers = hand_grades.notebook_answers(staged, sorted(s.notebooks))
        earlier = state.students.get(s.student, {})
        before = answers if earlier.get("digest") == s.digest else earlier.get("answers")
        with private_umask():
            restored = _merge(db_url, settings.assignment, result, flags, manual, answers, before)
        if restored.dropped:  # graded by hand in cells the assignment no longer has
            flags.append(f"graded by hand in cells no longer in the assignment: {_list(restored.dropped)}")
        if not result.graded:
            write_private(work / f"{s.student}.log", result.log)
        state.students[s.student] = {
            "digest": s.digest,
            "flags": flags,
            "seconds": round(result.seconds, 1),
            "answers": answers,
        }
        state.save()
        _make_student_private(settings, s.student)
        finished += 1
        # The submissions without a notebook are recorded first, in no time: the ETA is the graders'.
        graded_so_far = finished - len(nothing)
        eta = (time.monotonic() - started) / graded_so_far * (total - finished) if graded_so_far > 0 else 0.0
        points = sum(v for nb in result.grades.values() for v in nb.values() if v is not None)
        note = f"  [{printable('; '.join(flags), 80)}]" if flags else ""  # flags can quote student text
        _say(
            settings,
            f"[{finished:>{len(str(total))}}/{total}] {s.student}: {_num(points)} points "
            f"({result.seconds:.1f} s; ETA {_duration(eta)}){note}",
        )

    results = engine.grade(tasks)  # starts nothing before it is iterated
    try:
        for s in nothing:
            _clear_outputs(settings, s.student)
            reason = f"not graded: no notebook of {settings.assignment} to grade"
            record(s, StudentResult(s.student, graded=False, flags=[reason], log="\n".join([reason, *s.flags])))
        if tasks:
            _say(settings, f"grading {len(tasks)} student(s) with {where}")
        started = time.monotonic()
        for task, result in results:
            s = by_student[task["student"]]
            if isinstance(result, Failure):
                first = result.reason.splitlines()[0]
                result = StudentResult(s.student, graded=False, flags=[f"not graded: {first}"], log=result.reason)
            record(s, result)
    except KeyboardInterrupt:
        results.close()
        _say(
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

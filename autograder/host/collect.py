"""From the submissions folder to one :class:`Submission` per student, notebooks matched by name.

DIR is a folder of ``<student_id>/`` folders or an LMS's download (Moodle, Canvas, Blackboard:
:mod:`autograder.host.lms` reads the names; a zip is extracted safely first, :func:`opened`).
Each student's files are read with :mod:`autograder.host.student_files` (never through a link),
the expected notebooks are matched by name (one renamed notebook is matched too), and whatever
else the folder holds is named in the submission's flags, typed
(:class:`autograder.host.flags.Flag`) until they are written out as sentences. A roster
(:mod:`autograder.host.roster`) adds its students who handed nothing in and maps the download's
students to its ids.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from autograder.host import lms, student_files
from autograder.host.flags import Flag, texts
from autograder.host.outputs import name_list
from autograder.host.roster import RosterError, RosterStudent, from_gradebook, match, read_roster
from autograder.host.sanitize import printable
from autograder.host.settings import Settings, UsageError
from autograder.host.student_files import Entry, kind_of, submission_digest, walk
from autograder.host.submission import COURSE_ID

__all__ = ["NO_SUBMISSION", "Collected", "Submission", "collect", "from_folder", "from_lms", "opened"]

NO_SUBMISSION = "no submission"
_LINKED_FOLDER = "rejected the student folder: a symbolic link, not a folder (0 points)"


@dataclass
class Submission:
    """One student's notebooks to grade and what collecting them noticed."""

    student: str
    #: Expected notebook name -> the student's file (a regular file, reached without a link).
    notebooks: dict[str, Path]
    #: What collecting (and then staging) the submission noticed, typed.
    noticed: list[Flag]
    #: Changes when anything in the student's files (or the assignment's source) does.
    digest: str

    @property
    def flags(self) -> list[str]:
        """The sentences of :attr:`noticed`, each once: what grades.csv and the feedback show."""
        return texts(self.noticed)


@dataclass
class Collected:
    """What :func:`collect` found: the submissions, the LMS's students, the unattributed entries."""

    submissions: list[Submission]
    #: The LMS's students, under the id they are graded as.
    lms_students: list[lms.LmsStudent]
    unattributed: list[str]


def _rejected(text: str, subject: str = "") -> Flag:
    return Flag("rejected", text, subject)


def collect(settings: Settings, expected: list[str], source_digest: bytes) -> Collected:
    """One :class:`Submission` per student of DIR, with notebooks matched by name.

    A student whose files hold no notebook to grade is a submission too (its ``notebooks`` are
    empty: it scores 0 and is flagged); only empty folders are passed over. With a roster,
    every student on it is a submission (0 points, "no submission", when nothing came in) and
    the download's students it names by LMS number or full name are graded under the roster's
    id. Entries attributed to no student are listed in :attr:`Collected.unattributed`. A DIR in
    which nothing is a notebook at all is a usage error (most likely the wrong folder).

    Nothing is read through a link: a student folder that is a symbolic link is a row of 0
    points, flagged; a notebook that is a link, a FIFO, a device or a socket is rejected (0
    points for it), named in the flags and never opened. Other entries of those kinds are
    named too. A hard link is a regular file: it is graded as the file it is."""
    root = settings.submissions
    if not root.is_dir():
        raise UsageError(f"submissions folder not found: {root}")
    base, download = lms.read_download(root)
    roster = _read_roster(settings)
    found: list[Submission] = []
    kept: list[lms.LmsStudent] = []
    any_notebook = False
    for s in download.students.values():
        on_roster = match(roster, s.lms_number, s.lms_name, s.lms) if s.lms != "folder" else None
        student = on_roster.student_id if on_roster else s.student_id
        if s.lms == "folder" and s.link:
            sub = _linked_folder(student, source_digest, base / s.student_id)
        elif s.lms == "folder":
            sub, has_notebook = from_folder(student, base / s.student_id, expected, source_digest)
            any_notebook = any_notebook or has_notebook
        else:
            sub, has_notebook = from_lms(student, s, root, expected, source_digest)
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
            found.append(Submission(r.student_id, {}, [Flag("not_graded", NO_SUBMISSION)], digest))
    on_roster = {r.student_id for r in roster}
    if roster:
        for sub in found:
            if sub.student not in on_roster:
                sub.noticed.append(Flag("other", "not on the roster"))
    found.sort(key=lambda s: s.student)
    prefix = "" if base == root else _relative(base, root) + "/"
    return Collected(found, kept, [prefix + u for u in download.unattributed])


def _relative(path: Path, root: Path) -> str:
    return printable(str(path.relative_to(root)))


def _read_roster(settings: Settings) -> list[RosterStudent]:
    if settings.roster is None:
        return []
    if str(settings.roster) == "gradebook":
        return from_gradebook(settings.gradebook_url(), COURSE_ID)
    try:
        return read_roster(settings.roster)
    except RosterError as exc:
        raise UsageError(str(exc)) from None


def _linked_folder(student: str, source_digest: bytes, folder: Path) -> Submission | None:
    try:
        to_folder = stat.S_ISDIR(os.stat(folder).st_mode)  # where it points: never opened
    except OSError:
        to_folder = False
    if not to_folder:
        return None
    digest = hashlib.sha256(source_digest + b"folder is a link").hexdigest()
    return Submission(student, {}, [_rejected(_LINKED_FOLDER)], digest)


def from_folder(
    student: str, folder: Path, expected: list[str], source_digest: bytes
) -> tuple[Submission | None, bool]:
    """The submission of a plain ``<student_id>/`` folder, and whether it holds a notebook."""
    entries, truncated = walk(folder)
    if not entries:
        return None, False
    top = [e for e in entries if "/" not in e.relative and e.relative.endswith(".ipynb")]
    flags: list[Flag] = []
    matched = _match(top, {Path(e.relative).stem: e for e in top if e.regular}, expected, flags)
    special = [f"{e.relative} ({e.kind})" for e in entries if not e.regular and e not in top]
    if special:
        flags.append(_rejected(f"not read (links and special files): {name_list(special)}"))
    ignored = [e.relative for e in entries if e.regular and e not in matched.values()]
    if ignored:
        flags.append(_rejected(f"ignored files{' beside the notebook' if matched else ''}: {name_list(ignored)}"))
    if truncated:
        flags.append(_rejected(f"more than {student_files.MAX_ENTRIES} files: the rest were not looked at"))
    sub = Submission(
        student,
        {n: folder / e.relative for n, e in matched.items()},
        flags,
        submission_digest(folder, entries, source_digest),
    )
    return sub, bool(top)


def _match(top: list[Entry], by_name: dict[str, Entry], expected: list[str], flags: list[Flag]) -> dict[str, Entry]:
    """The student's notebook for each expected one (``by_name``: regular notebooks by stem);
    ``top`` are all notebook entries, links and special files included. Appends the flags."""
    rejected = [e for e in top if not e.regular]
    matched = {name: by_name[name] for name in expected if name in by_name}
    unmatched = [e for e in by_name.values() if e not in matched.values()]
    missing = [n for n in expected if n not in matched]
    if len(missing) == 1 and len(unmatched) == 1:
        matched[missing[0]] = unmatched.pop()
        shown = printable(matched[missing[0]].relative)
        flags.append(_rejected(f"notebook renamed: graded {shown} as {missing[0]}.ipynb", shown))
        missing = []
    for e in rejected:
        lost = " (0 points for it)" if Path(e.relative).stem in missing else ""
        shown = printable(e.relative)
        flags.append(_rejected(f"rejected {shown}: {e.kind}, not a file{lost}", shown))
    rejected_names = {Path(e.relative).stem for e in rejected}
    if [m for m in missing if m not in rejected_names]:
        names = ", ".join(m + ".ipynb" for m in missing if m not in rejected_names)
        flags.append(_rejected(f"no notebook named {names} (0 points for it)"))
    limit = student_files.MAX_NOTEBOOK_BYTES
    for name, e in list(matched.items()):
        shown = printable(e.relative)
        if e.size > limit:
            text = f"{shown} is larger than {limit >> 20} MB and was not graded (0 points for it)"
            flags.append(_rejected(text, shown))
            del matched[name]
        elif e.nlink > 1:
            flags.append(_rejected(f"{shown} has {e.nlink} hard links (graded as the file it is)", shown))
    return matched


def from_lms(
    student: str, s: lms.LmsStudent, root: Path, expected: list[str], source_digest: bytes
) -> tuple[Submission | None, bool]:
    """The submission of a student of an LMS's download: the latest of their files for each
    notebook (the earlier ones are named in the flags), and whether they handed in a notebook."""
    entries: list[Entry] = []  # everything, relative to DIR: the digest
    files: list[tuple[lms.LmsFile, Entry]] = []  # the student's files (not inside uploaded folders)
    inside: list[str] = []  # files in a folder the student uploaded: named, never graded
    for f in s.files:
        try:
            st = os.lstat(f.path)
        except OSError:
            continue
        relative = str(f.path.relative_to(root))
        if stat.S_ISDIR(st.st_mode):
            walked, _ = walk(f.path)
            entries.extend(Entry(f"{relative}/{e.relative}", e.kind, e.size, e.nlink) for e in walked)
            inside.extend(f"{f.name}/{e.relative}" for e in walked)
            continue
        e = Entry(relative, kind_of(st.st_mode), st.st_size, st.st_nlink)
        entries.append(e)
        files.append((f, e))
    if s.link and not entries:
        digest = hashlib.sha256(source_digest + b"folder is a link").hexdigest()
        return Submission(student, {}, [_rejected(_LINKED_FOLDER)], digest), True
    if not entries:
        return None, False
    flags: list[Flag] = []
    if any(f.late for f, _ in files):
        flags.append(Flag("other", f"late ({s.lms})"))
    entry_of = {f.path: e for f, e in files}
    newest = lms.latest([f for f, e in files if e.regular])
    for chosen, earlier in newest.values():
        if earlier:
            text = (
                f"handed in {len(earlier) + 1} times: graded the latest, {printable(chosen.name)} "
                f"(not {name_list([e.name for e in earlier])})"
            )
            flags.append(Flag("other", text, printable(chosen.name)))
    # Under the names the student gave them: the latest notebook of each name, and the notebooks
    # that are links or special files (rejected by name).
    by_name = {stem: _named(entry_of[chosen.path], chosen.name) for stem, (chosen, _) in newest.items()}
    path_of = {id(e): newest[stem][0].path for stem, e in by_name.items()}
    top = [*by_name.values(), *(_named(e, f.name) for f, e in files if not e.regular and f.name.endswith(".ipynb"))]
    matched = _match(top, by_name, expected, flags)
    special = [f"{f.name} ({e.kind})" for f, e in files if not e.regular and not f.name.endswith(".ipynb")]
    if special:
        flags.append(_rejected(f"not read (links and special files): {name_list(special)}"))
    graded = {path_of[id(e)] for e in matched.values()}
    superseded = {f.path for _, earlier in newest.values() for f in earlier}
    ignored = [f.name for f, e in files if e.regular and f.path not in graded and f.path not in superseded]
    if ignored or inside:
        beside = " beside the notebook" if matched else ""
        flags.append(_rejected(f"ignored files{beside}: {name_list(ignored + inside)}"))
    paths = {name: path_of[id(e)] for name, e in matched.items()}
    digest = submission_digest(root, entries, source_digest + s.lms.encode())
    return Submission(student, paths, flags, digest), bool(top)


def _named(e: Entry, name: str) -> Entry:
    """The entry under the name the student gave the file (for matching and for flags)."""
    return Entry(name, e.kind, e.size, e.nlink)


@contextmanager
def opened(settings: Settings) -> Iterator[Settings]:
    """The settings with DIR a folder: a zip (an LMS's download as it comes) is extracted safely
    (:func:`autograder.host.lms.extract_zip`) into a private temporary folder, removed afterwards."""
    if not settings.submissions.is_file():
        yield settings
        return
    dest = Path(tempfile.mkdtemp(prefix="backprop-download-"))  # 0700
    try:
        try:
            lms.extract_zip(settings.submissions, dest)
        except lms.UnsafeArchive as exc:
            raise UsageError(f"{settings.submissions.name}: {exc}") from None
        yield replace(settings, submissions=dest)
    finally:
        shutil.rmtree(dest, ignore_errors=True)

"""Everything a grading run writes holds student data: folders 0700, files 0600.

Grades, feedback, the staged notebooks, the gradebook and the logs are the instructor's only.
This process writes its own files private (:func:`write_private`, :func:`private_opener`, and
:func:`private_umask` around what nbgrader and SQLite write for it), and once a student is
merged, what their grading process wrote is made private too (:func:`make_student_private`).
Nothing else in OUT is touched (OUT may hold the instructor's own files), and no link is
followed or changed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "OUTPUTS",
    "make_out_private",
    "make_private",
    "make_student_private",
    "private_opener",
    "private_umask",
    "write_private",
]

#: What a run writes in OUT. Nothing else in OUT is touched (OUT may hold the instructor's own files).
OUTPUTS = ("course", "work", "feedback", "grades.csv", "report.html", "state.json", ".lock", "lms_students.csv")


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


def make_out_private(out: Path) -> None:
    """OUT itself 0700, unless it is a shared folder (sticky, like /tmp) or someone else's."""
    st = os.stat(out)
    if st.st_uid == os.geteuid() and not st.st_mode & stat.S_ISVTX:
        os.chmod(out, 0o700)


def make_student_private(out: Path, student: str) -> None:
    """What grading ``student`` wrote (in their grading process), private as soon as it is merged."""
    ours = tuple(f"course/{d}/{student}" for d in ("submitted", "autograded", "feedback"))
    make_private(out, (*ours, f"feedback/{student}", f"work/{student}.log"))

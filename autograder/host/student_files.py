"""Reading a student's folder without ever following a link or opening a special file.

A submission is untrusted: a notebook may be a symbolic link to the instructor's files, a FIFO
that blocks whoever opens it, a device, or a folder of millions of files. Here a folder is
walked with ``lstat`` only (:func:`walk`, each entry an :class:`Entry`), a file is opened only
once it is known to be a regular file reached without a link (:func:`open_regular`, else
:class:`NotAFile`), and a submission's digest (:func:`submission_digest`) changes with any
entry while opening none that is not a regular file. A hard link is a regular file: it is read
as the file it is.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MAX_ENTRIES",
    "MAX_NOTEBOOK_BYTES",
    "Entry",
    "NotAFile",
    "kind_of",
    "open_regular",
    "read_regular",
    "submission_digest",
    "walk",
]

#: A notebook larger than this is not graded (it would only be a way to exhaust the grader).
#: Read at call time (``student_files.MAX_NOTEBOOK_BYTES``) where it is checked: tests lower it.
MAX_NOTEBOOK_BYTES = 32 * 2**20
#: A student folder's walk stops after this many entries (a folder of millions of files is no submission).
MAX_ENTRIES = 10_000


class NotAFile(Exception):
    """A submitted path that is not a regular file reached without links: never opened."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


@dataclass(frozen=True)
class Entry:
    """One entry of a student folder, as ``lstat`` saw it: links are never followed."""

    relative: str  # inside the student folder, "/"-separated
    kind: str  # "file", or what it is instead: "a symbolic link", "a FIFO", ...
    size: int
    nlink: int

    @property
    def regular(self) -> bool:
        return self.kind == "file"


def kind_of(mode: int) -> str:
    """What an entry of ``mode`` is, as a flag names it ("file" for a regular file)."""
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


def walk(folder: Path) -> tuple[list[Entry], bool]:
    """Every file-like entry under ``folder`` (``.ipynb_checkpoints`` left out), without following
    a link or opening anything but directories; and whether the walk stopped at MAX_ENTRIES."""
    entries: list[Entry] = []
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
            entries.append(Entry(relative, kind_of(st.st_mode), st.st_size, st.st_nlink))
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
            raise NotAFile(kind_of(st.st_mode))
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


def read_regular(path: Path, below: Path, limit: int) -> bytes:
    """The first ``limit`` bytes of a regular file (see :func:`open_regular`)."""
    with os.fdopen(open_regular(path, below), "rb") as f:
        return f.read(limit)


def submission_digest(folder: Path, entries: list[Entry], extra: bytes) -> str:
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
                h.update(hashlib.sha256(read_regular(folder / e.relative, folder, MAX_NOTEBOOK_BYTES + 1)).digest())
        except (NotAFile, OSError) as exc:
            h.update(f"unreadable {exc}".encode())
    return h.hexdigest()

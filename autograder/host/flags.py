"""What the grader noticed about a submission, as typed records.

A :class:`Flag` is made where its fact is known: the engine's verdicts (delegation, numerical
differentiation), the comparison of a submission with its release (edited test cells and
checksums, :func:`autograder.host.submission.inspect_cells`), the reading of a submission (links,
special files, files beside the notebook). Each has one of the closed set of kinds
:data:`FLAG_KINDS` and a sentence, its ``text``, which is what grades.csv's ``flags`` column,
the report and the student's feedback show.

The engine's flags travel from the grading process to the host inside the run's record
(:meth:`autograder.verdicts.engine.GradingRun.record`, in the autograded notebook's metadata);
:func:`read_flags` reads them back, records of version 1 (flags as plain sentences) included.
:func:`flag_kind` sorts a sentence into its kind by how it begins: for flags that reach the
host as text only (earlier records, a resumed run's state file, grades.csv).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "FLAG_KINDS",
    "KINDS",
    "MAX_TEXT",
    "Flag",
    "FlagKind",
    "flag_kind",
    "read_flags",
    "texts",
]

#: A flag's text is cut to this many characters (as grades.csv and the report cut it).
MAX_TEXT = 300


@dataclass(frozen=True)
class FlagKind:
    """One kind of flag: how the report counts it and the feedback introduces it."""

    key: str
    #: A column heading of the report ("delegation").
    label: str
    #: What it means, for the instructor (the report's legend).
    meaning: str
    #: The beginnings of the flags of this kind, as the grader writes them.
    prefixes: tuple[str, ...]


#: Every kind, in the order the report shows them; a flag no prefix matches is "other".
FLAG_KINDS: tuple[FlagKind, ...] = (
    FlagKind(
        "delegation",
        "delegation",
        "a check was answered by calling the library's own answer",
        ("called the library's answer",),
    ),
    FlagKind(
        "numerical",
        "numerical differentiation",
        "a check was answered by finite differences of the forward, not by backpropagation",
        ("computed numerically",),
    ),
    FlagKind(
        "test_cells",
        "edited or deleted test cells",
        "graded cells deleted, duplicated, renamed, retyped or edited",
        (
            "missing grade cells",
            "duplicated grade cells",
            "unknown grade ids",
            "cell type changed",
            "locked cells edited",
        ),
    ),
    FlagKind("checksum", "edited checksums", "a graded cell's nbgrader checksum was changed", ("checksum edited",)),
    FlagKind(
        "rejected",
        "rejected files",
        "links, special files, files beside the notebook, renamed, unreadable or oversized notebooks",
        (
            "rejected ",
            "not read (links and special files)",
            "ignored files",
            "notebook renamed",
            "no notebook named",
            "more than ",
        ),
    ),
    FlagKind(
        "not_graded",
        "not graded",
        "the submission, or a notebook of it, could not be graded",
        ("not graded", "no submission", "feedback could not be generated"),
    ),
    FlagKind(
        "grader",
        "grader notes",
        "about the grading run, not the student: no sandbox, feedback withheld",
        ("sandbox unavailable", "feedback withheld"),
    ),
    FlagKind("other", "other", "anything else the grader noted (a notebook that timed out, ...)", ()),
)
#: The kinds by key: the closed set a :class:`Flag`'s ``kind`` is one of.
KINDS: dict[str, FlagKind] = {k.key: k for k in FLAG_KINDS}

#: Flags that name one file of the student's: "<file> is larger than ...", "<file> has 2 hard links".
_FILE_FLAG = re.compile(
    r"^\S.* (is larger than \d+ MB|grew beyond \d+ MB|has \d+ hard links|is not a readable notebook)"
)


def flag_kind(text: str) -> FlagKind:
    """The kind of a flag known only by its text (see the module docstring)."""
    for kind in FLAG_KINDS:
        if text.startswith(kind.prefixes):
            return kind
    if _FILE_FLAG.match(text):
        return KINDS["rejected"]
    return KINDS["other"]


@dataclass(frozen=True)
class Flag:
    """One thing the grader noticed: its kind (a key of :data:`KINDS`), what it is about (an
    exercise, a grade id, a file; "" for the whole submission) and the sentence shown."""

    kind: str
    text: str
    subject: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind of flag {self.kind!r}: expected one of {', '.join(KINDS)}")
        if not isinstance(self.text, str) or not self.text:
            raise ValueError(f"a flag of kind {self.kind!r} needs a sentence, got {self.text!r}")

    @classmethod
    def of_text(cls, text: str) -> Flag:
        """A flag known only by its text, of the kind :func:`flag_kind` gives it."""
        return cls(flag_kind(text).key, text)

    def as_dict(self) -> dict[str, str]:
        """The flag as plain JSON data (the run's record)."""
        return {"kind": self.kind, "subject": self.subject, "text": self.text}

    def __str__(self) -> str:
        return self.text


def texts(flags: list[Flag]) -> list[str]:
    """The sentences of ``flags``, each once, in order."""
    return list(dict.fromkeys(f.text for f in flags))


def _one_line(text: str) -> str:
    """The first line of ``text``, cut to :data:`MAX_TEXT` characters: a flag is one sentence."""
    lines = text.splitlines()
    return lines[0][:MAX_TEXT] if lines else ""


def _from_entry(entry: object) -> Flag | None:
    if isinstance(entry, str):  # version 1: a sentence
        text = _one_line(entry)
        return Flag.of_text(text) if text else None
    if not isinstance(entry, dict):
        return None
    kind, text, subject = entry.get("kind"), entry.get("text"), entry.get("subject", "")
    if kind not in KINDS or not isinstance(text, str) or not isinstance(subject, str):
        return None
    text = _one_line(text)
    return Flag(kind, text, subject[:MAX_TEXT]) if text else None


def read_flags(record: object) -> list[Flag]:
    """The flags of one notebook's grading run, from its record (see the module docstring).

    Version 2 lists every flag of the run as ``{"kind", "subject", "text"}``, the run's own
    (no sandbox, how the notebook run ended) included. Version 1 listed the verdicts' flags as
    sentences and left the others to its ``status`` and ``sandboxed`` fields. Anything
    malformed is skipped, never raised: a record is data."""
    if not isinstance(record, dict):
        return []
    entries = record.get("flags")
    flags: list[Flag] = []
    if record.get("version") == 1:
        if record.get("sandboxed") is False:
            flags.append(Flag("grader", "sandbox unavailable"))
        status = record.get("status")
        if isinstance(status, str) and status != "ok" and _one_line(status):
            flags.append(Flag.of_text(_one_line(f"notebook: {status}")))
    for entry in entries if isinstance(entries, list) else []:
        flag = _from_entry(entry)
        if flag is not None and flag not in flags:
            flags.append(flag)
    return flags

"""nbgrader preprocessors that make ``nbgrader autograde`` trustworthy.

:class:`TrustedExecute` replaces nbgrader's ``Execute`` in ``Autograde.autograde_preprocessors``
(see ``autograder/nbgrader_config.py``): the notebook runs in the sandbox and every graded
test cell's outcome is decided by :func:`autograder.verdicts.engine.grade` in the grading process.
The run's structured record (each exercise's outcome and recognised mistakes, the flags as
typed records) is stored in the autograded notebook's metadata under
:data:`autograder.verdicts.engine.RECORD_KEY`, where the host reads it (the flags:
:func:`autograder.host.submission.run_flags_of`; the mistakes: :mod:`autograder.host.mistakes`). What
it logs is for people reading the log; nothing reads flags from it.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from nbconvert.exporters import HTMLExporter
from nbconvert.exporters.exporter import ResourcesDict
from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Float, Integer, List, Unicode

from autograder import sandbox
from autograder.verdicts import engine
from autograder.verdicts.checking import CheckRun
from autograder.verdicts.runs import NotebookRun

__all__ = ["FeedbackCells", "FeedbackExporter", "TrustedExecute", "student_traceback", "graded_cell_title"]


class TrustedExecute(NbGraderPreprocessor):
    """Execute the student's notebook in the sandbox and decide graded cells outside it."""

    timeout = Integer(60, help="Seconds each cell of the student's notebook may run.").tag(config=True)
    cpu_seconds = Integer(20, help="CPU seconds each check case may use.").tag(config=True)
    uid = Integer(
        sandbox.NOBODY, help="The unprivileged uid student code runs as; concurrent graders use different ones."
    ).tag(config=True)
    require_sandbox = Bool(False, help="Refuse to grade when bubblewrap is not usable.").tag(config=True)
    hidden_paths = List(Unicode(), help="Extra paths student code must not see.").tag(config=True)
    side_by_side = Bool(
        True,
        help="Run a notebook's notebook run and checking runs at the same time (quicker on idle cores); "
        "False runs them one after another (better when parallel graders keep every core busy).",
    ).tag(config=True)

    notebook_run_seconds = Float(
        NotebookRun.RUN_SECONDS,
        help="Wall-clock seconds a notebook run may take, and CPU seconds all its processes together, "
        "however many cells it has (each cell also has `timeout`).",
    ).tag(config=True)
    checking_run_seconds = Float(
        CheckRun.RUN_SECONDS,
        help="Wall-clock seconds a checking run may take (at most its CPU seconds in total, too).",
    ).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        env_uid = os.environ.get("BACKPROP_SANDBOX_UID")
        uid = int(env_uid) if env_uid else self.uid
        hidden = list(self.hidden_paths)
        with tempfile.TemporaryDirectory(prefix="backprop-grade-") as workdir:
            os.chmod(workdir, 0o755)
            run = engine.grade(
                nb,
                workdir=workdir,
                cell_timeout=self.timeout,
                cpu_seconds=self.cpu_seconds,
                uid=uid,
                require_sandbox=self.require_sandbox,
                hidden_paths=tuple(hidden),
                side_by_side=self.side_by_side,
                notebook_run_seconds=self.notebook_run_seconds,
                checking_run_seconds=self.checking_run_seconds,
            )
        for note in run.notes:
            self.log.warning(note)
        if run.status != "ok":
            self.log.warning("Student notebook: %s", run.status)
        for flag in run.flag_records:  # for the reader of the log: the host reads the record
            self.log.warning("Grading flag (%s): %s", flag.kind, flag.text)
        failed = [v.grade_id for v in run.verdicts.values() if not v.passed]
        self.log.info("Trusted checks: %d graded cells, %d failed", len(run.verdicts), len(failed))
        # The structured record the host reads (flags, mistakes): set unconditionally, so a
        # record the student put in the submission's metadata never survives grading.
        nb.metadata[engine.RECORD_KEY] = run.record()
        resources.setdefault("nbgrader", {})["trusted"] = {
            "status": run.status,
            "sandboxed": run.sandboxed,
            "failed": failed,
            "flags": run.flags,
        }
        return nb, resources


#: A traceback entry of a frame in a file (numpy's, the course library's), as IPython writes it.
_FILE_FRAME = re.compile(r"^\s*File \S")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def student_traceback(traceback: list[str]) -> list[str]:
    """An IPython traceback with the frames in library files (numpy, the course) left out: the
    student sees the header, their own cells' frames ("Cell In[3], line 5") and the message;
    each run of library frames left out is one line saying so."""
    kept: list[str] = []
    dropped = 0
    for i, entry in enumerate(traceback):
        inner = 0 < i < len(traceback) - 1
        if inner and _FILE_FRAME.match(_ANSI.sub("", entry)):
            dropped += 1
            continue
        if dropped:
            kept.append(f"({dropped} frame{'s' if dropped > 1 else ''} inside the library left out)")
            dropped = 0
        kept.append(entry)
    return kept


def graded_cell_title(source: str) -> str:
    """The name a graded test cell goes by in the feedback: the exercises its ``check()`` calls
    name (their titles), with "hidden checks" when it has any; "" when it names none."""
    from autograder.verdicts.cells import parse_test_cell
    from course.exercises import REGISTRY

    try:
        calls = parse_test_cell(source)
    except (SyntaxError, ValueError):
        return ""
    titles = list(dict.fromkeys(REGISTRY[c.exercise].title for c in calls if c.exercise in REGISTRY))
    if not titles:
        return ""
    hidden = any(c.hidden for c in calls)
    return ", ".join(titles) + (" (hidden checks)" if hidden else "")


#: The course's feedback page (extends nbgrader's feedback template): ``FeedbackExporter.template_file``.
FEEDBACK_TEMPLATE = Path(__file__).resolve().parent / "templates" / "feedback.html.j2"


class FeedbackExporter(HTMLExporter):
    """The exporter of ``nbgrader generate_feedback`` (``GenerateFeedback.exporter_class``): an
    HTMLExporter of its own, so that the course's feedback page (its ``template_file``,
    :data:`FEEDBACK_TEMPLATE`) is used for feedback alone, while the formgrader renders
    submissions with its own template."""


class FeedbackCells(NbGraderPreprocessor):
    """First of ``GenerateFeedback.preprocessors``: name each graded test cell by its exercises
    (``backprop_title`` in the cell's metadata, which the course's feedback template shows
    instead of "Test cell"; the trusted grader's, else read from the source before
    ClearHiddenTests cuts the hidden checks out), and
    leave library frames out of the tracebacks of the student's own cells."""

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            if engine.is_test_cell(cell):
                # the trusted grader named it already (its hidden checks are cut out of the source)
                title = cell.metadata.get("backprop_title") or graded_cell_title(cell.source)
                if title:
                    cell.metadata["backprop_title"] = str(title)
                continue
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error" and isinstance(output.get("traceback"), list):
                    output["traceback"] = student_traceback([str(t) for t in output["traceback"]])
        return nb, resources

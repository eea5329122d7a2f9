"""nbgrader configuration for the course.

The repository root is nbgrader's course root: instructor sources live in ``solutions/``,
the student release in ``notebooks/``; everything grading produces lives under ``autograder/``.
Run nbgrader from this folder (``cd autograder && nbgrader ...``) or pass
``--config autograder/nbgrader_config.py``.
"""

import os
import sys
from pathlib import Path

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - provided by traitlets when it loads this file

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

c.CourseDirectory.course_id = "backprop"
c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = "autograder/submitted"
c.CourseDirectory.autograded_directory = "autograder/autograded"
c.CourseDirectory.feedback_directory = "autograder/feedback"
c.CourseDirectory.solution_directory = "autograder/solution"
# nbgrader's gradebook runs the `alembic` command it installs beside itself: make sure it is
# found even when the virtualenv is not activated (e.g. `.venv/bin/nbgrader ...`).
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

# The gradebook: SQLite by default; any SQLAlchemy URL (e.g. postgresql://...) via BACKPROP_GRADEBOOK_URL.
# A plain postgresql://... means psycopg 3 (the `postgres` extra); a database that cannot be used
# stops the command with one line.
from autograder.host.database import GradebookUnavailable, check_gradebook, gradebook_url  # noqa: E402

c.CourseDirectory.db_url = gradebook_url(os.environ.get("BACKPROP_GRADEBOOK_URL", f"sqlite:///{HERE / 'gradebook.db'}"))
if "BACKPROP_GRADEBOOK_URL" in os.environ:
    try:
        check_gradebook(c.CourseDirectory.db_url)
    except GradebookUnavailable as exc:
        raise SystemExit(f"error: BACKPROP_GRADEBOOK_URL: {exc}") from None

# The student release: stubs that fail loudly and kindly until filled in.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.ClearSolutions.enforce_metadata = True

c.Exchange.root = str(HERE / "exchange")

# The release: nbgrader's list, with hidden test cells left as a comment rather than a bare
# docstring, whose value `nbgrader validate` would read as a partial grade and warn about.
from nbgrader.converters import GenerateAssignment  # noqa: E402

from autograder.integration.hidden_tests import ClearHiddenTestsToComment  # noqa: E402

c.GenerateAssignment.preprocessors = [
    ClearHiddenTestsToComment if p.__name__ == "ClearHiddenTests" else p
    for p in GenerateAssignment.class_traits()["preprocessors"].default()
]

# Hardened autograding: the student's notebook runs in the sandbox and every graded test cell
# is decided by the trusted engine (autograder/verdicts/engine.py) instead of the student's kernel.
# The rest of nbgrader's pipeline is unchanged.
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import (  # noqa: E402
    AssignLatePenalties,
    CheckCellMetadata,
    ClearHiddenTests,
    GetGrades,
    IgnorePattern,
    LimitOutput,
    SaveAutoGrades,
)

from autograder.host.sanitize import SanitizeNotebook  # noqa: E402
from autograder.integration.preprocessors import TrustedExecute  # noqa: E402

c.Autograde.autograde_preprocessors = [
    TrustedExecute,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SanitizeNotebook,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
c.TrustedExecute.timeout = 60
c.TrustedExecute.cpu_seconds = 20
# `nbgrader autograde` grades one notebook at a time: its notebook run and checking run may use
# two cores at once. (`python -m autograder grade` turns this off when its workers fill the cores.)
c.TrustedExecute.side_by_side = True

# A student who deleted a graded cell scores 0 for it (the grader flags the cell as missing).
# nbgrader's add_missing_cells would put the instructor's cell back and run it, hidden tests
# included, so the student would earn the points of a check they removed.
c.OverwriteCells.add_missing_cells = False

# Feedback never shows hidden tests, whoever produced the autograded notebook and whichever way
# the feedback is generated (`nbgrader generate_feedback` too; nbgrader issue 917): the autograded
# notebook holds the instructor's test cells in full, and nbgrader's default list (GetGrades,
# CSSHTMLHeaderPreprocessor) would publish them. ClearHiddenTests cuts the hidden regions out
# after the grades are read and before the HTML is written.
# SanitizeNotebook (autograder/host/sanitize.py) leaves nothing of the student's that could run in a
# browser: it is in both lists, so that the autograded notebook the formgrader renders is clean
# too, and feedback is clean even from an autograded notebook made some other way.
# FeedbackCells (autograder/integration/preprocessors.py) names each test cell by its exercises (before
# ClearHiddenTests) and leaves library frames out of tracebacks; the course's template shows the
# names, and no "In [ ]:" prompts.
from autograder.integration.preprocessors import FEEDBACK_TEMPLATE, FeedbackCells, FeedbackExporter  # noqa: E402

c.GenerateFeedback.preprocessors = [
    FeedbackCells,
    GetGrades,
    ClearHiddenTests,
    SanitizeNotebook,
    CSSHTMLHeaderPreprocessor,
]
# The course's page extends nbgrader's feedback template (its "index.html.j2"): a full path, so
# that nbgrader's own template_name and template directories stay as nbgrader sets them. Set on
# the feedback's own exporter class: on HTMLExporter it would replace the formgrader's template
# too, and opening a submission there failed (500).
c.GenerateFeedback.exporter_class = FeedbackExporter
c.FeedbackExporter.template_file = str(FEEDBACK_TEMPLATE)
c.HTMLExporter.exclude_input_prompt = True
c.HTMLExporter.exclude_output_prompt = True

# `nbgrader zip_collect <assignment>` (from this folder): put the LMS's download, the zip as it
# comes or its files, in autograder/downloaded/<assignment>/archive/; nbgrader extracts it to
# .../extracted/ and copies each student's latest notebook to autograder/submitted/. Moodle,
# Canvas and Blackboard names are read by autograder.host.lms.LmsCollector (the student's id is the
# LMS's: Moodle's participant number, Canvas's user id, Blackboard's username). For other
# names, set c.FileNameCollectorPlugin.named_regexp (LmsCollector falls back to it).
from autograder.host.lms import LmsCollector  # noqa: E402

c.ZipCollectApp.downloaded_directory = "autograder/downloaded"
c.ZipCollectApp.collector_plugin = LmsCollector

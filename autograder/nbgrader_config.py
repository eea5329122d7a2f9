"""nbgrader configuration for the course.

The repository root is nbgrader's course root: instructor sources live in ``solutions/``,
the student release in ``notebooks/``; everything grading produces lives under ``autograder/``.
Run nbgrader from this folder (``cd autograder && nbgrader ...``) or pass
``--config autograder/nbgrader_config.py``.
"""

from pathlib import Path

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file

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
# The gradebook: SQLite by default; any SQLAlchemy URL (e.g. postgresql://...) via BACKPROP_GRADEBOOK_URL.
import os  # noqa: E402

c.CourseDirectory.db_url = os.environ.get("BACKPROP_GRADEBOOK_URL", f"sqlite:///{HERE / 'gradebook.db'}")

# The student release: stubs that fail loudly and kindly until filled in.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.ClearSolutions.enforce_metadata = True

c.Exchange.root = str(HERE / "exchange")

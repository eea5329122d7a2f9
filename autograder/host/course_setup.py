"""The nbgrader course a run grades in, under ``OUT/course/``.

Its source is the repository's ``solutions/``; its ``nbgrader_config.py`` loads the course's own
(:data:`COURSE_CONFIG`), so the stock commands, ``nbgrader formgrader`` included, work there
too. :func:`prepare_course` writes the configuration, generates the release, records the
assignment in the course's gradebook and keeps a template gradebook for the graders to copy,
named by the digest of the assignment's source (:func:`source_digest`): a changed source, or a
change to how it is graded, makes a new one and grades everyone again. The graded cells of the
source (:func:`graded_cells`) give the order of grades.csv's columns and the answers left to
grade by hand.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from autograder.host.database import sqlite_path
from autograder.host.private_files import private_opener
from autograder.host.settings import Settings
from autograder.host.state import STATE_VERSION
from autograder.host.submission import COURSE_ID
from autograder.integration.metadata import nbgrader_meta

__all__ = [
    "COURSE_CONFIG",
    "ROOT",
    "SOURCE",
    "build_release",
    "cell_order",
    "expected_notebooks",
    "graded_cells",
    "list_assignments",
    "manual_cells",
    "prepare_course",
    "source_digest",
]

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "solutions"
COURSE_CONFIG = ROOT / "autograder" / "nbgrader_config.py"


def list_assignments() -> list[str]:
    """The assignments of the course: the folders ``NN_name`` of ``solutions/``."""
    return sorted(p.name for p in SOURCE.iterdir() if p.is_dir() and re.match(r"^\d\d_", p.name))


def course_config(course: Path, db_url: str) -> str:
    """The text of ``OUT/course/nbgrader_config.py``."""
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


def _api(config_file: Path, db_url: str) -> Any:
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader(config_file.name, path=str(config_file.parent)).load_config()
    over = Config()
    over.CourseDirectory.db_url = db_url
    cfg.merge(over)
    return NbGraderAPI(CourseDirectory(config=cfg), config=cfg)


def generate(config_file: Path, db_url: str, assignment: str) -> None:
    """``nbgrader generate_assignment`` into the gradebook ``db_url``; the tail of its log if it fails."""
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


def expected_notebooks(assignment: str) -> list[str]:
    """The notebooks a student hands in for ``assignment``, by name without ``.ipynb``."""
    return sorted(p.stem for p in (SOURCE / assignment).glob("*.ipynb"))


def graded_cells(assignment: str) -> list[dict]:
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


def cell_order(assignment: str) -> dict[str, int]:
    """Position of each graded cell in the assignment's source notebooks."""
    return {meta["grade_id"]: i for i, meta in enumerate(graded_cells(assignment))}


def manual_cells(assignment: str) -> set[str]:
    """The grade ids of the assignment's manually graded answer cells (nbgrader: a cell that is
    both a solution and graded), which the autograder leaves to the instructor."""
    return {meta["grade_id"] for meta in graded_cells(assignment) if meta.get("solution")}


def file_digest(paths: list[Path], base: Path, extra: bytes) -> str:
    """Digest of the instructor's files ``paths`` (under ``base``) and ``extra``."""
    h = hashlib.sha256(extra)
    for path in sorted(paths):
        h.update(str(path.relative_to(base)).encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(functools.partial(f.read, 1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def source_digest(assignment: str, settings: Settings) -> bytes:
    """Changes with the assignment's source notebooks and with how they are graded (the state
    version, hardened or not, the cell and CPU limits): part of every submission's digest."""
    paths = sorted((SOURCE / assignment).glob("*.ipynb"))
    grading = json.dumps([STATE_VERSION, settings.hardened, settings.cell_timeout, settings.cpu_seconds])
    return file_digest(paths, SOURCE, grading.encode()).encode()


def prepare_course(settings: Settings, db_url: str) -> tuple[Path, Path]:
    """The course under OUT: its configuration, the release, the assignment in the course's
    gradebook, and a template gradebook for the graders to copy (kept while the source is
    unchanged). Returns (configuration file, template gradebook)."""
    assignment, out = settings.assignment, settings.out
    course, work = out / "course", out / "work"
    for d in (course, work, out / "feedback", course / "exchange"):
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    config_file = course / "nbgrader_config.py"
    config_file.write_text(course_config(course, db_url))
    template = work / f"template-{assignment}-{source_digest(assignment, settings)[:12].decode()}.db"
    if not template.exists():
        for old in work.glob(f"template-{assignment}-*"):
            old.unlink()
        partial = template.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        generate(config_file, f"sqlite:///{partial}", assignment)
        os.replace(partial, template)
    main = sqlite_path(db_url)
    if main is not None and not main.exists() and (course / "release" / assignment).is_dir():
        # A new SQLite gradebook would be generated exactly as the template was (same course,
        # same source): copy it instead of running generate_assignment a second time (about
        # 5 s of every first run). The release it wrote is the template's too.
        with open(template, "rb") as src, open(main, "xb", opener=private_opener) as dst:
            shutil.copyfileobj(src, dst)
    else:
        generate(config_file, db_url, assignment)
    return config_file, template

"""Grades out: Canvas's gradebook import CSV and Moodle's grading worksheet and gradebook CSV.

The gradebook is built with nbgrader's API (no grading run); the expected headers are the
ones the LMSs document for their imports:

- Canvas (Grades > Import; the file is laid out as Canvas's own gradebook export): ``Student``,
  ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``, then one column per assignment, headed
  ``Name (assignment id)``; a second row ``    Points Possible``; students matched by ``ID``.
- Moodle, assignment > "Upload grading worksheet" (the offline grading worksheet): ``Identifier``
  (``Participant <n>``), ``Full name``, ``Email address``, ``Grade``, ``Maximum Grade``,
  ``Feedback comments``.
- Moodle, Grades > Import > CSV file: any identity column (``Email address``, ``ID number``)
  mapped to the user, and a column per grade item.
"""

from __future__ import annotations

import csv
import subprocess
import warnings
from pathlib import Path

import pytest

from autograder.__main__ import main
from autograder.host.export import CANVAS_COLUMNS, MOODLE_COLUMNS, CanvasExport, gather, write
from autograder.host.lms import LmsStudent, write_students

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def alembic_on_path(monkeypatch):
    """nbgrader's gradebook runs the `alembic` command installed beside this interpreter."""
    import os
    import sys

    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))


def make_gradebook(out: Path) -> str:
    """OUT as `grade` leaves it: a gradebook (jane 7.5/10, ana 10/10, carl on the roster with
    nothing handed in) and lms_students.csv (jane from Canvas, ana from Moodle)."""
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    out.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{out / 'gradebook.db'}"
    with Gradebook(url, "backprop") as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        gb.add_assignment("03_layers")
        gb.add_notebook("layers", "03_layers")
        for cell, points in [("test_linear", 6), ("test_relu", 4)]:
            gb.add_grade_cell(cell, "layers", "03_layers", max_score=points, cell_type="code")
        gb.add_student("jane", first_name="Jane", last_name="Doe", email="jane@example.edu")
        gb.add_student("ana", first_name="Ana María", last_name="López", email="ana@example.edu")
        gb.add_student("carl", first_name="Carl", last_name="Absent", email="carl@example.edu")
        for student, scores in [
            ("jane", {"test_linear": 6, "test_relu": 1.5}),
            ("ana", {"test_linear": 6, "test_relu": 4}),
        ]:
            sub = gb.add_submission("03_layers", student)
            for nb in sub.notebooks:
                for g in nb.grades:
                    g.auto_score = scores[g.name]
        gb.db.commit()
    students = [
        LmsStudent("jane", "canvas", "doejane", "12345"),
        LmsStudent("ana", "moodle", "Ana María López", "1002"),
    ]
    write_students(out / "lms_students.csv", students, None)
    return url


def rows_of(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_canvas_import_csv(tmp_path):
    make_gradebook(tmp_path / "out")
    dest = tmp_path / "canvas.csv"
    assert (
        main(
            [
                "export",
                "--to",
                "canvas",
                "--out",
                str(tmp_path / "out"),
                "--file",
                str(dest),
                "--column",
                "Layers (98765)",
            ]
        )
        == 0
    )
    rows = rows_of(dest)
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Layers (98765)"]
    assert rows[1] == ["    Points Possible", "", "", "", "", "10"]
    body = {r[0]: r for r in rows[2:]}
    assert body["Jane Doe"] == ["Jane Doe", "12345", "", "", "", "7.5"]  # matched by Canvas's user id
    assert body["Ana María López"][1:3] == ["", "ana"]  # no Canvas id known: the SIS user id
    assert body["Ana María López"][5] == "10"
    assert body["Carl Absent"][5] == "0"  # nothing handed in: 0, never left out
    assert len(rows) == 2 + 3


def test_moodle_grading_worksheet_and_gradebook_csv(tmp_path, capsys):
    out = tmp_path / "out"
    make_gradebook(out)
    assert main(["export", "--to", "moodle", "--out", str(out), "--assignment", "03_layers"]) == 1
    assert "left out (no Moodle participant number): carl, jane" in capsys.readouterr().err
    rows = rows_of(out / "moodle_grades.csv")
    assert rows[0] == ["Identifier", "Full name", "Email address", "Grade", "Maximum Grade", "Feedback comments"]
    assert rows[1:] == [["Participant 1002", "Ana María López", "ana@example.edu", "10", "10", ""]]

    assert main(["export", "--to", "moodle-gradebook", "--out", str(out), "--column", "Layers"]) == 0
    rows = rows_of(out / "moodle-gradebook_grades.csv")
    assert rows[0] == ["Email address", "ID number", "Full name", "Layers"]
    assert {r[0]: r[3] for r in rows[1:]} == {
        "ana@example.edu": "10",
        "carl@example.edu": "0",
        "jane@example.edu": "7.5",
    }


def test_export_refuses_what_it_cannot_write(tmp_path, capsys):
    assert main(["export", "--to", "canvas", "--out", str(tmp_path / "nothing")]) == 2
    assert "no gradebook" in capsys.readouterr().err
    make_gradebook(tmp_path / "out")
    assert main(["export", "--to", "canvas", "--out", str(tmp_path / "out"), "--assignment", "99_none"]) == 2
    assert "no assignment '99_none'" in capsys.readouterr().err


def test_two_assignments_are_two_canvas_columns_but_one_moodle_file_each(tmp_path):
    from nbgrader.api import Gradebook

    url = make_gradebook(tmp_path / "out")
    with Gradebook(url, "backprop") as gb:
        gb.add_assignment("04_losses")
        lines = gather(gb, [], tmp_path / "out" / "lms_students.csv")
    write("canvas", tmp_path / "c.csv", lines)
    assert rows_of(tmp_path / "c.csv")[0][5:] == ["03_layers", "04_losses"]
    with pytest.raises(ValueError, match="one assignment"):
        write("moodle", tmp_path / "m.csv", lines)


def test_stock_nbgrader_export_with_the_plugin(tmp_path):
    """`nbgrader export --exporter=autograder.host.export.CanvasExport` gives the same file."""
    out = tmp_path / "out"
    url = make_gradebook(out)
    (out / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.root = {str(out)!r}\nc.CourseDirectory.db_url = {url!r}\n"
        f"c.CourseDirectory.course_id = 'backprop'\nc.CanvasExport.lms_students = {str(out / 'lms_students.csv')!r}\n"
    )
    run = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "nbgrader"),
            "export",
            "--exporter=autograder.host.export.CanvasExport",
            f"--to={tmp_path / 'stock.csv'}",
        ],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert main(["export", "--to", "canvas", "--out", str(out), "--file", str(tmp_path / "ours.csv")]) == 0
    assert rows_of(tmp_path / "stock.csv") == rows_of(tmp_path / "ours.csv")
    assert rows_of(tmp_path / "stock.csv")[0][: len(CANVAS_COLUMNS)] == CANVAS_COLUMNS
    assert issubclass(CanvasExport, __import__("nbgrader.plugins", fromlist=["ExportPlugin"]).ExportPlugin)
    assert MOODLE_COLUMNS[0] == "Identifier"

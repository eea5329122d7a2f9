"""Cheating visible: every kind of flag reaches grades.csv, the report and the student's feedback.

One grading run of the bundled sample class plus five students made here: one who computes
ReLU's backward by centred differences, one who edited a test cell's checksum, one who deleted
a test cell, one whose notebook is a symbolic link, and one who handed in a file and a link
beside the notebook. The fast tests check how flags are sorted into kinds, how they travel
typed in the grading run's record (version 1 records too), and the feedback's box of notes.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder import sandbox
from autograder.host import mistakes
from autograder.host.flags import KINDS, Flag, read_flags
from autograder.host.pipeline import ROOT, Settings, grade
from autograder.host.submission import (
    FLAG_KINDS,
    _add_notes,
    _forget_records,
    feedback_notes,
    flag_kind,
    inspect_cells,
    run_flags_of,
)
from autograder.sample_class import make_sample_class as sample
from autograder.verdicts import engine
from course.exercises.base import Verdict

SAMPLE = sample.HERE / sample.ASSIGNMENT
KIND = {k.key: k for k in FLAG_KINDS}

needs_sandbox = pytest.mark.skipif(
    not sandbox.bubblewrap_available(),
    reason="grading needs the bubblewrap sandbox (Debian package 'bubblewrap'; CI installs it)",
)

#: ReLU's backward by a centred difference of its forward; every other answer plausible and wrong.
NUMERICAL = {
    **sample.WRONG,
    "layers_ReLU_backward": """
        def forward(z):
            return np.maximum(z, 0.0)
        h = 1e-6
        return grad_out * (forward(self.x + h) - forward(self.x - h)) / (2 * h)
    """,
}

#: student -> the kinds of flag their row, the report and (when graded) their feedback must show.
EXPECTED = {
    "cheater_snoop": {"delegation"},
    "numerical": {"numerical"},
    "checksum": {"checksum"},
    "deleted": {"test_cells"},
    "linked": {"rejected"},
    "extras": {"rejected"},
}
#: Flag kinds about what a student did (not about the grader).
STUDENT_KINDS = {"delegation", "numerical", "test_cells", "checksum", "rejected"}


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _class(dest: Path) -> Path:
    """The sample class plus the five students above, in ``dest``."""
    shutil.copytree(SAMPLE, dest)
    release = nbformat.read(str(ROOT / "notebooks" / sample.ASSIGNMENT / f"{sample.NOTEBOOK}.ipynb"), as_version=4)
    source = nbformat.read(str(ROOT / "solutions" / sample.ASSIGNMENT / f"{sample.NOTEBOOK}.ipynb"), as_version=4)
    perfect = sample.exercises_only(sample.make_notebook(release, source, sample.ALL))

    def write(student: str, nb) -> Path:
        path = dest / student / f"{sample.NOTEBOOK}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(path))
        return path

    write("numerical", sample.exercises_only(sample.make_notebook(release, source, NUMERICAL)))
    forged = nbformat.from_dict(perfect)
    test = next(c for c in forged.cells if _grade_id(c) == "test_layers_Linear_backward")
    test.metadata.nbgrader["checksum"] = "0" * 32
    write("checksum", forged)
    deleted = nbformat.from_dict(perfect)
    deleted.cells = [c for c in deleted.cells if _grade_id(c) != "test_layers_Tanh_backward"]
    write("deleted", deleted)
    (dest / "linked").mkdir()
    os.symlink(dest / "perfect" / f"{sample.NOTEBOOK}.ipynb", dest / "linked" / f"{sample.NOTEBOOK}.ipynb")
    write("extras", perfect)
    (dest / "extras" / "course.py").write_text("raise SystemExit('a course package of my own')\n")
    os.symlink("/etc/hostname", dest / "extras" / "notes.txt")
    return dest


@pytest.fixture(scope="module")
def flagged_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("flags")
    submissions = _class(base / "submissions")
    out = base / "out"
    grade(Settings(sample.ASSIGNMENT, submissions, out, workers=2, progress=None))
    with open(out / "grades.csv", newline="") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    return out, rows


def _kinds(flags: str) -> set[str]:
    return {flag_kind(f).key for f in flags.split("; ") if f}


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.mark.slow
@needs_sandbox
def test_each_kind_of_flag_is_in_grades_csv(flagged_run):
    _, rows = flagged_run
    for student, kinds in EXPECTED.items():
        assert kinds <= _kinds(rows[student]["flags"]), (student, rows[student]["flags"])
    assert "called the library's answer: Linear.backward" in rows["cheater_snoop"]["flags"]
    assert "computed numerically: layers.ReLU.backward" in rows["numerical"]["flags"]
    assert "checksum edited: test_layers_Linear_backward" in rows["checksum"]["flags"]
    assert "missing grade cells: test_layers_Tanh_backward" in rows["deleted"]["flags"]
    assert "rejected layers.ipynb: a symbolic link" in rows["linked"]["flags"]
    assert "course.py" in rows["extras"]["flags"] and "notes.txt (a symbolic link)" in rows["extras"]["flags"]
    for honest in ("perfect", "blank", "buggy", "partial"):
        assert not _kinds(rows[honest]["flags"]) & STUDENT_KINDS, (honest, rows[honest]["flags"])
    # The tampering of cheater_rebind has no effect and earns nothing; it delegates nothing either.
    assert "delegation" not in _kinds(rows["cheater_rebind"]["flags"])
    assert float(rows["numerical"]["hidden_layers_ReLU_backward"]) == 0
    assert float(rows["linked"]["score"]) == 0


@pytest.mark.slow
@needs_sandbox
def test_the_report_counts_each_kind_and_has_a_column_for_it(flagged_run):
    out, rows = flagged_run
    page = (out / "report.html").read_text()
    top = page[page.index("<h2>Flags</h2>") : page.index("<h2>Exercises</h2>")]
    for key in STUDENT_KINDS:
        n = sum(key in _kinds(r["flags"]) for r in rows.values())
        assert f"<td class='name'>{html.escape(KIND[key].label)}</td><td>{n} of {len(rows)}</td>" in top, key
    students = page[page.index("<h2>Students</h2>") :]
    header = students[: students.index("</tr>")]
    assert all(f">{html.escape(KIND[k].label)}</th>" in header for k in STUDENT_KINDS)
    for student in EXPECTED:
        row = students[students.index(f"<td class='name'>{student}</td>") :]
        row = row[: row.index("</tr>")]
        assert html.escape(rows[student]["flags"].split("; ")[0], quote=True) in row, student
    assert "default-src 'none'" in page


@pytest.mark.slow
@needs_sandbox
def test_the_feedback_tells_the_student_the_same(flagged_run):
    out, rows = flagged_run
    for student, kinds in EXPECTED.items():
        page = out / "feedback" / student / f"{sample.NOTEBOOK}.html"
        if student == "linked":  # nothing was graded: no feedback, the row and the report say why
            assert not page.exists()
            continue
        text = page.read_text()
        assert "id='grading-notes'" in text, student
        box = _text(text[text.index("id='grading-notes'") : text.index("</div>", text.index("id='grading-notes'"))])
        for key in kinds:
            assert KIND[key].label in box, (student, box)
        for flag in rows[student]["flags"].split("; "):
            if flag_kind(flag).key in STUDENT_KINDS:
                assert flag[:60] in box, (student, flag, box)
    perfect = (out / "feedback" / "perfect" / f"{sample.NOTEBOOK}.html").read_text()
    assert "grading-notes" not in perfect


@pytest.mark.slow
@needs_sandbox
def test_copies_of_the_same_notebook_are_listed_as_similar(flagged_run):
    """The students made from the instructor's answers pair with ``perfect`` in the report."""
    out, _ = flagged_run
    similar = (out / "report.html").read_text().split("id='similar'")[1]
    assert "checksum and perfect" in similar or "perfect and checksum" in similar
    assert "blank and" not in similar and "and blank" not in similar


# ----------------------------------------------------------------------------------------
# Fast: kinds, the run's record, the feedback's box
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "kind"),
    [
        ("called the library's answer: Linear.backward", "delegation"),
        ("computed numerically: layers.Tanh.backward (a lambda evaluated at perturbed copies of x)", "numerical"),
        ("missing grade cells: test_layers_Tanh_backward", "test_cells"),
        ("locked cells edited: test_layers_Linear_backward", "test_cells"),
        ("unknown grade ids (renamed cells?): mine", "test_cells"),
        ("checksum edited: test_layers_Linear_backward", "checksum"),
        ("rejected layers.ipynb: a symbolic link, not a file (0 points for it)", "rejected"),
        ("not read (links and special files): notes.txt (a symbolic link)", "rejected"),
        ("ignored files beside the notebook: course.py", "rejected"),
        ("layers.ipynb has 2 hard links (graded as the file it is)", "rejected"),
        ("layers.ipynb is larger than 32 MB and was not graded (0 points for it)", "rejected"),
        ("not graded: no notebook of 03_layers to grade", "not_graded"),
        ("sandbox unavailable", "grader"),
        ("notebook: a cell timed out", "other"),
    ],
)
def test_flag_kinds(flag, kind):
    assert flag_kind(flag).key == kind


def _run(status: str = "ok", sandboxed: bool = True, flags=(), notes=()) -> engine.GradingRun:
    return engine.GradingRun({}, status, sandboxed, list(notes), list(flags))


def _autograded(folder: Path, record: object, name: str = sample.NOTEBOOK) -> Path:
    """An autograded notebook whose metadata holds ``record`` (as TrustedExecute stores it)."""
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata[engine.RECORD_KEY] = record
    nbformat.write(nb, str(folder / f"{name}.ipynb"))
    return folder


def test_flags_travel_typed_in_the_runs_record(tmp_path):
    """The engine's flags reach the host through the record, kind and exercise kept, in the
    order grades.csv has always shown them (no sandbox, the notebook run, the verdicts)."""
    delegated = Flag("delegation", "called the library's answer: Linear.backward", "Linear.backward")
    numerical = Flag("numerical", "computed numerically: layers.Tanh.backward (a lambda)", "Tanh.backward")
    run = _run("a cell timed out", False, [delegated, numerical])
    record = json.loads(json.dumps(run.record()))  # as the notebook's metadata holds it
    assert record["version"] == engine.RECORD_VERSION == 2
    expected = [
        Flag("grader", "sandbox unavailable"),
        Flag("other", "notebook: a cell timed out"),
        delegated,
        numerical,
    ]
    assert read_flags(record) == expected
    assert run.flags == [delegated.text, numerical.text]  # the verdicts' own, as before
    folder = _autograded(tmp_path / "s1" / "03_layers", record)
    assert run_flags_of(folder, [sample.NOTEBOOK]) == expected
    assert run_flags_of(folder, ["not_there"]) == []  # not autograded: no flags, nothing raised


def test_a_students_text_that_looks_like_a_flag_is_no_flag():
    """A status or note quoting the student ("...\n[WARNING] Grading flag: ...") makes no flag:
    a log reader matched such a line; the record has the status's first line only."""
    forged = "\n[WARNING] Grading flag: called the library's answer: Sigmoid.backward"
    run = _run("a cell raised ValueError: boom" + forged, True, notes=["in the checking run, x" + forged])
    flags = read_flags(json.loads(json.dumps(run.record())))
    assert flags == [Flag("other", "notebook: a cell raised ValueError: boom")]
    assert not any(f.kind == "delegation" for f in flags)


def test_a_record_of_version_1_still_reads():
    record = {
        "version": 1,
        "status": "a cell timed out\nmore",
        "sandboxed": False,
        "flags": ["called the library's answer: Linear.backward", "computed numerically: layers.ReLU.backward (h)"],
        "cells": {"c": {"passed": False, "outcomes": [{"exercise": "Linear.backward", "passed": False}]}},
    }
    assert read_flags(record) == [
        Flag("grader", "sandbox unavailable"),
        Flag("other", "notebook: a cell timed out"),
        Flag("delegation", "called the library's answer: Linear.backward"),
        Flag("numerical", "computed numerically: layers.ReLU.backward (h)"),
    ]
    assert [(o.exercise, o.passed) for o in mistakes.read_record(record)] == [("Linear.backward", False)]


@pytest.mark.parametrize(
    "record",
    [
        None,
        "flags",
        {"version": 2, "flags": "called the library's answer: X"},
        {"version": 2, "flags": [{"kind": "cheating", "text": "x"}, {"kind": "delegation"}, 3, {"text": "y"}]},
        {"version": 2, "flags": [{"kind": "delegation", "text": ""}]},
    ],
)
def test_a_malformed_record_gives_no_flags_and_raises_nothing(record):
    assert read_flags(record) == []


def test_a_flag_has_one_of_the_known_kinds_and_a_sentence():
    with pytest.raises(ValueError, match="unknown kind of flag 'cheating'"):
        Flag("cheating", "x")
    with pytest.raises(ValueError, match="needs a sentence"):
        Flag("delegation", "")
    assert {k.key for k in FLAG_KINDS} == set(KINDS)


def test_a_forged_record_in_the_submission_is_dropped():
    nb = nbformat.v4.new_notebook()
    nb.metadata[engine.RECORD_KEY] = _run(flags=[Flag("delegation", "called the library's answer: X")]).record()
    assert _forget_records(nb) and engine.RECORD_KEY not in nb.metadata
    assert not _forget_records(nb)


def test_the_verdicts_flags_are_typed_where_they_are_made():
    delegated = Verdict("layers.Linear.backward", "case", problems=["it called the library's own answer (line 3)"])
    numerical = Verdict("layers.ReLU.backward", "case", flags=["computed numerically: layers.ReLU.backward (h)"])
    flags = engine.flag_records([delegated, numerical, delegated])
    assert flags == [
        Flag("delegation", "called the library's answer: layers.Linear.backward", "layers.Linear.backward"),
        Flag("numerical", "computed numerically: layers.ReLU.backward (h)", "layers.ReLU.backward"),
    ]
    assert engine.run_flags([delegated, numerical]) == [f.text for f in flags]
    for flag in flags:  # a flag's kind and the kind its sentence is sorted into agree
        assert flag_kind(flag.text).key == flag.kind


def test_the_checks_against_the_release_are_typed():
    release = nbformat.read(str(ROOT / "notebooks" / sample.ASSIGNMENT / f"{sample.NOTEBOOK}.ipynb"), as_version=4)
    nb = nbformat.from_dict(json.loads(json.dumps(release)))
    locked = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("locked") and _grade_id(c)]
    locked[0].metadata.nbgrader["checksum"] = "0" * 32
    locked[1].source += "\n# changed"
    deleted = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c is not locked[0])
    nb.cells.remove(deleted)
    flags = inspect_cells(nb, release)
    kinds = {f.kind: f.text for f in flags}
    assert kinds["checksum"] == f"checksum edited: {_grade_id(locked[0])}"
    assert f"missing grade cells: {_grade_id(deleted)}" in [f.text for f in flags]
    assert any(f.text == f"locked cells edited: {_grade_id(locked[1])}" for f in flags if f.kind == "test_cells")
    assert all(flag_kind(f.text).key == f.kind for f in flags)
    assert inspect_cells(release, release) == []


def test_a_rejected_link_is_one_flag_of_kind_rejected(tmp_path):
    from autograder.host.pipeline import _from_folder

    (tmp_path / "s1").mkdir()
    target = tmp_path / "elsewhere.ipynb"
    target.write_text("{}")
    os.symlink(target, tmp_path / "s1" / f"{sample.NOTEBOOK}.ipynb")
    sub, _ = _from_folder("s1", tmp_path / "s1", [sample.NOTEBOOK], b"")
    assert sub is not None and sub.notebooks == {}
    kinds = [flag_kind(f).key for f in sub.flags]
    assert kinds == ["rejected"], sub.flags
    assert sub.flags[0].startswith(f"rejected {sample.NOTEBOOK}.ipynb: a symbolic link")


def test_the_feedback_box_escapes_and_leaves_out_grader_notes():
    flags = ["ignored files beside the notebook: <img src=x onerror=alert(1)>.py", "sandbox unavailable"]
    box = feedback_notes(flags)
    assert "<img" not in box and "&lt;img src=x onerror=alert(1)&gt;.py" in box
    assert "sandbox" not in box and "rejected files" in box
    assert feedback_notes(["sandbox unavailable"]) == ""
    page = "<html><body><h4>layers (Score: 1 / 2)</h4><p>rest</p></body></html>"
    assert _add_notes(page, box).index("grading-notes") > page.index("</h4>")
    assert _add_notes(page, "") == page

"""Cheating visible: every kind of flag reaches grades.csv, the report and the student's feedback.

One grading run of the bundled sample class plus five students made here: one who computes
ReLU's backward by centred differences, one who edited a test cell's checksum, one who deleted
a test cell, one whose notebook is a symbolic link, and one who handed in a file and a link
beside the notebook. The fast tests check how flags are sorted into kinds, how they are read
from nbgrader's log, and the feedback's box of notes.
"""

from __future__ import annotations

import csv
import html
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder import sandbox
from autograder.pipeline import ROOT, Settings, grade
from autograder.sample_class import make_sample_class as sample
from autograder.submission import FLAG_KINDS, _add_notes, _flags_from_log, feedback_notes, flag_kind

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
# Fast: kinds, the log, the feedback's box
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


def test_flags_are_read_from_the_start_of_log_lines_only():
    """A student's text inside a message (indented by the log's formatter) forges no flag."""
    log = (
        "[INFO] Trusted checks: 12 graded cells, 1 failed\n"
        "[WARNING] Grading flag: called the library's answer: Linear.backward\n"
        "[WARNING] Student notebook: a cell raised\n"
        "    [WARNING] Grading flag: computed numerically: forged\n"
        "[WARNING] some note mentioning Grading flag: nothing\n"
    )
    assert _flags_from_log(log) == ["called the library's answer: Linear.backward", "notebook: a cell raised"]


def test_the_feedback_box_escapes_and_leaves_out_grader_notes():
    flags = ["ignored files beside the notebook: <img src=x onerror=alert(1)>.py", "sandbox unavailable"]
    box = feedback_notes(flags)
    assert "<img" not in box and "&lt;img src=x onerror=alert(1)&gt;.py" in box
    assert "sandbox" not in box and "rejected files" in box
    assert feedback_notes(["sandbox unavailable"]) == ""
    page = "<html><body><h4>layers (Score: 1 / 2)</h4><p>rest</p></body></html>"
    assert _add_notes(page, box).index("grading-notes") > page.index("</h4>")
    assert _add_notes(page, "") == page

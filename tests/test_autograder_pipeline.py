"""``python -m autograder grade``: grades, feedback, report; rerun, resume, parallel.

The whole-run tests grade real notebooks in the sandbox and are marked slow. They share two
runs: the bundled sample class (6 students, 2 workers) and a small class of cut-down notebooks
(perfect, blank, buggy) graded serially after an interruption, then again in parallel.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder import sandbox
from autograder.__main__ import main
from autograder.host import pipeline
from autograder.host.pipeline import Settings, grade
from autograder.host.pool import Failure, run_tasks
from autograder.host.submission import HIDDEN_MARKERS, hidden_test_lines, inspect_notebook, leaks_hidden_tests
from autograder.sample_class import make_sample_class as sample

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = sample.HERE / sample.ASSIGNMENT
EXERCISE_TITLES = [
    "Linear.backward",
    "Sigmoid.backward",
    "Tanh.backward",
    "ReLU.backward",
    "LinearSigmoid.backward",
    "Sequential.backward",
]

needs_sandbox = pytest.mark.skipif(
    not sandbox.bubblewrap_available(),
    reason="grading needs the bubblewrap sandbox (Debian package 'bubblewrap'; CI installs it)",
)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def by_student(path: Path) -> dict[str, dict[str, str]]:
    return {row["student_id"]: row for row in read_csv(path)}


# ----------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["grade", "--assignment", "03_layers", "--submissions", "{missing}", "--out", "{out}"],
            "submissions folder not found",
        ),
        (
            ["grade", "--assignment", "99_nothing", "--submissions", "{empty}", "--out", "{out}"],
            "unknown assignment '99_nothing'",
        ),
        (["grade", "--assignment", "03_layers", "--submissions", "{empty}", "--out", "{out}"], "no notebooks found"),
        (["grade", "--assignment", "03_layers"], "the following arguments are required"),
        (
            ["grade", "--assignment", "03_layers", "--submissions", "{empty}", "--out", "{out}", "--workers", "0"],
            "--workers must be at least 1",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(args, message, tmp_path, capsys):
    (tmp_path / "empty" / "alice").mkdir(parents=True)
    (tmp_path / "empty" / "alice" / "notes.txt").write_text("no notebook here")
    paths = {"missing": tmp_path / "missing", "empty": tmp_path / "empty", "out": tmp_path / "out"}
    assert run_cli([a.format(**paths) for a in args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


def run_cli(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as exc:  # argparse exits by itself
        return exc.code


def test_help_names_the_commands_and_the_outputs(capsys):
    assert run_cli(["--help"]) == 0
    assert "grade" in capsys.readouterr().out
    assert run_cli(["grade", "--help"]) == 0
    text = capsys.readouterr().out
    for needle in [
        "--assignment",
        "--submissions",
        "--out",
        "--workers",
        "--db-url",
        "grades.csv",
        "report.html",
        "feedback/<student_id>",
    ]:
        assert needle in text


def test_python_dash_m_runs(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "autograder",
            "grade",
            "--assignment",
            "03_layers",
            "--submissions",
            str(tmp_path / "nowhere"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: submissions folder not found")


# ----------------------------------------------------------------------------------------
# Pieces that need no grading run
# ----------------------------------------------------------------------------------------


def test_sample_class_is_up_to_date():
    assert sample.main(["--check"]) == 0, "run python autograder/sample_class/make_sample_class.py"


def test_inspect_notebook_names_what_was_tampered_with():
    release = nbformat.read(str(ROOT / "notebooks" / "03_layers" / "layers.ipynb"), as_version=4)
    assert inspect_notebook(release, release) == []
    nb = nbformat.from_dict(json.loads(json.dumps(release)))
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    nb.cells.remove(tests[0])
    tests[1].metadata.nbgrader["checksum"] = "0" * 32
    tests[2].cell_type = "markdown"
    tests[3].metadata.nbgrader["grade_id"] = "renamed"
    tests[4].source += "\npass"
    nb.cells.append(nbformat.from_dict(json.loads(json.dumps(tests[5]))))
    flags = " | ".join(inspect_notebook(nb, release))
    assert f"missing grade cells: {tests[0].metadata.nbgrader['grade_id']}" in flags
    assert "checksum edited" in flags and "cell type changed" in flags and "renamed" in flags
    assert "locked cells edited" in flags and "duplicated grade cells" in flags


def test_hidden_tests_are_found_in_html_and_code():
    lines = hidden_test_lines(nbformat.read(str(ROOT / "solutions" / "03_layers" / "layers.ipynb"), as_version=4))
    assert 'check("layers.Linear.backward", Linear, hidden=True)' in lines
    highlighted = (
        '<span class="n">check</span><span class="p">(</span><span class="s2">&quot;layers.Linear.'
        'backward&quot;</span>, <span class="n">Linear</span>, <span class="n">hidden</span>'
        '<span class="o">=</span><span class="kc">True</span>)'
    )
    assert leaks_hidden_tests(highlighted, lines) == lines[0]
    assert leaks_hidden_tests(highlighted, ["hidden=True"]) == "hidden=True"
    assert leaks_hidden_tests("<p>### BEGIN HIDDEN TESTS</p>") == "BEGIN HIDDEN TESTS"
    assert leaks_hidden_tests("<p>Check Linear.backward on random shapes</p>", lines) is None


def _task(task: str, slot: int):
    """A task for the pool tests (spawned workers import it from this module)."""
    if task == "hang":
        time.sleep(600)
    if task == "exit":
        os._exit(3)
    if task == "raise":
        raise ValueError("broken submission")
    return task, slot


def test_pool_isolates_hanging_dying_and_raising_tasks():
    results = dict(run_tasks(_task, ["hang", "a", "exit", "b", "raise", "c"], workers=2, timeout=20))
    assert {k: v for k, v in results.items() if not isinstance(v, Failure)} == {
        "a": ("a", results["a"][1]),
        "b": ("b", results["b"][1]),
        "c": ("c", results["c"][1]),
    }
    assert {results[k][1] for k in "abc"} <= {0, 1}
    assert "longer than 20 s" in results["hang"].reason
    assert "died" in results["exit"].reason
    assert "ValueError: broken submission" in results["raise"].reason


def test_a_student_without_a_notebook_to_grade_scores_0_and_is_flagged(tmp_path, monkeypatch):
    """A folder of files but no notebook, or only a notebook too large to grade, is a row of 0
    points with a flag saying why (recorded like any ungraded student; no student code runs)."""
    from autograder.host import student_files

    subs = tmp_path / "submissions"
    (subs / "alice").mkdir(parents=True)
    (subs / "alice" / "answers.py").write_text("print('my answers')\n")
    (subs / "bob").mkdir()
    shutil.copyfile(SAMPLE / "perfect" / "layers.ipynb", subs / "bob" / "layers.ipynb")
    (subs / "carol").mkdir()  # an empty folder is no submission
    monkeypatch.setattr(student_files, "MAX_NOTEBOOK_BYTES", 1024)  # bob's notebook is "too large"
    monkeypatch.chdir(tmp_path)
    settings = Settings("03_layers", Path("submissions"), Path("out"), workers=1, progress=None)
    summary = grade(settings)
    assert (settings.submissions, settings.out) == (Path("submissions"), Path("out"))  # not mutated
    assert summary.graded == 2 and summary.skipped == 0
    rows = by_student(tmp_path / "out" / "grades.csv")
    assert sorted(rows) == ["alice", "bob"]
    for row in rows.values():
        assert (float(row["score"]), float(row["max_score"])) == (0, 18)
        assert "not graded: no notebook of 03_layers to grade" in row["flags"]
    alice = rows["alice"]["flags"].split("; ")
    assert "no notebook named layers.ipynb (0 points for it)" in alice
    assert "ignored files: answers.py" in alice
    assert "layers.ipynb is larger than 0 MB and was not graded (0 points for it)" in rows["bob"]["flags"]
    assert not (tmp_path / "out" / "feedback" / "alice").exists()

    again = grade(settings)  # unchanged: both are skipped, and keep their rows
    assert again.graded == 0 and again.skipped == 2
    assert by_student(tmp_path / "out" / "grades.csv") == rows


# ----------------------------------------------------------------------------------------
# The sample class
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample") / "out"
    summary = grade(Settings(sample.ASSIGNMENT, SAMPLE, out, workers=2, progress=None))
    return out, summary


@pytest.mark.slow
@needs_sandbox
def test_sample_class_grades(sample_run):
    out, summary = sample_run
    rows = read_csv(out / "grades.csv")
    header = list(rows[0])
    assert header[:5] == ["student_id", "assignment", "score", "max_score", "to_grade_by_hand"]
    assert header[-1] == "flags"
    cells = header[5:-1]
    # The questions answered in words (manually graded, 0 points) have columns of their own.
    answers = ["derivation_linear", "answer_jacobian", "derivation_sequential", "answer_no_activation"]
    assert [c for c in cells if c in answers] == answers
    assert all(float(r[c]) == 0 for r in rows for c in answers)
    cells = [c for c in cells if c not in answers]
    assert cells == [
        f"{kind}_layers_{name.split('.')[0]}_backward" for name in EXERCISE_TITLES for kind in ("test", "hidden")
    ]
    grades = {r["student_id"]: r for r in rows}
    assert sorted(grades) == sorted(sample.students())
    assert {r["assignment"] for r in rows} == {"03_layers"}
    max_score = float(grades["perfect"]["max_score"])
    assert max_score == 18
    assert float(grades["perfect"]["score"]) == max_score
    assert all(float(grades["perfect"][c]) > 0 for c in cells)
    assert float(grades["blank"]["score"]) == 0
    buggy = float(grades["buggy"]["score"])
    assert 0 < buggy < max_score
    assert float(grades["buggy"]["test_layers_Tanh_backward"]) == 1
    assert float(grades["buggy"]["hidden_layers_Sigmoid_backward"]) == 0
    for cheater in ("cheater_rebind", "cheater_snoop"):
        assert float(grades[cheater]["score"]) <= buggy, cheater
    # The snooper delegates with super(); the other one's tampering with its kernel has no effect.
    assert "called the library's answer: Linear.backward" in grades["cheater_snoop"]["flags"]
    for honest in ("perfect", "blank", "buggy", "partial", "cheater_rebind"):
        assert "called the library's answer" not in grades[honest]["flags"], honest
    assert 0 < float(grades["partial"]["score"]) < max_score
    assert sum(float(grades["partial"][c]) for c in cells) == float(grades["partial"]["score"])


@pytest.mark.slow
@needs_sandbox
def test_sample_class_feedback_shows_no_hidden_tests(sample_run):
    out, _ = sample_run
    pages = sorted((out / "feedback").glob("*/layers.html"))
    assert [p.parent.name for p in pages] == sorted(sample.students())
    for page in pages:
        text = page.read_text()
        assert "BEGIN HIDDEN TESTS" not in text
        assert leaks_hidden_tests(text, (*HIDDEN_MARKERS, "hidden=True")) is None, page
        assert "hidden_layers_Linear_backward" in text  # the hidden cell is there, its code is not
    blank = (out / "feedback" / "blank" / "layers.html").read_text()
    assert "not implemented yet" in blank


@pytest.mark.slow
@needs_sandbox
def test_sample_class_report(sample_run):
    out, summary = sample_run
    report = (out / "report.html").read_text()
    assert report.startswith("<!DOCTYPE html>")
    for title in EXERCISE_TITLES:
        assert title in report
    assert report.count("data:image/png;base64,") == 2
    for student in sample.students():
        assert student in report
    assert "median" in report and "mean" in report


@pytest.mark.slow
@needs_sandbox
def test_rerun_skips_unchanged_students_and_writes_the_same_csv(sample_run):
    out, first = sample_run
    before = (out / "grades.csv").read_bytes()
    again = grade(Settings(sample.ASSIGNMENT, SAMPLE, out, workers=2, progress=None))
    assert again.graded == 0 and again.skipped == len(sample.students())
    assert (out / "grades.csv").read_bytes() == before


# ----------------------------------------------------------------------------------------
# A small class: interrupted, resumed, regraded in parallel
# ----------------------------------------------------------------------------------------

SMALL = ("perfect", "blank", "buggy")


@pytest.fixture(scope="module")
def small_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("small") / "submissions"
    for student in SMALL:
        nb = sample.exercises_only(nbformat.read(str(SAMPLE / student / "layers.ipynb"), as_version=4))
        (root / student).mkdir(parents=True)
        nbformat.write(nb, str(root / student / "layers.ipynb"))
    return root


def _gradebook_counts(db: Path) -> dict[str, int]:
    import sqlite3

    with sqlite3.connect(db) as con:
        return {
            table: con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("student", "submitted_assignment", "submitted_notebook", "grade")
        }


@pytest.mark.slow
@needs_sandbox
def test_resume_after_kill_then_parallel_regrade_gives_the_same_grades(small_class, tmp_path):
    out = tmp_path / "out"
    db = tmp_path / "elsewhere" / "grades.db"
    db.parent.mkdir()
    url = f"sqlite:///{db}"
    command = [
        sys.executable,
        "-m",
        "autograder",
        "grade",
        "--assignment",
        "03_layers",
        "--submissions",
        str(small_class),
        "--out",
        str(out),
        "--workers",
        "1",
        "--db-url",
        url,
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state = out / "state.json"
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if state.exists() and json.loads(state.read_text())["assignments"]["03_layers"]:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run finished before it could be interrupted"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = set(json.loads(state.read_text())["assignments"]["03_layers"])
    assert 1 <= len(done) < len(SMALL)
    assert not (out / "grades.csv").exists()

    cells = len(pipeline._cell_order("03_layers"))  # every graded cell, answers graded by hand too
    expected = {"student": 3, "submitted_assignment": 3, "submitted_notebook": 3, "grade": 3 * cells}
    resumed = grade(Settings("03_layers", small_class, out, workers=1, db_url=url, progress=None))
    assert resumed.skipped == len(done) and resumed.graded == len(SMALL) - len(done)
    serial = by_student(out / "grades.csv")
    assert sorted(serial) == sorted(SMALL)
    assert float(serial["perfect"]["score"]) == 18 and float(serial["blank"]["score"]) == 0
    assert _gradebook_counts(db) == expected

    parallel = grade(Settings("03_layers", small_class, out, workers=2, db_url=url, force=True, progress=None))
    assert parallel.graded == len(SMALL)
    assert by_student(out / "grades.csv") == serial
    assert _gradebook_counts(db) == expected
    assert not (out / "gradebook.db").exists()  # --db-url was used, not the default


def test_runs_go_side_by_side_only_on_cores_the_workers_leave_idle(monkeypatch):
    from autograder.host.pipeline import _side_by_side

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert _side_by_side(Settings("a", Path(), Path(), workers=2)) is True
    assert _side_by_side(Settings("a", Path(), Path(), workers=4)) is False
    assert _side_by_side(Settings("a", Path(), Path(), workers=8)) is False
    assert _side_by_side(Settings("a", Path(), Path(), workers=4, side_by_side=True)) is True
    assert _side_by_side(Settings("a", Path(), Path(), workers=1, side_by_side=False)) is False


@pytest.mark.parametrize("module", ["autograder.host.submission", "autograder.inside.worker"])
def test_grading_processes_do_without_the_slow_iri_parser(module):
    """jsonschema would build an IRI parser at import (about a second per process) for a format
    check grading never uses: the grading processes and the notebook run leave it out."""
    code = f"import sys, {module}, nbformat; print(sys.modules.get('rfc3987_syntax', 'absent') is None)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "True"

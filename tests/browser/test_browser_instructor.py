"""The instructor's path in a real browser: the formgrader, the class report and a feedback page.

The bundled sample class of ``03_layers`` is graded once for the module with ``python -m
autograder grade`` into a temporary folder, together with one more student, ``planted``, whose
notebook tries to run script in whoever opens it: a markdown cell with a ``<script>`` and an
``<img onerror>``, and a cell whose outputs are HTML with a ``<script>`` and JavaScript. Each
payload would set a ``window.__planted_*`` flag and log ``planted-...`` to the console. Then:

- the formgrader (``jupyter lab`` started in the run's nbgrader course, ``OUT/course``, as an
  instructor starts it; logged in with the server's token) lists every submission as graded
  with its score, and opens one from Manual Grading with its outputs; the planted one runs
  nothing of the student's;
- ``report.html`` renders its two charts and its tables, with the scores of ``grades.csv``;
- a feedback page renders, shows no hidden test and runs no script of the student's.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from browser_ui import JupyterServer, Tab

from autograder.sample_class.make_sample_class import ALL, EXERCISES, NOTEBOOK, make_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = "03_layers"
SAMPLE = ROOT / "autograder" / "sample_class" / ASSIGNMENT
FLAGS = ("__planted_markdown", "__planted_onerror", "__planted_output", "__planted_js")

PLANTED_MARKDOWN = """\
Notes to myself.

<script>window.__planted_markdown = 1; console.log("planted-markdown")</script>
<img src="nowhere.png" onerror="window.__planted_onerror = 1; console.log('planted-onerror')">
"""
PLANTED_CODE = """\
from IPython.display import HTML, Javascript, display

display(HTML("<b>bold</b><script>window.__planted_output = 1; console.log('planted-output')</script>"))
display(Javascript("window.__planted_js = 1; console.log('planted-js')"))
"""


@dataclass(frozen=True)
class Graded:
    """A graded class: the run's output folder, the students, and the formgrader's server."""

    out: Path
    students: tuple[str, ...]
    server: JupyterServer


def _planted(release_path: Path, dest: Path) -> None:
    """A right answer to every exercise, plus active content in a markdown cell and in outputs
    saved in the notebook (as a student's own kernel would have left them)."""
    release = nbformat.read(release_path, as_version=4)
    (source_path,) = (ROOT / "solutions" / ASSIGNMENT).glob("*.ipynb")
    nb = make_notebook(release, nbformat.read(source_path, as_version=4), ALL, extra_cells=[("start", PLANTED_CODE)])
    code = next(c for c in nb.cells if c.get("id") == "student-cell-0")
    code.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                "text/html": "<script>window.__planted_output = 1; console.log('planted-output')</script>",
                "application/javascript": "window.__planted_js = 1; console.log('planted-js')",
            },
        )
    ]
    markdown = nbformat.v4.new_markdown_cell(PLANTED_MARKDOWN)
    markdown.id = "student-markdown-0"
    nb.cells.insert(nb.cells.index(code) + 1, markdown)
    dest.mkdir(parents=True)
    nbformat.write(nb, str(dest / f"{NOTEBOOK}.ipynb"))


@pytest.fixture(scope="module")
def graded(browser, tmp_path_factory) -> Iterator[Graded]:
    """The sample class and ``planted`` graded into a temporary folder; the formgrader on it."""
    base = tmp_path_factory.mktemp("instructor")
    submissions = base / "submissions"
    shutil.copytree(SAMPLE, submissions)
    _planted(ROOT / "notebooks" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", submissions / "planted")
    out = base / "out"
    command = [sys.executable, "-m", "autograder", "grade", "--assignment", ASSIGNMENT]
    command += ["--submissions", str(submissions), "--out", str(out), "--workers", "2", "--quiet"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, f"grading failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    students = tuple(sorted(p.name for p in submissions.iterdir() if p.is_dir()))
    server = JupyterServer(Path(sys.executable).parent / "jupyter", out / "course", base / "jupyter").start()
    yield Graded(out, students, server)
    server.stop()


def _scores(out: Path) -> dict[str, tuple[float, float]]:
    """student -> (score, max score), from grades.csv."""
    with (out / "grades.csv").open(newline="") as f:
        return {row["student_id"]: (float(row["score"]), float(row["max_score"])) for row in csv.DictReader(f)}


def _log_in(tab: Tab, server: JupyterServer, next_path: str) -> None:
    """Log in on the server's login page with its token, as an instructor does."""
    tab.page.goto(f"{server.base}/login?next={next_path}")
    tab.page.fill("input[type=password]", server.token)
    tab.page.keyboard.press("Enter")
    tab.page.wait_for_url(f"**{next_path}**")


def _table(tab: Tab, selector: str) -> list[list[str]]:
    """The rows (lists of cell texts) of the first table matching ``selector``, header excluded."""
    return tab.page.locator(selector).first.evaluate(
        "t => [...t.querySelectorAll('tr')].filter(r => r.querySelector('td'))"
        ".map(r => [...r.querySelectorAll('td')].map(c => c.innerText.trim()))"
    )


def _no_planted_script(tab: Tab) -> None:
    ran = {flag: tab.page.evaluate(f"() => window.{flag}") for flag in FLAGS}
    assert not any(ran.values()), f"student script ran: {ran}"
    logged = [m for m in tab.console if "planted-" in m]
    assert not logged, f"student script logged: {logged}"


def _shown_images(tab: Tab) -> list[tuple[int, int, str]]:
    return tab.page.evaluate(
        """() => [...document.querySelectorAll('img')]
            .filter(i => i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().height > 0)
            .map(i => [i.naturalWidth, i.naturalHeight, i.alt])"""
    )


def test_formgrader_lists_and_opens_submissions(graded, tab):
    """Manage Submissions lists every student, graded, with the score of grades.csv; Manual
    Grading opens the perfect submission with its check outputs."""
    server = graded.server
    _log_in(tab, server, f"/formgrader/manage_submissions/{ASSIGNMENT}")
    tab.page.wait_for_selector("table td:has-text('grad')", timeout=120_000)
    rows = {r[1]: r for r in _table(tab, "table") if len(r) > 4}  # keyed by the Student ID column
    assert sorted(rows) == list(graded.students), rows
    for student, (score, max_score) in _scores(graded.out).items():
        # autograded; written answers (03's derivations) still wait for the instructor
        assert rows[student][3] in ("graded", "needs manual grading"), rows[student]
        assert rows[student][4] == f"{score:g} / {max_score:g}", (student, rows[student], score)

    tab.page.goto(f"{server.base}/formgrader/gradebook/{ASSIGNMENT}/{NOTEBOOK}")
    tab.page.wait_for_selector("table a[href*='/formgrader/submissions/']", timeout=120_000)
    href = tab.page.locator("table a", has_text="perfect").first.get_attribute("href")
    tab.page.locator(f"table a[href='{href}']:visible").first.click()
    tab.page.wait_for_url("**/formgrader/submissions/**")
    tab.page.wait_for_selector("text=Student's answer")
    body = tab.page.locator("body").inner_text()
    assert "Submission" in body and "Linear.backward: all" in body, body[:2000]
    assert not tab.errors or all("MathJax" in e for e in tab.errors), tab.errors


def test_formgrader_runs_no_planted_script(graded, tab):
    """The planted submission, opened in the formgrader (the instructor's logged-in Jupyter
    origin), runs none of its scripts; its markdown shows as text."""
    server = graded.server
    _log_in(tab, server, f"/formgrader/gradebook/{ASSIGNMENT}/{NOTEBOOK}")
    tab.page.wait_for_selector("table a[href*='/formgrader/submissions/']", timeout=120_000)
    href = tab.page.locator("table a", has_text="planted").first.get_attribute("href")
    tab.page.goto(f"{server.base}{href}")
    tab.page.wait_for_selector("text=Student's answer")
    tab.page.wait_for_load_state("load")
    _no_planted_script(tab)
    assert "window.__planted_markdown" in tab.page.locator("body").inner_text()


def test_report_renders_charts_and_tables(graded, tab):
    """report.html: both charts are drawn and the Students table has the scores of grades.csv."""
    tab.page.goto((graded.out / "report.html").as_uri())
    assert tab.page.locator("h1").inner_text() == f"{ASSIGNMENT}: class report"
    charts = _shown_images(tab)
    assert sorted(alt for _, _, alt in charts) == ["pass rate per exercise", "score histogram"], charts
    assert all(w > 200 and h > 100 for w, h, _ in charts), charts
    exercises = [r[0] for r in _table(tab, "h2:has-text('Exercises') + table")]
    for name in EXERCISES:
        assert any(name in title for title in exercises), (name, exercises)
    students = {r[0]: r[1] for r in _table(tab, "h2:has-text('Students') + table")}
    expected = {s: f"{score:g} / {max_score:g}" for s, (score, max_score) in _scores(graded.out).items()}
    assert students == expected
    assert not tab.errors, tab.errors


def test_feedback_hides_tests_and_runs_no_script(graded, tab):
    """The planted student's feedback: rendered, its checks' messages there, no hidden test
    code, no script of the student's run (the page's own, if any, are not the student's)."""
    (feedback,) = (graded.out / "feedback" / "planted").glob("*.html")
    tab.page.goto(feedback.as_uri())
    tab.page.wait_for_load_state("load")
    text = tab.page.locator("body").inner_text()
    assert "Linear.backward: all" in text, text[:2000]
    html = tab.page.content()
    for hidden in ("hidden=True", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert hidden not in html, f"the feedback holds {hidden!r}"
    _no_planted_script(tab)
    assert "window.__planted_markdown" in text  # the markdown cell is shown as its source
    assert any(w > 200 for w, _, _ in _shown_images(tab)), "the notebook's plots are not shown"

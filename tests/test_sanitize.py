"""No active content from a submission (autograder/host/sanitize.py) in feedback, formgrader views or the report.

The fast tests clean hand-made notebooks and run nbgrader's own ``generate_feedback`` with the
course's configuration on a hostile autograded notebook (no student code runs). The slow test
grades a hostile submission whose cells produce the payloads when the grader runs them, and
parses the feedback, the autograded notebook as the formgrader renders it, and the report.
Every payload carries a unique marker (``XSS-M01``, ...): a marker inside a ``<script>`` or
``<style>``, any event handler, script URL, frame, object, embed or SVG is a failure; markers
shown as text are fine.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import warnings
from pathlib import Path

import nbformat
import pytest
from active_content import active_content
from nbconvert import HTMLExporter
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

from autograder import sandbox
from autograder.host.pipeline import COURSE_CONFIG, Settings, grade
from autograder.host.sanitize import MARKDOWN_NOTE, clean_markdown, clean_notebook, clean_outputs
from autograder.sample_class import make_sample_class as sample

ROOT = Path(__file__).resolve().parent.parent
#: A 1x1 PNG: an honest plot.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

MARKDOWN_PAYLOADS = {
    "M01": "<script>alert('XSS-M01')</script>",
    "M02": "Look: <img src=x onerror=\"alert('XSS-M02')\">",
    "M03": '<iframe src="https://evil.example/XSS-M03"></iframe>',
    "M04": "[click](javascript:alert('XSS-M04'))",
    "M05": "[click](&#106;avascript:alert('XSS-M05'))",
    "M06": "<svg onload=\"alert('XSS-M06')\"><script>alert('XSS-M06')</script></svg>",
    "M07": "<style>body { background: url('https://evil.example/XSS-M07') }</style>",
    "M08": "<a href=\"JaVaScRiPt:alert('XSS-M08')\">notes</a>",
    "M09": '<object data="https://evil.example/XSS-M09"></object><embed src="https://evil.example/XSS-M09">',
    "M10": "<details open ontoggle=\"alert('XSS-M10')\">x</details>",
    "M11": "<math><a xlink:href=\"javascript:alert('XSS-M11')\">x</a></math>",
    "M12": "<javascript:alert('XSS-M12')>",
    "M13": "See [the notes][1].\n\n[1]: javascript:alert('XSS-M13')",
    "M14": "<form action=\"javascript:alert('XSS-M14')\"><button>go</button></form>",
    "M15": '<meta http-equiv="refresh" content="0;url=javascript:alert(\'XSS-M15\')">',
    "M16": '<base href="https://evil.example/XSS-M16/">',
    "M18": '<div style="position:fixed" onmouseover="alert(\'XSS-M18\')">hover</div>',
    "M19": "<!-- --><img src=x onerror=alert('XSS-M19')> -->",
    "M20": "```\n<script>alert('XSS-M20')</script>\n```",
}
HONEST_MARKDOWN = (
    "# Honest heading\n\nThe loss $L = \\frac{1}{N}\\sum_i \\ell_i$ with $a<b$ and $$x^2 < y$$.\n\n"
    "| layer | shape |\n|:--|--:|\n| Linear | (N, D) |\n\n> a quote\n\n- `grad_out` is **(N, C)**\n"
    "- see [NumPy](https://numpy.org) and <b>bold</b> <sub>i</sub>\n\n![plot](attachment:plot.png)"
)


def _svg(marker: str) -> str:
    return base64.b64encode(f"<svg xmlns='http://www.w3.org/2000/svg' onload=\"alert('{marker}')\"/>".encode()).decode()


def _display(data: dict, metadata: dict | None = None, kind: str = "display_data"):
    out = new_output(kind, data=data, metadata=metadata or {})
    if kind == "execute_result":
        out.execution_count = 1
    return out


def hostile_outputs() -> list:
    """One output per payload kind, as a notebook run would save them (marker O01, ...)."""
    return [
        _display({"text/html": "<script>alert('XSS-O01')</script>", "text/plain": "<HTML object>"}),
        _display({"text/html": "<img src=x onerror=\"alert('XSS-O02')\"><table><tr><td>XSS-O02 cell</td></tr>"
                               "</table>"}),
        _display({"application/javascript": "alert('XSS-O03')", "text/plain": "<Javascript object>"}),
        _display({"image/svg+xml": "<svg onload=\"alert('XSS-O04')\"><script>alert('XSS-O04')</script></svg>"}),
        _display({"text/markdown": "<script>alert('XSS-O05')</script>"}),
        _display({"application/vnd.jupyter.widget-view+json": {"model_id": "XSS-O06", "version_major": 2,
                                                                 "version_minor": 0}}),
        _display({"text/html": "<script>alert('XSS-O07')</script>"}, {"text/html": {"isolated": True}}),
        _display({"image/png": "\" onerror=\"alert('XSS-O08')", "text/plain": "<Figure>"}),
        _display({"text/html": "<a href=\"javascript:alert('XSS-O09')\">x</a>"}, kind="execute_result"),
        new_output("stream", name="stdout", text="<script>alert('XSS-O10')</script>\n"),
        new_output("error", ename="ValueError", evalue="<img src=x onerror=alert('XSS-O11')>",
                   traceback=["<img src=x onerror=alert('XSS-O11')>"]),
        _display({"text/latex": "$x$</div><script>alert('XSS-O12')</script>"}),
        _display({"image/png": PNG, "text/plain": "<Figure>"},
                 {"filenames": {"image/png": "javascript:alert('XSS-O13')"}}),
        _display({"text/html": "<p>XSS-O14 <b onclick=\"alert('XSS-O14')\">bold</b></p>"}),
    ]  # fmt: skip


def honest_outputs() -> list:
    return [
        new_output("stream", name="stdout", text="HONEST-STREAM loss 0.25\n"),
        _display({"image/png": PNG, "text/plain": "<Figure size 640x480 with 1 Axes>"}, {"image/png": {"width": 320}}),
        _display({"text/plain": "HONEST-RESULT array([1., 2.])"}, kind="execute_result"),
        _display({"text/latex": "$\\frac{\\partial L}{\\partial W}$", "text/plain": "dL/dW"}),
    ]


def hostile_cells() -> list:
    cells = [new_markdown_cell(text) for text in MARKDOWN_PAYLOADS.values()]
    cells.append(new_markdown_cell("![a](attachment:a.svg)", attachments={"a.svg": {"image/svg+xml": _svg("XSS-M17")}}))
    cells.append(new_raw_cell("<script>alert('XSS-R01')</script>"))
    cells.append(new_raw_cell("<img src=x onerror=alert('XSS-R02')>", metadata={"format": "text/html"}))
    cells.append(new_code_cell("show()", outputs=hostile_outputs()))
    return cells


def honest_cells() -> list:
    return [
        new_markdown_cell(HONEST_MARKDOWN, attachments={"plot.png": {"image/png": PNG}}),
        new_code_cell("plot()", outputs=honest_outputs()),
    ]


MARKERS = [f"XSS-M{k:02d}" for k in range(1, 21)] + [f"XSS-O{k:02d}" for k in range(1, 15)] + ["XSS-R01", "XSS-R02"]


@functools.cache
def _exporter(template: str) -> HTMLExporter:
    return HTMLExporter(template_name=template)


def _render(nb, template: str = "classic") -> str:
    page, _ = _exporter(template).from_notebook_node(nb)
    return page


# ----------------------------------------------------------------------------------------
# Cleaning notebooks
# ----------------------------------------------------------------------------------------


#: Payloads nbconvert 7.17's templates already render inert (escaped, or raw cells through its
#: clean_html): cleaned anyway, for other renderers and other nbconvert versions.
#: (O06: a widget view needs saved widget state, tested below.)
INERT_IN_NBCONVERT = {"XSS-M20", "XSS-O08", "XSS-O10", "XSS-O11", "XSS-O12", "XSS-R01", "XSS-R02", "XSS-O06"}


def _single_payloads() -> dict[str, nbformat.NotebookNode]:
    """A one-cell notebook per payload, by marker."""
    notebooks = {}
    for cell in hostile_cells():
        pieces = [(o, [o]) for o in cell.outputs] if cell.cell_type == "code" else [(cell, None)]
        for piece, outputs in pieces:
            marker = next(
                m
                for m in MARKERS
                if m in json.dumps(piece)
                or m
                in base64.b64decode(piece.get("attachments", {}).get("a.svg", {}).get("image/svg+xml", "")).decode()
            )
            one = copy.deepcopy(cell)
            if outputs is not None:
                one.outputs = copy.deepcopy(outputs)
            notebooks[marker] = new_notebook(cells=[one])
    return notebooks


def test_every_payload_is_live_without_sanitising():
    """Rendered as it came, each payload shows up in the audit (so the tests below can fail)."""
    notebooks = _single_payloads()
    assert sorted(notebooks) == sorted(MARKERS)
    for marker, nb in notebooks.items():
        found = active_content(_render(nb), MARKERS)
        assert bool(found) == (marker not in INERT_IN_NBCONVERT), (marker, found)
        cleaned = clean_notebook(copy.deepcopy(nb))
        assert active_content(_render(cleaned), MARKERS) == [], marker


@pytest.mark.parametrize("template", ["classic", "lab"])
def test_a_cleaned_notebook_renders_nothing_active(template):
    widgets = {"application/vnd.jupyter.widget-state+json": {"state": {"m": {"state": {"value": "XSS-W01"}}}}}
    nb = new_notebook(cells=hostile_cells() + honest_cells(), metadata={"widgets": widgets})
    assert any("XSS-W01" in f for f in active_content(_render(nb, template), ["XSS-W01"]))  # live as it came
    page = _render(clean_notebook(nb), template)
    assert active_content(page, [*MARKERS, "XSS-W01"]) == []
    assert "XSS-W01" not in page and "widget-state" not in page
    assert "XSS-M01" in page  # the markdown payloads are shown as text, not lost
    assert f"data:image/png;base64,{PNG}" in page  # the honest plot is still there
    assert "HONEST-STREAM" in page and "HONEST-RESULT" in page


def test_honest_markdown_is_kept_as_written_and_hostile_markdown_shown_as_text():
    attachments = {"plot.png": {"image/png": PNG}}
    assert clean_markdown(HONEST_MARKDOWN, attachments) == HONEST_MARKDOWN
    assert clean_markdown("Use `<script>` tags? Never: `x < y`.") != ""  # code spans: text either way
    for marker, text in MARKDOWN_PAYLOADS.items():
        cleaned = clean_markdown(text)
        assert cleaned.startswith(MARKDOWN_NOTE), marker
        assert text in cleaned  # shown in full, as text in a code block
        assert active_content(_render(new_notebook(cells=[new_markdown_cell(cleaned)])), MARKERS) == [], marker
    fenced = clean_markdown("````\n<script>alert('XSS')</script>\n```` and ```` more")
    assert "`````text" in fenced  # a fence longer than any run of backticks inside


def test_outputs_keep_only_inert_types():
    hostile = {f"XSS-O{k:02d}": out for k, out in enumerate(hostile_outputs(), start=1)}
    cleaned = dict(zip(hostile, clean_outputs(copy.deepcopy(list(hostile.values()))), strict=True))
    types = {m: set(out.get("data", {})) for m, out in cleaned.items()}
    assert types["XSS-O01"] == {"text/plain"}  # HTML dropped beside a plain version
    assert types["XSS-O03"] == {"text/plain"}
    assert types["XSS-O04"] == {"text/plain"} and "image/svg+xml" in cleaned["XSS-O04"].data["text/plain"]
    assert types["XSS-O06"] == {"text/plain"}
    assert types["XSS-O08"] == {"text/plain"}  # the forged PNG is not base64
    table = "<table><tbody><tr><td>XSS-O02 cell</td></tr></tbody></table>"
    assert cleaned["XSS-O02"].data["text/html"] == '<img src="x">' + table  # a relative image loads nothing active
    assert cleaned["XSS-O14"].data["text/html"] == "<p>XSS-O14 <b>bold</b></p>"
    assert cleaned["XSS-O07"].metadata == {} and cleaned["XSS-O13"].metadata == {}
    assert cleaned["XSS-O13"].data["image/png"] == PNG
    honest = honest_outputs()
    assert clean_outputs(copy.deepcopy(honest)) == honest  # text, PNG (with its width), LaTeX untouched


def test_outputs_copied_back_from_the_notebook_run_are_cleaned():
    from autograder.verdicts.engine import _safe_outputs

    copied = _safe_outputs([dict(o) for o in hostile_outputs() + honest_outputs()])
    kinds = {m for o in copied for m in o.get("data", {})}
    assert kinds <= {"text/plain", "image/png", "text/latex", "text/html", "text/markdown"}, kinds
    assert all(o.get("metadata", {}) in ({}, {"image/png": {"width": 320}}) for o in copied)
    assert active_content(_render(new_notebook(cells=[new_code_cell("x", outputs=copied)])), MARKERS) == []


# ----------------------------------------------------------------------------------------
# nbgrader's own generate_feedback with the course's configuration
# ----------------------------------------------------------------------------------------


def _meta(grade_id: str, **flags):
    return {"nbgrader": {"grade_id": grade_id, "schema_version": 3, "grade": False, "solution": False,
                         "locked": False, **flags}}  # fmt: skip


def _course(root: Path):
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader(COURSE_CONFIG.name, path=str(COURSE_CONFIG.parent)).load_config()
    over = Config()
    over.CourseDirectory.root = str(root)
    over.CourseDirectory.source_directory = "source"
    over.CourseDirectory.release_directory = "release"
    over.CourseDirectory.autograded_directory = "autograded"
    over.CourseDirectory.feedback_directory = "feedback"
    over.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    cfg.merge(over)
    return NbGraderAPI(CourseDirectory(config=cfg), config=cfg), cfg


def test_stock_generate_feedback_shows_nothing_active(tmp_path):
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    api, cfg = _course(tmp_path)
    answer = new_code_cell(
        "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n",
        metadata=_meta("double", solution=True),
    )
    written = new_markdown_cell("YOUR ANSWER HERE", metadata=_meta("why", solution=True, grade=True, points=1))
    source = new_notebook(
        cells=[answer, written],
        metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}},
    )
    (tmp_path / "source" / "ps1").mkdir(parents=True)
    nbformat.write(source, str(tmp_path / "source" / "ps1" / "double.ipynb"))
    assert api.generate_assignment("ps1", force=True, create=True)["success"]

    student = copy.deepcopy(source)
    student.cells[1].source = "<img src=x onerror=\"alert('XSS-M02')\"> my written answer"
    student.cells += hostile_cells() + honest_cells()
    student.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"XSS-W01": {}}}}
    autograded = tmp_path / "autograded" / "alice" / "ps1"
    autograded.mkdir(parents=True)
    nbformat.write(student, str(autograded / "double.ipynb"))
    with Gradebook(cfg.CourseDirectory.db_url, "backprop") as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        gb.update_or_create_student("alice")
        gb.add_submission("ps1", "alice")
        gb.db.commit()
    feedback = api.generate_feedback("ps1", "alice", force=True)
    assert feedback["success"], feedback.get("error") or feedback.get("log")
    page = (tmp_path / "feedback" / "alice" / "ps1" / "double.html").read_text()
    assert active_content(page, [*MARKERS, "XSS-W01"]) == []
    assert "my written answer" in page and "XSS-M01" in page  # shown as text
    assert f"data:image/png;base64,{PNG}" in page and "HONEST-STREAM" in page
    assert "<script" in page  # the template's own scripts (MathJax, ...) are there: the audit told them apart


# ----------------------------------------------------------------------------------------
# A graded hostile submission: feedback, the formgrader's view, the report
# ----------------------------------------------------------------------------------------

PAYLOAD_CELL = """
from IPython.display import HTML, SVG, Javascript, Markdown, display
display(HTML("<script>alert('XSS-G01')</script><img src=x onerror=\\"alert('XSS-G02')\\">"))
display(Javascript("alert('XSS-G03')"))
display(SVG("<svg xmlns='http://www.w3.org/2000/svg' onload=\\"alert('XSS-G04')\\">"
            "<script>alert('XSS-G04')</script></svg>"))
display(Markdown("<script>alert('XSS-G05')</script>"))
display({"application/vnd.jupyter.widget-view+json": {"model_id": "XSS-G06"},
         "text/html": "<b onclick='XSS-G06'>w</b>"}, raw=True)
display({"text/html": "<iframe src='https://evil.example/XSS-G07'></iframe>"}, raw=True, metadata={"isolated": True})
print("<script>alert('XSS-G08')</script>")
"""
# The sandbox sets MPLBACKEND=Agg: a student who wants plots in the notebook run asks for inline ones.
PLOT_CELL = """
get_ipython().run_line_magic("matplotlib", "inline")
import matplotlib.pyplot as plt
plt.plot([0, 1], [1, 0])
plt.show()
print("HONEST-PLOT-SHOWN")
"""
GRADED_MARKERS = [f"XSS-G{k:02d}" for k in range(1, 9)] + [f"XSS-M{k:02d}" for k in (1, 2, 3, 4, 6)]


def hostile_submission() -> nbformat.NotebookNode:
    release = nbformat.read(str(ROOT / "notebooks" / "03_layers" / "layers.ipynb"), as_version=4)
    source = nbformat.read(str(ROOT / "solutions" / "03_layers" / "layers.ipynb"), as_version=4)
    answers = {sample._grade_id(c): "solution" for c in source.cells
               if c.metadata.get("nbgrader", {}).get("solution")}  # fmt: skip
    nb = sample.exercises_only(sample.make_notebook(release, source, answers))
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells[first + 1 : first + 1] = [
        new_code_cell(PAYLOAD_CELL), new_code_cell(PLOT_CELL),
        *[new_markdown_cell(MARKDOWN_PAYLOADS[m]) for m in ("M01", "M02", "M03", "M04", "M06")],
    ]  # fmt: skip
    for k, cell in enumerate(nb.cells):
        cell.id = f"cell-{k}"
    return nb


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("active")
    (root / "subs" / "mallory").mkdir(parents=True)
    nbformat.write(hostile_submission(), str(root / "subs" / "mallory" / "layers.ipynb"))
    out = root / "out"
    summary = grade(Settings("03_layers", root / "subs", out, workers=1, progress=None))
    return out, summary


@pytest.mark.slow
@pytest.mark.skipif(not sandbox.bubblewrap_available(), reason="grading needs the bubblewrap sandbox")
def test_graded_hostile_notebook_leaves_nothing_active(hostile_run):
    out, summary = hostile_run
    # Graded (its score is the checks' business, and on a loaded machine a check can run out of time).
    assert summary.graded == 1 and not any(f.startswith("not graded") for f in summary.rows[0].flags)
    feedback = (out / "feedback" / "mallory" / "layers.html").read_text()
    assert active_content(feedback, GRADED_MARKERS) == []
    assert "HONEST-PLOT-SHOWN" in feedback and "data:image/png;base64," in feedback  # the honest plot survives
    assert "XSS-G08" in feedback and "XSS-M01" in feedback  # printed / written payloads are shown as text

    autograded = out / "course" / "autograded" / "mallory" / "03_layers" / "layers.ipynb"
    nb = nbformat.read(str(autograded), as_version=4)
    kinds = {m for c in nb.cells if c.cell_type == "code" for o in c.outputs for m in o.get("data", {})}
    assert kinds <= {"text/plain", "image/png", "image/jpeg", "text/latex", "text/html"}, kinds
    assert "image/png" in kinds
    assert active_content(_render(nb), GRADED_MARKERS) == []
    assert active_content(_formgrade(autograded), GRADED_MARKERS, FORMGRADE_HANDLERS) == []
    assert active_content((out / "report.html").read_text(), GRADED_MARKERS) == []
    assert json.dumps(nb.metadata).count("widget") == 0


#: The event handlers of nbgrader's own formgrade template (formgrade_macros.html.j2): the instructor's.
FORMGRADE_HANDLERS = ("toggle_name(true);", "toggle_name(false);")


def _formgrade(path: Path) -> str:
    """The autograded notebook as nbgrader's formgrader renders it (its handler's exporter)."""
    from nbgrader.server_extensions.formgrader import handlers

    exporter = HTMLExporter(template_name="formgrade", extra_template_basedirs=[handlers.template_path])
    resources = {"assignment_id": "03_layers", "notebook_id": "layers", "submission_id": "x", "index": 0,
                 "total": 1, "base_url": "/", "student": "mallory", "last_name": None, "first_name": None,
                 "notebook_path": "/x"}  # fmt: skip
    page, _ = exporter.from_filename(str(path), resources=resources)
    return page

"""The student's path in a real browser, in JupyterLab 4 and in Notebook 7, on the student bundle.

The bundle is built as an instructor builds it (``python -m student.build --out DIR``) and its
wheel is installed with its ``[lab]`` extra (JupyterLab, Notebook 7, nbgrader, the kernel) into
a new virtual environment, from the package index pip is configured with (its cache makes this
quick after the first time), as the bundle's README tells students. One ``jupyter lab`` server
of that environment serves both front ends for the whole module. Then, as a student:

- open ``03_layers``, run the cells down to the first check: the stub's friendly
  NotImplementedError is shown;
- type a wrong ``Linear.backward`` into its answer cell, run the check: the message names the
  gradient that is wrong and its worst entry, and the comparison picture is shown;
- type the right one (the instructor's, from ``solutions/``): the check passes;
- fill the other answers in and press Validate: nbgrader's dialog says the notebook passes;
- in ``02_graphs``, the computational graph drawing is rendered.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from browser_ui import JupyterServer, NotebookUI, Tab

from autograder.sample_class.make_sample_class import fill, solution_bodies

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
#: A plausible mistake: dL/dW with the wrong sign (dL/db and dL/dx right).
WRONG_LINEAR = """
self.W.grad -= self.x.T @ grad_out
self.b.grad += grad_out.sum(axis=0)
return grad_out @ self.W.data.T
"""

#: Uncaught errors that the front end's own scripts raise in this set-up, whatever the notebook
#: does (seen with Notebook 7.6 and nbgrader 0.9.6); any other error fails the test.
KNOWN_PAGE_ERRORS = {
    "lab": (),
    "notebook": (
        "Cannot read properties of undefined (reading 'schema')",
        "Command 'filebrowser:open-path' not registered.",
    ),
}


@dataclass(frozen=True)
class StudentSetup:
    """The built bundle, the environment it was installed into, and its server."""

    bundle: Path
    server: JupyterServer


def _run(command: list[str], what: str, timeout: int) -> None:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{what} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


@pytest.fixture(scope="module")
def student(browser, tmp_path_factory) -> Iterator[StudentSetup]:
    """Build the bundle, install its wheel with ``[lab]`` into a new venv, start its server."""
    base = tmp_path_factory.mktemp("student")
    bundle = base / "bundle"
    _run([sys.executable, "-m", "student.build", "--out", str(bundle)], "building the student bundle", 1800)
    (wheel,) = bundle.glob("*.whl")
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    _run(
        [sys.executable, "-m", "pip", "--python", str(env_dir / "bin" / "python"), "install", "--quiet"]
        + [f"{wheel}[lab]"],
        "installing the student wheel with its [lab] extra",
        1800,
    )
    home = base / "home"  # the student's folder: one copy of the bundle's notebooks per front end
    home.mkdir()
    server = JupyterServer(env_dir / "bin" / "jupyter", home, base / "jupyter").start()
    yield StudentSetup(bundle, server)
    server.stop()


def _notebook(student: StudentSetup, tab: Tab, ui: str, assignment: str) -> tuple[NotebookUI, nbformat.NotebookNode]:
    """A fresh copy of the bundle's ``assignment`` for this front end, opened in ``tab``."""
    dest = student.server.root / ui / assignment
    shutil.copytree(student.bundle / assignment, dest)
    (path,) = dest.glob("*.ipynb")
    nb = nbformat.read(path, as_version=4)
    rel = path.relative_to(student.server.root).as_posix()
    return NotebookUI(tab, student.server, rel, ui, len(nb.cells)).open(), nb


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _index(nb: nbformat.NotebookNode, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if _grade_id(c) == grade_id)


def _answers(release: nbformat.NotebookNode, assignment: str) -> dict[str, str]:
    """grade id -> the release cell with the instructor's solution filled in."""
    (source_path,) = (ROOT / "solutions" / assignment).glob("*.ipynb")
    instructor = {_grade_id(c): c for c in nbformat.read(source_path, as_version=4).cells if _grade_id(c)}
    return {
        _grade_id(c): fill(c.source, solution_bodies(instructor[_grade_id(c)].source))
        for c in release.cells
        if c.get("metadata", {}).get("nbgrader", {}).get("solution") and c.cell_type == "code"
    }


def _with_body(release_source: str, body: str) -> str:
    return fill(release_source, [body])


def _squash(text: str) -> str:
    """Output text with the wrapping of long lines undone."""
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_layers_stub_wrong_right_validate(student, tab, ui):
    """03_layers as a student works it in JupyterLab 4 / Notebook 7."""
    nb_ui, nb = _notebook(student, tab, ui, "03_layers")
    answer, check = _index(nb, "layers_Linear_backward"), _index(nb, "test_layers_Linear_backward")

    # Down to the first check: the stub's friendly message, not a traceback.
    nb_ui.run_through(check)
    shown = nb_ui.output_text(check)
    assert "Linear.backward is not implemented yet" in shown, shown
    assert "Traceback" not in shown, shown

    # A wrong answer typed in: the check names dL/dW (only), its worst entry, and draws it.
    wrong = _with_body(nb.cells[answer].source, WRONG_LINEAR)
    nb_ui.type_into(answer, wrong)
    assert nb_ui.source(answer).strip() == wrong.strip()
    nb_ui.run(answer)
    nb_ui.run(check)
    shown = _squash(nb_ui.output_text(check))
    assert "FAILED" in shown, shown
    assert re.search(r"dL/dW \(\d+, \d+\) is wrong: max relative error \S+ at index \(\d+, \d+\)", shown), shown
    assert re.search(r"yours -?[\d.]+, expected -?[\d.]+", shown), shown
    assert "dL/db" not in shown and "dL/dx" not in shown, shown
    pictures = nb_ui.shown_images(check)
    assert pictures and all(w > 200 and h > 100 for w, h in pictures), pictures

    # The right answer: the check passes, nothing on stderr, no picture of a failure.
    answers = _answers(nb, "03_layers")
    nb_ui.type_into(answer, answers["layers_Linear_backward"])
    nb_ui.run(answer)
    nb_ui.run(check)
    shown = nb_ui.output_text(check)
    assert re.search(r"Linear\.backward: all \d+ case\(s\) passed", shown), shown
    assert "FAILED" not in shown and not nb_ui.shown_images(check), shown

    # Every other answer typed in, then Validate (it saves the notebook first).
    for grade_id, source in answers.items():
        if grade_id != "layers_Linear_backward":
            nb_ui.type_into(_index(nb, grade_id), source)
    dialog = nb_ui.validate()
    assert "Success! Your notebook passes all the tests." in dialog, dialog
    assert not [e for e in tab.errors if e not in KNOWN_PAGE_ERRORS[ui]], tab.errors


def test_graphs_drawing_rendered(student, tab):
    """02_graphs: the computational graph of the first Value example is drawn, not blank."""
    nb_ui, nb = _notebook(student, tab, "lab", "02_graphs")
    drawing = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "draw_graph(" in c.source)
    nb_ui.run_through(drawing)
    assert "df/dx = -4" in nb_ui.output_text(drawing)
    pictures = nb_ui.shown_images(drawing)
    assert len(pictures) == 1 and pictures[0][0] > 300, pictures
    inked = nb_ui.cell(drawing).evaluate(
        """c => {
            const img = c.querySelector('.jp-OutputArea-output img');
            const canvas = document.createElement('canvas');
            canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
            const ctx = canvas.getContext('2d');
            ctx.drawImage(img, 0, 0);
            const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
            let dark = 0;
            for (let i = 0; i < px.length; i += 4) if (px[i] + px[i + 1] + px[i + 2] < 600) dark++;
            return dark / (canvas.width * canvas.height);
        }"""
    )
    assert inked > 0.01, f"the drawing is (almost) blank: {inked:.2%} of its pixels are not white"

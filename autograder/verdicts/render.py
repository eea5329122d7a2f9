"""What the graded notebook shows: each graded cell's verdict as its outputs, nothing hidden.

nbgrader's ``SaveAutoGrades`` scores a graded cell from its outputs alone, so
:func:`write_cell` writes the trusted verdict there: a stream when every check passed, an error
output with student-safe messages (which gradient, how far off, never the expected values) and,
for a visible check, its gradient-check picture, when one failed. :func:`copy_outputs` brings
back the outputs of the student's own cells from the notebook run, cleaned
(:func:`safe_outputs`); :func:`strip_hidden_tests` removes the hidden tests from the cells'
source, so that feedback never shows them (nbgrader issue 917).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import nbformat

from autograder.integration.metadata import is_test_cell
from autograder.verdicts.cells import MARKERS
from autograder.verdicts.channel import MAX_RESULT_BYTES
from autograder.verdicts.record import CellVerdict
from course.exercises.base import Verdict

__all__ = ["OUTPUT_TYPES", "copy_outputs", "picture", "safe_outputs", "strip_hidden_tests", "write_cell"]

#: The output records copied back from the notebook run (any other is dropped).
OUTPUT_TYPES = {"stream", "display_data", "execute_result", "error"}


def strip_hidden_tests(source: str) -> str:
    """Remove every region between the hidden-test markers, markers included."""
    kept, hidden = [], False
    for line in source.splitlines():
        if line.strip() == MARKERS[0]:
            hidden = True
        elif line.strip() == MARKERS[1]:
            hidden = False
        elif not hidden:
            kept.append(line)
    return "\n".join(kept).rstrip()


def safe_outputs(outputs) -> list:
    """Only well-formed output records of the known types are copied back into the notebook,
    with nothing that could run in a browser (:func:`autograder.host.sanitize.clean_outputs`)."""
    from autograder.host.sanitize import clean_outputs

    safe = []
    for out in outputs if isinstance(outputs, list) else []:
        if isinstance(out, dict) and out.get("output_type") in OUTPUT_TYPES:
            try:
                node = nbformat.from_dict(out)
                nbformat.validator.validate(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[node])]))
                safe.append(node)
            except Exception:  # noqa: BLE001 - a malformed output is dropped, not trusted
                continue
    return clean_outputs(safe)


def copy_outputs(nb: nbformat.NotebookNode, executed_path: Path) -> None:
    """Copy the outputs of the student's own cells from the executed copy, if it is sane."""
    try:
        if executed_path.stat().st_size > MAX_RESULT_BYTES:
            return
        executed = nbformat.read(str(executed_path), as_version=4)
    except Exception:  # noqa: BLE001 - no outputs is the safe answer
        return
    if len(executed.cells) != len(nb.cells):
        return
    for cell, ran in zip(nb.cells, executed.cells, strict=True):
        if cell.cell_type == "code" and not is_test_cell(cell):
            cell.outputs = safe_outputs(ran.get("outputs"))


def write_cell(cell, verdict: CellVerdict, verdicts: list[Verdict], visible: list[Verdict] | None = None) -> None:
    """Write a graded test cell's outputs: one line per exercise when it passed; otherwise the
    failure messages (never an expected value: :meth:`Verdict.message` with ``reveal=False``)
    and, for the first wrong gradient of a *visible* check, its gradient-check picture (the
    picture shows expected values, so hidden checks never get one)."""
    cell.execution_count = None
    names = list(dict.fromkeys(v.exercise for v in verdicts))
    if names:  # what the feedback calls the cell (autograder.integration.preprocessors.FeedbackCells)
        hidden = len(visible or []) < len(verdicts)
        cell.metadata["backprop_title"] = ", ".join(names) + (" (hidden checks)" if hidden else "")
    if verdict.passed:
        titles = sorted({v.exercise for v in verdicts})
        text = "".join(f"✓ {t}: all checks passed\n" for t in titles) or "✓ passed\n"
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        return
    cell.outputs = [
        nbformat.v4.new_output(
            "error",
            ename="GradCheckError",
            evalue="\n".join(verdict.messages),
            traceback=[
                "GradCheckError: some checks failed",
                *verdict.messages,
            ],
        )
    ]
    image = picture([v for v in visible or [] if not v.passed])
    if image is not None:
        cell.outputs.append(image)


def picture(failed: list[Verdict]) -> nbformat.NotebookNode | None:
    """The gradient-check picture of the first wrong gradient among ``failed``, as a PNG output."""
    wrong = [c for v in failed for c in v.checks if not c.passed and c.n_checked > 0 and c.analytic is not None]
    if not wrong:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        from course import plot

        fig = plot.gradient_check(wrong[0])
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        plt.close(fig)
    except Exception:  # noqa: BLE001 - a picture is a help, never a reason to fail grading
        return None
    data = {
        "image/png": base64.b64encode(buffer.getvalue()).decode("ascii"),
        "text/plain": f"<gradient check of {wrong[0].name}: analytic against numerical, entry by entry>",
    }
    return nbformat.v4.new_output("display_data", data=data)

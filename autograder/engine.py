"""The trusted half of grading: every verdict is decided here, never in the student's kernel.

:func:`grade` takes an nbgrader notebook whose graded test cells hold the instructor's source
(after nbgrader's ``OverwriteCells``), and

1. reads each graded test cell's ``check()`` calls (:mod:`autograder.cells`) and draws fresh
   cases for them from a secret seed (visible checks too: outputs hard-coded for the seeds a
   student saw earn nothing);
2. sends the student's notebook, with the graded test cells blanked, and the cases' plain
   arrays to the sandboxed worker (:mod:`autograder.worker`), which executes the notebook and
   then runs each case in the same kernel under a CPU limit of its own;
3. reads back only JSON and ``.npy`` bytes (never pickle), with size limits, and judges them
   in this process against numerical gradients of the reference implementation
   (:func:`course.exercises.base.judge_case`: type, dtype, shape, finiteness, values);
4. writes each graded cell's outcome as its outputs: a stream when every check passed, an
   error output with a student-safe message (which gradient, how far off, never the expected
   values) when one failed, so nbgrader's ``SaveAutoGrades`` scores the cell from this
   verdict alone; and removes the hidden-test regions from the cells' source, so feedback
   never shows hidden tests (nbgrader issue 917).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np

from course.exercises import get
from course.exercises.base import Case, Verdict, judge_case

from . import sandbox
from .cells import MARKERS, parse_test_cell

__all__ = ["CellVerdict", "GradingRun", "grade", "strip_hidden_tests"]

#: The largest file read back from the sandbox.
MAX_RESULT_BYTES = 64 * 2**20
OUTPUT_TYPES = {"stream", "display_data", "execute_result", "error"}


@dataclass
class CellVerdict:
    """The trusted outcome of one graded test cell."""

    grade_id: str
    passed: bool
    messages: list[str] = field(default_factory=list)


@dataclass
class GradingRun:
    verdicts: dict[str, CellVerdict]
    status: str
    sandboxed: bool
    notes: list[str] = field(default_factory=list)


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_test_cell(cell) -> bool:
    meta = _nbgrader(cell)
    return bool(meta.get("grade")) and not meta.get("solution")


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


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot send {type(value).__name__} to the sandbox")


def _read_json(path: Path) -> dict | None:
    try:
        if not path.is_file() or path.stat().st_size > MAX_RESULT_BYTES:
            return None
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _decode_result(record: dict | None) -> tuple[dict[str, bytes], list[str]] | None:
    """The worker's record as (encoded outputs, problems), or None if it is malformed."""
    if record is None:
        return None
    problems, outputs = record.get("problems"), record.get("outputs")
    if not isinstance(problems, list) or not isinstance(outputs, dict):
        return None
    try:
        encoded = {str(k): base64.b64decode(v, validate=True) for k, v in outputs.items() if isinstance(v, str)}
    except (binascii.Error, ValueError):
        return None
    return encoded, [str(p)[:500] for p in problems]


def _safe_outputs(outputs) -> list:
    """Only well-formed output records of the known types are copied back into the notebook."""
    safe = []
    for out in outputs if isinstance(outputs, list) else []:
        if isinstance(out, dict) and out.get("output_type") in OUTPUT_TYPES:
            try:
                node = nbformat.from_dict(out)
                nbformat.validator.validate(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[node])]))
                safe.append(node)
            except Exception:  # noqa: BLE001 - a malformed output is dropped, not trusted
                continue
    return safe


def grade(
    nb: nbformat.NotebookNode,
    *,
    workdir: str | Path,
    seed: int | None = None,
    cell_timeout: int = 60,
    cpu_seconds: int = 20,
    uid: int = sandbox.NOBODY,
    require_sandbox: bool = False,
    hidden_paths: tuple[str | Path, ...] = (),
) -> GradingRun:
    """Grade ``nb`` in place (see the module docstring); returns the verdict of every graded cell."""
    workdir = Path(workdir)
    rng = np.random.default_rng(secrets.randbits(64) if seed is None else seed)
    verdicts: dict[str, CellVerdict] = {}
    plan: list[tuple[int, str, list[tuple[str, object, Case, str]]]] = []  # cell index, grade id, checks
    (workdir / "cases").mkdir(parents=True, exist_ok=True)
    jobs = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not is_test_cell(cell):
            continue
        grade_id = _nbgrader(cell).get("grade_id", f"cell-{index}")
        try:
            calls = parse_test_cell(cell.source)
            checks = []
            for k, call in enumerate(calls):
                exercise = get(call.exercise)
                for i, case in enumerate(exercise.cases(rng, call.hidden)):
                    key = f"c{index}_{k}_{i}"
                    np.savez(workdir / "cases" / f"{key}.npz", **case.arrays)
                    jobs.append({"key": key, "exercise": call.exercise, "symbol": call.symbol,
                                 "label": case.label, "config": case.config})
                    checks.append((key, exercise, case, call.symbol))
        except (SyntaxError, ValueError, KeyError) as exc:
            verdicts[grade_id] = CellVerdict(grade_id, False, [f"this test cell cannot be graded: {exc}"])
            continue
        except Exception as exc:  # noqa: BLE001 - a fault of the grader's, reported loudly, never silent
            verdicts[grade_id] = CellVerdict(
                grade_id, False, [f"grader error while preparing this cell's checks ({type(exc).__name__}: {exc}); "
                                  "please tell your instructor"])
            continue
        plan.append((index, grade_id, checks))

    student = nbformat.from_dict(json.loads(json.dumps(nb)))  # a deep copy to send out
    for cell in student.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            if is_test_cell(cell):
                cell.source = ""  # hidden tests never reach the student's kernel
    nbformat.write(student, str(workdir / "notebook.ipynb"))
    job = {"checks": jobs, "cell_timeout": cell_timeout, "cpu_seconds": cpu_seconds,
           "case_wall_seconds": 3 * cpu_seconds}
    (workdir / "job.json").write_text(json.dumps(job, default=_json_default))
    shutil.copy(Path(__file__).with_name("worker.py"), workdir / "worker.py")

    n_code = sum(c.cell_type == "code" for c in nb.cells)
    limits = sandbox.Limits(
        cpu_seconds=cell_timeout * (n_code + 2) + cpu_seconds * len(jobs),
        wall_seconds=cell_timeout * (n_code + 2) + 3 * cpu_seconds * len(jobs) + 60,
    )
    result = sandbox.run([sys.executable, "worker.py"], workdir=workdir, limits=limits, uid=uid,
                         require_sandbox=require_sandbox, hidden=hidden_paths)
    status = (_read_json(workdir / "status.json") or {}).get("status")
    if not isinstance(status, str):
        status = "the sandbox was stopped (time or memory limit)" if result.timed_out or result.signal else (
            "the notebook could not be run")
    _copy_outputs(nb, workdir / "executed.ipynb")

    for index, grade_id, checks in plan:
        cell_verdicts: list[Verdict] = []
        for key, exercise, case, _symbol in checks:
            decoded = _decode_result(_read_json(workdir / "results" / f"{key}.json"))
            if decoded is None:
                verdict = exercise.verdict(case)
                reason = status if status != "ok" else "it ran past its CPU time limit or crashed"
                verdict.problems.append(f"this check did not finish: {reason}")
                cell_verdicts.append(verdict)
            else:
                cell_verdicts.append(judge_case(exercise, case, *decoded))
        verdicts[grade_id] = _cell_verdict(grade_id, cell_verdicts)
        _write_cell(nb.cells[index], verdicts[grade_id], cell_verdicts)
    planned = {index for index, _, _ in plan}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and is_test_cell(cell):
            cell.source = strip_hidden_tests(cell.source)
            grade_id = _nbgrader(cell).get("grade_id", f"cell-{index}")
            if index not in planned and grade_id in verdicts:  # a cell that could not be parsed
                _write_cell(cell, verdicts[grade_id], [])
    return GradingRun(verdicts, status, result.sandboxed, result.notes)


def _copy_outputs(nb: nbformat.NotebookNode, executed_path: Path) -> None:
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
            cell.outputs = _safe_outputs(ran.get("outputs"))


def _cell_verdict(grade_id: str, verdicts: list[Verdict]) -> CellVerdict:
    failed = [v for v in verdicts if not v.passed]
    return CellVerdict(grade_id, not failed, [v.message(reveal=False) for v in failed])


def _write_cell(cell, verdict: CellVerdict, verdicts: list[Verdict]) -> None:
    cell.execution_count = None
    if verdict.passed:
        titles = sorted({v.exercise for v in verdicts})
        text = "".join(f"✓ {t}: all checks passed\n" for t in titles) or "✓ passed\n"
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    else:
        cell.outputs = [
            nbformat.v4.new_output(
                "error", ename="GradCheckError", evalue="\n".join(verdict.messages), traceback=[
                    "GradCheckError: some checks failed", *verdict.messages,
                ],
            )
        ]

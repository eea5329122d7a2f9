"""`nbgrader validate`, as a student runs it on a copy of a release notebook: what it prints.

A finished notebook gets "Success!" and no warning of its own (nbgrader warned about every test
cell whose value it could not read as a partial grade); an unfinished or wrong one gets a few
readable lines per failing exercise, the check's message, and no traceback of the checker.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NBGRADER = Path(sys.executable).parent / "nbgrader"
SAMPLE = ROOT / "autograder" / "sample_class" / "03_layers"
#: Warnings that come from where the student runs nbgrader, not from the notebook: no course
#: configuration in the student's folder, and ipykernel's note on its local TCP transport.
ENVIRONMENT_WARNINGS = ("No nbgrader_config.py file found", "Kernel is running over TCP without encryption")
#: Lines a failing exercise may take in the report: its header, the cell, its message.
LINES_PER_FAILING_CELL = 16


def validate(notebook: Path, folder: Path) -> tuple[int, str]:
    """Run `nbgrader validate` on a copy of ``notebook`` in ``folder``, as a student would."""
    folder.mkdir()
    shutil.copy(notebook, folder / notebook.name)
    run = subprocess.run(
        [str(NBGRADER), "validate", notebook.name], cwd=folder, capture_output=True, text=True, timeout=600
    )
    return run.returncode, run.stdout + run.stderr


def own_warnings(output: str) -> list[str]:
    """The lines that warn about the notebook (a warning may continue on indented lines)."""
    return [ln for ln in output.splitlines() if "WARNING" in ln and not any(w in ln for w in ENVIRONMENT_WARNINGS)]


def test_own_warnings_sees_nbgraders_partial_credit_warning():
    line = "[ValidateApp | WARNING] Cell output is <2 of 2 case(s) passed>, which cannot be converted to"
    assert own_warnings(f"{line}\n[ValidateApp | WARNING] No nbgrader_config.py file found (rerun...)") == [line]


@pytest.mark.slow
def test_a_finished_notebook_validates_without_warnings(tmp_path):
    code, output = validate(SAMPLE / "perfect" / "layers.ipynb", tmp_path / "perfect")
    assert "Success! Your notebook passes all the tests." in output, output[-3000:]
    assert own_warnings(output) == [], output[-3000:]
    assert "cannot be converted to" not in output
    assert len(output.splitlines()) <= 1 + len(ENVIRONMENT_WARNINGS) + 2, output


@pytest.mark.slow
@pytest.mark.parametrize(
    ("notebook", "says"),
    [
        (ROOT / "notebooks" / "03_layers" / "layers.ipynb", "is not implemented yet"),
        (SAMPLE / "buggy" / "layers.ipynb", "hint:"),
    ],
    ids=["unfinished", "buggy"],
)
def test_a_failing_notebook_gets_a_few_readable_lines_per_failing_exercise(tmp_path, notebook, says):
    code, output = validate(notebook, tmp_path / "student")
    failed = re.search(r"VALIDATION FAILED ON (\d+) CELL", output)
    assert failed, output[-3000:]
    cells = int(failed.group(1))
    assert cells >= 1 and output.count("The following cell failed:") == cells
    assert own_warnings(output) == [], output[-3000:]
    assert "Traceback" not in output and not re.search(r"^\s*File /", output, flags=re.M), output[-3000:]
    assert says in output
    report = [ln for ln in output.split("VALIDATION FAILED", 1)[1].splitlines() if ln.strip() and set(ln) != {"="}]
    assert len(report) <= 1 + LINES_PER_FAILING_CELL * cells, output

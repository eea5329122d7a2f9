"""The Makefile's recipes, run against a stand-in virtualenv that only records what it is asked.

Nothing of the repository is rewritten: the Makefile is copied to a scratch folder with the
layout it expects (``solutions/``, ``autograder/``, ``.venv/bin``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def _fake_tree(tmp_path: Path, assignments: list[str]) -> Path:
    shutil.copyfile(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").write_text("")
    for name in assignments:
        (tmp_path / "solutions" / name).mkdir(parents=True)
    (tmp_path / "autograder" / "sample_class").mkdir(parents=True)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    log = tmp_path / "calls.log"
    for tool in ("nbgrader", "python"):
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $* (in $(pwd))" >> {log}\n')
        script.chmod(0o755)
    (tmp_path / ".venv" / ".installed").touch()
    earlier = (tmp_path / ".venv" / ".installed").stat().st_mtime - 10
    os.utime(tmp_path / "pyproject.toml", (earlier, earlier))  # installed: the recipe does not reinstall
    return log


@needs_make
def test_make_release_generates_every_assignment_then_the_sample_class(tmp_path):
    assignments = ["01_first", "02_second", "03_layers"]
    log = _fake_tree(tmp_path, assignments)
    result = subprocess.run(
        ["make", "--no-print-directory", "release"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    calls = log.read_text().splitlines()
    autograder, root = tmp_path / "autograder", tmp_path
    assert calls == [
        *(f"nbgrader generate_assignment {a} --force --no-db --log-level=WARN (in {autograder})" for a in assignments),
        f"python autograder/sample_class/make_sample_class.py (in {root})",
        f"python -m student.build --out dist/student (in {root})",
    ]

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


# make lint against a small tree of its own: the repository's real ruff and mypy with the
# repository's real settings (pyproject.toml), on a few files that are clean until one flaw is
# planted. Each flaw must make lint fail, and say which tool found it.
_CLEAN_MODULE = 'def double(x: int) -> int:\n    """Twice x."""\n    return 2 * x\n'
_LINT_FLAWS = {
    "type error": ("course/__init__.py", 'def double(x: int) -> str:\n    """Twice x."""\n    return 2 * x\n', "mypy"),
    "type error in the grader": ("autograder/__init__.py", "count: int = None\n", "mypy"),
    "unformatted": ("tests/test_double.py", "values = [1,2]\n", "ruff format --check"),
    "lint error": ("benchmarks/bench_double.py", "import os\n", "ruff check"),
}


def _lint_tree(tmp_path: Path) -> Path:
    shutil.copyfile(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copyfile(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for folder in ("course", "autograder", "tests", "benchmarks", "student"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text(_CLEAN_MODULE)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("ruff", "mypy"):
        (bin_dir / tool).symlink_to(ROOT / ".venv" / "bin" / tool)
    (tmp_path / ".venv" / ".installed").touch()
    earlier = (tmp_path / ".venv" / ".installed").stat().st_mtime - 10
    os.utime(tmp_path / "pyproject.toml", (earlier, earlier))  # installed: the recipe does not reinstall
    return tmp_path


def _make_lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "lint"], cwd=tree, capture_output=True, text=True, timeout=300
    )


needs_linters = pytest.mark.skipif(
    not all((ROOT / ".venv" / "bin" / tool).exists() for tool in ("ruff", "mypy")),
    reason="needs ruff and mypy in .venv (pip install -e '.[test]')",
)


@needs_make
@needs_linters
def test_make_lint_passes_a_clean_tree_and_runs_all_three_tools(tmp_path):
    result = _make_lint(_lint_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    ran = result.stdout
    assert "ruff check" in ran and "ruff format --check" in ran and "mypy course autograder" in ran, ran


@needs_make
@needs_linters
@pytest.mark.parametrize("flaw", list(_LINT_FLAWS))
def test_make_lint_fails_on_a_planted_flaw(tmp_path, flaw):
    path, text, tool = _LINT_FLAWS[flaw]
    tree = _lint_tree(tmp_path)
    (tree / path).write_text(text)
    result = _make_lint(tree)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    # The last command make ran is the tool that failed.
    last_command = [line for line in result.stdout.splitlines() if line.startswith(".venv/bin/")][-1]
    assert last_command.startswith(f".venv/bin/{tool} "), output
    assert Path(path).name in output, output


def test_ci_lints_before_it_tests():
    # `set -e` makes a failing `make lint` fail CI; it must come before the long `make test`.
    script = (ROOT / ".ci" / "run").read_text()
    commands = [line.strip() for line in script.splitlines() if line.strip().startswith("make ")]
    assert "set -euo pipefail" in script
    assert "make lint" in commands and "make test" in commands, commands
    assert commands.index("make lint") < commands.index("make test"), commands

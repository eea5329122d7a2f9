"""The grader's layout by side (CONTRIBUTING.md, "Where things are"), and the old module names.

Each rule here is one a change could quietly break: a script that runs inside the sandbox
importing the host's code (the package is not there inside), host code calling bubblewrap
past the sandbox's interface, a module left outside every side, an old import path
(``autograder.preprocessors.TrustedExecute`` in an instructor's configuration) no longer
importing.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import autograder
from autograder import _moved, sandbox
from autograder.sandbox import bubblewrap
from autograder.sandbox.backend import Backend, Result

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "autograder"
SIDES = ("host", "verdicts", "inside", "sandbox", "integration")
#: The files at the top of the package: the package itself, the command line, the old names,
#: and nbgrader's course configuration (nbgrader reads it from this folder).
TOP = {"__init__.py", "__main__.py", "_moved.py", "nbgrader_config.py"}
#: The sandbox's interface: what code outside ``autograder/sandbox`` may import of it.
INTERFACE = {"autograder.sandbox", "autograder.sandbox.backend", "autograder.sandbox.cgroup"}
#: The grader's modules before the split by side, as outside code imports them.
OLD_NAMES = (
    "allowlist cells cgroup checker cluster database demo engine engines export flags hand_grades "
    "hidden_tests lms mistakes pipeline pool preprocessors report roster sandbox sanitize "
    "similarity slicing submission withhold worker"
).split()


def _modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "sample_class" not in p.relative_to(PACKAGE).parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, with relative imports resolved against its package."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def test_every_module_of_the_grader_belongs_to_a_side() -> None:
    def placed(p: Path) -> bool:
        return p.name in TOP if p.parent == PACKAGE else p.relative_to(PACKAGE).parts[0] in SIDES

    loose = [str(p.relative_to(PACKAGE)) for p in _modules(PACKAGE) if not placed(p)]
    assert not loose, f"modules outside the sides {SIDES}: {loose} (see CONTRIBUTING.md)"


def test_the_scripts_that_run_inside_the_sandbox_import_nothing_of_the_grader() -> None:
    for path in _modules(PACKAGE / "inside"):
        if path.name == "__init__.py":
            continue
        grader = sorted(m for m in _imports(path) if m == "autograder" or m.startswith("autograder."))
        assert not grader, f"{path.name} imports {grader}: inside the sandbox autograder is not importable"


def test_host_code_reaches_bubblewrap_only_through_the_sandbox_interface() -> None:
    for path in _modules(PACKAGE):
        if path.relative_to(PACKAGE).parts[0] == "sandbox":
            continue
        inner = {m for m in _imports(path) if m.startswith("autograder.sandbox.") and m.count(".") == 2}
        past = sorted(inner - INTERFACE)
        assert not past, f"{path.relative_to(ROOT)} imports {past}; use autograder.sandbox (run, Limits, backend())"


def test_a_run_goes_through_the_backend_the_interface_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[tuple[str, ...], dict]] = []

    class Recording:
        name = "recording"

        def available(self) -> bool:
            return True

        def why_unavailable(self) -> str:
            return ""

        def run(self, argv, **options) -> Result:
            calls.append((tuple(argv), options))
            return Result(returncode=0, stdout=b"seen", stderr=b"")

    monkeypatch.setattr(sandbox, "backend", lambda: Recording())
    result = sandbox.run(["python", "-c", "pass"], workdir="/nowhere", limits=sandbox.Limits(cpu_seconds=3))
    assert result.stdout == b"seen"
    assert calls == [(("python", "-c", "pass"), {"workdir": "/nowhere", "limits": sandbox.Limits(cpu_seconds=3)})]


def test_bubblewrap_implements_the_backend_protocol() -> None:
    backend: Backend = sandbox.backend()
    assert backend is bubblewrap.BACKEND and backend.name == "bubblewrap"
    assert backend.available() == bubblewrap.bubblewrap_available()
    reason = backend.why_unavailable()
    assert "bubblewrap" in reason and "install" in reason


@pytest.mark.parametrize("name", OLD_NAMES)
def test_an_old_module_name_is_the_module_at_its_new_place(name: str) -> None:
    old = importlib.import_module(f"autograder.{name}")
    new = importlib.import_module(_moved.MOVED.get(name, f"autograder.{name}"))
    assert old is new
    assert getattr(autograder, name) is new


def test_old_names_import_in_a_fresh_interpreter_as_nbgrader_and_configurations_name_them() -> None:
    # traitlets' import_item, as nbgrader resolves a preprocessor or exporter given by name.
    code = (
        "from traitlets.utils.importstring import import_item\n"
        "from autograder.integration.preprocessors import TrustedExecute\n"
        "from autograder.host.export import CanvasExport\n"
        "assert import_item('autograder.preprocessors.TrustedExecute') is TrustedExecute\n"
        "assert import_item('autograder.export.CanvasExport') is CanvasExport\n"
        "from autograder.engine import GradingRun\n"
        "from autograder.pipeline import Settings, grade\n"
        "import autograder.submission as s, autograder.host.submission as h\n"
        "assert s is h\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr


def test_an_unknown_name_is_still_an_import_error() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("autograder.no_such_module")

"""The sealed student bundle (``make release`` / ``make student``: ``dist/student/``).

The bundle is built once per test session, by ``make release`` in a clean copy of the working
tree (tracked and new files, nothing that git ignores), and its wheel is installed alone into a
fresh virtual environment in which the instructor's ``course`` cannot be imported. There:

- every student notebook runs top to bottom and fails only at its stubs; with the solutions'
  answers spliced in, every visible check passes and every output matches the instructor's;
- no function that an exercise withholds or traps, nor any other function of the library,
  gives its body back (no source, no bytecode), and no installed file holds a line of a
  solution region or a solution / hidden-test marker;
- the hint that a submission calls the library's own answer still fires.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from autograder.sample_class.make_sample_class import make_notebook

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # student/ is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

from student.build import INSTRUCTOR_MARKERS, audit_notebooks, audit_wheel, compiled_modules  # noqa: E402

SOLUTIONS = sorted(ROOT.glob("solutions/[0-9]*/*.ipynb"))
ASSIGNMENTS = [p.parent.name for p in SOLUTIONS]
#: What the installed package must not contain (the release's ``check(..., hidden=True)`` text
#: is not among them: the library's docstrings describe that call).
FILE_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
SANITIZE = [
    (r"0x[0-9a-fA-F]+", "0xADDRESS"),
    (r"<matplotlib\.[^>]*>", "<MATPLOTLIB-OBJECT>"),
    (r"\d+(\.\d+)?\s?(s|ms|µs|seconds)\b", "TIME"),
]  # as tests/nbval_sanitize.cfg


@dataclass(frozen=True)
class Fresh:
    """A virtual environment holding the student wheel and nothing of the repository."""

    root: Path
    python: Path
    course: Path  # the installed package folder


def _clean_copy(dest: Path) -> Path:
    """The working tree as a clean clone would have it, plus new files: no ignored files."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest


@pytest.fixture(scope="session")
def released(tmp_path_factory) -> Path:
    """A clean copy of the tree after `make release` (the .venv is the repository's, not reinstalled)."""
    if shutil.which("make") is None or shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs make and a git checkout")
    tree = _clean_copy(tmp_path_factory.mktemp("clean") / "tree")
    assert not (tree / "dist").exists()
    result = subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "release"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return tree


@pytest.fixture(scope="session")
def bundle(released) -> Path:
    return released / "dist" / "student"


@pytest.fixture(scope="session")
def fresh(bundle, tmp_path_factory) -> Fresh:
    """The wheel installed alone (``--no-deps``) into a new venv; the dev venv's site-packages is
    made visible by a plain ``.pth`` line, which adds the folder without running its ``.pth``
    hooks, so NumPy and Jupyter are there and the instructor's editable ``course`` is not."""
    root = tmp_path_factory.mktemp("fresh") / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
    python = root / "bin" / "python"
    (wheel,) = bundle.glob("*.whl")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    site = Path(_fresh_run(python, root, "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    (site / "dev-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return Fresh(root, python, site / "course")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "JUPYTER", "MPL"))}


def _fresh_run(python: Path, cwd: Path, code: str, *args: str, timeout: int = 600) -> str:
    """Run ``code`` with the fresh interpreter in ``cwd`` (outside the repository); its stdout."""
    result = subprocess.run(
        [str(python), "-c", textwrap.dedent(code), *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout


# ----------------------------------------------------------------------------------------
# The build's own guards (fast)
# ----------------------------------------------------------------------------------------


def _wheel(tmp_path: Path, names: list[str]) -> Path:
    path = tmp_path / "x-0-cp311-cp311-linux_x86_64.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name in names:
            z.writestr(name, "x")
    return path


GOOD = [
    "course/__init__.py",
    "course/layers.cpython-311-x86_64-linux-gnu.so",
    "course/_data/digits.npz",
    "course/exercises/__init__.py",
    "course/exercises/base.cpython-311-x86_64-linux-gnu.so",
    "x-0.dist-info/RECORD",
]
COMPILED = ["course.exercises.base", "course.layers"]


def test_the_wheel_audit_accepts_extension_modules_inits_and_data(tmp_path):
    assert audit_wheel(_wheel(tmp_path, GOOD), COMPILED) == []


@pytest.mark.parametrize(
    "extra",
    [
        "course/layers.py",
        "course/layers.c",
        "course/exercises/base.pyx",
        "course/__pycache__/layers.cpython-311.pyc",
        "solutions/x.ipynb",
    ],
)
def test_the_wheel_audit_refuses_sources_bytecode_and_strays(tmp_path, extra):
    problems = audit_wheel(_wheel(tmp_path, [*GOOD, extra]), COMPILED)
    assert len(problems) == 1 and problems[0].startswith(extra), problems


def test_the_wheel_audit_refuses_a_module_left_uncompiled(tmp_path):
    names = [n for n in GOOD if "layers" not in n]
    assert audit_wheel(_wheel(tmp_path, names), COMPILED) == ["course.layers: no extension module"]


def test_every_module_but_the_inits_is_compiled_found_by_glob():
    modules = compiled_modules(ROOT / "course")
    on_disk = {p for p in (ROOT / "course").rglob("*.py") if "__pycache__" not in p.parts}
    assert len(modules) == len(on_disk) - len([p for p in on_disk if p.name == "__init__.py"])
    assert {"course.layers", "course.gradcheck", "course.exercises.base", "course.network"} <= set(modules)
    assert not any(m.endswith("__init__") for m in modules)


def test_a_release_notebook_with_instructor_text_is_refused(tmp_path):
    clean, leaky = tmp_path / "a.ipynb", tmp_path / "b.ipynb"
    clean.write_text('{"cells": []}')
    leaky.write_text('{"cells": ["### BEGIN HIDDEN TESTS"]}')
    assert audit_notebooks([clean]) == []
    assert audit_notebooks([leaky]) == [f"{leaky}: holds 'BEGIN HIDDEN TESTS'"]


# ----------------------------------------------------------------------------------------
# What make release writes
# ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_make_release_writes_the_student_bundle_from_a_clean_state(released, bundle):
    ignored = subprocess.run(["git", "check-ignore", "-q", "dist/student/README.md"], cwd=ROOT)
    assert ignored.returncode == 0, "dist/ must be in .gitignore: make release builds it, nobody commits it"
    expected = {f"{p.parent.name}/{p.name}" for p in SOLUTIONS}
    found = {f"{p.parent.name}/{p.name}" for p in bundle.glob("*/*.ipynb")}
    assert found == expected
    for name in expected:  # the bundle's notebooks are the release make release regenerated
        assert (bundle / name).read_bytes() == (released / "notebooks" / name).read_bytes()
    (wheel,) = bundle.glob("*.whl")
    assert wheel.name.endswith(f"-cp{sys.version_info.major}{sys.version_info.minor}-linux_x86_64.whl")
    readme = (bundle / "README.md").read_text()
    assert f'"./{wheel.name}[lab]"' in readme and "nbgrader validate" in readme
    everything = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    assert everything == expected | {wheel.name, "README.md"}, "the bundle holds only notebooks, wheel, README"
    assert audit_notebooks(sorted(bundle.glob("*/*.ipynb"))) == []
    with zipfile.ZipFile(wheel) as z:
        metadata = z.read(next(n for n in z.namelist() if n.endswith("METADATA"))).decode()
    for package in ("jupyterlab", "notebook", "nbgrader"):
        assert re.search(rf"^Requires-Dist: {package}\b.*extra == \"lab\"", metadata, flags=re.M), package


def test_make_student_builds_just_the_bundle(tmp_path):
    """`make student` runs the bundle build alone (a stand-in python records the call)."""
    if shutil.which("make") is None:
        pytest.skip("needs GNU make")
    shutil.copyfile(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "solutions" / "01_first").mkdir(parents=True)
    log, bin_dir = tmp_path / "calls.log", tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", "nbgrader"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n')
        (bin_dir / tool).chmod(0o755)
    stamp = tmp_path / ".venv" / ".installed"
    stamp.touch()
    earlier = stamp.stat().st_mtime - 10
    os.utime(tmp_path / "pyproject.toml", (earlier, earlier))
    result = subprocess.run(["make", "--no-print-directory", "student"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert log.read_text().splitlines() == ["python -m student.build --out dist/student"]


# ----------------------------------------------------------------------------------------
# The fresh environment
# ----------------------------------------------------------------------------------------

WHERE = """
import importlib.util, json, sys
from pathlib import Path
import course
print(json.dumps({"course": course.__file__, "path": sys.path,
                  "autograder": importlib.util.find_spec("autograder") is not None}))
"""


@pytest.mark.slow
def test_the_fresh_environment_imports_the_student_edition_only(fresh, tmp_path):
    where = json.loads(_fresh_run(fresh.python, tmp_path, WHERE))
    assert Path(where["course"]).parent == fresh.course
    assert not where["autograder"], "the instructor's grader is importable in the fresh environment"
    for entry in where["path"]:
        folder = Path(entry or tmp_path).resolve()
        assert folder != ROOT and ROOT not in folder.parents or ".venv" in folder.parts, entry
        if folder != fresh.course.parent:
            assert not (folder / "course").exists(), f"another course package on sys.path: {entry}"


# ----------------------------------------------------------------------------------------
# The notebooks, with the student edition
# ----------------------------------------------------------------------------------------

RUNNER = """
import asyncio, json, sys
import nbformat
from nbclient import NotebookClient

async def run(job):
    nb = nbformat.read(job["notebook"], as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys, course\\nprint(course.__file__)\\nprint(sys.executable)"))
    client = NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": job["cwd"]}})
    await client.async_execute()
    nbformat.write(nb, job["out"])

async def main():  # the notebooks side by side, a kernel each
    await asyncio.gather(*(run(job) for job in json.loads(open(sys.argv[1]).read())))

asyncio.run(main())
"""


def _errors(nb) -> list[tuple[int, str, str]]:
    return [
        (i, out.get("ename", ""), out.get("evalue", "")[:300])
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _text(cell) -> str:
    """A cell's printed and plain-text outputs, sanitised like nbval's."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
    text = "".join(parts)
    for pattern, replacement in SANITIZE:
        text = re.sub(pattern, replacement, text)
    return text


def _ran_in(nb, fresh: Fresh) -> None:
    course_file, executable = nb.cells[-1].outputs[0]["text"].split()
    assert Path(course_file).parent == fresh.course and Path(executable).parent == fresh.python.parent


@pytest.mark.slow
@pytest.mark.parametrize("source", SOLUTIONS, ids=ASSIGNMENTS)
def test_notebooks_run_with_the_student_edition(source, bundle, fresh, tmp_path):
    """Check that the student notebook fails only at its stubs, and that with the instructor's
    answers spliced in every visible check passes and every output is the instructor's."""
    name = f"{source.parent.name}/{source.name}"
    release = nbformat.read(str(bundle / name), as_version=4)
    instructor = nbformat.read(str(source), as_version=4)
    answers = {_meta(c)["grade_id"]: "solution" for c in instructor.cells if _meta(c).get("solution")}
    assert answers
    work = tmp_path / source.parent.name
    work.mkdir()
    shutil.copyfile(bundle / name, work / "student.ipynb")
    nbformat.write(make_notebook(release, instructor, answers), str(work / "answered.ipynb"))
    jobs = [
        {"notebook": str(work / f"{kind}.ipynb"), "out": str(work / f"{kind}.out.ipynb"), "cwd": str(work)}
        for kind in ("student", "answered")
    ]
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    _fresh_run(fresh.python, tmp_path, RUNNER, str(tmp_path / "jobs.json"), timeout=900)

    stubbed = nbformat.read(str(work / "student.out.ipynb"), as_version=4)
    _ran_in(stubbed, fresh)
    found = _errors(stubbed)
    assert found and all(ename in ("NotImplementedError", "NotImplementedYet") for _, ename, _ in found), found
    failed = {i for i, _, _ in found}
    for i, cell in enumerate(stubbed.cells):
        if _meta(cell).get("grade") and cell.cell_type == "code" and "check(" in cell.source:
            assert i in failed, f"visible test {_meta(cell)['grade_id']} passes on a stub"

    answered = nbformat.read(str(work / "answered.out.ipynb"), as_version=4)
    _ran_in(answered, fresh)
    assert _errors(answered) == []
    checks = [c for c in answered.cells if _meta(c).get("grade") and c.cell_type == "code" and "check(" in c.source]
    assert checks
    for cell in checks:
        assert "✓" in _text(cell) and "FAILED" not in _text(cell), (_meta(cell)["grade_id"], _text(cell))
    # Every output of a cell the release shares with the instructor's notebook is the same.
    expected = {c.get("id"): c for c in instructor.cells if c.cell_type == "code"}
    compared = 0
    for cell in answered.cells[:-1]:
        theirs = expected.get(cell.get("id"))
        if cell.cell_type != "code" or theirs is None or "hidden=True" in theirs.source:
            continue
        assert _text(cell) == _text(theirs), f"cell {cell.get('id')} of {name}:\n{cell.source[:300]}"
        compared += 1
    assert compared >= len(checks)


# ----------------------------------------------------------------------------------------
# Nothing gives an answer back
# ----------------------------------------------------------------------------------------

#: Walks the installed package in the fresh interpreter and reports, as JSON, every function
#: it reaches (module functions, methods, properties, closures that Value operations store,
#: and what the exercises trap, withhold and need) with what inspection gives back.
PROBE = r"""
import dis, importlib, inspect, json, pkgutil, sys, types
import course, course.exercises
from course.exercises import REGISTRY
from IPython.core.interactiveshell import InteractiveShell

inspector = InteractiveShell.instance().inspector  # what ``??`` shows

found = {}

def unwrap(obj):
    for attr in ("__func__", "fget"):
        obj = getattr(obj, attr, obj)
    return obj

def add(label, fn):
    fn = unwrap(fn)
    if not callable(fn) or label in found or isinstance(fn, type):
        return
    wrapped = fn
    fn = inspect.unwrap(fn)  # what functools.wraps hides: a contextmanager's generator function
    code = getattr(fn, "__code__", None)
    entry = {"type": type(fn).__name__, "module": getattr(fn, "__module__", None)}
    try:
        entry["source"] = inspect.getsource(fn)
    except (TypeError, OSError) as exc:
        entry["source"] = None
    if code is not None:
        entry["co_filename"] = code.co_filename
        entry["co_code_nonzero"] = any(code.co_code)
        entry["co_names"] = list(code.co_names)
        entry["co_consts"] = [repr(c) for c in code.co_consts]
        entry["ops"] = sorted({i.opname for i in dis.get_instructions(code)} - {"CACHE", "RESUME", "NOP"})
        try:
            entry["code_source"] = inspect.getsource(code)
        except (TypeError, OSError):
            entry["code_source"] = None
    entry["wrapped"] = wrapped is not fn
    entry["ipython"] = inspector.info(fn, detail_level=1).get("source")
    found[label] = entry

classes = []
modules = [importlib.import_module(m.name) for m in pkgutil.walk_packages(course.__path__, "course.")]
for module in [course, *modules]:
    for name, obj in vars(module).items():
        if isinstance(obj, type) and obj.__module__ == module.__name__:
            classes.append(obj)
            for attr, member in vars(obj).items():
                if callable(unwrap(member)) and not isinstance(unwrap(member), type):
                    add(f"{module.__name__}.{obj.__qualname__}.{attr}", member)
        elif callable(obj) and getattr(obj, "__module__", None) == module.__name__:
            add(f"{module.__name__}.{name}", obj)

# The closures Value's operations store as _backward.
a, b = course.Value(0.7), course.Value(-0.4)
for attr in sorted(vars(course.Value)):
    member = getattr(a, attr)
    if not callable(member) or attr in ("backward", "__init__") or attr.startswith("__r") and attr != "__repr__":
        continue
    for args in ((b,), (2.0,), ()):
        try:
            out = member(*args)
        except Exception:
            continue
        if isinstance(out, course.Value):
            add(f"closure:Value.{attr}._backward", out._backward)
            break

# What the exercises trap, withhold and need.
from course.exercises.base import reference_function
graded = {}
for exercise in REGISTRY.values():
    for owner, attr in [*exercise.traps, *exercise.withheld, *exercise.needs]:
        fn = reference_function(owner, attr)
        if isinstance(owner, types.ModuleType):
            label = f"{owner.__name__}.{attr}"
        else:
            label = f"{owner.__module__}.{owner.__qualname__}.{attr}"
        add(label, fn)
        graded[label] = exercise.name

class_sources = {}
for cls in classes:
    try:
        class_sources[cls.__qualname__] = inspect.getsource(cls)
    except (TypeError, OSError):
        class_sources[cls.__qualname__] = None
import sysconfig
stdlib = sysconfig.get_paths()["stdlib"]
print(json.dumps({"stdlib": stdlib, "functions": found, "graded": graded, "class_sources": class_sources}))
"""


@pytest.fixture(scope="session")
def probe(fresh, tmp_path_factory) -> dict:
    return json.loads(_fresh_run(fresh.python, tmp_path_factory.mktemp("probe"), PROBE))


#: The methods that ``@dataclass`` writes (as Python source, at import time).
DATACLASS_METHODS = {
    "__init__",
    "__repr__",
    "__eq__",
    "__hash__",
    "__setattr__",
    "__delattr__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__getstate__",
    "__setstate__",
}
#: Library functions that compute a derivative, gradient or update, by name.
DERIVATIVE = re.compile(r"(\.backward|\.grad|_grad|\.step|_backward|\.loss)$")


@pytest.mark.slow
def test_no_function_of_the_library_gives_its_body_back(probe):
    functions, graded = probe["functions"], probe["graded"]
    # The walk reaches what it must (a broken walk would make the rest vacuous).
    derivative = [label for label in functions if DERIVATIVE.search(label)]
    must = [
        "course.layers.Linear.backward",
        "course.optim.Adam.step",
        "course.network.TwoLayerNet.loss",
        "course.gradcheck.numerical_gradient",
        "course.activations.sigmoid_grad",
        "course.losses.L2.grad",
        "closure:Value.__add__._backward",
        "closure:Value.__mul__._backward",
        "closure:Value.tanh._backward",
    ]
    for label in must:
        assert label in functions, f"{label} was not reached; reached: {sorted(functions)[:20]}..."
    assert len(derivative) >= 40 and len(graded) >= 40, (len(derivative), len(graded))
    assert any(
        label.startswith("course.exercises.") and label.rsplit(".", 1)[1].startswith("_") for label in functions
    ), "private helpers of course.exercises were not reached"
    leaks = {}
    for label, entry in functions.items():
        filename = entry.get("co_filename", "course/")
        if filename == "<string>" and label.rsplit(".", 1)[1] in DATACLASS_METHODS:
            continue  # written by @dataclass when the module is imported: field assignments, no answer
        if filename.startswith(probe["stdlib"] + "/"):
            continue  # a wrapper of the standard library's (reprlib.recursive_repr of a dataclass)
        problems = []
        if entry["source"]:
            problems.append("inspect.getsource gives source")
        if entry.get("code_source"):
            problems.append("inspect.getsource(__code__) gives source")
        if entry["ipython"]:
            problems.append("?? gives source")
        if "co_code_nonzero" in entry:
            if entry["co_code_nonzero"] or entry["ops"]:
                problems.append(f"__code__ holds bytecode: {entry['ops'][:5]}")
            if entry["co_names"]:
                problems.append(f"__code__ names {entry['co_names'][:5]}")
            if set(entry["co_consts"]) - {"None"}:
                problems.append(f"__code__ holds constants {entry['co_consts'][:3]}")
        if problems:
            leaks[label] = problems
    assert not leaks, dict(list(leaks.items())[:10])
    readable = [name for name, source in probe["class_sources"].items() if source]
    assert not readable, f"inspect.getsource gives the source of {readable[:5]}"


def _solution_lines() -> set[bytes]:
    """Every line (whitespace removed, at least 12 characters) of a solution region of the
    instructor's notebooks that the notebook does not also give away outside those regions."""
    inside, outside = set(), set()
    for source in SOLUTIONS:
        for cell in nbformat.read(str(source), as_version=4).cells:
            for block in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, flags=re.S):
                inside |= {re.sub(r"\s+", "", line) for line in block.splitlines()}
            rest = re.sub(r"### BEGIN SOLUTION\n.*?### END SOLUTION", "", cell.source, flags=re.S)
            outside |= {re.sub(r"\s+", "", line) for line in rest.splitlines()}
    return {line.encode() for line in inside - outside if len(line) >= 12}


def _leaks(folder: Path, lines: set[bytes]) -> dict[str, list[str]]:
    """File -> solution lines or instructor markers found in it (binary files included)."""
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        squeezed = re.sub(rb"\s+", b"", raw)
        hits = [line.decode() for line in lines if line in squeezed]
        hits += [marker for marker in FILE_MARKERS if marker.encode() in raw]
        if hits:
            found[path.relative_to(folder).as_posix()] = hits[:3]
    return found


@pytest.mark.slow
def test_no_installed_file_holds_an_answer(fresh):
    lines = _solution_lines()
    assert len(lines) > 100, len(lines)
    files = [p.relative_to(fresh.course) for p in fresh.course.rglob("*") if p.is_file()]
    # pip compiles the __init__.py files it installs: their bytecode is no more than their source
    sources = sorted(
        str(p) for p in files if p.suffix in (".py", ".pyx", ".c", ".pyc") and not p.name.startswith("__init__.")
    )
    assert not sources, f"sources or bytecode installed: {sources}"
    assert not _leaks(fresh.course, lines)


def test_the_leak_scan_finds_an_answer_shipped_as_source(tmp_path):
    """The scan above fails on a plausible mistake: a module installed as its .py file."""
    (tmp_path / "layers.py").write_bytes((ROOT / "course" / "layers.py").read_bytes())
    (tmp_path / "data.bin").write_bytes(b"\x00\x01 harmless \x7f")
    assert list(_leaks(tmp_path, _solution_lines())) == ["layers.py"]


@pytest.mark.slow
def test_the_bundle_notebooks_hold_no_answer(bundle):
    """No line of a solution region is a line of a bundled notebook; no instructor marker."""
    lines = {line.decode() for line in _solution_lines()}
    for path in sorted(bundle.glob("*/*.ipynb")):
        text = path.read_text()
        assert not [m for m in INSTRUCTOR_MARKERS if m in text], path
        cells = nbformat.reads(text, as_version=4).cells
        given = {re.sub(r"\s+", "", line) for cell in cells for line in cell.source.splitlines()}
        assert not (given & lines), (path, sorted(given & lines)[:3])


# ----------------------------------------------------------------------------------------
# Honest students are still told
# ----------------------------------------------------------------------------------------

HINT = r"""
import json
import numpy as np
import course
from course.exercises import REGISTRY, check
from course.exercises.base import reference_function, run_case
from course.gradcheck import GradCheckError

# A stub whose backward delegates to the library's, as an honest student might write it.
class Linear(course.Linear):
    def backward(self, grad_out):
        return super().backward(grad_out)

try:
    check("layers.Linear.backward", Linear)
    message = "passed"
except GradCheckError as exc:
    message = str(exc)

# The library's own implementation handed in as the answer to every exercise.
caught = {}
for name, exercise in REGISTRY.items():
    if not exercise.traps:  # a question (course.exercises.questions): no library code answers it
        continue
    owner, attr = exercise.traps[0]
    student = owner if isinstance(owner, type) else reference_function(owner, attr)
    case = exercise.cases(np.random.default_rng(0), False)[0]
    _, problems = run_case(exercise, student, case)
    caught[name] = any("called the reference implementation" in p for p in problems)
print(json.dumps({"message": message, "caught": caught}))
"""


@pytest.mark.slow
def test_the_delegation_hint_fires_with_the_compiled_edition(fresh, tmp_path):
    result = json.loads(_fresh_run(fresh.python, tmp_path, HINT))
    assert "called the reference implementation (Linear.backward): no credit" in result["message"]
    missed = [name for name, caught in result["caught"].items() if not caught]
    assert len(result["caught"]) >= 30 and not missed, f"delegation not pointed out for {missed}"

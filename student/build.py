"""Build the student bundle: what an instructor hands out, holding no answers.

    python -m student.build                    # writes dist/student/ (make student)
    python -m student.build --out DIR --jobs 2
    python -m student.build --stage DIR        # only the build folder, for cibuildwheel

The bundle (``dist/student/``) holds

- the release notebooks, ``<assignment>/<notebook>.ipynb``, copied from ``notebooks/``;
- the student edition of the library, a wheel (``*.whl``): the ``course`` package with every
  module but the ``__init__.py`` files compiled by Cython into an extension module, so that no
  source, no bytecode and no C (which quotes the source) of them ships, and the data in
  ``course/_data/``;
- ``README.md``, for students: install, open, validate.

No ``solutions/``, hidden tests, instructor notes or grader. The wheel is built offline with
the Cython, setuptools and wheel of the running interpreter (``pip wheel
--no-build-isolation``), for this platform and this Python. The build refuses to finish when
the wheel or the notebooks hold anything they must not (:func:`audit_wheel`,
:func:`audit_notebooks`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from string import Template

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the copy that pip vendors
    from pip._vendor import tomli as tomllib

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PACKAGE = "course"
DISTRIBUTION = "backprop-course-student"
#: The packages of the ``lab`` extra: JupyterLab, Notebook 7, nbgrader (the Validate button)
#: and the kernel, with the version pins of the project's ``jupyter`` extra.
LAB = ("jupyterlab", "notebook", "nbgrader", "ipykernel")
#: Text that only the instructor's notebooks hold; a release notebook containing any is refused.
INSTRUCTOR_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "hidden=True")
#: A marker in the bundle's README: the folder may be wiped and rebuilt.
BUNDLE_MARKER = "# Backprop: the student bundle"


class BundleError(RuntimeError):
    """The bundle could not be built, or would have held something it must not."""


@dataclass(frozen=True)
class Bundle:
    """What :func:`build` wrote."""

    root: Path
    wheel: Path
    notebooks: tuple[Path, ...]
    readme: Path


def compiled_modules(package_dir: Path) -> list[str]:
    """Dotted names of the modules that the student edition compiles: every ``.py`` file under
    ``package_dir`` but the ``__init__.py`` files, found by glob (never a fixed list)."""
    base = package_dir.parent
    return sorted(
        ".".join(p.relative_to(base).with_suffix("").parts)
        for p in package_dir.rglob("*.py")
        if p.name != "__init__.py" and "__pycache__" not in p.parts
    )


def _project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()


def _settings() -> dict[str, object]:
    """The metadata :file:`student/setup.py` reads (``student.json``), from pyproject.toml."""
    project = _project()
    jupyter = project["optional-dependencies"]["jupyter"]
    lab = [r for name in LAB for r in jupyter if _requirement_name(r) == name] or list(LAB)
    return {
        "name": DISTRIBUTION,
        "version": project["version"],
        "requires_python": project.get("requires-python", ""),
        "requires": project.get("dependencies", []),
        "lab": lab,
    }


def stage(staging: Path, *, jobs: int = 2) -> Path:
    """Write a folder that builds the student wheel on its own (``pip wheel``, or cibuildwheel
    for other platforms): a copy of the package (sources and data only), the setup script,
    its settings and a pyproject.toml naming the build requirements."""
    shutil.copytree(
        ROOT / PACKAGE,
        staging / PACKAGE,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.c", "*.pyx", ".ipynb_checkpoints"),
    )
    shutil.copyfile(HERE / "setup.py", staging / "setup.py")
    (staging / "student.json").write_text(json.dumps(_settings(), indent=2) + "\n")
    (staging / "setup.cfg").write_text(f"[build_ext]\nparallel = {jobs}\n")
    (staging / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68", "wheel", "Cython>=3.0"]\n'
        'build-backend = "setuptools.build_meta"\n'
    )
    return staging


def build_wheel(dest: Path, *, jobs: int = 2) -> Path:
    """Compile the student edition of ``course`` and write its wheel into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="student-build-") as tmp:
        staging = stage(Path(tmp) / "src", jobs=jobs)
        # -O1: the library's time goes into NumPy, not into the compiled Python; -g0 and -s: no
        # debug information (file and line tables) and no symbol table in the extension modules.
        env = {
            **os.environ,
            "STUDENT_JOBS": str(jobs),
            "CFLAGS": "-O1 -g0",
            "LDFLAGS": "-s",
            "PIP_NO_INDEX": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        wheels = Path(tmp) / "wheels"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-build-isolation",
                "--no-deps",
                "--quiet",
                "--wheel-dir",
                str(wheels),
                str(staging),
            ],
            cwd=staging,
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise BundleError(f"building the student wheel failed:\n{result.stdout}\n{result.stderr}")
        (built,) = wheels.glob("*.whl")
        problems = audit_wheel(built, compiled_modules(staging / PACKAGE))
        if problems:
            raise BundleError("the student wheel would ship what it must not:\n  " + "\n  ".join(problems))
        target = dest / built.name
        shutil.copyfile(built, target)
    return target


def audit_wheel(wheel: Path, compiled: list[str]) -> list[str]:
    """What is wrong with the wheel: a file other than an extension module, an ``__init__.py``,
    package data or metadata; or a compiled module that is missing."""
    problems, extensions = [], set()
    for name in zipfile.ZipFile(wheel).namelist():
        parts = name.split("/")
        if parts[0].endswith(".dist-info"):
            continue
        if parts[0] != PACKAGE:
            problems.append(f"{name}: outside the {PACKAGE} package")
        elif name.startswith(f"{PACKAGE}/_data/") and not name.endswith((".py", ".pyc", ".c", ".pyx")):
            continue
        elif parts[-1] == "__init__.py":
            continue
        elif name.endswith(".so") and "__pycache__" not in parts:
            extensions.add(".".join(parts[:-1] + [parts[-1].split(".")[0]]))
        else:
            problems.append(f"{name}: not an extension module, an __init__.py or package data")
    problems += [f"{module}: no extension module" for module in sorted(set(compiled) - extensions)]
    return problems


def audit_notebooks(paths: list[Path]) -> list[str]:
    """Release notebooks holding instructor-only text (solution or hidden-test regions)."""
    problems = []
    for path in paths:
        text = path.read_text()
        problems += [f"{path}: holds {marker!r}" for marker in INSTRUCTOR_MARKERS if marker in text]
    return problems


def copy_notebooks(release: Path, dest: Path) -> tuple[Path, ...]:
    """Copy ``release/<assignment>/*.ipynb`` (nothing else) into ``dest/<assignment>/``."""
    sources = sorted(release.glob("[0-9]*/*.ipynb"))
    if not sources:
        raise BundleError(f"no release notebooks in {release}: run `make release`")
    problems = audit_notebooks(sources)
    if problems:
        raise BundleError("the release holds instructor-only text:\n  " + "\n  ".join(problems))
    written = []
    for source in sources:
        target = dest / source.parent.name / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(target)
    return tuple(written)


def write_readme(dest: Path, wheel: Path, notebooks: tuple[Path, ...]) -> Path:
    """The students' README, from :file:`student/README_template.md`."""
    text = Template((HERE / "README_template.md").read_text()).substitute(
        wheel=wheel.name,
        python=f"{sys.version_info.major}.{sys.version_info.minor}",
        platform=f"{platform.system()} {platform.machine()}",
        first_assignment=notebooks[0].parent.name,
        first_notebook=notebooks[0].name,
        last_assignment=notebooks[-1].parent.name,
    )
    readme = dest / "README.md"
    readme.write_text(text)
    return readme


def _clear(dest: Path) -> None:
    """Remove an earlier bundle at ``dest``; refuse to wipe a folder that is not one."""
    if not dest.exists():
        return
    readme = dest / "README.md"
    ours = readme.is_file() and readme.read_text().startswith(BUNDLE_MARKER)
    if any(dest.iterdir()) and not ours:
        raise BundleError(f"{dest} exists and is not a student bundle: not overwriting it")
    shutil.rmtree(dest)


def build(dest: Path, *, release: Path | None = None, jobs: int = 2) -> Bundle:
    """Write the student bundle into ``dest`` (replacing an earlier one) from the release
    notebooks in ``release`` (default ``notebooks/``) and the current ``course/``."""
    release = ROOT / "notebooks" if release is None else release
    _clear(dest)
    dest.mkdir(parents=True)
    notebooks = copy_notebooks(release, dest)
    wheel = build_wheel(dest, jobs=jobs)
    readme = write_readme(dest, wheel, notebooks)
    return Bundle(dest, wheel, notebooks, readme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "student", help="default: dist/student")
    parser.add_argument("--release", type=Path, default=ROOT / "notebooks", help="default: notebooks/")
    parser.add_argument("--jobs", type=int, default=2, help="parallel compile jobs (default 2)")
    parser.add_argument(
        "--stage",
        type=Path,
        metavar="DIR",
        help="only write a folder that builds the wheel on its own (for cibuildwheel) and stop",
    )
    args = parser.parse_args(argv)
    if args.stage is not None:
        if args.stage.exists():
            print(f"error: {args.stage} exists", file=sys.stderr)
            return 1
        print(f"wrote {stage(args.stage.resolve(), jobs=args.jobs)}: build it with pip wheel or cibuildwheel")
        return 0
    try:
        bundle = build(args.out.resolve(), release=args.release.resolve(), jobs=args.jobs)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {bundle.root}: {len(bundle.notebooks)} notebooks, {bundle.wheel.name}, README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

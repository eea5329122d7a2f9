"""setuptools script of the student edition, run by :mod:`student.build` in a staging folder.

The staging folder holds a copy of ``course/`` and this file. Every module of the package
except the ``__init__.py`` files is compiled with Cython; the wheel ships the extension
modules, the ``__init__.py`` files and ``course/_data/*``, and none of the compiled modules'
``.py`` or ``.c`` files (the C that Cython writes quotes the source in comments).

The distribution's metadata (name, version, requirements, the ``lab`` extra), taken from the
project's pyproject.toml, is in ``student.json`` next to this file, written by
:mod:`student.build`; so the staging folder builds on its own, with pip or with cibuildwheel.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SETTINGS = json.loads((HERE / "student.json").read_text())

#: Cython settings. ``annotation_typing=False`` keeps type hints hints (with them, a
#: ``x: float`` argument would become a C double and refuse what Python accepts), and
#: ``profile=True`` gives compiled functions the profile events that ``trapped()`` watches.
DIRECTIVES = {
    "language_level": 3,
    "binding": True,
    "embedsignature": True,
    "annotation_typing": False,
    "profile": True,
}


def compiled_modules(package: str = "course") -> list[str]:
    """Dotted names of every module of ``package`` but the ``__init__`` files, found by glob."""
    return sorted(
        ".".join(p.relative_to(HERE).with_suffix("").parts)
        for p in (HERE / package).rglob("*.py")
        if p.name != "__init__.py" and "__pycache__" not in p.parts
    )


COMPILED = compiled_modules()


class BuildPyWithoutCompiledSources(build_py):
    """``build_py`` that leaves out the source of every module compiled into an extension."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        return [(pkg, mod, path) for pkg, mod, path in modules if f"{pkg}.{mod}" not in COMPILED]


packages = sorted({name.rsplit(".", 1)[0] for name in COMPILED} | {"course"})
extensions = cythonize(
    [str(Path(*name.split(".")).with_suffix(".py")) for name in COMPILED],
    compiler_directives=DIRECTIVES,
    nthreads=int(os.environ.get("STUDENT_JOBS", "2")),  # Cython's own parallel jobs
    quiet=True,
)

setup(
    name=SETTINGS["name"],
    version=SETTINGS["version"],
    description="The backpropagation course's library, student edition (compiled: it holds no answers).",
    python_requires=SETTINGS["requires_python"],
    install_requires=SETTINGS["requires"],
    extras_require={"lab": SETTINGS["lab"]},
    packages=packages,
    package_data={"course": ["_data/*"]},
    include_package_data=False,
    ext_modules=extensions,
    cmdclass={"build_py": BuildPyWithoutCompiledSources},
    zip_safe=False,
)

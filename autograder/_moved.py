"""The grader's module names from before it was split by side (``autograder.engine``, …).

Configurations and scripts outside this repository name them (an instructor's
``nbgrader_config.py`` with ``autograder.preprocessors.TrustedExecute``, an exporter
``autograder.export.CanvasExport``): importing an old name gives the module at its new place,
the same module object, so settings and patches apply to both names.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

#: Old name under ``autograder.`` → where the module is now.
MOVED = {
    **{
        m: f"autograder.host.{m}"
        for m in (
            "cluster",
            "database",
            "demo",
            "engines",
            "export",
            "flags",
            "hand_grades",
            "lms",
            "mistakes",
            "pipeline",
            "pool",
            "report",
            "roster",
            "sanitize",
            "similarity",
            "submission",
        )
    },
    **{m: f"autograder.verdicts.{m}" for m in ("allowlist", "cells", "engine", "slicing", "withhold")},
    **{m: f"autograder.inside.{m}" for m in ("checker", "worker")},
    **{m: f"autograder.integration.{m}" for m in ("hidden_tests", "preprocessors")},
    "cgroup": "autograder.sandbox.cgroup",
}


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        package, _, name = fullname.rpartition(".")
        if package != "autograder" or name not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(MOVED[spec.name.rpartition(".")[2]])

    def exec_module(self, module: ModuleType) -> None:
        """Already executed at its new name."""


def install() -> None:
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())

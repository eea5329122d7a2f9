"""The sandbox backend, behind a small interface (:mod:`autograder.sandbox.backend`).

Host code calls :func:`run` and :func:`bubblewrap_available` here and reads :class:`Limits`
and :class:`Result`; the implementation is :mod:`autograder.sandbox.bubblewrap` (namespaces,
the allow-list of bound paths, rlimits, a wall clock) with :mod:`autograder.sandbox.cgroup`
(totals per run, control groups v2 or v1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from autograder.sandbox import bubblewrap
from autograder.sandbox.backend import NOBODY, Backend, Limits, Result, SandboxWarning

__all__ = ["NOBODY", "Backend", "Limits", "Result", "SandboxWarning", "backend", "bubblewrap_available", "run"]


def backend() -> Backend:
    """The backend runs go through (bubblewrap, the only one today)."""
    return bubblewrap.BACKEND


def bubblewrap_available() -> bool:
    """True when ``bwrap`` exists and can create the namespaces the sandbox needs here."""
    return bubblewrap.bubblewrap_available()


def run(argv: Sequence[str], **options: Any) -> Result:
    """Run ``argv`` in the sandbox (keyword options: :func:`autograder.sandbox.bubblewrap.run`)."""
    return backend().run(argv, **options)

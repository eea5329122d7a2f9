"""The notebook run: the student's notebook in a sandbox, for the outputs feedback shows.

:class:`NotebookRun` prepares a private work folder (the notebook with its graded test cells
blanked, the job, the script :mod:`autograder.inside.worker`), runs it under a fixed cap, and
reads back how it ended. It is also the base of the checking run
(:class:`autograder.verdicts.checking.CheckRun`): both go through :meth:`NotebookRun._run`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import nbformat

from autograder import sandbox
from autograder.verdicts.channel import read_json

__all__ = ["INSIDE", "NotebookRun", "private_dir"]

#: The scripts that run inside the sandbox, copied into each run's work folder.
INSIDE = Path(__file__).resolve().parents[1] / "inside"


def private_dir(path: Path, uid: int) -> Path:
    """A fresh folder only ``uid`` can enter (when grading as root), so that one run of a
    notebook cannot read another's work."""
    path.mkdir(mode=0o700)
    if os.getuid() == 0:
        os.chown(path, uid, uid)
    return path


class NotebookRun:
    """The notebook run (:mod:`autograder.inside.worker`): outputs for feedback, with the full library."""

    #: Wall-clock seconds the whole run may take, and CPU seconds all its processes together.
    RUN_SECONDS = 600.0

    def __init__(
        self,
        workdir: Path,
        student: nbformat.NotebookNode,
        cell_timeout: int,
        uid: int,
        run_seconds: float | None = None,
    ) -> None:
        self.workdir, self.student, self.cell_timeout, self.uid = workdir, student, cell_timeout, uid
        self.run_seconds = self.RUN_SECONDS if run_seconds is None else run_seconds

    def prepare(self) -> None:
        private_dir(self.workdir, self.uid)
        nbformat.write(self.student, str(self.workdir / "notebook.ipynb"))
        (self.workdir / "job.json").write_text(json.dumps({"cell_timeout": self.cell_timeout}))
        shutil.copy(INSIDE / "worker.py", self.workdir / "worker.py")

    def limits(self) -> sandbox.Limits:
        """A fixed cap, whatever the number of cells: each cell has nbclient's timeout
        (:mod:`autograder.inside.worker`), and the run as a whole ``run_seconds`` of wall clock and of
        CPU time (all its processes together where a control group counts them)."""
        return sandbox.Limits(
            cpu_seconds=self.run_seconds, total_cpu_seconds=self.run_seconds, wall_seconds=self.run_seconds
        )

    def start(self, require_sandbox: bool, hidden_paths: tuple[str | Path, ...]) -> sandbox.Result:
        return self._run(require_sandbox, hidden_paths, **self.library())

    def _run(self, require_sandbox: bool, hidden_paths: tuple[str | Path, ...], **extra: Any) -> sandbox.Result:
        """This run's script in the sandbox, in its work folder, as its uid, under its limits;
        ``extra`` is what a kind of run adds (:func:`autograder.sandbox.run`'s binds, env, fds)."""
        return sandbox.run(
            [sys.executable, self.script()],
            workdir=self.workdir,
            limits=self.limits(),
            uid=self.uid,
            require_sandbox=require_sandbox,
            hidden=hidden_paths,
            **extra,
        )

    def script(self) -> str:
        return "worker.py"

    def library(self) -> dict:
        return {}

    def status(self, result: sandbox.Result) -> str:
        status = (read_json(self.workdir / "status.json") or {}).get("status")
        if isinstance(status, str):
            return status[:500]
        return (
            "the sandbox was stopped (time or memory limit)"
            if result.timed_out or result.signal
            else ("the notebook could not be run")
        )

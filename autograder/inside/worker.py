"""Runs INSIDE the sandbox: the notebook run, which executes the student's notebook in a Jupyter
kernel with the full course library, for the outputs that feedback shows.

Each cell may run ``cell_timeout`` seconds (wall clock); then the kernel is interrupted, and a
cell still running ``cell_timeout`` seconds later ends the run (``status.json`` says so). The
sandbox's wall-clock cap for the whole run (:class:`autograder.sandbox.Limits`) stops the rest.

No verdict comes from here: the checks run in a separate sandbox (:mod:`autograder.inside.checker`),
and the grader copies back only well-formed outputs of the student's own cells. The graded
test cells reach this program blanked, so hidden tests never enter the student's kernel.

Usage (the grader copies this file into the work folder): ``python worker.py``
Reads ``notebook.ipynb`` and ``job.json``; writes ``executed.ipynb`` and ``status.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# jsonschema, which nbformat imports, imports rfc3987_syntax when it is installed (a dependency of
# jupyter-events); that module builds a parser at import, about 1 CPU-second in every notebook run.
# It serves only the "iri" format check, which notebook validation never uses: do without it.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # None in sys.modules: "cannot import"

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellTimeoutError, DeadKernelError  # noqa: E402


class _Client(NotebookClient):
    """nbclient's client, except that a cell still running ``timeout`` seconds after it was
    interrupted (it ignores SIGINT, or blocks where the interrupt cannot reach) ends the run
    with :class:`CellTimeoutError`, instead of being interrupted again and again while the
    run's wall-clock cap runs out."""

    _interrupted: int | None = None

    async def _async_handle_timeout(self, timeout, cell=None):
        key = id(cell)
        if self._interrupted == key:
            raise CellTimeoutError.error_from_timeout_and_cell("Cell execution timed out", timeout, cell)
        self._interrupted = key
        return await super()._async_handle_timeout(timeout, cell)


def main() -> None:
    job = json.loads(Path("job.json").read_text())
    nb = nbformat.read("notebook.ipynb", as_version=4)
    client = _Client(
        nb,
        timeout=job["cell_timeout"],
        interrupt_on_timeout=True,
        allow_errors=True,
        kernel_name="python3",
        record_timing=False,
        shutdown_kernel="immediate",  # the sandbox ends with it: no need to wait for a clean exit
        resources={"metadata": {"path": "."}},
    )
    status = "ok"
    try:
        client.execute()
    except DeadKernelError:
        status = "the notebook's kernel died (did the code call sys.exit, os._exit or run out of memory?)"
    except CellTimeoutError:
        status = "a cell ran past its time limit and could not be interrupted"
    except Exception as exc:  # noqa: BLE001 - report, never crash without a status
        status = f"the notebook could not be executed: {type(exc).__name__}: {exc}"[:500]
    nbformat.write(nb, "executed.ipynb")
    Path("status.json").write_text(json.dumps({"status": status}))


if __name__ == "__main__":
    main()

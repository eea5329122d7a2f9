"""Runs INSIDE the sandbox: execute the student's notebook, then run the check cases in the
same kernel, and leave plain files for the trusted grader.

Nothing this program writes is trusted: the grader reads only JSON and ``.npy`` bytes from
the work folder, with size limits, and judges them itself. The graded test cells reach this
program blanked, so hidden tests never enter the student's kernel.

Usage (the grader copies this file into the work folder): ``python worker.py``
Reads ``notebook.ipynb`` and ``job.json``; writes ``executed.ipynb``, ``status.json`` and
``results/<key>.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

# Executed as the last cell of the student's kernel. For each case it forks: the child gets a
# CPU limit of its own, so one slow or hanging check (a finite-difference "backward" on the
# large case, say) fails alone while the others still run.
HARNESS = r'''
def __backprop_harness(job_path):
    import base64, json, os, resource, signal, sys, time
    import numpy as np
    from course.exercises.base import Case, get, run_case

    job = json.load(open(job_path))
    os.makedirs("results", exist_ok=True)
    for check in job["checks"]:
        key = check["key"]
        with np.load(f"cases/{key}.npz", allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        case = Case(check["label"], arrays, check["config"])
        pid = os.fork()
        if pid == 0:
            try:
                devnull = open(os.devnull, "w")
                sys.stdout = sys.stderr = devnull
                resource.setrlimit(resource.RLIMIT_CPU, (job["cpu_seconds"], job["cpu_seconds"] + 1))
                student = globals().get(check["symbol"])
                if student is None:
                    outputs, problems = {}, [f"no `{check['symbol']}` is defined at the top level of the notebook"]
                else:
                    outputs, problems = run_case(get(check["exercise"]), student, case)
                record = {
                    "problems": problems,
                    "outputs": {k: base64.b64encode(v).decode() for k, v in outputs.items()},
                }
                with open(f"results/{key}.json", "w") as f:
                    json.dump(record, f)
            finally:
                os._exit(0)
        deadline = time.monotonic() + job["case_wall_seconds"]
        while time.monotonic() < deadline:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.01)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)

__backprop_harness("job.json")
del __backprop_harness
'''


def main() -> None:
    job = json.loads(Path("job.json").read_text())
    nb = nbformat.read("notebook.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(HARNESS))
    client = NotebookClient(
        nb,
        timeout=job["cell_timeout"],
        interrupt_on_timeout=True,
        allow_errors=True,
        kernel_name="python3",
        record_timing=False,
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
    nb.cells.pop()  # the harness cell
    nbformat.write(nb, "executed.ipynb")
    Path("status.json").write_text(json.dumps({"status": status}))


if __name__ == "__main__":
    sys.exit(main())

"""Issue 14: every test run pins BLAS to one thread, a plain ``pytest`` as well as ``make test``,
and the processes the tests start (grading workers, kernels, notebooks) inherit the pin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from blas_threads import BLAS_THREAD_VARIABLES, loaded_openblas, openblas_threads

HERE = Path(__file__).resolve().parent


def test_the_environment_pins_every_blas_to_one_thread():
    assert {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES} == dict.fromkeys(BLAS_THREAD_VARIABLES, "1")


def test_the_openblas_numpy_loaded_in_this_process_uses_one_thread():
    np.ones((2, 2)) @ np.ones((2, 2))  # NumPy is loaded: so is its BLAS
    assert loaded_openblas() is not None, "NumPy's OpenBLAS is not mapped into the test process"
    assert openblas_threads() == 1


def _threads_in_a_child(env: dict[str, str]) -> int:
    """The OpenBLAS threads of a new Python that imports NumPy, started with ``env``."""
    code = (
        "import numpy, sys; sys.path.insert(0, sys.argv[1]); "
        "from blas_threads import openblas_threads; print(openblas_threads())"
    )
    child = subprocess.run(
        [sys.executable, "-c", code, str(HERE)], capture_output=True, text=True, timeout=120, env=env
    )
    assert child.returncode == 0, child.stderr[-2000:]
    return int(child.stdout)


def test_a_process_the_tests_start_inherits_the_pin():
    assert _threads_in_a_child(dict(os.environ)) == 1


def test_without_the_pin_openblas_would_use_more_than_one_thread_here():
    """The check above can fail: unpinned, OpenBLAS takes every core of a machine with several."""
    if (os.cpu_count() or 1) < 2:
        return  # one core: unpinned and pinned are the same
    unpinned = {k: v for k, v in os.environ.items() if k not in BLAS_THREAD_VARIABLES}
    assert _threads_in_a_child(unpinned) > 1

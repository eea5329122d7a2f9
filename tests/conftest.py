"""Shared fixtures for the test suite.

Hypothesis runs under the "ci" profile unless ``HYPOTHESIS_PROFILE`` names another one
("dev" explores more examples). No example database is written, so a test run leaves no
files behind in the working tree.
"""

from __future__ import annotations

import os
import sys

# One BLAS thread per test process (issue 14), for every run, not only `make test`: the
# workers already fill the cores, and oversubscribed BLAS threads are slower than none on a
# loaded machine. Set before NumPy is imported here (OpenBLAS reads these variables when it is
# loaded); pytest's plugins do not import NumPy, and processes the tests start inherit them.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
for _name in BLAS_THREAD_VARIABLES:
    os.environ[_name] = "1"
if "numpy" in sys.modules:  # imported before this file (by a plugin, say): pin it where it runs
    from blas_threads import pin_loaded_blas

    pin_loaded_blas(1)

from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", deadline=None, max_examples=15, database=None, print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=200, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: Analytic and centred-difference gradients must agree to this relative error (float64).
GRAD_TOL = 1e-7
#: Below this, a non-zero gradient entry is within a few round-offs of the centred difference.
ACCIDENTAL_ZERO = 1e-4


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so that every test draws the same numbers on every run."""
    return np.random.default_rng(20240517)


def _assert_gradients_match(
    analytic: np.ndarray, numeric: np.ndarray, what: str = "gradient", tol: float = GRAD_TOL
) -> None:
    """Check that |a − n| / max(|a| + |n|, 1e-8) < tol everywhere, naming the worst entry.

    Computed here rather than with ``course.gradcheck.relative_error`` so that the tests of
    the layers do not rely on the code they would use to judge it.
    """
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    assert analytic.shape == numeric.shape, (
        f"{what}: analytic gradient has shape {analytic.shape}, expected {numeric.shape}"
    )
    if analytic.size == 0:
        return
    err = np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), 1e-8)
    err = np.where(np.isfinite(err), err, np.inf)
    worst = np.unravel_index(int(np.argmax(err)), err.shape)
    assert err[worst] < tol, (
        f"{what}: relative error {err[worst]:.2e} at index {tuple(int(i) for i in worst)}: "
        f"got derivative {analytic[worst]!r}, expected {numeric[worst]!r} from centred differences"
    )


@pytest.fixture(scope="session")
def assert_gradients_match() -> Callable[..., None]:
    """``assert_gradients_match(analytic, numeric, what)``: relative error below 1e-7.

    Session-scoped so that Hypothesis tests may use it too.
    """
    return _assert_gradients_match


def _well_conditioned(numeric: np.ndarray) -> bool:
    """True unless some gradient entry is non-zero but tiny (|g| < 1e-4).

    The centred difference carries a round-off of about 1e-16 |f| / h ≈ 1e-11 |f|, so an
    entry that random inputs happen to cancel to 1e-6 cannot be checked to a relative 1e-7.
    Exact zeros (a ReLU that is off, a Maxout piece that lost) are fine and stay in.
    Hypothesis tests ``assume`` this and draw other inputs.
    """
    numeric = np.asarray(numeric)
    return bool(np.all((numeric == 0) | (np.abs(numeric) > ACCIDENTAL_ZERO)))


@pytest.fixture(scope="session")
def well_conditioned() -> Callable[[np.ndarray], bool]:
    """``well_conditioned(numeric)``: no entry is an accidental near-zero (see above)."""
    return _well_conditioned


# ----------------------------------------------------------------------------------------
# Balancing the workers (issue 14)
# ----------------------------------------------------------------------------------------

#: Seconds each of the slowest files takes, roughly: measured with --durations on 2 shared cores
#: (the 03_layers hostile run: 140 s for 16 students, 9.4 s of it generate_assignment) or
#: scaled from those figures; only the order depends on them, never what runs or passes.
#: `make test` runs with --dist loadfile --no-loadscope-reorder:
#: each file goes whole to one worker, in the order collected, so the longest files are
#: collected first and the short ones fill in around them (longest processing time first).
#: A file not listed counts as short.
FILE_SECONDS: dict[str, float] = {
    # A hostile grading run: about 10 s of fixed cost, then some 8 s per student (two workers).
    "tests/test_hostile.py": 330,  # 39 students
    "tests/browser/test_browser_student.py": 300,  # builds the bundle, a fresh venv, JupyterLab
    "tests/test_postgres.py": 150,  # a server, 3 students graded twice, stock nbgrader twice
    "tests/test_student_bundle.py": 250,  # Cython, a fresh venv
    "tests/test_cluster.py": 220,  # a Dask cluster, a small class graded three times
    "tests/test_hostile_01_neurons.py": 140,  # 16 students
    "tests/test_hostile_03_layers.py": 140,  # 16
    "tests/test_hostile_02_graphs.py": 130,  # 15
    "tests/test_notebooks.py": 130,  # every release and source notebook executed
    "tests/browser/test_browser_instructor.py": 120,  # the sample class graded, the formgrader
    "tests/test_hostile_04_losses.py": 115,  # 13
    "tests/test_hostile_07_mlp.py": 105,  # 12
    "tests/test_hostile_06_optim.py": 100,  # 11
    "tests/test_hostile_05_gradcheck.py": 90,  # 10
    "tests/test_hostile_round3.py": 60,  # 6
    "tests/test_numerical.py": 100,  # every answer of every notebook, every style
    "tests/test_readme_commands.py": 90,
    "tests/test_manual_scores.py": 80,
    "tests/test_lms.py": 70,
    "tests/test_sandbox.py": 70,
    "tests/test_demo.py": 60,
    "tests/test_autograder_pipeline.py": 60,
    "tests/test_export.py": 50,
    "solutions/07_mlp/mlp.ipynb": 60,
    "solutions/04_losses/losses.ipynb": 45,
    "solutions/06_optim/optim.ipynb": 45,
}


#: Tests of files owned elsewhere that take more than about 10 s without a `slow` mark of their
#: own (issue 14, measured with --durations): marked `slow` here, so that `make test-fast`
#: leaves them out. "file::test" covers every parameter of the test. Better: mark the test
#: itself with @pytest.mark.slow and remove it from here.
SLOW_TESTS: dict[str, str] = {
    "tests/test_autograder_pipeline.py::test_a_student_without_a_notebook_to_grade_scores_0_and_is_flagged": "grades",
    "tests/test_autograder_pipeline.py::test_pool_isolates_hanging_dying_and_raising_tasks": "waits out timeouts",
    "tests/test_export.py::test_stock_nbgrader_export_with_the_plugin": "grades, stock nbgrader",
    "tests/test_export.py::test_canvas_import_csv": "grades",
    "tests/test_numerical.py::test_the_instructors_own_answers_are_never_flagged": "every answer, every style check",
    "tests/test_readme_commands.py::test_the_stock_commands_block_is_found_and_has_no_fake_command": "stock nbgrader",
    "tests/test_lms.py::test_roster_from_the_gradebooks_students_table": "nbgrader's gradebook",
}


def _file_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _function_of(item: pytest.Item) -> str:
    return item.nodeid.split("[", 1)[0]


@pytest.hookimpl(tryfirst=True)  # before -m "not slow" deselects by mark
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest files first, each file's tests in their own order (a stable sort); the tests
    of SLOW_TESTS marked `slow`."""
    for item in items:
        if _function_of(item) in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: -FILE_SECONDS.get(_file_of(item), 0.0))

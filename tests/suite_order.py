"""Issue 14: the order ``make test``'s workers take the files in, and the long tests marked ``slow``.

A module of its own, not part of ``conftest.py``: the tests import it by name, and ``conftest``
names another module too when ``tests/browser/`` is on the path.
"""

from __future__ import annotations

import pytest

__all__ = ["FILE_SECONDS", "SLOW_TESTS", "order_and_mark"]

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


def order_and_mark(items: list[pytest.Item]) -> None:
    """The longest files first, each file's tests in their own order (a stable sort); the tests
    of SLOW_TESTS marked `slow`. Called by tests/conftest.py's pytest_collection_modifyitems."""
    for item in items:
        if _function_of(item) in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: -FILE_SECONDS.get(_file_of(item), 0.0))

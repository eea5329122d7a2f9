"""Issue 14: the longest test files are collected first, so that ``make test``'s workers
(``--dist loadfile --no-loadscope-reorder``) finish together; the long tests listed in
``SLOW_TESTS`` are marked ``slow``; every file and test named exists."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest
from suite_order import FILE_SECONDS, SLOW_TESTS, order_and_mark

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class FakeItem:
    """What the ordering reads of a collected test: its node id; the marks it is given."""

    nodeid: str

    def __post_init__(self) -> None:
        self.marks: list[str] = []

    def add_marker(self, mark) -> None:
        self.marks.append(mark.name)


def test_every_file_with_a_duration_exists():
    """A renamed or removed file would silently fall back to the end of the queue."""
    missing = [name for name in FILE_SECONDS if not (ROOT / name).is_file()]
    assert not missing, f"FILE_SECONDS names files that do not exist: {missing}"


def test_the_longest_files_come_first_and_each_file_keeps_its_order():
    longest = max(FILE_SECONDS, key=FILE_SECONDS.__getitem__)
    shortest_listed = min(FILE_SECONDS, key=FILE_SECONDS.__getitem__)
    items = [
        FakeItem("tests/test_data.py::test_a"),
        FakeItem(f"{shortest_listed}::test_1"),
        FakeItem("tests/test_data.py::test_b"),
        FakeItem(f"{longest}::test_2"),
        FakeItem(f"{longest}::test_1"),
        FakeItem("tests/test_zzz_unlisted.py::test_c"),
    ]
    order_and_mark(items)
    assert [i.nodeid for i in items] == [
        f"{longest}::test_2",
        f"{longest}::test_1",
        f"{shortest_listed}::test_1",
        "tests/test_data.py::test_a",
        "tests/test_data.py::test_b",
        "tests/test_zzz_unlisted.py::test_c",
    ]


def test_every_slow_test_named_exists():
    for name in SLOW_TESTS:
        path, function = name.split("::")
        assert (ROOT / path).is_file(), f"SLOW_TESTS: no file {path}"
        tree = ast.parse((ROOT / path).read_text())
        defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert function in defined, f"SLOW_TESTS: {path} has no test {function}"


@pytest.mark.parametrize("suffix", ["", "[a parameter]"])
def test_the_slow_tests_named_are_marked_slow_and_no_others(suffix):
    listed = next(iter(SLOW_TESTS))
    items = [FakeItem(listed + suffix), FakeItem(listed + "_and_more"), FakeItem("tests/test_data.py::test_a")]
    order_and_mark(items)
    assert {i.nodeid: i.marks for i in items} == {
        listed + suffix: ["slow"],
        listed + "_and_more": [],
        "tests/test_data.py::test_a": [],
    }

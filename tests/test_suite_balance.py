"""Issue 14: the longest test files are collected first, so that ``make test``'s workers
(``--dist loadfile --no-loadscope-reorder``) finish together; every file named exists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import conftest
from conftest import FILE_SECONDS

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class FakeItem:
    """What the ordering reads of a collected test: its node id."""

    nodeid: str


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
    conftest.pytest_collection_modifyitems(None, items)
    assert [i.nodeid for i in items] == [
        f"{longest}::test_2",
        f"{longest}::test_1",
        f"{shortest_listed}::test_1",
        "tests/test_data.py::test_a",
        "tests/test_data.py::test_b",
        "tests/test_zzz_unlisted.py::test_c",
    ]

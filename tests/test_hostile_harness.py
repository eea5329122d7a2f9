"""The hostile harness itself: bundles keep each attack's own cells; what counts as active content."""

from __future__ import annotations

import importlib

import pytest
from hostile.catalogue import Hostile
from hostile.corpus import Assignment, bundle
from hostile.harness import merge_bundle, submissions

MODULES = ["a01_neurons", "a02_graphs", "a03_layers", "a04_losses", "a05_gradcheck", "a06_optim", "a07_mlp"]


@pytest.mark.parametrize("module", MODULES)
def test_every_bundle_merges_and_keeps_each_members_answers(module):
    assignment = importlib.import_module(f"hostile.{module}").ASSIGNMENT
    graded = {e.name: e for e in submissions(assignment)}
    names = {e.name for e in assignment.entries}
    for entry in assignment.entries:
        if entry.bundle is None:
            assert graded[entry.name] is entry
            continue
        merged = graded[entry.bundle]
        assert entry.bundle not in names
        assert sum(e.bundle == entry.bundle for e in assignment.entries) >= 2, f"{entry.bundle} has one member"
        base = {} if entry.over_perfect else assignment.honest_wrong
        for gid, body in entry.answers.items():
            assert merged.answers[gid] == body or base.get(gid) == body, f"{entry.name}'s {gid} lost in {entry.bundle}"
        for cell in entry.extra_cells:
            assert cell in merged.extra_cells
        assert merged.expect == entry.expect
        assert merged.peer or not entry.peer


def test_a_bundle_refuses_two_members_on_one_cell_and_known_holes():
    assignment = Assignment("x", "x", {"a": "wrong", "b": "wrong"})
    one = Hostile("one", "", {"a": "attack 1", "b": "wrong"})
    two = Hostile("two", "", {"a": "attack 2", "b": "wrong"})
    with pytest.raises(ValueError, match="both answer a"):
        merge_bundle("bx", [one, two], assignment)
    two.answers = {"a": "wrong", "b": "attack 2"}
    assert merge_bundle("bx", [one, two], assignment).answers == {"a": "attack 1", "b": "attack 2"}
    two.known_hole = "open"
    with pytest.raises(ValueError, match="known holes"):
        merge_bundle("bx", [one, two], assignment)
    with pytest.raises(KeyError):
        bundle([one, two], "bx", "three")


def test_markdown_html_runs_unless_fenced():
    from hostile.harness import markdown_active

    raw = '<script>window.hostile_xss_md = 1</script>\n<img src="x" onerror="window.hostile_xss_img = 1">'
    assert len(markdown_active("My notes.\n\n" + raw)) == 2
    assert markdown_active("shown as text:\n\n```text\n" + raw + "\n```\n") == []
    assert len(markdown_active("```\nfenced\n```\n" + raw)) == 2
    assert len(markdown_active("~~~\nnot closed by ```\n~~~\n" + raw)) == 2

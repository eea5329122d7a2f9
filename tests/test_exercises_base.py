"""The exercise machinery: output transport, delegation detection, messages, test-cell parsing."""

from __future__ import annotations

import importlib
import importlib.util
import re

import numpy as np
import pytest

import course.layers as L
from autograder.verdicts.cells import CheckCall, parse_test_cell
from course.exercises import check, decode_outputs, encode_outputs, get
from course.exercises.base import judge_case, run_case
from course.gradcheck import GradCheckError


class GoodLinear(L.Linear):
    def backward(self, grad_out):
        self.W.grad += np.einsum("nd,nm->dm", self.x, grad_out)
        self.b.grad += grad_out.sum(axis=0)
        return grad_out @ self.W.data.T


class Delegating(L.Linear):
    def backward(self, grad_out):
        return super().backward(grad_out)


CAPTURED = L.Linear.backward


class CapturedEarly(L.Linear):
    def backward(self, grad_out):
        return CAPTURED(self, grad_out)


class Reloaded(L.Linear):
    """Executes a private copy of the library's source file and calls its backward."""

    def backward(self, grad_out):
        spec = importlib.util.spec_from_file_location("course.layers", L.__file__)
        fresh = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(fresh)
        return fresh.Linear.backward(self, grad_out)


class RemovesProfiler(L.Linear):
    def backward(self, grad_out):
        import sys

        sys.setprofile(None)
        return GoodLinear.backward(self, grad_out)


class BiasNotSummed(L.Linear):
    def backward(self, grad_out):
        self.W.grad += self.x.T @ grad_out
        self.b.grad += grad_out[0]
        return grad_out @ self.W.data.T


class Overwrites(L.Linear):
    def backward(self, grad_out):
        self.W.grad = self.x.T @ grad_out
        self.b.grad += grad_out.sum(axis=0)
        return grad_out @ self.W.data.T


class MutatesGradOut(L.Linear):
    def backward(self, grad_out):
        self.W.grad += self.x.T @ grad_out
        self.b.grad += grad_out.sum(axis=0)
        result = grad_out @ self.W.data.T
        grad_out *= 0
        return result


class Float32(GoodLinear):
    def backward(self, grad_out):
        return super().backward(grad_out).astype(np.float32)


class ReturnsList(GoodLinear):
    def backward(self, grad_out):
        return super().backward(grad_out).tolist()


class Stub(L.Linear):
    def backward(self, grad_out):
        raise NotImplementedError()


class Lying(np.ndarray):
    """An array whose comparisons always say "equal"."""

    def __array_ufunc__(self, *args, **kwargs):
        return True


class ReturnsLyingArray(L.Linear):
    def backward(self, grad_out):
        self.W.grad += self.x.T @ grad_out
        self.b.grad += grad_out.sum(axis=0)
        return np.zeros((grad_out.shape[0], self.in_features)).view(Lying)


def test_a_correct_solution_passes_visible_and_hidden():
    assert all(v.passed for v in check("layers.Linear.backward", GoodLinear, quiet=True))
    assert all(v.passed for v in check("layers.Linear.backward", GoodLinear, hidden=True, quiet=True))


@pytest.mark.parametrize("impl", [Delegating, CapturedEarly, Reloaded, RemovesProfiler])
def test_delegation_to_the_reference_is_caught_however_it_is_reached(impl):
    with pytest.raises(GradCheckError, match="reference implementation|profiler"):
        check("layers.Linear.backward", impl)


@pytest.mark.parametrize(
    ("impl", "message"),
    [
        (BiasNotSummed, r"dL/db"),
        (Overwrites, r"overwritten \(=\) instead of accumulated"),
        (MutatesGradOut, r"grad_out was modified in place"),
        (Float32, r"dtype float32, expected float64"),
        (ReturnsLyingArray, r"dL/dx .* is wrong"),
    ],
)
def test_plausible_bugs_fail_with_a_message_that_names_them(impl, message):
    for hidden in (False, True):
        with pytest.raises(GradCheckError, match=message):
            check("layers.Linear.backward", impl, hidden=hidden)


def test_a_list_is_accepted_as_numbers_but_must_still_be_float64():
    # tolist() loses nothing, np.array turns it back into float64: the maths is right.
    assert all(v.passed for v in check("layers.Linear.backward", ReturnsList, quiet=True))


def test_an_untouched_stub_raises_not_implemented_error():
    with pytest.raises(NotImplementedError, match="Linear.backward is not implemented yet"):
        check("layers.Linear.backward", Stub)


def test_hidden_messages_never_show_expected_values():
    with pytest.raises(GradCheckError) as visible:
        check("layers.Linear.backward", BiasNotSummed)
    with pytest.raises(GradCheckError) as hidden:
        check("layers.Linear.backward", BiasNotSummed, hidden=True)
    assert "expected" in str(visible.value)
    assert "yours" not in str(hidden.value) and "expected " not in str(hidden.value)
    assert re.search(r"max relative error \d\.\d\de[+-]\d\d at index", str(hidden.value))


def test_transport_keeps_numbers_and_drops_everything_else():
    encoded = encode_outputs(
        {"a": np.arange(3.0), "lying": np.ones(2).view(Lying), "obj": object(), "none": None, "f": 1.5}
    )
    decoded = decode_outputs(encoded)
    assert type(decoded["a"]) is np.ndarray and decoded["a"].tolist() == [0.0, 1.0, 2.0]
    assert type(decoded["lying"]) is np.ndarray  # the subclass and its methods are gone
    assert isinstance(decoded["obj"], str) and isinstance(decoded["none"], str)
    assert decoded["f"].shape == () and decoded["f"].dtype == np.float64


def test_verdict_comes_only_from_the_returned_arrays():
    """Check that judging needs nothing but the case and the encoded outputs (the split the grader uses)."""
    exercise = get("layers.Linear.backward")
    case = exercise.cases(np.random.default_rng(5), hidden=False)[0]
    encoded, problems = run_case(exercise, GoodLinear, case)
    assert not problems and judge_case(exercise, case, encoded, problems).passed
    forged = dict(encoded)
    forged["grad_x"] = encode_outputs({"g": np.zeros_like(case.arrays["x"])})["g"]
    assert not judge_case(exercise, case, forged, []).passed


def test_parse_test_cell_reads_visible_and_hidden_checks():
    source = (
        '"""Check that Linear.backward is right."""\n'
        'check("layers.Linear.backward", Linear)\n'
        "### BEGIN HIDDEN TESTS\n"
        'check("layers.Linear.backward", Linear, hidden=True)\n'
        "### END HIDDEN TESTS\n"
    )
    assert parse_test_cell(source) == [
        CheckCall("layers.Linear.backward", "Linear", False),
        CheckCall("layers.Linear.backward", "Linear", True),
    ]


@pytest.mark.parametrize(
    "source",
    [
        'check("layers.Linear.backward", Linear)\nassert True',
        'check("layers.Linear.backward", make())',
        "check(name, Linear)",
        'check("layers.Linear.backward", Linear, hidden=flag)',
        '"""Only a docstring."""',
        "import os",
    ],
)
def test_parse_test_cell_rejects_anything_else(source):
    with pytest.raises(ValueError):
        parse_test_cell(source)


# ----------------------------------------------------------------------------------------
# The machinery, one module per concept (issue 14); course.exercises.base re-exports it
# ----------------------------------------------------------------------------------------

#: Every name course.exercises.base held before the split, by the module that defines it now.
MOVED = {
    "records": [
        "Arrays",
        "Case",
        "Verdict",
        "KnownMistake",
        "KnownBug",
        "NOT_IMPLEMENTED",
        "PROBLEM_MISTAKES",
        "FLOAT32_ADVICE",
        "FLOAT32_ERRORS",
        "FLOAT32_HINT",
        "float32_values",
    ],
    "transport": ["fingerprint", "modified", "encode_outputs", "pack_result", "unpack_result", "decode_outputs"],
    "exercise": ["Exercise", "judge_rng"],
    "known_bugs": ["_same_outputs", "recognise_known_bug", "recognise"],
    "registry": ["REGISTRY", "register", "get"],
    "traps": [
        "PROFILER_REMOVED",
        "WITHHELD",
        "WITHHELD_MESSAGE",
        "_code_key",
        "reference_function",
        "_reference_codes",
        "trapped",
        "_MACHINERY",
    ],
    "running": ["run_case", "judge_case"],
    "checking": ["_seed", "Verdicts", "CheckFailed", "NotImplementedYet", "_wrapped", "check", "_show_picture"],
}
MACHINERY_MODULES = sorted(MOVED)


@pytest.mark.parametrize("module", MACHINERY_MODULES)
def test_the_old_module_still_gives_every_name_it_had_the_same_object(module):
    """Notebooks, the grader and outside code import from course.exercises.base: the names must be
    the very objects of the new modules (a copy of REGISTRY, say, would be a second catalogue)."""
    base = importlib.import_module("course.exercises.base")
    new = importlib.import_module(f"course.exercises.{module}")
    for name in MOVED[module]:
        assert getattr(base, name) is getattr(new, name), f"course.exercises.base.{name}"
    assert set(base.__all__) <= {n for names in MOVED.values() for n in names}


def test_the_package_exposes_the_old_module_and_its_public_names():
    import course.exercises as E

    assert E.base is importlib.import_module("course.exercises.base")
    for name in E.__all__:
        assert getattr(E, name) is getattr(E.base, name), name


def _package_imports() -> dict[str, set[str]]:
    """course.exercises' modules -> the modules of the package each imports (relative imports)."""
    import ast
    from pathlib import Path

    folder = Path(importlib.import_module("course.exercises").__file__).parent
    graph: dict[str, set[str]] = {}
    for path in sorted(folder.glob("*.py")):
        edges = graph.setdefault(path.stem, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                edges.update([node.module] if node.module else [a.name for a in node.names])
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """An import cycle of ``graph`` (its modules in order, the first repeated at the end), or None."""
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for other in sorted(graph.get(module, ())):
            if state.get(other) == "open":
                return [*path[path.index(other) :], other] if other in path else [module, other]
            found = None if other in state else visit(other, [*path, other])
            if found:
                return found
        state[module] = "done"
        return None

    for module in sorted(graph):
        found = None if module in state else visit(module, [module])
        if found:
            return found
    return None


def test_the_package_imports_form_no_cycle():
    """A module imported back by one it imports works or breaks by import order; the machinery
    is layered instead: records, transport < exercise < known_bugs, registry < traps < running < checking."""
    graph = _package_imports()
    assert _cycle(graph) is None, _cycle(graph)
    assert graph["records"] == set() and graph["transport"] == set()
    assert graph["base"] == set(MOVED)
    # and the search finds one where there is one: records importing check() closes a loop
    broken = {**graph, "records": {"checking"}}
    cycle = _cycle(broken)
    assert cycle and cycle[0] == cycle[-1] and "records" in cycle
    assert all(b in broken[a] for a, b in zip(cycle, cycle[1:], strict=False))
    assert _cycle({"a": {"a"}}) == ["a", "a"]


def _function(module: str, qualname: str):
    from autograder.verdicts import withhold

    found = [r for r in withhold.library_functions() if r.module == module and r.qualname == qualname]
    assert len(found) == 1, (module, qualname)
    return found[0]


#: What a checking run executes of the machinery (its run side and the result it sends) ...
RUN_SIDE = [
    ("transport", "fingerprint"),
    ("transport", "encode_outputs"),
    ("transport", "pack_result"),
    ("exercise", "Exercise.__init__"),
    ("exercise", "Exercise.withheld"),
    ("registry", "register"),
    ("registry", "get"),
    ("traps", "reference_function"),
    ("traps", "trapped"),
    ("traps", "trapped.<locals>.hook"),
    ("running", "run_case"),
]
#: ... and what it must not: judging, recognising mistakes and the student-facing check().
JUDGE_SIDE = [
    ("transport", "decode_outputs"),
    ("transport", "unpack_result"),
    ("transport", "modified"),
    ("exercise", "Exercise.compare_gradient"),
    ("exercise", "Exercise.expect_array"),
    ("exercise", "judge_rng"),
    ("known_bugs", "recognise_known_bug"),
    ("known_bugs", "recognise"),
    ("running", "judge_case"),
    ("checking", "check"),
    ("records", "Verdict.message"),
]


def test_the_allow_list_follows_the_machinery_to_its_modules():
    """The checking run's library copy withholds whatever the allow-list does not name, by the
    module that defines it: were run_case still listed under course.exercises.base, every
    checking run would fail; were judge_case allowed, a submission could call the judge."""
    from autograder.verdicts import withhold

    for module, qualname in RUN_SIDE:
        assert withhold.allowed(_function(f"course.exercises.{module}", qualname)), (module, qualname)
    for module, qualname in JUDGE_SIDE:
        assert not withhold.allowed(_function(f"course.exercises.{module}", qualname)), (module, qualname)
    base = importlib.import_module("course.exercises.base")
    assert all(getattr(base, q.split(".")[0]).__module__ == f"course.exercises.{m}" for m, q in RUN_SIDE + JUDGE_SIDE)


def test_every_allow_list_entry_names_a_function_that_exists():
    """An entry left behind by a move (a module renamed, a function moved) allows nothing, silently."""
    import fnmatch

    from autograder.verdicts import withhold
    from autograder.verdicts.allowlist import ALLOWED

    library = withhold.library_functions()
    for key, names in ALLOWED.items():
        package = key[:-2] if key.endswith(".*") else None
        pool = [r for r in library if (r.module.rpartition(".")[0] == package if package else r.module == key)]
        assert pool, f"the allow-list names {key}, which has no functions"
        for name in names:
            assert any(fnmatch.fnmatchcase(r.qualname, name) for r in pool), f"{key}: {name} matches nothing"


def test_the_detector_of_numerical_differentiation_ignores_the_machinery():
    """The run side hands the case's own inputs around (fingerprint, the exercise's helpers):
    the detector watches the student's code and the catalogue, not these modules."""
    from course.exercises import kinds, numerical, traps

    inside = [m for m in MACHINERY_MODULES if m not in ("running", "checking")]  # those two call into the watch
    files = {importlib.import_module(f"course.exercises.{m}").__file__ for m in inside}
    assert files | {numerical.__file__} <= traps._MACHINERY
    assert kinds.__file__ not in traps._MACHINERY  # an exercise's run is watched

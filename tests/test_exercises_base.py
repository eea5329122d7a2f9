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

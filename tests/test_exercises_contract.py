"""The contract every exercise meets, checked over the catalogue of each topic.

Each ``tests/test_exercises_<topic>.py`` writes student implementations of its topic's
exercises and lists them in a :class:`Contract` named ``CONTRACT``. The tests here run over
all of them:

- the catalogue has a correct implementation, a stub, a mistake and a delegation for every
  exercise the topic registers;
- a correct implementation (written in another style than the notebook's solution) passes
  the visible and the hidden check, and also on the other seeds it lists;
- a stub that raises NotImplementedError is reported as not implemented, visible and hidden;
- a plausible mistake fails both checks with a message that names what is wrong; the visible
  message shows expected values, the hidden one never does;
- calling the reference implementation gets no credit, visible or hidden.

The topic modules import the classes below from this module. So that either side may be
imported first, this module imports the topic modules not at its top but when pytest asks it
for the parameters of its tests (:func:`pytest_generate_tests`).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from course.exercises import REGISTRY, check
from course.gradcheck import GradCheckError

#: The topics in the order of the course; ``tests/test_exercises_<topic>.py`` holds each one's catalogue.
TOPICS = ("neurons", "graphs", "layers", "losses", "gradients", "optim", "mlp")

# ----------------------------------------------------------------------------------------
# The catalogue
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Implementation:
    """A student's implementation of one exercise: a function, or a subclass of the reference class."""

    exercise: str
    impl: Any
    #: How the test ids name it; the function's or the class's name by default.
    label: str = ""

    @property
    def id(self) -> str:
        return f"{self.exercise}-{self.label or self.impl.__name__}"


@dataclass(frozen=True)
class Correct(Implementation):
    """A correct implementation: passes with the default seeds, and with each of ``seeds``."""

    seeds: Sequence[int] = ()
    #: Which checks ("visible", "hidden") run again with each of ``seeds``.
    seeded_checks: tuple[str, ...] = ("visible", "hidden")
    #: Mark the tests on other seeds as slow.
    slow: bool = False


class Stub(Implementation):
    """An implementation that raises NotImplementedError, as the notebook hands it out."""


@dataclass(frozen=True)
class Mistake(Implementation):
    """A plausible mistake, and what the failure message must (and must not) say about it."""

    #: Text the visible message contains (and the hidden one, unless ``hidden_says`` is given).
    says: tuple[str, ...] = ()
    #: Text the hidden message contains, when it differs from ``says``.
    hidden_says: tuple[str, ...] | None = None
    #: Text neither message contains.
    never_says: tuple[str, ...] = ()
    #: The visible message shows expected values (not so for an error that is not a wrong value).
    shows_expected: bool = True


@dataclass(frozen=True)
class Delegation(Implementation):
    """An implementation that calls the reference implementation."""

    #: Text the message contains besides "called the reference implementation".
    says: tuple[str, ...] = ()


@dataclass(frozen=True)
class Contract:
    """One topic's catalogue: its exercises are the registered ones named ``<topic>.…``."""

    topic: str
    correct: Sequence[Correct]
    stubs: Sequence[Stub]
    mistakes: Sequence[Mistake]
    delegations: Sequence[Delegation]


def stub_of(reference: type, method: str = "backward") -> type:
    """A subclass of ``reference`` whose ``method`` raises NotImplementedError."""

    def not_implemented(self, *args, **kwargs):
        raise NotImplementedError()

    return type(f"Stub{reference.__name__}", (reference,), {method: not_implemented})


def delegating_to(reference: type, method: str = "backward") -> type:
    """A subclass of ``reference`` whose ``method`` calls the reference's."""

    def delegates(self, *args, **kwargs):
        return getattr(super(cls, self), method)(*args, **kwargs)

    cls = type(f"Delegating{reference.__name__}", (reference,), {method: delegates})
    return cls


# ----------------------------------------------------------------------------------------
# The parameters: every topic's catalogue
# ----------------------------------------------------------------------------------------


def _contracts() -> list[Contract]:
    return [importlib.import_module(f"test_exercises_{topic}").CONTRACT for topic in TOPICS]


def _parameters() -> dict[str, list]:
    """argnames -> the parameter sets, for each kind of entry in the catalogues."""
    contracts = _contracts()

    def with_checks(entries: list[Implementation]) -> list:
        """Each entry with the visible check (hidden=False) and with the hidden one."""
        return [
            pytest.param(e, hidden, id=f"{e.id}-{'hidden' if hidden else 'visible'}")
            for e in entries
            for hidden in (False, True)
        ]

    return {
        "contract": [pytest.param(c, id=c.topic) for c in contracts],
        "correct,hidden": with_checks([e for c in contracts for e in c.correct]),
        "seeded,seed": [
            pytest.param(e, seed, id=f"{e.id}-seed{seed}", marks=[pytest.mark.slow] if e.slow else [])
            for c in contracts
            for e in c.correct
            for seed in e.seeds
        ],
        "stub,hidden": with_checks([e for c in contracts for e in c.stubs]),
        "mistake,hidden": with_checks([e for c in contracts for e in c.mistakes]),
        "delegation,hidden": with_checks([e for c in contracts for e in c.delegations]),
    }


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise each test below by the first argument it takes (``correct``, ``mistake``, …)."""
    for argnames, params in _parameters().items():
        if argnames.split(",")[0] in metafunc.fixturenames:
            metafunc.parametrize(argnames, params)


# ----------------------------------------------------------------------------------------
# The contract
# ----------------------------------------------------------------------------------------


def test_the_catalogue_covers_every_exercise_of_the_topic(contract: Contract):
    registered = {name for name in REGISTRY if name.startswith(f"{contract.topic}.")}
    assert registered
    for part in ("correct", "stubs", "mistakes", "delegations"):
        listed = {entry.exercise for entry in getattr(contract, part)}
        assert listed == registered, f"{contract.topic} {part}: {sorted(listed ^ registered)} differ"


def test_a_correct_implementation_passes(correct: Correct, hidden: bool):
    verdicts = check(correct.exercise, correct.impl, hidden=hidden, quiet=True)
    assert verdicts and all(v.passed for v in verdicts)


def test_a_correct_implementation_passes_on_other_seeds(seeded: Correct, seed: int):
    """The grader draws hidden cases from a secret seed: none may fail a correct solution."""
    for which in seeded.seeded_checks:
        verdicts = check(seeded.exercise, seeded.impl, hidden=which == "hidden", seed=seed, quiet=True)
        assert verdicts and all(v.passed for v in verdicts), which


def test_a_stub_is_reported_as_not_implemented(stub: Stub, hidden: bool):
    with pytest.raises(NotImplementedError, match="not implemented yet"):
        check(stub.exercise, stub.impl, hidden=hidden, quiet=True)


def test_a_mistake_fails_with_a_message_naming_it(mistake: Mistake, hidden: bool):
    with pytest.raises(GradCheckError) as failure:
        check(mistake.exercise, mistake.impl, hidden=hidden, quiet=True)
    message = str(failure.value)
    says = mistake.hidden_says if hidden and mistake.hidden_says is not None else mistake.says
    for text in ("FAILED", *says):
        assert text in message, f"{text!r} missing from:\n{message}"
    for text in mistake.never_says:
        assert text not in message, f"{text!r} in:\n{message}"
    if hidden:
        assert "expected" not in message, f"hidden checks must not reveal expected values:\n{message}"
    elif mistake.shows_expected:
        assert "expected" in message, f"no expected values in:\n{message}"


def test_calling_the_reference_gets_no_credit(delegation: Delegation, hidden: bool):
    with pytest.raises(GradCheckError, match="called the reference implementation") as failure:
        check(delegation.exercise, delegation.impl, hidden=hidden, quiet=True)
    for text in delegation.says:
        assert text in str(failure.value), f"{text!r} missing from:\n{failure.value}"

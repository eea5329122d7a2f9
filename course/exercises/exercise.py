"""The :class:`Exercise` base class: the three steps every graded exercise is checked in.

1. ``cases(rng, hidden)`` (trusted): draw concrete test cases, as plain arrays and JSON-able
   settings (a :class:`~course.exercises.records.Case`);
2. ``run(student, case)`` (untrusted: this is where the student's code executes): call the
   student's class or function on the case and collect what it returns, as a dict of arrays;
3. ``judge(case, outputs)`` (trusted): validate the outputs (type, dtype, shape, finiteness)
   and compare them with numerical gradients of the *reference* forward, in float64.

The helpers for step 3 live here too, so that every judge validates and compares the same way.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..gradcheck import TOLERANCE, TensorCheck, compare, numerical_gradient
from .records import FLOAT32_ADVICE, Case, KnownBug, Verdict

__all__ = ["Exercise", "judge_rng"]


class Exercise:
    """Base class. Subclasses implement ``cases``, ``run`` and ``judge``.

    Parameters
    ----------
    name : str
        Catalogue key, e.g. ``"layers.Linear.backward"``.
    title : str
        What the student sees, e.g. ``"Linear.backward"``.
    traps : list of (owner, attribute)
        Reference implementations the student's code must not call while it is checked
        (:func:`course.exercises.traps.trapped`).

    Attributes
    ----------
    withheld : list of (owner, attribute)
        What the autograder's checking run removes from its copy of the library
        (:mod:`autograder.verdicts.withhold`), so that no way of calling it exists: by default the traps.
    needs : list of (owner, attribute)
        Reference code that ``run`` itself calls (the layers of a network whose
        ``Sequential.backward`` is checked): kept in the library copy of this exercise's
        checks even when another exercise of the assignment withholds it.
    """

    def __init__(self, name: str, title: str, traps: list[tuple[Any, str]] | None = None) -> None:
        self.name, self.title = name, title
        self.traps = traps or []
        self._withheld: list[tuple[Any, str]] | None = None
        self.needs: list[tuple[Any, str]] = []

    @property
    def withheld(self) -> list[tuple[Any, str]]:
        return list(self.traps) if self._withheld is None else list(self._withheld)

    @withheld.setter
    def withheld(self, functions: list[tuple[Any, str]]) -> None:
        self._withheld = list(functions)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def cases(self, rng: np.random.Generator, hidden: bool) -> list[Case]:
        raise NotImplementedError

    def run(self, student: Any, case: Case) -> dict[str, Any]:
        raise NotImplementedError

    def judge(self, case: Case, outputs: dict[str, np.ndarray | str]) -> Verdict:
        raise NotImplementedError

    # -- helpers for judge() ----------------------------------------------------------------

    def verdict(self, case: Case) -> Verdict:
        return Verdict(self.title, case.label)

    @staticmethod
    def expect_array(verdict: Verdict, outputs: dict, key: str, shape: tuple[int, ...], what: str) -> np.ndarray | None:
        """The output ``key`` if it is a finite float64 array of ``shape``; else note why not."""
        value = outputs.get(key)
        if value is None:
            verdict.problems.append(f"{what}: nothing was returned")
            return None
        if isinstance(value, str):
            verdict.problems.append(f"{what} is not an array of numbers ({value})")
            return None
        if value.shape != tuple(shape):
            verdict.problems.append(f"{what} has shape {value.shape}, expected {tuple(shape)}")
            return None
        if value.dtype != np.float64:
            note = f"{what} has dtype {value.dtype}, expected float64"
            if value.dtype in (np.float32, np.float16):
                note += f": it looks like {value.dtype} arithmetic; {FLOAT32_ADVICE}"
            verdict.problems.append(note)
            return None
        if not np.all(np.isfinite(value)):
            bad = int(np.sum(~np.isfinite(value)))
            verdict.problems.append(f"{what} contains {bad} NaN or infinite entries")
            return None
        return value

    #: Mistakes recognised by running them (:class:`KnownBug`), tried in order on a failing case.
    known_bugs: tuple[KnownBug, ...] = ()
    #: Outputs of ``run`` that :func:`~course.exercises.known_bugs.recognise_known_bug` does not
    #: compare (bookkeeping, not answers).
    known_bug_ignores: tuple[str, ...] = ()

    #: The centred-difference step of this exercise's numerical checks.
    h: float = 1e-5
    #: Whether the checking run looks for numerical differentiation in the student's code
    #: (:mod:`course.exercises.numerical`): not where none is wanted (a forward pass, an
    #: optimiser's step) or where it is the exercise (``numerical_gradient``).
    watch_numerical: bool = True

    def numerical(
        self,
        f: Callable[[np.ndarray], Any],
        x: np.ndarray,
        grad_out: np.ndarray | None,
        indices: list[tuple[int, ...]] | None,
    ) -> np.ndarray:
        """The numerical gradient the student's is compared with (override for another method)."""
        return numerical_gradient(f, x, grad_out, h=self.h, indices=indices)

    def compare(self, name: str, analytic: np.ndarray, numeric: np.ndarray, **kwargs: Any) -> TensorCheck:
        """How an analytic gradient is judged against the numerical one (override to rescale)."""
        return compare(name, analytic, numeric, **kwargs)

    def compare_gradient(
        self,
        verdict: Verdict,
        name: str,
        analytic: np.ndarray | None,
        f: Callable[[np.ndarray], Any],
        x: np.ndarray,
        grad_out: np.ndarray | None,
        *,
        batch: int | None = None,
        max_entries: int | None = None,
        rng: np.random.Generator | None = None,
        tol: float = TOLERANCE,
        elementwise: bool = False,
        averaged: bool = True,
    ) -> TensorCheck | None:
        """Compare ``analytic`` with the numerical gradient of ``sum(f(x) * grad_out)``, on a
        random sample of ``max_entries`` entries when ``x`` is larger.

        ``elementwise=True`` says that entry i of ``f(x)`` depends on ``x[i]`` alone (an
        activation): the sampled entries are then differenced on an array of just those
        entries, which gives the same numbers without a forward pass over the whole tensor
        for every step.
        """
        if analytic is None:
            return None
        if not (isinstance(x, np.ndarray) and x.dtype == np.float64):
            x = np.array(x, dtype=np.float64)  # perturbed in place: pass the live array to keep f in sync
        indices = None
        if max_entries is not None and x.size > max_entries:
            rng = rng or judge_rng()
            flat = np.sort(rng.choice(x.size, size=max_entries, replace=False))
            indices = [tuple(int(i) for i in np.unravel_index(k, x.shape)) for k in flat]
        if elementwise and indices is not None:
            rows = tuple(np.array(ix) for ix in zip(*indices, strict=True))
            weight = None if grad_out is None else np.asarray(grad_out, dtype=np.float64)[rows]
            numeric = np.full(x.shape, np.nan)
            numeric[rows] = self.numerical(f, x[rows].copy(), weight, None)
        else:
            numeric = self.numerical(f, x, grad_out, indices)
        result = self.compare(name, analytic, numeric, tol=tol, indices=indices, batch=batch, averaged=averaged)
        verdict.checks.append(result)
        return result

    @staticmethod
    def compare_values(
        verdict: Verdict, name: str, got: np.ndarray | None, expected: ArrayLike, tol: float = 1e-9
    ) -> None:
        """Compare two computed values (not gradients) entry by entry."""
        if got is None:
            return
        verdict.checks.append(compare(name, got, np.asarray(expected, dtype=np.float64), tol=tol, noun="result"))


def judge_rng() -> np.random.Generator:
    """A generator seeded from fresh entropy, for the entries a judge samples from a large
    tensor: were they predictable, a submission could compute just those by finite differences."""
    return np.random.default_rng(secrets.randbits(64))

"""The catalogue's registry: every exercise by its name, as test cells and the grader call it.

Topic modules :func:`register` their exercises at import; :func:`get` finds one by the name a
notebook's ``check("layers.Linear.backward", ...)`` gives.
"""

from __future__ import annotations

from .exercise import Exercise

__all__ = ["REGISTRY", "get", "register"]

REGISTRY: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add ``exercise`` to the catalogue; a name registered twice is a mistake of the catalogue."""
    if exercise.name in REGISTRY:
        raise ValueError(f"exercise {exercise.name!r} is registered twice")
    REGISTRY[exercise.name] = exercise
    return exercise


def get(name: str) -> Exercise:
    """The exercise registered as ``name``; the error lists the names that are known."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no exercise named {name!r}; known: {sorted(REGISTRY)}") from None

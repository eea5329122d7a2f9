"""The catalogue of graded exercises, and :func:`check`, which notebooks call in test cells.

``check("layers.Linear.backward", Linear)`` checks the student's ``Linear`` class on small
visible cases and explains any failure; ``check(..., hidden=True)`` runs larger, varied cases
and does not reveal expected values. The autograder reads these calls from the instructor's
notebooks and re-runs them outside the student's kernel (see :mod:`course.exercises.base`).

Topic modules register their exercises on import, one module per assignment.
"""

# Importing a topic module registers its exercises, in the order of the assignments.
from . import neurons, graphs, layers, losses, gradients, optim, mlp, questions  # noqa: F401, I001
from .base import REGISTRY, Case, Exercise, Verdict, check, decode_outputs, encode_outputs, get, register

__all__ = ["REGISTRY", "Case", "Exercise", "Verdict", "check", "decode_outputs", "encode_outputs", "get", "register"]

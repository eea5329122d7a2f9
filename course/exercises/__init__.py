"""The catalogue of graded exercises, and :func:`check`, which notebooks call in test cells.

``check("layers.Linear.backward", Linear)`` checks the student's ``Linear`` class on small
visible cases and explains any failure; ``check(..., hidden=True)`` runs larger, varied cases
and does not reveal expected values. The autograder reads these calls from the instructor's
notebooks and re-runs them outside the student's kernel (see :mod:`course.exercises.running`).

Topic modules register their exercises on import, one module per assignment.
"""

# Importing a topic module registers its exercises, in the order of the assignments.
from . import neurons, graphs, layers, losses, gradients, optim, mlp, questions  # noqa: F401, I001
from . import base  # noqa: F401 - `course.exercises.base.X` (the names before the split) keeps working
from .checking import check
from .exercise import Exercise
from .records import Case, Verdict
from .registry import REGISTRY, get, register
from .transport import decode_outputs, encode_outputs

__all__ = ["REGISTRY", "Case", "Exercise", "Verdict", "check", "decode_outputs", "encode_outputs", "get", "register"]

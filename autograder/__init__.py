"""The course's autograder: nbgrader set-up, sandbox and trusted checks (see README.md)."""

import sys

# jsonschema, which nbformat and nbgrader import, imports rfc3987_syntax when it is installed (it
# comes with jupyter-events); that module builds a parser at import, about a CPU-second in every
# grading process. It serves only jsonschema's "iri" format check, which grading never uses.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # None in sys.modules: "cannot import"

from autograder import _moved  # noqa: E402

_moved.install()

"""Shared fixtures for the test suite.

Hypothesis runs under the "ci" profile unless ``HYPOTHESIS_PROFILE`` names another one
("dev" explores more examples). No example database is written, so a test run leaves no
files behind in the working tree.
"""

from __future__ import annotations

import os
import sys

# One BLAS thread per test process (issue 14), for every run, not only `make test`: the
# workers already fill the cores, and oversubscribed BLAS threads are slower than none on a
# loaded machine. Set before NumPy is imported here (OpenBLAS reads these variables when it is
# loaded); pytest's plugins do not import NumPy, and processes the tests start inherit them.
from blas_threads import BLAS_THREAD_VARIABLES, pin_loaded_blas  # standard library only

for _name in BLAS_THREAD_VARIABLES:
    os.environ[_name] = "1"
if "numpy" in sys.modules:  # imported before this file (by a plugin, say): pin it where it runs
    pin_loaded_blas(1)

from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402
from suite_order import order_and_mark  # noqa: E402

settings.register_profile("ci", deadline=None, max_examples=15, database=None, print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=200, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: Analytic and centred-difference gradients must agree to this relative error (float64).
GRAD_TOL = 1e-7
#: Below this, a non-zero gradient entry is within a few round-offs of the centred difference.
ACCIDENTAL_ZERO = 1e-4


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so that every test draws the same numbers on every run."""
    return np.random.default_rng(20240517)


def _assert_gradients_match(
    analytic: np.ndarray, numeric: np.ndarray, what: str = "gradient", tol: float = GRAD_TOL
) -> None:
    """Check that |a − n| / max(|a| + |n|, 1e-8) < tol everywhere, naming the worst entry.

    Computed here rather than with ``course.gradcheck.relative_error`` so that the tests of
    the layers do not rely on the code they would use to judge it.
    """
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    assert analytic.shape == numeric.shape, (
        f"{what}: analytic gradient has shape {analytic.shape}, expected {numeric.shape}"
    )
    if analytic.size == 0:
        return
    err = np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), 1e-8)
    err = np.where(np.isfinite(err), err, np.inf)
    worst = np.unravel_index(int(np.argmax(err)), err.shape)
    assert err[worst] < tol, (
        f"{what}: relative error {err[worst]:.2e} at index {tuple(int(i) for i in worst)}: "
        f"got derivative {analytic[worst]!r}, expected {numeric[worst]!r} from centred differences"
    )


@pytest.fixture(scope="session")
def assert_gradients_match() -> Callable[..., None]:
    """``assert_gradients_match(analytic, numeric, what)``: relative error below 1e-7.

    Session-scoped so that Hypothesis tests may use it too.
    """
    return _assert_gradients_match


def _well_conditioned(numeric: np.ndarray) -> bool:
    """True unless some gradient entry is non-zero but tiny (|g| < 1e-4).

    The centred difference carries a round-off of about 1e-16 |f| / h ≈ 1e-11 |f|, so an
    entry that random inputs happen to cancel to 1e-6 cannot be checked to a relative 1e-7.
    Exact zeros (a ReLU that is off, a Maxout piece that lost) are fine and stay in.
    Hypothesis tests ``assume`` this and draw other inputs.
    """
    numeric = np.asarray(numeric)
    return bool(np.all((numeric == 0) | (np.abs(numeric) > ACCIDENTAL_ZERO)))


@pytest.fixture(scope="session")
def well_conditioned() -> Callable[[np.ndarray], bool]:
    """``well_conditioned(numeric)``: no entry is an accidental near-zero (see above)."""
    return _well_conditioned


# The longest files first, the long tests of SLOW_TESTS marked slow (tests/suite_order.py).
@pytest.hookimpl(tryfirst=True)  # before -m "not slow" deselects by mark
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    order_and_mark(items)

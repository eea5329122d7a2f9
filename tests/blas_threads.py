"""How many threads the BLAS that NumPy loaded may use, read from the library itself.

NumPy's wheels bundle OpenBLAS (``libscipy_openblas64_``, symbols with a ``scipy_`` prefix;
other builds name it ``libopenblas``). OpenBLAS reads ``OPENBLAS_NUM_THREADS`` once, when it is
loaded, so the test suite sets the variable before anything imports NumPy
(``tests/conftest.py``); :func:`pin_loaded_blas` also pins a library that was loaded earlier.
Standard library only: no threadpoolctl needed.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

__all__ = ["BLAS_THREAD_VARIABLES", "loaded_openblas", "openblas_threads", "pin_loaded_blas"]

#: The variables that set the threads of OpenBLAS, OpenMP and MKL: "1" in every test run.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

#: The (get, set) function names of each OpenBLAS flavour, the bundled one first.
_FUNCTIONS = (
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)


def loaded_openblas() -> Path | None:
    """The OpenBLAS shared library mapped into this process, or None (none loaded yet)."""
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return None
    for line in maps:
        parts = line.split()
        if len(parts) >= 6 and "openblas" in Path(parts[-1]).name.lower():
            return Path(parts[-1])
    return None


def _functions(library: Path) -> tuple[object, object] | None:
    lib = ctypes.CDLL(str(library))
    for get, set_ in _FUNCTIONS:
        if hasattr(lib, get) and hasattr(lib, set_):
            return getattr(lib, get), getattr(lib, set_)
    return None


def openblas_threads() -> int | None:
    """The number of threads the loaded OpenBLAS uses, or None when none is loaded."""
    library = loaded_openblas()
    functions = None if library is None else _functions(library)
    if functions is None:
        return None
    get, _ = functions
    get.restype = ctypes.c_int
    return int(get())


def pin_loaded_blas(threads: int = 1) -> None:
    """Limit an OpenBLAS that is already loaded to ``threads`` (nothing when none is)."""
    library = loaded_openblas()
    functions = None if library is None else _functions(library)
    if functions is not None:
        _, set_ = functions
        set_.argtypes = [ctypes.c_int]
        set_(threads)

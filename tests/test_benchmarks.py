"""The benchmark script still runs: a smoke test, with no assertion on any speed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_library_quick_prints_both_benchmarks() -> None:
    """Check that ``benchmarks/bench_library.py --quick`` exits 0 and prints both rows."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_library.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # a few seconds on an idle machine; a busy shared CI box can be far slower
    )
    assert result.returncode == 0, f"bench_library.py --quick exited with {result.returncode}:\n{result.stderr[-3000:]}"
    rows = [line for line in result.stdout.splitlines() if line.startswith(("nn-in-20-lines step", "MLP step"))]
    assert len(rows) == 2, f"expected the two benchmark rows in the table, got:\n{result.stdout}"

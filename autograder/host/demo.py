"""``python -m autograder demo`` (``make demo``): release, grade the sample class, show the result.

1. build the student release of the sample assignment with nbgrader (``generate_assignment
   --no-db``) under ``OUT/build/``;
2. grade the bundled sample class (:mod:`autograder.sample_class`): if it no longer matches
   the release (a notebook changed since it was generated), grade one generated afresh;
3. print the grade table, where the feedback and the report are, and whether the cheaters
   were held to at most what the honest but buggy student earned.
"""

from __future__ import annotations

import filecmp
import shutil
from dataclasses import replace
from pathlib import Path

from autograder.host.pipeline import Settings, build_release, describe, grade
from autograder.sample_class import make_sample_class as sample

__all__ = ["run_demo"]

CHEATERS = ("cheater_rebind", "cheater_snoop")


def _say(settings: Settings, message: str) -> None:
    if settings.progress is not None:
        print(message, file=settings.progress, flush=True)


def run_demo(settings: Settings) -> int:
    """Run the demo into ``settings.out``; 0 when the perfect student got full marks and no
    cheater beat the buggy student, else 1."""
    out = settings.out.resolve()
    build = out / "build"
    shutil.rmtree(build, ignore_errors=True)
    _say(settings, f"building the student release of {sample.ASSIGNMENT} (nbgrader generate_assignment --no-db)")
    release = build_release(sample.ASSIGNMENT, build)

    bundled = sample.HERE / sample.ASSIGNMENT
    fresh = build / "sample_class"
    written = sample.build(release, fresh)
    bundled_copy = [bundled / p.relative_to(fresh) for p in written]
    if not all(b.is_file() and filecmp.cmp(p, b, shallow=False) for p, b in zip(written, bundled_copy, strict=True)):
        _say(
            settings,
            f"note: the bundled sample class is out of date (regenerate it with "
            f"`python {Path(sample.__file__).relative_to(sample.ROOT)}`); grading one generated "
            "from the current release instead",
        )
        submissions = fresh
    else:
        submissions = bundled

    summary = grade(replace(settings, assignment=sample.ASSIGNMENT, submissions=submissions, out=out))
    print(describe(summary))
    print(f"student release: {release}")
    scores = {r.student: r.score for r in summary.rows}
    ok = True
    perfect = next((r for r in summary.rows if r.student == "perfect"), None)
    if perfect is not None and perfect.score < perfect.max_score:
        print(f"PROBLEM: the perfect submission scored {perfect.score:g} of {perfect.max_score:g}")
        ok = False
    buggy = scores.get("buggy", 0.0)
    beat = [c for c in CHEATERS if scores.get(c, 0.0) > buggy]
    if beat:
        print(f"PROBLEM: {', '.join(beat)} scored more than the honest buggy submission ({buggy:g})")
        ok = False
    else:
        print(
            f"cheaters: {', '.join(f'{c} {scores.get(c, 0.0):g}' for c in CHEATERS)}; "
            f"none beat the honest buggy submission ({buggy:g})"
        )
    return 0 if ok else 1

"""Command line of the grading tools: ``python -m autograder grade|demo``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

GRADE_HELP = """\
Grade every submission of one assignment with nbgrader, hardened: each notebook runs in a
sandbox and every graded check is decided outside the student's code.

DIR holds one folder per student: DIR/<student_id>/<notebook>.ipynb. Files submitted beside
the notebook are ignored (and flagged); a folder with no notebook to grade scores 0 (flagged).

Writes, under OUT:
  grades.csv                          student_id, assignment, score, max_score, one column
                                      per graded cell, flags
  feedback/<student_id>/<nb>.html     nbgrader's feedback (no hidden tests, no expected values)
  report.html                         pass rate per exercise, score histogram, the class table
  gradebook.db                        nbgrader's gradebook (or the database given by --db-url)
  course/                             the nbgrader course (run `nbgrader formgrader` there)

Rerunning is safe: students already graded from the same files are skipped (an interrupted
run resumes), regraded students replace their earlier grades. --force regrades everyone.
"""

DEMO_HELP = """\
Build the student release, grade the bundled sample class (perfect, blank, partly right,
buggy, and two cheaters), and print the grade table and where the feedback and report are.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        """Bad arguments: one line on stderr, exit status 2."""
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    from .pipeline import list_assignments

    parser = _Parser(
        prog="python -m autograder",
        description="Hardened nbgrader grading for the backprop course.",
        epilog="Run `python -m autograder COMMAND --help` for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    grade = commands.add_parser(
        "grade", help="grade a folder of submissions", description=GRADE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    grade.add_argument("--assignment", required=True, metavar="NAME",
                       help=f"the assignment, a folder of solutions/ ({', '.join(list_assignments())})")
    grade.add_argument("--submissions", required=True, type=Path, metavar="DIR",
                       help="folder of DIR/<student_id>/<notebook>.ipynb")
    grade.add_argument("--out", required=True, type=Path, metavar="OUT", help="output folder (created if needed)")
    _common(grade)
    grade.add_argument("--force", action="store_true", help="regrade students already graded from the same files")

    demo = commands.add_parser("demo", help="grade the bundled sample class", description=DEMO_HELP)
    demo.add_argument("--out", type=Path, default=Path("out/demo"), metavar="OUT",
                      help="output folder (default: out/demo)")
    _common(demo)
    return parser


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), metavar="N",
                   help="students graded at the same time (default: min(4, cores) = %(default)s)")
    p.add_argument("--db-url", metavar="URL", default=None,
                   help="the gradebook as an SQLAlchemy URL (default: sqlite:///OUT/gradebook.db)")
    p.add_argument("--student-timeout", type=float, default=1800, metavar="SECONDS",
                   help="stop grading a student after this long (default: %(default)g)")
    p.add_argument("--cell-timeout", type=int, default=None, metavar="SECONDS",
                   help="seconds each notebook cell may run (default: the course configuration's)")
    p.add_argument("--cpu-seconds", type=int, default=None, metavar="SECONDS",
                   help="CPU seconds each hidden check may use (default: the course configuration's)")
    p.add_argument("--require-sandbox", action="store_true",
                   help="refuse to grade without the bubblewrap sandbox (default: grade, warn and flag)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .pipeline import Settings, UsageError, describe, grade

    common = dict(
        workers=args.workers, db_url=args.db_url, student_timeout=args.student_timeout,
        cell_timeout=args.cell_timeout, cpu_seconds=args.cpu_seconds, require_sandbox=args.require_sandbox,
        progress=None if args.quiet else sys.stderr,
    )
    try:
        if args.command == "grade":
            summary = grade(Settings(args.assignment, args.submissions, args.out, force=args.force, **common))
            print(describe(summary))
        else:
            from .demo import run_demo

            return run_demo(Settings("", Path(), args.out, **common))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

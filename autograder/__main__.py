"""Command line of the grading tools: ``python -m autograder grade|demo``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

from autograder.host.database import GradebookUnavailable, check_gradebook, gradebook_url

GRADE_HELP = """\
Grade every submission of one assignment with nbgrader, hardened: each notebook runs in a
sandbox and every graded check is decided outside the student's code.

DIR holds one folder per student, DIR/<student_id>/<notebook>.ipynb, or is a Moodle, Canvas or
Blackboard "download all submissions" (the zip itself or its unpacked folder): each student's
id is taken from the LMS's naming and their latest resubmission is graded. Files submitted
beside the notebook are ignored (and flagged); a student with no notebook to grade scores 0
(flagged). With --roster, every student on it gets a row ("no submission": 0). Anything that
cannot be attributed to a student is listed at the end and makes the exit status 1, unless
--accept-unattributed is given.

Writes, under OUT:
  grades.csv                          student_id, assignment, score, max_score,
                                      to_grade_by_hand (points of answers graded by hand,
                                      left for the formgrader), one column per graded cell, flags
  feedback/<student_id>/<nb>.html     nbgrader's feedback (no hidden tests, no expected values)
  report.html                         pass rate per exercise, score histogram, the class table
  gradebook.db                        nbgrader's gradebook (or the database given by --db-url)
  course/                             the nbgrader course (run `nbgrader formgrader` there)
  lms_students.csv                    student_id, lms, lms_name, lms_number (an LMS download's)

Rerunning is safe: students already graded from the same files are skipped (an interrupted
run resumes), regraded students replace their earlier grades. --force regrades everyone.
"""

EXPORT_HELP = """\
Write the grades of OUT's gradebook as an LMS imports them: canvas (the gradebook import CSV),
moodle (the assignment's offline grading worksheet) or moodle-gradebook (the gradebook's CSV
import). Every student of the gradebook gets a row (0 without a submission); the LMS numbers
come from OUT/lms_students.csv, written by `grade` from the LMS's download.
"""

DEMO_HELP = """\
Build the student release, grade the bundled sample class (perfect, blank, partly right,
buggy, and two cheaters), and print the grade table and where the feedback and report are.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """Bad arguments: one line on stderr, exit status 2."""
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    from autograder.host.pipeline import list_assignments

    parser = _Parser(
        prog="python -m autograder",
        description="Hardened nbgrader grading for the backprop course.",
        epilog="Run `python -m autograder COMMAND --help` for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    grade = commands.add_parser(
        "grade",
        help="grade a folder of submissions",
        description=GRADE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    grade.add_argument(
        "--assignment",
        required=True,
        metavar="NAME",
        help=f"the assignment, a folder of solutions/ ({', '.join(list_assignments())})",
    )
    grade.add_argument(
        "--submissions",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder of DIR/<student_id>/<notebook>.ipynb, or an LMS's download (zip or folder)",
    )
    grade.add_argument("--out", required=True, type=Path, metavar="OUT", help="output folder (created if needed)")
    _common(grade)
    grade.add_argument("--force", action="store_true", help="regrade students already graded from the same files")
    where = grade.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        default=None,
        help="grade on the Dask cluster of this scheduler (it waits for --workers workers to join; "
        "each must prove it can grade); default: on this machine",
    )
    where.add_argument(
        "--cluster",
        choices=["slurm"],
        default=None,
        help="start a Dask cluster for the run: --workers SLURM jobs (dask-jobqueue)",
    )
    grade.add_argument(
        "--roster",
        metavar="FILE.csv",
        default=None,
        help="the class list: a CSV with a student_id (or id) column, optional name, first_name, "
        "last_name, email, lms_user_id; or `gradebook` for the gradebook's students table",
    )
    grade.add_argument(
        "--accept-unattributed",
        action="store_true",
        help="exit 0 even when files of the download could not be attributed to a student",
    )

    export = commands.add_parser("export", help="write grades for Canvas or Moodle to import", description=EXPORT_HELP)
    export.add_argument(
        "--to", required=True, choices=["canvas", "moodle", "moodle-gradebook"], help="the LMS's import format"
    )
    export.add_argument("--out", required=True, type=Path, metavar="OUT", help="the output folder of `grade`")
    export.add_argument(
        "--assignment", metavar="NAME", default=None, help="the assignment (default: all; moodle formats need one)"
    )
    export.add_argument(
        "--file", type=Path, default=None, metavar="FILE", help="where to write (default: OUT/<format>_grades.csv)"
    )
    export.add_argument(
        "--column",
        default="",
        metavar="HEADER",
        help="the assignment's column: Canvas's 'Name (id)' header, or Moodle's grade item name",
    )
    export.add_argument(
        "--db-url",
        metavar="URL",
        default=None,
        type=gradebook_url,
        help="the gradebook as an SQLAlchemy URL (default: sqlite:///OUT/gradebook.db)",
    )

    demo = commands.add_parser("demo", help="grade the bundled sample class", description=DEMO_HELP)
    demo.add_argument(
        "--out", type=Path, default=Path("out/demo"), metavar="OUT", help="output folder (default: out/demo)"
    )
    _common(demo)
    return parser


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        metavar="N",
        help="students graded at the same time (default: min(4, cores) = %(default)s)",
    )
    p.add_argument(
        "--db-url",
        metavar="URL",
        default=None,
        type=gradebook_url,
        help="the gradebook as an SQLAlchemy URL (default: sqlite:///OUT/gradebook.db)",
    )
    p.add_argument(
        "--student-timeout",
        type=float,
        default=1800,
        metavar="SECONDS",
        help="stop grading a student after this long (default: %(default)g)",
    )
    p.add_argument(
        "--cell-timeout",
        type=int,
        default=None,
        metavar="SECONDS",
        help="seconds each notebook cell may run (default: the course configuration's)",
    )
    p.add_argument(
        "--cpu-seconds",
        type=int,
        default=None,
        metavar="SECONDS",
        help="CPU seconds each hidden check may use (default: the course configuration's)",
    )
    p.add_argument(
        "--require-sandbox",
        action="store_true",
        help="refuse to grade without the bubblewrap sandbox (default: grade, warn and flag)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.db_url is not None:
        try:
            check_gradebook(args.db_url)
        except GradebookUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.command == "export":
        return _export(args)
    from autograder.host.pipeline import Settings, UsageError, describe, grade

    common = dict(
        workers=args.workers,
        db_url=args.db_url,
        student_timeout=args.student_timeout,
        cell_timeout=args.cell_timeout,
        cpu_seconds=args.cpu_seconds,
        require_sandbox=args.require_sandbox,
        progress=None if args.quiet else sys.stderr,
    )
    try:
        if args.command == "grade":
            roster = Path(args.roster) if args.roster else None
            summary = grade(
                Settings(
                    args.assignment,
                    args.submissions,
                    args.out,
                    force=args.force,
                    roster=roster,
                    scheduler=args.scheduler,
                    cluster=args.cluster,
                    **common,
                )
            )
            print(describe(summary))
            if summary.unattributed and not args.accept_unattributed:
                print(
                    f"error: {len(summary.unattributed)} file(s) could not be attributed to a student (listed "
                    "above); rename them as the LMS would, or pass --accept-unattributed",
                    file=sys.stderr,
                )
                return 1
        else:
            from autograder.host.demo import run_demo

            return run_demo(Settings("", Path(), args.out, **common))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def _export(args: argparse.Namespace) -> int:
    """``export``: the gradebook of OUT as the LMS's import file."""
    from nbgrader.api import Gradebook, MissingEntry

    from autograder.host.export import gather, write
    from autograder.host.submission import COURSE_ID

    bin_dir = str(Path(sys.executable).parent)  # nbgrader's gradebook runs the `alembic` installed here
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    out = args.out.resolve()
    db_url = args.db_url or f"sqlite:///{out / 'gradebook.db'}"
    if args.db_url is None and not (out / "gradebook.db").is_file():
        print(
            f"error: no gradebook in {out} (run `python -m autograder grade` first, or pass --db-url)", file=sys.stderr
        )
        return 2
    dest = args.file or out / f"{args.to}_grades.csv"
    try:
        with Gradebook(db_url, COURSE_ID) as gb:
            lines = gather(gb, [args.assignment] if args.assignment else [], out / "lms_students.csv")
        left_out = write(args.to, dest, lines, args.column)
    except (MissingEntry, ValueError) as exc:
        what = f"no assignment {args.assignment!r} in the gradebook" if isinstance(exc, MissingEntry) else exc
        print(f"error: {what}", file=sys.stderr)
        return 2
    print(f"{args.to}: {len(lines) - len(left_out)} grade(s) written to {dest}")
    if left_out:
        print(f"left out (no Moodle participant number): {', '.join(left_out)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

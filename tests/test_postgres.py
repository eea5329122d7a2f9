"""A PostgreSQL gradebook: a real server, started here, graded into twice; and the one-line errors.

The server is the Debian package ``postgresql`` (installed by ``make test`` / ``.ci/run`` when
they run as root), started by ``initdb`` and ``pg_ctl`` in a temporary folder on a free port of
127.0.0.1, as an unprivileged user (PostgreSQL refuses to run as root), and stopped at the end.
Without the package, the server tests are skipped and say why.
"""

from __future__ import annotations

import csv
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy

from autograder import sandbox
from autograder.host.database import GradebookUnavailable, check_gradebook, gradebook_url

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "autograder" / "sample_class" / "03_layers"
NBGRADER = Path(sys.executable).parent / "nbgrader"
#: The students graded into PostgreSQL: full marks, nothing, and a cheater whose flags are stored.
PG_STUDENTS = ("perfect", "blank", "cheater_rebind")

needs_sandbox = pytest.mark.skipif(not sandbox.bubblewrap_available(), reason="needs bubblewrap (grading)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _postgres_bin() -> Path | None:
    """The folder of initdb/pg_ctl: on PATH, or where Debian's package puts them."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


@dataclass(frozen=True)
class Server:
    """A running PostgreSQL server: ``url(db)`` is the plain ``postgresql://`` URL of a database."""

    port: int
    user: str

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        engine = sqlalchemy.create_engine(gradebook_url(self.url("postgres")), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return self.url(name)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (Debian package `postgresql`; make test installs it as root)")
    # PostgreSQL will not run as root: as root, run it as the package's `postgres` user (or nobody).
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:
        name = next((n for n in ("postgres", "nobody") if _has_user(n)), None)
        if name is None or shutil.which("setpriv") is None:
            pytest.skip("running as root, and no unprivileged user (postgres, nobody) or setpriv to run PostgreSQL")
        owner = pwd.getpwnam(name)
        as_user = ["setpriv", f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}", "--clear-groups", "--"]
    top = Path(tempfile.mkdtemp(prefix="backprop-pg-"))
    data, sockets = top / "data", top / "sockets"
    sockets.mkdir()
    if owner is not None:
        for p in (top, sockets):
            os.chown(p, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    user = "grader"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*as_user, *args], cwd=top, env=env, capture_output=True, text=True, timeout=120)

    init = run(str(bindir / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8")
    if init.returncode != 0:
        shutil.rmtree(top, ignore_errors=True)
        pytest.skip(f"initdb failed: {init.stderr.strip()[-300:]}")
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(top / "server.log"), "-o", options, "-w", "start")
    if start.returncode != 0:
        log = (top / "server.log").read_text(errors="replace")[-500:] if (top / "server.log").exists() else ""
        shutil.rmtree(top, ignore_errors=True)
        pytest.fail(f"pg_ctl start failed: {start.stderr.strip()} {log}")
    try:
        yield Server(port, user)
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(top, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _rows(url: str) -> dict[str, int]:
    """Row counts of the gradebook tables that grading fills."""
    engine = sqlalchemy.create_engine(gradebook_url(url))
    tables = ["student", "assignment", "submitted_assignment", "submitted_notebook", "grade", "comment"]
    with engine.connect() as conn:
        counts = {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one() for t in tables}
    engine.dispose()
    return counts


def _grades(out: Path) -> dict[str, tuple[str, str]]:
    with open(out / "grades.csv", newline="") as f:
        return {r["student_id"]: (r["score"], r["max_score"]) for r in csv.DictReader(f)}


# The URL and the errors: no server needed
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db.example:5432/grades", "postgresql+psycopg://u:p@db.example:5432/grades"),
        ("postgres://u@localhost/grades", "postgresql+psycopg://u@localhost/grades"),
        ("postgresql+psycopg2://u@localhost/grades", "postgresql+psycopg2://u@localhost/grades"),
        ("sqlite:////tmp/gradebook.db", "sqlite:////tmp/gradebook.db"),
    ],
)
def test_plain_postgresql_urls_name_psycopg3(given, expected):
    assert gradebook_url(given) == expected


def test_an_unreachable_server_is_one_line_without_the_password():
    url = f"postgresql://grader:s3cret@127.0.0.1:{_free_port()}/gradebook"
    with pytest.raises(GradebookUnavailable) as info:
        check_gradebook(gradebook_url(url), timeout=5)
    message = str(info.value)
    assert "cannot reach the gradebook" in message and "s3cret" not in message and "\n" not in message


@pytest.mark.slow  # four Pythons that import nbgrader: over 10 s
@pytest.mark.parametrize("how", ["cli", "stock"])
def test_errors_are_one_line_and_exit_non_zero(tmp_path, how):
    """A missing driver (psycopg hidden from the interpreter), and an unreachable server, from
    `python -m autograder grade` and from stock nbgrader through BACKPROP_GRADEBOOK_URL."""
    unreachable = f"postgresql://grader@127.0.0.1:{_free_port()}/gradebook"
    hide_driver = "import sys; sys.modules['psycopg'] = None; "
    for prelude, url, says in [(hide_driver, unreachable, "pip install"), ("", unreachable, "cannot reach")]:
        if how == "cli":
            code = f"{prelude}from autograder.__main__ import main; sys.exit(main(sys.argv[1:]))"
            args = [
                "grade",
                "--assignment",
                "03_layers",
                "--submissions",
                str(SAMPLE),
                "--out",
                str(tmp_path / "o"),
                "--db-url",
                url,
                "--quiet",
            ]
            run = subprocess.run(
                [sys.executable, "-c", "import sys; " + code, *args],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=ROOT,
            )
        else:
            code = f"{prelude}from nbgrader.apps.nbgraderapp import main; sys.argv[0] = 'nbgrader'; main()"
            run = subprocess.run(
                [sys.executable, "-c", "import sys; " + code, "db", "student", "list"],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=ROOT / "autograder",
                env={**os.environ, "BACKPROP_GRADEBOOK_URL": url},
            )
        assert run.returncode != 0, run.stdout
        lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and says in lines[0] and "Traceback" not in run.stderr, run.stderr[-2000:]


# A real server
# ----------------------------------------------------------------------------------------


@pytest.mark.slow
@needs_sandbox
def test_grading_twice_into_postgresql_gives_the_same_grades_and_duplicates_nothing(server, tmp_path):
    """Three of the sample class (full marks, nothing, a flagged cheater): what each kind of
    student does in the gradebook; the whole class is graded by the other pipeline tests."""
    url = server.create_database("pipeline")
    out = tmp_path / "out"
    students = tmp_path / "class"
    for student in PG_STUDENTS:
        shutil.copytree(SAMPLE / student, students / student)
    command = [
        sys.executable,
        "-m",
        "autograder",
        "grade",
        "--assignment",
        "03_layers",
        "--submissions",
        str(students),
        "--out",
        str(out),
        "--workers",
        "2",
        "--db-url",
        url,
        "--quiet",
    ]
    first = subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=ROOT)
    assert first.returncode == 0, first.stderr[-3000:]
    grades, rows = _grades(out), _rows(url)
    assert not (out / "gradebook.db").exists(), "the gradebook went to SQLite, not PostgreSQL"
    assert set(grades) == set(PG_STUDENTS)
    assert grades["perfect"][0] == grades["perfect"][1] != "0" and grades["blank"][0] == "0"
    assert float(grades["cheater_rebind"][0]) < float(grades["perfect"][0])
    assert rows["student"] == len(grades) and rows["submitted_assignment"] == len(grades)
    again = subprocess.run([*command, "--force"], capture_output=True, text=True, timeout=1800, cwd=ROOT)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _grades(out) == grades
    assert _rows(url) == rows


@pytest.mark.slow
@needs_sandbox
def test_stock_nbgrader_autograde_into_postgresql_twice(server, tmp_path):
    """`nbgrader autograde` with the course's configuration and BACKPROP_GRADEBOOK_URL (only the
    course root moved to a temporary folder); the second run (--force) duplicates nothing."""
    url = server.create_database("stock")
    course = tmp_path / "course"
    students = ["perfect", "blank"]
    for student in students:
        target = course / "autograder" / "submitted" / student / "03_layers"
        target.mkdir(parents=True)
        shutil.copy(SAMPLE / student / "layers.ipynb", target / "layers.ipynb")
    env = {**os.environ, "BACKPROP_GRADEBOOK_URL": url}
    where = [
        f"--CourseDirectory.root={course}",
        f"--CourseDirectory.source_directory={ROOT / 'solutions'}",
        "--CourseDirectory.release_directory=release",
    ]

    def nbgrader(*args: str) -> None:
        run = subprocess.run(
            [str(NBGRADER), *args, *where],
            cwd=ROOT / "autograder",
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert run.returncode == 0, run.stderr[-3000:]

    nbgrader("generate_assignment", "03_layers", "--force")
    for student in students:
        nbgrader("db", "student", "add", student)
    nbgrader("autograde", "03_layers")
    scores = _stock_scores(url)
    rows = _rows(url)
    assert scores["perfect"][0] == scores["perfect"][1] > 0 and scores["blank"][0] == 0, scores
    nbgrader("autograde", "03_layers", "--force")
    assert _stock_scores(url) == scores
    assert _rows(url) == rows


def _stock_scores(url: str) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(gradebook_url(url), "backprop") as gb:
        return {s.student.id: (s.score, s.max_score) for s in gb.assignment_submissions("03_layers")}

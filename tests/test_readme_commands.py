"""The README's instructor commands, read from README.md and run as written on the sample class.

The commands come from the README's code blocks, so a README that drifts from what the commands
really do fails here. They run in a copy of the course (its ``nbgrader_config.py``, ``solutions/``
and ``notebooks/``, with ``.venv`` linked), never in this repository's own ``autograder/``.
Only what the README itself says to add is added: ``--allow-root`` as root, and for the
formgrader's server a port, a token and no browser, so that the test can ask it something.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from autograder import sandbox

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SAMPLE = ROOT / "autograder" / "sample_class" / "03_layers"
#: The sample class as a Canvas download: (Canvas's name, user id, file id) of each student.
CANVAS = {"perfect": ("perfectstudent", "1001", "5001"), "buggy": ("buggystudent", "1002", "5002")}

needs_sandbox = pytest.mark.skipif(not sandbox.bubblewrap_available(), reason="needs bubblewrap (grading)")


def code_block_after(heading: str, text: str | None = None) -> list[str]:
    """The command lines of the first ``sh`` block after ``heading``, comments and blanks dropped,
    continuation lines joined."""
    text = README.read_text() if text is None else text
    start = text.index(heading)
    block = re.search(r"```sh\n(.*?)```", text[start:], flags=re.S)
    assert block, f"no sh code block after {heading!r} in README.md"
    joined = block.group(1).replace("\\\n", " ")
    lines = [re.sub(r"(^|\s)#.*$", "", line).strip() for line in joined.splitlines()]
    return [line for line in lines if line]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _course_copy(top: Path) -> Path:
    course = top / "course"
    (course / "autograder").mkdir(parents=True)
    shutil.copy(ROOT / "autograder" / "nbgrader_config.py", course / "autograder" / "nbgrader_config.py")
    shutil.copytree(ROOT / "solutions", course / "solutions")
    shutil.copytree(ROOT / "notebooks", course / "notebooks")
    (course / ".venv").symlink_to(ROOT / ".venv")
    return course


def _canvas_download(course: Path) -> None:
    """The sample class's perfect and buggy students as Canvas's "Download Submissions" zip, where
    the README's zip_collect line says it goes."""
    archive = course / "autograder" / "downloaded" / "03_layers" / "archive"
    archive.mkdir(parents=True)
    with zipfile.ZipFile(archive / "submissions.zip", "w") as zf:
        for student, (name, user, file_id) in CANVAS.items():
            zf.write(SAMPLE / student / "layers.ipynb", f"{name}_{user}_{file_id}_layers.ipynb")


def test_the_stock_commands_block_is_found_and_has_no_fake_command():
    """`nbgrader formgrader` is not a command of nbgrader 0.9 (it prints the subcommands, exit 0)."""
    commands = code_block_after("### Stock nbgrader commands")
    assert commands[0] == "cd autograder"
    assert not any(shlex.split(c)[:2] == ["../.venv/bin/nbgrader", "formgrader"] for c in commands)
    assert any("jupyter" in c for c in commands), "the README no longer says how to start the formgrader"
    helped = subprocess.run([str(ROOT / ".venv" / "bin" / "nbgrader"), "--help-all"], capture_output=True, text=True)
    subcommands = set(re.findall(r"^([a-z_]+)\n {4}\S", helped.stdout, flags=re.M))
    for command in commands:
        words = shlex.split(command)
        if words[0].endswith("/nbgrader"):
            assert words[1] in subcommands, f"`{command}`: nbgrader has no subcommand {words[1]!r}"


def test_code_block_after_reads_commands_as_a_shell_would():
    text = "### H\n\n```sh\ncd x   # go\n\nrun --a \\\n    --b   # both\n```\n"
    assert code_block_after("### H", text) == ["cd x", "run --a      --b"]


@pytest.mark.slow
@needs_sandbox
def test_the_readme_stock_nbgrader_commands_run_as_written(tmp_path):
    course = _course_copy(tmp_path)
    _canvas_download(course)
    commands = code_block_after("### Stock nbgrader commands")
    cwd = course
    env = {k: v for k, v in os.environ.items() if k != "BACKPROP_GRADEBOOK_URL"}
    server = None
    for command in commands:
        words = shlex.split(command)
        if words[0] == "cd":
            cwd = (cwd / words[1]).resolve()
            continue
        if words[0].endswith("/jupyter"):
            server = (cwd, words)
            continue
        run = subprocess.run(words, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
        assert run.returncode == 0, f"`{command}` failed:\n{run.stderr[-3000:]}"
    autograder = course / "autograder"
    assert sorted(p.name for p in (autograder / "submitted").iterdir()) == sorted(u for _, u, _ in CANVAS.values())
    for _, user, _ in CANVAS.values():
        assert (autograder / "autograded" / user / "03_layers" / "layers.ipynb").is_file()
        assert (autograder / "feedback" / user / "03_layers" / "layers.html").is_file()
    scores = _scores(autograder / "gradebook.db")
    perfect, buggy = CANVAS["perfect"][1], CANVAS["buggy"][1]
    # The perfect student scores more than the buggy one (not necessarily everything: on a
    # loaded machine a check can run out of its wall-clock budget; grading itself is tested elsewhere).
    assert scores[perfect][0] > scores[buggy][0] and scores[perfect][1] > 0, scores
    assert server is not None, "no formgrader command"
    _ask_the_formgrader(*server, env=env, submissions=len(CANVAS))


def _scores(db: Path) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{db}", "backprop") as gb:
        return {s.student.id: (s.score, s.max_score) for s in gb.assignment_submissions("03_layers")}


def _ask_the_formgrader(cwd: Path, words: list[str], *, env: dict[str, str], submissions: int) -> None:
    """Start the README's formgrader server and ask its API for the assignment it grades."""
    port, token = _free_port(), "readme-test-token"
    extra = [f"--port={port}", f"--IdentityProvider.token={token}", "--no-browser"]
    if os.geteuid() == 0:
        extra.append("--allow-root")  # the README says: as root, add --allow-root
    home = cwd.parent / "home"
    home.mkdir()
    server_env = {**env, "HOME": str(home), "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    log = open(cwd.parent / "server.log", "w+")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([*words, *extra], cwd=cwd, env=server_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        assignments = _get_json(f"http://127.0.0.1:{port}/formgrader/api/assignments", token, proc)
        log.seek(0)
        assert assignments is not None, f"the formgrader did not answer:\n{log.read()[-3000:]}"
        by_name = {a["name"]: a for a in assignments}
        assert "03_layers" in by_name, assignments
        assert by_name["03_layers"]["num_submissions"] == submissions
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _get_json(url: str, token: str, proc: subprocess.Popen, attempts: int = 240) -> list | None:
    """GET ``url`` once the server is up (polled twice a second, at most ``attempts`` times)."""
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    for _ in range(attempts):
        if proc.poll() is not None:
            return None
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    return None


@pytest.mark.slow
@needs_sandbox
def test_the_readme_one_command_grading_runs_as_written(tmp_path):
    """`python -m autograder grade` as the README gives it, DIR and OUT filled in."""
    (command,) = code_block_after("### Grading a class in one command")
    submissions = tmp_path / "DIR"
    (submissions / "perfect").mkdir(parents=True)
    shutil.copy(SAMPLE / "perfect" / "layers.ipynb", submissions / "perfect" / "layers.ipynb")
    words = [{"DIR": str(submissions), "OUT": str(tmp_path / "OUT")}.get(w, w) for w in shlex.split(command)]
    assert words[0] == ".venv/bin/python"
    run = subprocess.run(words, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    with open(tmp_path / "OUT" / "grades.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["student_id"] == "perfect" and row["score"] == row["max_score"] != "0"
    assert (tmp_path / "OUT" / "report.html").is_file()


def test_make_lab_allows_root_only_as_root():
    dry = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    line = [ln for ln in dry.stdout.splitlines() if "jupyter lab" in ln][-1]
    assert ("--allow-root" in line) == (os.geteuid() == 0), line

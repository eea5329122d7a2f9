"""Submissions are read without following links; nothing of a rejected file is echoed; OUT is private.

A class beside an honest student: a notebook that is a link to the instructor's solution, one
that is a link to the honest student's notebook, a student folder that is a link, a link to a
root-only file holding a secret, a FIFO, a hard link, and links nested inside a student folder
(with file names that are HTML and control characters). The fast tests read the submissions
folder only (no grading); the slow one grades the class and then searches every file under
OUT, the progress output included, for the secret, and checks every mode under OUT.
"""

from __future__ import annotations

import io
import os
import stat
import threading
from pathlib import Path

import nbformat
import pytest
from active_content import active_content

from autograder import sandbox
from autograder.host import pipeline
from autograder.host.pipeline import Settings, grade
from autograder.sample_class import make_sample_class as sample

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "03_layers" / "layers.ipynb"
SECRET = "SECRET-MARKER-7f3a9c-do-not-leak"
EVIL_NAME = "<img src=x onerror=alert('XSS-L01')>.ipynb"
CONTROL_NAME = "bad\x1b[31m\rname\x07.ipynb"


def _perfect() -> nbformat.NotebookNode:
    return sample.exercises_only(nbformat.read(str(sample.HERE / sample.ASSIGNMENT / "perfect" / "layers.ipynb"),
                                               as_version=4))  # fmt: skip


def _blank() -> nbformat.NotebookNode:
    return sample.exercises_only(nbformat.read(str(sample.HERE / sample.ASSIGNMENT / "blank" / "layers.ipynb"),
                                               as_version=4))  # fmt: skip


def make_class(root: Path) -> Path:
    """The submissions folder described in the module docstring; returns it."""
    subs = root / "submissions"
    secret = root / "root-only" / "shadow"
    secret.parent.mkdir(parents=True)
    secret.write_text(f'{{"cells": [], "secret": "{SECRET}"}}\n')
    os.chmod(secret, 0o600)
    outside = root / "outside" / "layers.ipynb"  # what the hard link shares its file with
    outside.parent.mkdir()
    nbformat.write(_perfect(), str(outside))

    for student in ("honest", "solution_link", "copycat", "shadow", "fifo", "hardlink", "nested"):
        (subs / student).mkdir(parents=True)
    nbformat.write(_perfect(), str(subs / "honest" / "layers.ipynb"))
    (subs / "solution_link" / "layers.ipynb").symlink_to(SOLUTION)
    (subs / "copycat" / "layers.ipynb").symlink_to(Path("..") / "honest" / "layers.ipynb")
    (subs / "folder_link").symlink_to(subs / "honest", target_is_directory=True)
    (subs / "shadow" / "layers.ipynb").symlink_to(secret)
    (subs / "shadow" / "notes.txt").symlink_to(secret)
    os.mkfifo(subs / "fifo" / "layers.ipynb")
    (subs / "fifo" / EVIL_NAME).symlink_to(secret)
    os.mkfifo(subs / "fifo" / CONTROL_NAME)
    os.link(outside, subs / "hardlink" / "layers.ipynb")
    nbformat.write(_blank(), str(subs / "nested" / "layers.ipynb"))
    (subs / "nested" / "extra").mkdir()
    (subs / "nested" / "extra" / "solution.ipynb").symlink_to(SOLUTION)
    (subs / "nested" / "extra" / "shadow").symlink_to(secret)
    (subs / "nested" / "solutions").symlink_to(SOLUTION.parent, target_is_directory=True)
    return subs


def _settings(subs: Path, out: Path, progress=None) -> Settings:
    # One worker: on a shared, loaded machine two graders at once can push a check past its CPU limit.
    return Settings("03_layers", subs, out, workers=1, progress=progress)


# ----------------------------------------------------------------------------------------
# Reading the submissions folder (no grading)
# ----------------------------------------------------------------------------------------


def test_links_and_special_files_are_rejected_by_name_and_never_opened(tmp_path, monkeypatch):
    subs = make_class(tmp_path)
    opened: list[str] = []
    real_open = os.open

    def recording_open(path, flags, mode=0o777, *, dir_fd=None):
        fd = real_open(path, flags, mode, dir_fd=dir_fd)
        opened.append(os.readlink(f"/proc/self/fd/{fd}"))
        return fd

    monkeypatch.setattr(os, "open", recording_open)
    found: dict[str, pipeline._Submission] = {}
    # A FIFO opened for reading would block until a writer came: collect in a thread, so that
    # a regression fails here instead of hanging the suite.
    worker = threading.Thread(
        target=lambda: found.update(
            {s.student: s for s in pipeline._collect(_settings(subs, tmp_path / "out"), ["layers"], b"").submissions}
        ),
        daemon=True,
    )
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "collecting the submissions blocked (on the FIFO?)"
    monkeypatch.undo()

    assert sorted(found) == ["copycat", "fifo", "folder_link", "hardlink", "honest", "nested", "shadow",
                             "solution_link"]  # fmt: skip
    graded = {name: sorted(s.notebooks) for name, s in found.items()}
    assert graded == {"honest": ["layers"], "hardlink": ["layers"], "nested": ["layers"], "copycat": [],
                      "fifo": [], "folder_link": [], "shadow": [], "solution_link": []}  # fmt: skip
    flags = {name: " | ".join(s.flags) for name, s in found.items()}
    for student in ("solution_link", "copycat", "shadow"):
        assert "rejected layers.ipynb: a symbolic link, not a file (0 points for it)" in flags[student]
    assert "rejected layers.ipynb: a named pipe (FIFO), not a file (0 points for it)" in flags["fifo"]
    assert "rejected the student folder: a symbolic link, not a folder (0 points)" in flags["folder_link"]
    assert "has 2 hard links" in flags["hardlink"]
    assert "extra/solution.ipynb (a symbolic link)" in flags["nested"] and "solutions (a symbolic link)" in flags[
        "nested"]  # fmt: skip
    assert "notes.txt (a symbolic link)" in flags["shadow"]
    assert f"rejected {EVIL_NAME}: a symbolic link" in flags["fifo"]  # named (the report escapes it) ...
    assert "bad\\x1b[31m\\rname\\x07.ipynb" in flags["fifo"]  # ... and control characters escaped
    assert all(ch.isprintable() for f in flags.values() for ch in f)
    assert all(len(flag) < 400 for s in found.values() for flag in s.flags)
    assert flags["honest"] == ""
    assert SECRET not in repr(found)

    secret = str(tmp_path / "root-only" / "shadow")
    never = [secret, str(SOLUTION), str(SOLUTION.parent), str(subs / "fifo" / "layers.ipynb"),
             str(subs / "fifo" / CONTROL_NAME)]  # fmt: skip
    assert not [p for p in opened if p in never], "opened a file it should only have named"
    assert str(subs / "honest" / "layers.ipynb") in opened  # the recording sees what is read


def test_a_changed_link_target_changes_nothing_but_a_new_file_regrades(tmp_path):
    subs = make_class(tmp_path)
    settings = _settings(subs, tmp_path / "out")
    before = {s.student: s.digest for s in pipeline._collect(settings, ["layers"], b"").submissions}
    (tmp_path / "root-only" / "shadow").write_text("changed " + SECRET)  # never read: digest unchanged
    nbformat.write(_blank(), str(subs / "honest" / "layers.ipynb"))
    after = {s.student: s.digest for s in pipeline._collect(settings, ["layers"], b"").submissions}
    assert after["shadow"] == before["shadow"]
    assert after["honest"] != before["honest"]


def test_a_notebook_swapped_for_a_link_after_collection_is_not_copied(tmp_path):
    subs = make_class(tmp_path)
    target = subs / "honest" / "layers.ipynb"
    with pytest.raises(pipeline.NotAFile, match="symbolic link"):
        target.unlink()
        target.symlink_to(tmp_path / "root-only" / "shadow")
        pipeline.open_regular(target, subs)
    with pytest.raises(pipeline.NotAFile, match="link"):
        pipeline.open_regular(subs / "folder_link" / "layers.ipynb", subs)
    fd = pipeline.open_regular(subs / "hardlink" / "layers.ipynb", subs)
    os.close(fd)


def test_make_private_never_follows_a_link_out_of_out(tmp_path):
    out = tmp_path / "out"
    (out / "course" / "submitted").mkdir(parents=True)
    (out / "course" / "submitted" / "x.ipynb").write_text("{}")
    outside = tmp_path / "instructor.txt"
    outside.write_text("mine")
    os.chmod(outside, 0o644)
    (out / "course" / "link").symlink_to(outside)
    (out / "theirs.txt").write_text("the instructor's own file in OUT")
    os.chmod(out / "theirs.txt", 0o644)
    pipeline.make_private(out)
    assert stat.S_IMODE(os.stat(outside).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(out / "theirs.txt").st_mode) == 0o644  # not written by a run: left alone
    assert stat.S_IMODE(os.stat(out / "course" / "submitted" / "x.ipynb").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(out / "course" / "submitted").st_mode) == 0o700


# ----------------------------------------------------------------------------------------
# Grading the class
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def link_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("links")
    subs = make_class(root)
    progress = io.StringIO()
    out = root / "out"
    summary = grade(_settings(subs, out, progress))
    return out, summary, progress.getvalue()


@pytest.mark.slow
@pytest.mark.skipif(not sandbox.bubblewrap_available(), reason="grading needs the bubblewrap sandbox")
def test_links_earn_nothing_and_the_honest_student_is_graded(link_run):
    out, summary, _ = link_run
    rows = {r.student: r for r in summary.rows}
    assert sorted(rows) == ["copycat", "fifo", "folder_link", "hardlink", "honest", "nested", "shadow",
                            "solution_link"]  # fmt: skip
    assert rows["honest"].score == rows["honest"].max_score == 18
    assert rows["hardlink"].score == 18  # a regular file: graded as the file it is
    for student in ("solution_link", "copycat", "folder_link", "shadow", "fifo", "nested"):
        assert rows[student].score == 0, student
    assert any("rejected layers.ipynb: a symbolic link" in f for f in rows["solution_link"].flags)
    report = (out / "report.html").read_text()
    assert active_content(report, ["XSS-L01"]) == []
    assert "&lt;img src=x onerror=alert(&#x27;XSS-L01&#x27;)&gt;.ipynb" in report  # named, escaped
    submitted = out / "course" / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == ["hardlink", "honest", "nested"]
    for path in submitted.rglob("*"):
        assert not path.is_symlink()
        if path.is_file():
            assert "BEGIN HIDDEN TESTS" not in path.read_text(errors="replace")


@pytest.mark.slow
@pytest.mark.skipif(not sandbox.bubblewrap_available(), reason="grading needs the bubblewrap sandbox")
def test_the_secret_appears_nowhere_and_everything_under_out_is_private(link_run):
    out, _, progress = link_run
    assert SECRET not in progress
    modes = {}
    for top, dirs, files in os.walk(out):
        for name in [*dirs, *files]:
            path = Path(top) / name
            st = os.lstat(path)
            assert not stat.S_ISLNK(st.st_mode), path
            modes[str(path.relative_to(out))] = stat.S_IMODE(st.st_mode)
            if stat.S_ISREG(st.st_mode):
                assert SECRET.encode() not in path.read_bytes(), path
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o700
    loose = {p: oct(m) for p, m in modes.items() if m != (0o700 if (out / p).is_dir() else 0o600)}
    assert loose == {}
    honest = (
        "feedback/honest/layers.html",
        *(f"course/{d}/honest/03_layers/layers.ipynb" for d in ("submitted", "autograded")),
    )
    for expected in ("grades.csv", "report.html", "gradebook.db", "state.json", *honest):
        assert expected in modes, expected

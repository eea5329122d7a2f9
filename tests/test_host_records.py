"""The grader's records between its steps (issue 14): the staged task, the state file, the flags
of collecting a submission. No student code runs: these read folders and write files only.

- A :class:`~autograder.host.task.Task` crosses to pool processes and Dask workers by pickle:
  it must come back equal, flags included, and be hashable (Dask may key on it).
- ``OUT/state.json`` is read through typed records: what was written is read back; a file of
  a newer grader, or one that is no state file, is a usage error that says so (never silently
  overwritten, which would regrade the class); a file of an earlier version is set aside.
- Collecting gives typed flags; their kind must be the one their sentence gets back wherever
  only the sentence is kept (the state file, grades.csv, the report's counts).
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest

from autograder.host import student_files
from autograder.host.collect import collect, from_folder
from autograder.host.flags import Flag, flag_kind
from autograder.host.settings import Settings, UsageError
from autograder.host.staging import stage
from autograder.host.state import STATE_VERSION, RunState, StateFileError, StudentState
from autograder.host.task import Task

NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'


def _task(**changes) -> Task:
    fields = dict(
        student="ann",
        assignment="03_layers",
        course_root="/out/course",
        config_file="/out/course/nbgrader_config.py",
        template_db="/out/work/template.db",
        work_dir="/out/work",
        feedback_dir="/out/feedback",
        source_dir="/src/03_layers",
        hidden_paths=("/out", "/subs"),
        notebooks=("layers",),
        overrides={"TrustedExecute": {"timeout": 10}},
        flags=(Flag("rejected", "ignored files beside the notebook: notes.txt"),),
    )
    return Task(**{**fields, **changes})


# ----------------------------------------------------------------------------------------
# The task
# ----------------------------------------------------------------------------------------


def test_a_task_comes_back_from_pickle_equal_and_is_hashable():
    task = _task()
    again = pickle.loads(pickle.dumps(task))
    assert again == task and again.flags[0].kind == "rejected"
    assert again.overrides == {"TrustedExecute": {"timeout": 10}}
    assert hash(again) == hash(task)  # the overrides are left out of the hash, not a TypeError
    with pytest.raises(AttributeError):
        task.student = "bob"  # type: ignore[misc]


# ----------------------------------------------------------------------------------------
# The state file
# ----------------------------------------------------------------------------------------


def test_the_state_file_reads_back_what_was_written_and_keeps_other_assignments(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"version": STATE_VERSION, "assignments": {"01_neurons": {"zoe": {"digest": "d0"}}}}))
    state = RunState.load(path, "03_layers")
    assert state.students == {}
    answers = {"layers": {"cell-a": "h1"}}
    state.students["ann"] = StudentState("d1", ("late (moodle)",), 2.5, answers)
    state.save()
    assert os.stat(path).st_mode & 0o777 == 0o600
    written = json.loads(path.read_text())
    assert written == {
        "version": STATE_VERSION,
        "assignments": {
            "01_neurons": {"zoe": {"digest": "d0", "flags": [], "seconds": 0.0}},
            "03_layers": {"ann": {"answers": answers, "digest": "d1", "flags": ["late (moodle)"], "seconds": 2.5}},
        },
    }
    again = RunState.load(path, "03_layers")
    assert again.students == {"ann": StudentState("d1", ("late (moodle)",), 2.5, answers)}
    assert again.assignments["01_neurons"]["zoe"].answers is None  # not recorded: unknown


def test_a_state_file_of_a_newer_grader_is_a_usage_error_and_left_alone(tmp_path):
    path = tmp_path / "state.json"
    text = json.dumps({"version": STATE_VERSION + 1, "assignments": {}})
    path.write_text(text)
    with pytest.raises(StateFileError, match=f"newer grader.*version {STATE_VERSION + 1}") as raised:
        RunState.load(path, "03_layers")
    assert isinstance(raised.value, UsageError)  # one line, exit status 2
    assert path.read_text() == text


@pytest.mark.parametrize(
    "text, says",
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "no version"),
        (json.dumps({"version": "1", "assignments": {}}), "no version"),
        (json.dumps({"version": STATE_VERSION, "assignments": []}), "no assignments"),
        (json.dumps({"version": STATE_VERSION, "assignments": {"03_layers": {"ann": {"digest": 7}}}}), "digest"),
        (json.dumps({"version": STATE_VERSION, "assignments": {"03_layers": {"ann": {"digest": "d", "flags": "x"}}}}),
         "flags"),
    ],
)  # fmt: skip
def test_a_garbled_state_file_is_a_usage_error_that_says_what_to_do(tmp_path, text, says):
    path = tmp_path / "state.json"
    path.write_text(text)
    with pytest.raises(StateFileError, match=says) as raised:
        RunState.load(path, "03_layers")
    assert str(path) in str(raised.value) and "move it away" in str(raised.value)


def test_a_state_file_of_an_earlier_version_is_set_aside(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"version": STATE_VERSION - 1, "assignments": {"03_layers": {"ann": {}}}}))
    assert RunState.load(path, "03_layers").students == {}


# ----------------------------------------------------------------------------------------
# The flags of collecting and staging
# ----------------------------------------------------------------------------------------


def test_each_flag_of_a_student_folder_has_the_kind_its_sentence_gets_back(tmp_path, monkeypatch):
    monkeypatch.setattr(student_files, "MAX_NOTEBOOK_BYTES", 1024)
    folder = tmp_path / "ann"
    folder.mkdir()
    (folder / "mine.ipynb").write_text(NOTEBOOK)  # renamed: graded as layers
    os.link(folder / "mine.ipynb", tmp_path / "elsewhere.ipynb")  # and a hard link
    (folder / "losses.ipynb").write_text(NOTEBOOK + " " * 2048)  # too large
    (folder / "graphs.ipynb").symlink_to(tmp_path / "elsewhere.ipynb")  # not expected: named only
    os.mkfifo(folder / "pipe")
    (folder / "notes.txt").write_text("notes")
    sub, has_notebook = from_folder("ann", folder, ["layers", "losses"], b"")
    assert sub is not None and has_notebook and sorted(sub.notebooks) == ["layers"]
    starts = sorted(f.text.split(" ")[0] for f in sub.noticed)
    assert starts == ["ignored", "losses.ipynb", "mine.ipynb", "not", "notebook", "rejected"], sub.flags
    assert all(flag_kind(f.text).key == f.kind for f in sub.noticed), [(f.kind, f.text) for f in sub.noticed]
    assert sub.flags == [f.text for f in sub.noticed]  # the sentences, as grades.csv shows them


def test_roster_flags_are_typed_and_read_back_as_sentences(tmp_path):
    subs = tmp_path / "subs"
    (subs / "ann").mkdir(parents=True)
    (subs / "ann" / "layers.ipynb").write_text(NOTEBOOK)
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id\nbob\n")
    settings = Settings("03_layers", subs, tmp_path / "out", roster=roster, progress=None)
    found = {s.student: s for s in collect(settings, ["layers"], b"").submissions}
    assert found["ann"].noticed == [Flag("other", "not on the roster")]
    assert found["bob"].noticed == [Flag("not_graded", "no submission")] and found["bob"].notebooks == {}
    assert all(flag_kind(f.text).key == f.kind for s in found.values() for f in s.noticed)


def test_a_notebook_replaced_by_a_link_after_collecting_is_rejected_in_the_task(tmp_path):
    subs = tmp_path / "subs"
    (subs / "ann").mkdir(parents=True)
    notebook = subs / "ann" / "layers.ipynb"
    notebook.write_text(NOTEBOOK)
    (subs / "ann" / "notes.txt").write_text("notes")
    settings = Settings("03_layers", subs, tmp_path / "out", progress=None)
    (sub,) = collect(settings, ["layers"], b"").submissions
    notebook.unlink()
    notebook.symlink_to(tmp_path / "elsewhere.ipynb")
    task = stage(settings, sub, Path("/c/nbgrader_config.py"), Path("/c/template.db"), "sqlite:////c/gradebook.db")
    assert [f.kind for f in task.flags] == ["rejected", "rejected"]
    assert task.flags[1].text == "rejected layers.ipynb: a symbolic link (0 points for it)"
    assert sub.flags[-1] == task.flags[1].text  # recorded for grades.csv too
    assert not (tmp_path / "out" / "course" / "submitted" / "ann" / "03_layers" / "layers.ipynb").exists()
    assert task.notebooks == ("layers",) and str(tmp_path / "out") in task.hidden_paths
    assert task.hidden_paths[-1] == "/c/gradebook.db"  # a gradebook outside OUT is hidden too


def test_a_first_run_generates_the_assignment_once_and_its_gradebook_holds_it(tmp_path, monkeypatch):
    """The template gradebook is copied into the run's new SQLite gradebook: generate_assignment
    runs once, and the copy is the course's gradebook (the assignment and its graded cells in it,
    0600). A rerun, whose gradebook exists, generates into it again (the template is kept)."""
    from nbgrader.api import Gradebook

    from autograder.host import course_setup

    calls: list[str] = []
    real = course_setup.generate
    monkeypatch.setattr(course_setup, "generate", lambda cfg, url, a: (calls.append(url), real(cfg, url, a))[1])
    settings = Settings("03_layers", tmp_path / "subs", tmp_path / "out", progress=None)
    db_url = settings.gradebook_url()
    course_setup.prepare_course(settings, db_url)
    assert len(calls) == 1 and calls[0] != db_url
    main = tmp_path / "out" / "gradebook.db"
    assert main.stat().st_mode & 0o777 == 0o600
    with Gradebook(db_url) as gb:
        cells = {c.name for c in gb.find_assignment("03_layers").notebooks[0].grade_cells}
    assert cells and cells <= {m["grade_id"] for m in course_setup.graded_cells("03_layers")}
    course_setup.prepare_course(settings, db_url)
    assert calls[1:] == [db_url]

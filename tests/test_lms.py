"""LMS downloads in: Moodle, Canvas and Blackboard as they name their files, the zip or its
folder; the roster; unattributed files; stock ``nbgrader zip_collect``.

The downloads are laid out as each LMS's own code writes them (the sources are quoted at the top
of ``autograder/host/lms.py``):

- Moodle's "Download all submissions" (``mod/assign``): the prefix ``<Full name>_<participant
  number>`` (``_`` in the name turned into a space; ``Participant_<number>`` with blind marking),
  then with "Download submissions in folders" on ``<prefix>_assignsubmission_file/<file>``
  (Moodle 4.1 and later) or ``<prefix>_assignsubmission_file_/<file>`` (3.1 to 4.0), and off
  ``<prefix>_assignsubmission_file_<file>``; online text in ``..._assignsubmission_onlinetext...``;
- Canvas's "Download Submissions": ``<lastfirst>_<user id>_<file id>_<file>``, lower case and
  without anything but word characters (``doejane``, ``lópezana``), late ones
  ``<lastfirst>_late_<user id>_<file id>_<file>``, no name under anonymous grading, a file uploaded
  again renamed by Canvas ``<stem>-1.ipynb``, ``<stem>-2.ipynb``;
- Blackboard's "Assignment File Download": ``<Assignment>_<username>_attempt_<YYYY-MM-DD-HH-MM-SS>_<file>``
  and its receipt ``<Assignment>_<username>_attempt_<date>.txt`` ("Name: Full Name (username)",
  and "Original filename" / "Filename" per file; not documented by Blackboard, see lms.py).

Most tests read names only, or grade with every notebook "too large" (no student code runs);
one slow test grades a Canvas zip for real.
"""

from __future__ import annotations

import csv
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import sandbox
from autograder.__main__ import main
from autograder.host import lms, pipeline, student_files
from autograder.host.pipeline import Settings, UsageError, _collect
from autograder.sample_class import make_sample_class as sample

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = sample.HERE / sample.ASSIGNMENT
NB = ROOT / ".venv" / "bin" / "nbgrader"


def notebook(tag: str) -> bytes:
    """A distinct notebook's bytes (its content names it)."""
    return (
        (SAMPLE / "blank" / "layers.ipynb").read_bytes().replace(b'"cells"', f'"x_tag": "{tag}", "cells"'.encode(), 1)
    )


def tag_of(path: Path) -> str:
    data = path.read_bytes()
    start = data.index(b'"x_tag": "') + len(b'"x_tag": "')
    return data[start : data.index(b'"', start)].decode()


def lay_out(root: Path, files: dict[str, bytes | str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return root


def receipt(user: str, full: str, stored: str, original: str) -> str:
    return (
        f"Name: {full} ({user})\nAssignment: Layers\nDate Submitted: Monday, 30 January 2017 15:00:00 o'clock GMT\n"
        "Current Grade: Needs Grading\n\nSubmission Field:\nThere is no student submission text data for this "
        "assignment.\n\nComments:\nThere are no student comments for this assignment.\n\nFiles:\n"
        f"\tOriginal filename: {original}\n\tFilename: {stored}\n"
    )


MOODLE_FOLDERS = {  # Moodle 3.1 to 4.0
    "Jane Doe_1001_assignsubmission_file_/layers.ipynb": notebook("jane"),
    "Jane Doe_1001_assignsubmission_onlinetext_/onlinetext.html": "<p>see my notebook</p>",
    "Ana María López_1002_assignsubmission_file_/layers.ipynb": notebook("ana"),
    "Ana María López_1002_assignsubmission_file_/notes.txt": "my notes",
    "Bo Li_1003_assignsubmission_file_/mylayers.ipynb": notebook("bo"),
}
MOODLE_41_FOLDERS = {  # Moodle 4.1 and later: no "_" after the plugin's name
    "Jane Doe_1001_assignsubmission_file/layers.ipynb": notebook("jane"),
    "Jane Doe_1001_assignsubmission_onlinetext/onlinetext.html": "<p>see my notebook</p>",
    "Ana María López_1002_assignsubmission_file/layers.ipynb": notebook("ana"),
    "Mary Ann O'Neill_1004_assignsubmission_file/layers (2).ipynb": notebook("mary"),  # was Mary_Ann
}
MOODLE_FLAT = {
    "Jane Doe_1001_assignsubmission_file_layers.ipynb": notebook("jane"),
    "Ana María López_1002_assignsubmission_file_layers.ipynb": notebook("ana"),
}
MOODLE_BLIND = {
    "Participant_1001_assignsubmission_file/layers.ipynb": notebook("first"),
    "Participant_1002_assignsubmission_file_layers.ipynb": notebook("second"),  # "in folders" off
}
CANVAS = {
    "doejane_12345_67890_layers.ipynb": notebook("jane-first"),
    "doejane_12345_67950_layers-1.ipynb": notebook("jane-second"),
    "doejane_late_12345_68010_layers-2.ipynb": notebook("jane-latest"),
    "roejohn_23456_67901_layers.ipynb": notebook("john"),
    "lópezana_late_34567_67999_layers.ipynb": notebook("ana"),
}
CANVAS_ANONYMOUS = {
    "45678_68020_layers.ipynb": notebook("anon"),
    "late_56789_68030_layers.ipynb": notebook("anon-late"),
}
BB_STORED = "Layers_jdoe_attempt_2017-01-30-15-00-00_layers.ipynb"
BB_LATER = "Layers_jdoe_attempt_2017-01-31-09-30-00_layers.ipynb"
BLACKBOARD = {
    BB_STORED: notebook("jdoe-first"),
    "Layers_jdoe_attempt_2017-01-30-15-00-00.txt": receipt("jdoe", "Jane Doe", BB_STORED, "layers.ipynb"),
    BB_LATER: notebook("jdoe-second"),
    "Layers_jdoe_attempt_2017-01-31-09-30-00.txt": receipt("jdoe", "Jane Doe", BB_LATER, "layers.ipynb"),
    "Layers_jroe_attempt_2017-01-30-16-00-00_Layers(1).ipynb": notebook("jroe"),
    "Layers_jroe_attempt_2017-01-30-16-00-00.txt": receipt(
        "jroe", "John Roe", "Layers_jroe_attempt_2017-01-30-16-00-00_Layers(1).ipynb", "Layers(1).ipynb"
    ),
}


def collect(root: Path, roster: Path | None = None):
    settings = Settings(sample.ASSIGNMENT, root, root.parent / "out", progress=None, roster=roster)
    return _collect(settings, ["layers"], b"digest")


def by_id(collected) -> dict[str, pipeline._Submission]:
    return {s.student: s for s in collected.submissions}


def test_moodle_in_folders(tmp_path):
    got = collect(lay_out(tmp_path / "dl", MOODLE_FOLDERS))
    subs = by_id(got)
    assert sorted(subs) == ["1001", "1002", "1003"]
    assert tag_of(subs["1001"].notebooks["layers"]) == "jane"
    assert tag_of(subs["1002"].notebooks["layers"]) == "ana"
    assert "ignored files beside the notebook: notes.txt" in subs["1002"].flags
    assert "notebook renamed: graded mylayers.ipynb as layers.ipynb" in subs["1003"].flags
    names = {s.student_id: (s.lms, s.lms_name, s.lms_number) for s in got.lms_students}
    assert names["1002"] == ("moodle", "Ana María López", "1002")
    assert got.unattributed == []


def test_moodle_41_in_folders_with_online_text_and_a_browsers_copy_name(tmp_path):
    got = collect(lay_out(tmp_path / "dl", MOODLE_41_FOLDERS))
    subs = by_id(got)
    assert sorted(subs) == ["1001", "1002", "1004"]
    assert tag_of(subs["1001"].notebooks["layers"]) == "jane"
    assert not any("onlinetext" in f for f in subs["1001"].flags)  # online text is no file handed in
    assert tag_of(subs["1004"].notebooks["layers"]) == "mary"  # "layers (2).ipynb"
    names = {s.student_id: s.lms_name for s in got.lms_students}
    assert names == {"1001": "Jane Doe", "1002": "Ana María López", "1004": "Mary Ann O'Neill"}
    assert got.unattributed == []


def test_moodle_blind_marking_in_folders_and_flat(tmp_path):
    got = collect(lay_out(tmp_path / "dl", MOODLE_BLIND))
    assert {k: tag_of(v.notebooks["layers"]) for k, v in by_id(got).items()} == {"1001": "first", "1002": "second"}
    roster = tmp_path / "roster.csv"  # the numbers of this assignment, from its grading worksheet
    roster.write_text("student_id,name,lms_user_id\ns1,Jane Doe,1002\ns2,Bo Li,1001\n")
    mapped = by_id(collect(lay_out(tmp_path / "dl2", MOODLE_BLIND), roster))
    assert {k: tag_of(v.notebooks["layers"]) for k, v in mapped.items()} == {"s1": "second", "s2": "first"}


def test_moodle_flat(tmp_path):
    got = collect(lay_out(tmp_path / "dl", MOODLE_FLAT))
    subs = by_id(got)
    assert sorted(subs) == ["1001", "1002"]
    assert tag_of(subs["1001"].notebooks["layers"]) == "jane"
    assert {s.lms_name for s in got.lms_students} == {"Jane Doe", "Ana María López"}


def test_canvas_grades_the_latest_resubmission_and_flags_late(tmp_path):
    got = collect(lay_out(tmp_path / "dl", CANVAS))
    subs = by_id(got)
    assert sorted(subs) == ["12345", "23456", "34567"]
    jane = subs["12345"]
    assert tag_of(jane.notebooks["layers"]) == "jane-latest"
    assert "late (canvas)" in jane.flags
    assert any("handed in 3 times: graded the latest, layers-2.ipynb" in f for f in jane.flags)
    assert "late (canvas)" not in subs["23456"].flags
    assert "late (canvas)" in subs["34567"].flags
    names = {s.student_id: s.lms_name for s in got.lms_students}
    assert names == {"12345": "doejane", "23456": "roejohn", "34567": "lópezana"}


def test_canvas_anonymous_grading_names_no_one_but_the_user_id(tmp_path):
    subs = by_id(collect(lay_out(tmp_path / "dl", {**CANVAS, **CANVAS_ANONYMOUS})))
    assert tag_of(subs["45678"].notebooks["layers"]) == "anon" and "late (canvas)" not in subs["45678"].flags
    assert tag_of(subs["56789"].notebooks["layers"]) == "anon-late" and "late (canvas)" in subs["56789"].flags
    assert tag_of(subs["12345"].notebooks["layers"]) == "jane-latest"


def test_canvas_gives_up_counting_copies_after_8_with_a_uuid(tmp_path):
    files = {
        "doejane_12345_67890_layers-8.ipynb": notebook("eighth"),
        "doejane_12345_67999_layers-0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b.ipynb": notebook("ninth"),
    }
    jane = by_id(collect(lay_out(tmp_path / "dl", files)))["12345"]
    assert tag_of(jane.notebooks["layers"]) == "ninth"
    assert not any("renamed" in f for f in jane.flags)


def test_blackboard_with_receipts_grades_the_latest_attempt(tmp_path):
    got = collect(lay_out(tmp_path / "dl", BLACKBOARD))
    subs = by_id(got)
    assert sorted(subs) == ["jdoe", "jroe"]
    assert tag_of(subs["jdoe"].notebooks["layers"]) == "jdoe-second"
    assert tag_of(subs["jroe"].notebooks["layers"]) == "jroe"  # Layers(1).ipynb: the browser's copy name
    assert {s.student_id: s.lms_name for s in got.lms_students} == {"jdoe": "Jane Doe", "jroe": "John Roe"}
    assert got.unattributed == []


def test_the_zip_itself_and_a_rezipped_folder(tmp_path):
    for name, files, prefix in [("canvas.zip", CANVAS, ""), ("moodle.zip", MOODLE_FOLDERS, "Layers-12/")]:
        archive = tmp_path / name
        with zipfile.ZipFile(archive, "w") as zf:
            for member, data in files.items():
                zf.writestr(prefix + member, data)
        dest = tmp_path / name.replace(".zip", "")
        dest.mkdir()
        lms.extract_zip(archive, dest)
        direct = collect(lay_out(tmp_path / f"{name}-plain", files))
        got = collect(dest)
        assert sorted(by_id(got)) == sorted(by_id(direct))
        assert {k: tag_of(v.notebooks["layers"]) for k, v in by_id(got).items()} == {
            k: tag_of(v.notebooks["layers"]) for k, v in by_id(direct).items()
        }


def test_unattributed_files_are_listed_and_bad_ids_are_among_them(tmp_path):
    files = {
        **CANVAS,
        "stray notebook.ipynb": notebook("stray"),
        "Jane Doe's work/layers.ipynb": notebook("bad-id"),
        "alice/layers.ipynb": notebook("alice"),
    }
    got = collect(lay_out(tmp_path / "dl", files))
    assert sorted(got.unattributed) == ["Jane Doe's work/", "stray notebook.ipynb"]
    assert tag_of(by_id(got)["alice"].notebooks["layers"]) == "alice"  # plain folders mix with an LMS's


def test_a_linked_lms_file_is_rejected_never_read(tmp_path):
    root = lay_out(tmp_path / "dl", {"roejohn_23456_67901_notes.txt": "x"})
    secret = tmp_path / "secret.ipynb"
    secret.write_bytes(notebook("secret"))
    os.symlink(secret, root / "doejane_12345_67890_layers.ipynb")
    subs = by_id(collect(root))
    assert subs["12345"].notebooks == {}
    assert "rejected layers.ipynb: a symbolic link, not a file (0 points for it)" in subs["12345"].flags


def test_roster_maps_lms_numbers_and_names_and_adds_the_missing(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "id,first_name,last_name,email,lms_user_id\n"
        "s001,Jane,Doe,jane@example.edu,1001\n"
        "s002,Ana María,López,ana@example.edu,\n"
        "s003,Carl,Absent,carl@example.edu,\n"
    )
    got = collect(lay_out(tmp_path / "dl", MOODLE_FLAT), roster)
    subs = by_id(got)
    assert sorted(subs) == ["s001", "s002", "s003"]
    assert tag_of(subs["s001"].notebooks["layers"]) == "jane"  # by the LMS number
    assert tag_of(subs["s002"].notebooks["layers"]) == "ana"  # by the full name
    assert subs["s003"].notebooks == {} and subs["s003"].flags == ["no submission"]
    assert {s.student_id: s.lms_number for s in got.lms_students} == {"s001": "1001", "s002": "1002"}


def test_roster_matches_canvas_lastfirst_names_and_blackboard_without_receipts(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,name\nu1,John Roe\nu2,Ana López\nu3,Jane Doe\n")
    got = by_id(collect(lay_out(tmp_path / "canvas", CANVAS), roster))
    assert tag_of(got["u1"].notebooks["layers"]) == "john"  # roejohn
    assert tag_of(got["u2"].notebooks["layers"]) == "ana"  # lopezana
    assert tag_of(got["u3"].notebooks["layers"]) == "jane-latest"  # doejane
    assert "12345" not in got and "23456" not in got
    bare = {k: v for k, v in BLACKBOARD.items() if not k.endswith(".txt")}
    subs = by_id(collect(lay_out(tmp_path / "bb", bare)))
    assert tag_of(subs["jdoe"].notebooks["layers"]) == "jdoe-second"
    assert "notebook renamed: graded Layers(1).ipynb as layers.ipynb" in subs["jroe"].flags


def test_roster_from_the_gradebooks_students_table(tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    root = lay_out(tmp_path / "dl", CANVAS)
    (tmp_path / "out").mkdir()
    with Gradebook(f"sqlite:///{tmp_path / 'out' / 'gradebook.db'}", "backprop") as gb:
        gb.add_student("jane", first_name="Jane", last_name="Doe", lms_user_id="12345")
        gb.add_student("nobody", first_name="No", last_name="Body")
    subs = by_id(collect(root, Path("gradebook")))
    assert sorted(subs) == ["23456", "34567", "jane", "nobody"]
    assert tag_of(subs["jane"].notebooks["layers"]) == "jane-latest"
    assert subs["nobody"].flags == ["no submission"]


@pytest.mark.parametrize(
    "member, why",
    [("../evil.ipynb", "unsafe name"), ("/etc/evil.ipynb", "unsafe name"), ("a/../../evil", "unsafe name")],
)
def test_zip_names_that_climb_out_are_refused(tmp_path, member, why):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("doejane_12345_67890_layers.ipynb", "{}")
        zf.writestr(member, "pwned")
    (tmp_path / "dest").mkdir()
    with pytest.raises(lms.UnsafeArchive, match=why):
        lms.extract_zip(archive, tmp_path / "dest")
    assert not (tmp_path / "evil.ipynb").exists() and not Path("/etc/evil.ipynb").exists()


def test_zip_links_duplicates_and_oversize_are_refused(tmp_path, monkeypatch):
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("doejane_12345_67890_layers.ipynb")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    twice = tmp_path / "twice.zip"
    with zipfile.ZipFile(twice, "w") as zf, pytest.warns(UserWarning):
        zf.writestr("a.ipynb", "{}")
        zf.writestr("a.ipynb", "{}")
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("doejane_12345_67890_layers.ipynb", b"0" * 5000)  # a few bytes packed
    monkeypatch.setattr(lms, "MAX_MEMBER_BYTES", 4096)
    for archive, why in [(link, "link or special file"), (twice, "two entries"), (big, "larger than")]:
        dest = tmp_path / archive.stem
        dest.mkdir()
        with pytest.raises(lms.UnsafeArchive, match=why):
            lms.extract_zip(archive, dest)
        assert not any(p.is_symlink() for p in dest.rglob("*"))
    monkeypatch.setattr(lms, "MAX_MEMBER_BYTES", 10**6)
    monkeypatch.setattr(lms, "MAX_TOTAL_BYTES", 4096)
    (tmp_path / "total").mkdir()
    with pytest.raises(lms.UnsafeArchive, match="larger than"):
        lms.extract_zip(big, tmp_path / "total")


def test_not_a_zip_is_a_usage_error(tmp_path):
    bogus = tmp_path / "download.zip"
    bogus.write_text("not a zip")
    with pytest.raises(UsageError, match="not a readable zip"):
        pipeline.grade(Settings(sample.ASSIGNMENT, bogus, tmp_path / "out", progress=None))


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {r["student_id"]: r for r in csv.DictReader(f)}


@pytest.mark.slow
def test_grade_a_canvas_zip_with_a_roster_and_a_stray_file(tmp_path, monkeypatch, capsys):
    """The whole command, with every notebook "too large" so that no student code runs: each
    student on the roster gets a row, the stray file makes the exit status 1 unless accepted,
    and the LMS's names and numbers are kept (lms_students.csv and the gradebook)."""
    archive = tmp_path / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for member, data in {**CANVAS, "readme.txt": "downloaded from Canvas"}.items():
            zf.writestr(member, data)
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,name,lms_user_id\njane,Jane Doe,12345\nzoe,Zoe Absent,99999\n")
    monkeypatch.setattr(student_files, "MAX_NOTEBOOK_BYTES", 1024)
    out = tmp_path / "out"
    args = [
        "grade",
        "--assignment",
        "03_layers",
        "--submissions",
        str(archive),
        "--out",
        str(out),
        "--workers",
        "1",
        "--quiet",
        "--roster",
        str(roster),
    ]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "NOT ATTRIBUTED to any student (1)" in captured.out and "  readme.txt" in captured.out
    assert "could not be attributed" in captured.err
    rows = read_rows(out / "grades.csv")
    assert sorted(rows) == ["23456", "34567", "jane", "zoe"]
    assert float(rows["zoe"]["score"]) == 0 and "no submission" in rows["zoe"]["flags"].split("; ")
    assert "not on the roster" in rows["23456"]["flags"]
    with open(out / "lms_students.csv", newline="") as f:
        kept = {r["student_id"]: (r["lms"], r["lms_number"]) for r in csv.DictReader(f)}
    assert kept == {"jane": ("canvas", "12345"), "23456": ("canvas", "23456"), "34567": ("canvas", "34567")}
    assert stat.S_IMODE(os.stat(out / "lms_students.csv").st_mode) == 0o600
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}", "backprop") as gb:
        assert gb.find_student("jane").lms_user_id == "12345"
    again = pipeline.grade(Settings("03_layers", archive, out, workers=1, progress=None, roster=roster))
    assert (again.graded, again.skipped, again.unattributed) == (0, 4, ["readme.txt"])  # same files: skipped
    assert main([*args, "--accept-unattributed"]) == 0
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("backprop-download-*"))  # extraction removed


@pytest.mark.slow
def test_a_bad_student_id_is_no_longer_skipped_with_exit_status_0(tmp_path, monkeypatch, capsys):
    subs = lay_out(tmp_path / "subs", {"alice/layers.ipynb": notebook("a"), "bad id!/layers.ipynb": notebook("b")})
    monkeypatch.setattr(student_files, "MAX_NOTEBOOK_BYTES", 1024)
    args = [
        "grade",
        "--assignment",
        "03_layers",
        "--submissions",
        str(subs),
        "--out",
        str(tmp_path / "out"),
        "--workers",
        "1",
        "--quiet",
    ]
    assert main(args) == 1
    assert "  bad id!/" in capsys.readouterr().out


@pytest.mark.slow
def test_stock_zip_collect_takes_the_downloads(tmp_path):
    """`nbgrader zip_collect` with the course's configuration (run from autograder/ as the
    README says; only the course root moved to a temporary folder)."""
    for lms_name, files, expected in [
        ("canvas", CANVAS, {"12345": "jane-latest", "23456": "john", "34567": "ana"}),
        ("moodle", MOODLE_FOLDERS, {"1001": "jane", "1002": "ana"}),
        ("moodle41", MOODLE_41_FOLDERS, {"1001": "jane", "1002": "ana", "1004": "mary"}),
        ("moodleflat", MOODLE_FLAT, {"1001": "jane", "1002": "ana"}),
        ("moodleblind", MOODLE_BLIND, {"1001": "first", "1002": "second"}),
        ("blackboard", BLACKBOARD, {"jdoe": "jdoe-second"}),
    ]:
        course = tmp_path / lms_name
        archive = course / "autograder" / "downloaded" / "03_layers" / "archive"
        archive.mkdir(parents=True)
        with zipfile.ZipFile(archive / "download.zip", "w") as zf:
            for member, data in files.items():
                zf.writestr(member, data)
        run = subprocess.run(
            [
                str(NB),
                "zip_collect",
                "03_layers",
                f"--CourseDirectory.root={course}",
                f"--CourseDirectory.release_directory={ROOT / 'notebooks'}",
            ],
            cwd=ROOT / "autograder",
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        submitted = course / "autograder" / "submitted"
        got = {p.parent.parent.name: tag_of(p) for p in submitted.glob("*/03_layers/layers.ipynb")}
        for student, tag in expected.items():
            assert got[student] == tag, (lms_name, got)


needs_sandbox = pytest.mark.skipif(not sandbox.bubblewrap_available(), reason="needs bubblewrap")


@pytest.mark.slow
@needs_sandbox
def test_grading_a_canvas_zip_grades_the_latest_resubmission(tmp_path):
    """Jane's first upload is the blank notebook, her latest (layers-1.ipynb) the perfect one."""
    archive = tmp_path / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("doejane_12345_67890_layers.ipynb", (SAMPLE / "blank" / "layers.ipynb").read_bytes())
        zf.writestr("doejane_12345_67950_layers-1.ipynb", (SAMPLE / "perfect" / "layers.ipynb").read_bytes())
    out = tmp_path / "out"
    assert (
        main(
            [
                "grade",
                "--assignment",
                "03_layers",
                "--submissions",
                str(archive),
                "--out",
                str(out),
                "--workers",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    row = read_rows(out / "grades.csv")["12345"]
    assert float(row["score"]) == float(row["max_score"]) == 18  # the blank first upload scores 0
    assert "handed in 2 times: graded the latest, layers-1.ipynb (not layers.ipynb)" in row["flags"]
    shutil.rmtree(out)


def test_blackboard_names_with_spaces_unicode_and_underscores(tmp_path):
    stored = "Homework 3 - Layers_j_doe_attempt_2017-02-01-10-00-00_layers.ipynb"
    files = {
        stored: notebook("j_doe"),
        "Homework 3 - Layers_j_doe_attempt_2017-02-01-10-00-00.txt": receipt(
            "j_doe", "Zoë Ärzt", stored, "layers.ipynb"
        ),
        "Homework 3 - Layers_bli_attempt_2017-02-01-11-00-00_layers.ipynb": notebook("bli-first"),
        "Homework 3 - Layers_bli_attempt_2017-02-02-08-00-00_layers.ipynb": notebook("bli-second"),
    }
    got = collect(lay_out(tmp_path / "dl", files))
    subs = by_id(got)
    assert sorted(subs) == ["bli", "j_doe"]  # the receipt names the username with its "_"
    assert tag_of(subs["j_doe"].notebooks["layers"]) == "j_doe"
    assert tag_of(subs["bli"].notebooks["layers"]) == "bli-second"  # the latest attempt, no receipt needed
    assert {s.student_id: s.lms_name for s in got.lms_students}["j_doe"] == "Zoë Ärzt"
    assert got.unattributed == []


@pytest.mark.slow
def test_two_moodle_assignments_of_one_class_keep_one_id_per_student(tmp_path, monkeypatch):
    """Moodle numbers participants per assignment: Jane is 1001 in the first download and Bo is
    1001 in the second. The roster (the CSV, then the gradebook's students table the first run
    filled in) maps both downloads to the same ids, by name; no student code runs."""
    monkeypatch.setattr(student_files, "MAX_NOTEBOOK_BYTES", 1024)
    first = lay_out(
        tmp_path / "layers",
        {
            "Jane Doe_1001_assignsubmission_file/layers.ipynb": notebook("jane"),
            "Bo Li_1002_assignsubmission_file/layers.ipynb": notebook("bo"),
        },
    )
    second = lay_out(
        tmp_path / "neurons",
        {
            "Bo Li_1001_assignsubmission_file/neurons.ipynb": notebook("bo"),
            "Jane Doe_1005_assignsubmission_file/neurons.ipynb": notebook("jane"),
        },
    )
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,name,lms_user_id\ns001,Jane Doe,1001\ns002,Bo Li,\n")
    out = tmp_path / "out"
    for assignment, download, source in [("03_layers", first, roster), ("01_neurons", second, Path("gradebook"))]:
        pipeline.grade(Settings(assignment, download, out, progress=None, roster=source))
        rows = read_rows(out / "grades.csv")
        assert sorted(rows) == ["s001", "s002"], assignment
        assert not any("not on the roster" in r["flags"] for r in rows.values()), assignment
        with open(out / "lms_students.csv", newline="") as f:
            kept = {r["student_id"]: r["lms_name"] for r in csv.DictReader(f)}
        assert kept == {"s001": "Jane Doe", "s002": "Bo Li"}, assignment
    # With the first download's numbers in the CSV roster, the second download still maps by name.
    got = _collect(Settings("01_neurons", second, tmp_path / "o2", progress=None, roster=roster), ["neurons"], b"d")
    assert {s.student_id: s.lms_number for s in got.lms_students} == {"s001": "1005", "s002": "1001"}

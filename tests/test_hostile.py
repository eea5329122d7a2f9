"""Hostile submissions earn nothing and harm no one (the corpus is tests/hostile/catalogue.py).

All of them are graded in one run, together with a perfect submission, an honest wrong one,
and a perfect "peer" graded right after each attack on the grading machine itself (fork and
memory bombs, killing the parent, a daemon), so that the two run side by side.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import nbformat
import psutil
import pytest
from hostile.catalogue import CATALOGUE, HONEST_WRONG, build_notebook

from autograder import sandbox
from autograder.host.pipeline import Settings, grade
from autograder.host.submission import HIDDEN_MARKERS, leaks_hidden_tests
from autograder.sample_class import make_sample_class as sample

ROOT = Path(__file__).resolve().parent.parent
MAX_SCORE = 18.0

#: Entries of the catalogue whose mechanism a per-assignment corpus (tests/hostile/a0N_*.py,
#: graded by tests/test_hostile_0N_*.py) already covers: not graded here, to keep CI affordable.
COVERED_ELSEWHERE = {
    "delegate_super": "a01 delegate_maxout_super, a02 delegate_gates_super, a04 delegate_svm_super_saved",
    "delegate_saved_reference": "a04 delegate_svm_super_saved, a07 delegate_network_saved_code",
    "delegate_untrapped": "a07 delegate_blocks_profile_off",
    "delegate_code_copy": "a03 delegate_code_copy_and_gc",
    "delegate_module_copy": "a03 delegate_exec_library_source, a01 delegate_reload_and_exec_source",
    "finite_differences": "a03 numdiff_vectorised_elementwise, a01 numdiff_centred_vectorised",
}
CORPUS = [e for e in CATALOGUE if e.name not in COVERED_ELSEWHERE]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not sandbox.bubblewrap_available(),
        reason="hostile submissions are graded only inside the bubblewrap sandbox (Debian package 'bubblewrap')",
    ),
]


def _notebooks():
    release = nbformat.read(str(ROOT / "notebooks" / "03_layers" / "layers.ipynb"), as_version=4)
    source = nbformat.read(str(ROOT / "solutions" / "03_layers" / "layers.ipynb"), as_version=4)
    return sample.exercises_only(release), source


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Grade the whole corpus once; returns (out folder, {student: csv row})."""
    import csv

    from autograder.sample_class.make_sample_class import ALL, make_notebook

    release, source = _notebooks()
    subs = tmp_path_factory.mktemp("hostile") / "submissions"
    honest = {
        "perfect": make_notebook(release, source, ALL),
        "honest_wrong": make_notebook(release, source, HONEST_WRONG),
    }
    for name, nb in honest.items():
        (subs / name).mkdir(parents=True)
        nbformat.write(nb, str(subs / name / "layers.ipynb"))
    for entry in CORPUS:
        folder = subs / entry.name
        folder.mkdir(parents=True)
        (folder / "layers.ipynb").write_text(build_notebook(entry, release, source))
        for rel, text in entry.files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text)
        if entry.peer:
            (subs / f"{entry.name}_peer").mkdir()
            nbformat.write(honest["perfect"], str(subs / f"{entry.name}_peer" / "layers.ipynb"))
    out = subs.parent / "out"
    grade(
        Settings(
            "03_layers",
            subs,
            out,
            workers=2,
            cell_timeout=10,
            cpu_seconds=5,
            student_timeout=900,
            first_uid=21001,
            progress=None,
        )
    )
    with open(out / "grades.csv", newline="") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    return out, rows


def test_the_corpus_covers_at_least_25_attacks():
    attacks = [e for e in CORPUS if e.expect != "full"]
    assert len(attacks) >= 25
    assert len({e.name for e in CATALOGUE}) == len(CATALOGUE)
    assert set(COVERED_ELSEWHERE) <= {e.name for e in CATALOGUE}


def test_honest_baselines(run):
    _, rows = run
    assert float(rows["perfect"]["score"]) == MAX_SCORE
    assert float(rows["honest_wrong"]["score"]) < MAX_SCORE


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(e, id=e.name, marks=[pytest.mark.xfail(strict=True, reason=e.known_hole)] if e.known_hole else [])
        for e in CORPUS
    ],
)
def test_hostile_submission(entry, run):
    _, rows = run
    row = rows[entry.name]
    score = float(row["score"])
    hidden = {k: float(v) for k, v in row.items() if k.startswith("hidden_")}
    if entry.expect == "full":
        assert score == MAX_SCORE, f"{entry.what}: {score} ({row['flags']})"
    elif entry.expect == "no_hidden":
        assert not any(hidden.values()), f"{entry.what}: hidden points {hidden}"
    else:
        honest = float(rows["honest_wrong"]["score"])
        assert score <= honest, f"{entry.what}: scored {score}, the honest wrong answer {honest} ({row['flags']})"
    if entry.flag is not None:
        assert entry.flag in row["flags"], row["flags"]
    if entry.peer:
        peer = rows[f"{entry.name}_peer"]
        assert float(peer["score"]) == MAX_SCORE, f"a perfect submission graded beside {entry.name}: {peer}"


def test_no_process_outlives_grading(run):
    leftovers = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any("backprop-hostile-daemon" in part for part in proc.info["cmdline"] or []):
                leftovers.append(proc.pid)
        except psutil.Error:
            continue
    assert not leftovers


def test_gradebook_holds_no_extra_credit_and_no_stray_students(run):
    out, rows = run
    with sqlite3.connect(out / "gradebook.db") as con:
        extra = con.execute("SELECT COUNT(*) FROM grade WHERE extra_credit IS NOT NULL").fetchone()[0]
        students = {r[0] for r in con.execute("SELECT id FROM student")}
        submissions = con.execute("SELECT COUNT(*) FROM submitted_assignment").fetchone()[0]
    assert extra == 0
    assert students == set(rows)
    assert submissions == len(rows)


def test_feedback_never_shows_hidden_tests(run):
    out, rows = run
    pages = list((out / "feedback").glob("*/*.html"))
    assert len(pages) >= len(rows) - 5  # unreadable or ungradable notebooks have none
    for page in pages:
        assert leaks_hidden_tests(page.read_text(errors="replace"), (*HIDDEN_MARKERS, "hidden=True")) is None, page

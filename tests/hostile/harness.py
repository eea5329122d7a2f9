"""Grade one assignment's hostile corpus in one run and judge what came out.

:func:`planted` puts secrets on the machine for the reading attacks (a fake clone of the project
under /srv, a file under /root, a variable in the grader's environment); :func:`grade_corpus`
writes every submission (perfect, honest wrong, the entries, a perfect peer after each entry
that asks for one) and grades them all with :func:`autograder.host.pipeline.grade`, the code under
``python -m autograder grade``; the ``find_*`` functions read the output for what must not be
there: secrets (also base64-encoded), evidence of a limit passed, active content, canary files
outside the output, processes left behind.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import json
import os
import re
import secrets
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import psutil

from autograder.host.pipeline import Settings, grade
from autograder.sample_class.make_sample_class import exercises_only, make_notebook

from .catalogue import Hostile
from .corpus import EVIDENCE, Assignment

ROOT = Path(__file__).resolve().parents[2]

#: Markers of the repository's own files, searched for in feedback, grades.csv and the report.
REPO_MARKERS = {"solutions": "### BEGIN SOLUTION", "autograder": "def redact_source("}


@dataclass
class Planted:
    """Secrets on the machine, each holding a marker that must never reach the output."""

    token: str
    clone: Path
    secret_file: Path
    markers: dict[str, str]
    #: Markers searched for in the whole output folder (the others: feedback, grades, report).
    everywhere: frozenset[str] = frozenset({"clone", "root", "environ"})


@contextmanager
def planted() -> Iterator[Planted]:
    """A fake clone of the project in /srv (solutions/ with a marker, a copy of course/), a
    marker file under /root (mode 0644, as a careless admin would leave it) and a marker in the
    grading process's environment; all removed afterwards."""
    token = secrets.token_hex(6)
    markers = {name: f"{name.upper()}-SECRET-{secrets.token_hex(8)}" for name in ("clone", "root", "environ")}
    markers.update(REPO_MARKERS)
    clone = Path("/srv") / f"backprop-otherclone-{token}"
    secret_file = Path("/root") / f"backprop-hostile-secret-{token}.txt"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "solutions", clone / "solutions", ignore=ignore)
    shutil.copytree(ROOT / "course", clone / "course", ignore=ignore)
    for path in (clone / "solutions").glob("*/*.ipynb"):
        nb = nbformat.read(str(path), as_version=4)
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"instructor's copy: {markers['clone']}"))
        nbformat.write(nb, str(path))
    (clone / "SECRET.txt").write_text(markers["clone"] + "\n")
    for directory, _, files in os.walk(clone):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)
    secret_file.write_text(markers["root"] + "\n")
    secret_file.chmod(0o644)
    before = os.environ.get("BACKPROP_HOSTILE_SECRET")
    os.environ["BACKPROP_HOSTILE_SECRET"] = markers["environ"]
    try:
        yield Planted(token, clone, secret_file, markers)
    finally:
        if before is None:
            os.environ.pop("BACKPROP_HOSTILE_SECRET", None)
        else:
            os.environ["BACKPROP_HOSTILE_SECRET"] = before
        shutil.rmtree(clone, ignore_errors=True)
        secret_file.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------
# Writing the corpus
# ----------------------------------------------------------------------------------------


def notebooks(assignment: Assignment) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    """(release cut to its exercises, instructor's source) of the assignment."""
    release = nbformat.read(str(ROOT / "notebooks" / f"{assignment.path}.ipynb"), as_version=4)
    source = nbformat.read(str(ROOT / "solutions" / f"{assignment.path}.ipynb"), as_version=4)
    return exercises_only(release), source


def perfect_answers(assignment: Assignment, source) -> dict[str, object]:
    return {gid: "solution" for gid in assignment.solution_ids(source)}


def _perfect_code(release, source, perfect) -> str:
    nb = make_notebook(release, source, perfect)
    first = next(c for c in nb.cells if c.cell_type == "code")
    answers = [c.source for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("solution")]
    return "\n\n".join([first.source, *answers])


def build_entry(entry: Hostile, assignment: Assignment, release, source, plant: Planted) -> str:
    """The entry's notebook as text, its placeholders filled in."""
    perfect = perfect_answers(assignment, source)
    base = perfect if entry.over_perfect else assignment.honest_wrong
    answers = {gid: body for gid, body in {**base, **entry.answers}.items() if body != ""}
    nb = make_notebook(release, source, answers, extra_cells=entry.extra_cells)
    if entry.transform is not None:
        entry.transform(nb)
    fill = {
        "@@TOKEN@@": plant.token,
        "@@CLONE@@": str(plant.clone),
        "@@REPO@@": str(ROOT),
        "@@SECRET@@": str(plant.secret_file),
        "@@NOTEBOOK@@": assignment.path,
        "@@PERFECT@@": repr(_perfect_code(release, source, perfect)),
    }
    for cell in nb.cells:
        for key, value in fill.items():
            cell.source = cell.source.replace(key, value)
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def merge_bundle(name: str, members: list[Hostile], assignment: Assignment) -> Hostile:
    """One submission holding the attacks of ``members`` (all with ``bundle == name``): each
    member's answers that differ from its base (the honest wrong answers, or the perfect ones for
    styles) go into their own cells, which no other member may touch; the extra cells follow one
    another in the members' order. The bundle may score what its members' allowances add up to."""
    if len({m.over_perfect for m in members}) != 1 or len({m.expect for m in members}) != 1:
        raise ValueError(f"bundle {name}: styles and attacks (or different expectations) do not mix")
    if any(m.transform is not None or m.known_hole for m in members):
        raise ValueError(f"bundle {name}: notebook edits and known holes are graded alone")
    base = {} if members[0].over_perfect else assignment.honest_wrong
    answers: dict[str, object] = dict(base)
    owner: dict[str, str] = {}
    for member in members:
        for gid, body in member.answers.items():
            if gid in base and base[gid] == body:
                continue
            if gid in owner:
                raise ValueError(f"bundle {name}: {member.name} and {owner[gid]} both answer {gid}")
            owner[gid] = member.name
            answers[gid] = body
    return Hostile(
        name,
        "; ".join(f"{m.name}: {m.what}" for m in members),
        answers,
        [cell for m in members for cell in m.extra_cells],
        files={k: v for m in members for k, v in m.files.items()},
        expect=members[0].expect,
        peer=any(m.peer for m in members),
        over_perfect=members[0].over_perfect,
        allowance=sum(m.allowance for m in members),
    )


def submissions(assignment: Assignment) -> list[Hostile]:
    """What is graded for ``assignment``'s entries: each entry alone, or its bundle once."""
    out, seen = [], set()
    for entry in assignment.entries:
        if entry.bundle is None:
            out.append(entry)
        elif entry.bundle not in seen:
            seen.add(entry.bundle)
            out.append(
                merge_bundle(entry.bundle, [e for e in assignment.entries if e.bundle == entry.bundle], assignment)
            )
    return out


# ----------------------------------------------------------------------------------------
# Grading
# ----------------------------------------------------------------------------------------


@dataclass
class Run:
    """One graded corpus."""

    out: Path
    rows: dict[str, dict[str, str]]
    plant: Planted
    first_uid: int
    #: The assignment's automatic points, from the instructor's notebook.
    max_score: float
    #: Largest resident memory of any grading process outside the sandbox (bytes).
    grader_peak_rss: int = 0
    #: Processes of the sandbox uids found after grading (pid, command line).
    leftovers: list[tuple[int, str]] = field(default_factory=list)
    #: Canary files (named after the run's token) found outside OUT after grading.
    canaries: list[str] = field(default_factory=list)
    clone_changed: bool = False
    #: The bundles graded (name -> the merged submission), see :func:`merge_bundle`.
    bundles: dict[str, Hostile] = field(default_factory=dict)
    #: The points of its answer cells graded by hand (derivations, questions).
    manual_points: float = 0.0

    def score(self, student: str) -> float:
        return float(self.rows[student]["score"])


def _clone_digest(clone: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(clone.rglob("*")):
        h.update(str(path).encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


class _RssSampler(threading.Thread):
    """Samples the resident memory of the grading processes that run as this user (not the
    sandboxed ones, which run as other uids) while grading goes on."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self.stop = 0, threading.Event()

    def run(self) -> None:
        me, uid = psutil.Process(), os.getuid()
        while not self.stop.wait(0.25):
            try:
                procs = [me, *me.children(recursive=True)]
            except psutil.Error:
                continue
            for proc in procs:
                try:
                    if proc.uids().real == uid:
                        self.peak = max(self.peak, proc.memory_info().rss)
                except psutil.Error:
                    continue


def _sandbox_processes(first_uid: int, workers: int) -> list[tuple[int, str]]:
    from autograder.verdicts.engine import CHECK_UID_OFFSET

    uids = {first_uid + k + CHECK_UID_OFFSET * j for k in range(workers) for j in range(8)}
    found = []
    for proc in psutil.process_iter(["uids", "cmdline"]):
        try:
            if proc.info["uids"] and proc.info["uids"].real in uids:
                found.append((proc.pid, " ".join(proc.info["cmdline"] or [])[:200]))
        except psutil.Error:
            continue
    return found


def _canaries(token: str, out: Path) -> list[str]:
    places = [
        Path("/tmp"),
        Path("/var/tmp"),
        Path("/dev/shm"),
        Path("/srv"),
        Path("/root"),
        ROOT,
        Path.home(),
        out.parent,
    ]
    found = []
    for place in places:
        try:
            for path in place.iterdir():
                if token in path.name and "otherclone" not in path.name and "secret" not in path.name:
                    found.append(str(path))
        except OSError:
            continue
    for path in out.rglob(f"*backprop-hostile-{token}*"):
        found.append(str(path))
    return sorted(set(found))


def grade_corpus(assignment: Assignment, tmp: Path, plant: Planted, *, first_uid: int, workers: int = 2) -> Run:
    """Grade ``assignment``'s perfect and honest wrong submissions and every entry in one run."""
    release, source = notebooks(assignment)
    subs = tmp / "submissions"
    name = assignment.notebook
    perfect = make_notebook(release, source, perfect_answers(assignment, source))
    for student, nb in {
        "perfect": perfect,
        "honest_wrong": make_notebook(release, source, assignment.honest_wrong),
    }.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(nb, str(subs / student / f"{name}.ipynb"))
    graded = submissions(assignment)
    for entry in graded:
        folder = subs / entry.name
        folder.mkdir(parents=True)
        (folder / f"{name}.ipynb").write_text(build_entry(entry, assignment, release, source, plant))
        for rel, text in entry.files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text)
        if entry.peer:
            (subs / f"{entry.name}_peer").mkdir()
            nbformat.write(perfect, str(subs / f"{entry.name}_peer" / f"{name}.ipynb"))
    out = tmp / "out"
    clone_before = _clone_digest(plant.clone)
    sampler = _RssSampler()
    sampler.start()
    try:
        grade(
            Settings(
                assignment.name,
                subs,
                out,
                workers=workers,
                cell_timeout=10,
                cpu_seconds=5,
                student_timeout=900,
                first_uid=first_uid,
                progress=None,
            )
        )
    finally:
        sampler.stop.set()
        sampler.join()
    with open(out / "grades.csv", newline="") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    # The automatic points: answer cells graded by hand (derivations, questions) wait for the
    # instructor and score nothing here, whatever is written in them.
    graded_cells = [c.metadata.nbgrader for c in source.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    points = sum(float(m.get("points", 0)) for m in graded_cells if not m.get("solution"))
    manual = sum(float(m.get("points", 0)) for m in graded_cells if m.get("solution"))
    return Run(
        out,
        rows,
        plant,
        first_uid,
        points,
        sampler.peak,
        _sandbox_processes(first_uid, workers),
        _canaries(plant.token, out),
        _clone_digest(plant.clone) != clone_before,
        {e.name: e for e in graded if e.name not in {x.name for x in assignment.entries}},
        manual,
    )


# ----------------------------------------------------------------------------------------
# What must not be in the output
# ----------------------------------------------------------------------------------------

_BASE64 = re.compile(rb"[A-Za-z0-9+/]{24,}={0,2}")


def _decoded(data: bytes) -> Iterator[bytes]:
    yield data
    for match in _BASE64.finditer(data):
        chunk = match.group()
        chunk = chunk[: len(chunk) - len(chunk) % 4] if not chunk.endswith(b"=") else chunk
        try:
            yield base64.b64decode(chunk, validate=False)
        except (binascii.Error, ValueError):
            continue


def student_pages(out: Path, student: str) -> list[Path]:
    """The files of ``OUT`` that show ``student``'s work: feedback, autograded notebooks."""
    return [p for p in out.rglob("*") if p.is_file() and student in p.parts]


def summary_files(out: Path) -> list[Path]:
    return [p for p in (out / "grades.csv", out / "report.html") if p.is_file()]


def find_secrets(run: Run, student: str, names: tuple[str, ...]) -> list[str]:
    """Where (file: marker) a planted or repository secret shows up in ``student``'s output."""
    found = []
    for name in names:
        marker = run.plant.markers[name].encode()
        if name in run.plant.everywhere:
            files = [*student_pages(run.out, student), *summary_files(run.out)]
        else:
            files = [p for p in student_pages(run.out, student) if "feedback" in p.parts]
            files += summary_files(run.out)
        for path in files:
            if any(marker in chunk for chunk in _decoded(path.read_bytes())):
                found.append(f"{path.relative_to(run.out)}: {name}")
    return found


def find_evidence(run: Run, student: str, what: str) -> list[str]:
    needle = (EVIDENCE + what).encode()
    return [str(p.relative_to(run.out)) for p in student_pages(run.out, student) if needle in p.read_bytes()]


#: A fenced code block of markdown (``` or ~~~, to the closing fence or the end of the cell).
_FENCED = re.compile(r"^ {0,3}(`{3,}|~{3,})[^\n]*\n.*?(?:^ {0,3}\1[`~]*[ \t]*$|\Z)", re.S | re.M)


class _Executable(HTMLParser):
    """Collects the text of scripts, event-handler attributes and javascript: URLs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._in_script = True
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") or (
                name in ("href", "src", "action", "xlink:href") and value.strip().lower().startswith("javascript:")
            ):
                self.found.append(f"<{tag} {name}={value[:80]!r}>")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.found.append(data)


def markdown_active(source: str) -> list[str]:
    """The executable content from the ``hostile_xss`` markers in a markdown cell's ``source``
    (HTML in a fenced code block is shown as text: only the rest can run)."""
    parser = _Executable()
    parser.feed(_FENCED.sub("", source))
    return [x[:120] for x in parser.found if "hostile_xss" in x]


def find_active_content(run: Run, student: str) -> list[str]:
    """Executable content from ``student`` (the ``hostile_xss`` markers) in their feedback pages
    and in the autograded notebook the formgrader shows."""
    found = []
    for path in student_pages(run.out, student):
        if path.suffix == ".html":
            parser = _Executable()
            parser.feed(path.read_text(errors="replace"))
            found += [f"{path.name}: {x[:120]}" for x in parser.found if "hostile_xss" in x]
        elif path.suffix == ".ipynb" and "autograded" in path.parts:
            try:
                nb = json.loads(path.read_text())
            except ValueError:
                continue
            for cell in nb.get("cells", []):
                if cell.get("cell_type") == "markdown":
                    found += [f"{path.name}: markdown cell: {x}" for x in markdown_active("".join(cell["source"]))]
                for output in cell.get("outputs", []):
                    data = output.get("data", {})
                    if "application/javascript" in data:
                        found.append(f"{path.name}: an application/javascript output")
                    for mime in ("text/html", "image/svg+xml"):
                        text = "".join(data.get(mime, ""))
                        if "hostile_xss" in text and re.search(r"<script|\son\w+=|javascript:", text):
                            found.append(f"{path.name}: {mime} output with executable content")
    return found


def verdict(run: Run, entry: Hostile) -> list[str]:
    """Everything wrong with the outcome of ``entry``: empty when the grader held."""
    max_score = run.max_score
    graded = run.bundles[entry.bundle] if entry.bundle else entry
    student = graded.name
    row = run.rows.get(student)
    if row is None:
        return [f"no row for {student} in grades.csv"]
    problems = []
    score, honest = float(row["score"]), run.score("honest_wrong")
    cells = ", ".join(f"{k}={v}" for k, v in row.items() if k not in _ROW_FIELDS and v and float(v) > 0)
    if entry.expect == "full" and score != max_score:
        problems.append(f"a correct solution in another style scored {score} of {max_score} ({row['flags']})")
    elif entry.expect == "at_most_honest" and score > honest + graded.allowance:
        allowed = f" + {graded.allowance:g} for its own honest work" if graded.allowance else ""
        problems.append(
            f"scored {score}, the honest wrong answer {honest}{allowed}; cells that scored: {cells} "
            f"({row['flags'][:300]})"
        )
    if entry.flag is not None and entry.flag not in row["flags"]:
        problems.append(f"not flagged {entry.flag!r}: {row['flags']!r}")
    if entry.peer:
        peer = run.score(f"{student}_peer")
        if peer != max_score:
            problems.append(f"the perfect submission graded beside it scored {peer}")
    problems += [f"secret in the output: {x}" for x in find_secrets(run, student, entry.secrets)]
    if entry.evidence:
        problems += [
            f"evidence of {entry.evidence} exhaustion in {x}" for x in find_evidence(run, student, entry.evidence)
        ]
    if entry.active:
        problems += [f"active content: {x}" for x in find_active_content(run, student)]
    if entry.bundle and problems:
        problems.insert(0, f"graded in the bundle {student!r} ({graded.what[:400]})")
    return problems


_ROW_FIELDS = frozenset({"student_id", "assignment", "score", "max_score", "to_grade_by_hand", "flags"})

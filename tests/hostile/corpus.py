"""Hostile submissions for every assignment: the record of one assignment's corpus, and the
attacks that apply to any assignment (forged results, reading the machine, exfiltration,
active content, exhaustion).

An :class:`Assignment` holds, for one of the seven assignments, its honest wrong answer set
(``honest_wrong``: a plausible wrong answer in every answer cell, each changing every graded
output), the styles (correct answers written unusually: they must keep full marks) and the
attacks (:class:`~hostile.catalogue.Hostile`). The per-assignment modules (``a01_neurons.py``
... ``a07_mlp.py``) build one each; ``tests/test_hostile_<assignment>.py`` grades it.

Attack code may hold placeholders that the harness fills in when it writes the notebook:

``@@TOKEN@@``    a token unique to the grading run (names of canary files, of the planted secrets)
``@@CLONE@@``    a fake clone of the project outside the repository (its solutions/, course/)
``@@REPO@@``     this repository's root
``@@SECRET@@``   the file the harness planted under /root
``@@PERFECT@@``  a Python string literal: the release's import cell and the perfect answer cells
``@@NOTEBOOK@@`` the assignment's folder and notebook, e.g. ``03_layers/layers``

No secret itself is ever in a notebook (its source is in the feedback): the attacks read them
from the machine. Likewise an attack that proves a hole open prints evidence it builds at run
time (``"HOSTILE-" "EVIDENCE-disk"``), so that the text appears only if the code ran that far.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field

import nbformat

from .catalogue import Hostile

__all__ = ["EVIDENCE", "Assignment", "bundle", "common_attacks", "evidence", "known_holes", "on_wrong", "style"]

#: What every piece of evidence starts with (in the OUT folder only if an attack succeeded).
EVIDENCE = "HOSTILE-EVIDENCE-"


def evidence(what: str) -> str:
    """Python source that prints the evidence ``what`` (split, so the source does not hold it)."""
    return f'print("HOSTILE-" "EVIDENCE-{what}", flush=True)'


@dataclass
class Assignment:
    """One assignment's hostile corpus."""

    name: str  # "03_layers"
    notebook: str  # "layers"
    #: A plausible wrong answer in every answer cell (grade id -> answer), each changing every output.
    honest_wrong: dict[str, object]
    entries: list[Hostile] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"{self.name}/{self.notebook}"

    def solution_ids(self, source: nbformat.NotebookNode) -> list[str]:
        """The grade ids of the answer cells (nbgrader solution cells) of the instructor's notebook."""
        return [
            c.metadata.nbgrader["grade_id"]
            for c in source.cells
            if c.get("metadata", {}).get("nbgrader", {}).get("solution")
        ]


def known_holes(entries: list[Hostile], holes: Mapping[str, str]) -> list[Hostile]:
    """``entries`` with ``known_hole`` set from ``holes`` (entry name -> which part of issue 9
    it waits for): the test is then a strict xfail, and an XPASS says to remove the mark."""
    unknown = set(holes) - {e.name for e in entries}
    if unknown:
        raise KeyError(f"known holes for entries that do not exist: {sorted(unknown)}")
    for entry in entries:
        if entry.name in holes:
            entry.known_hole = holes[entry.name]
    return entries


def bundle(entries: list[Hostile], name: str, *members: str) -> list[Hostile]:
    """Grade the ``members`` of ``entries`` in one notebook named ``name`` (their attacks do not
    interfere: each answers its own cells, extra cells only print or read); each keeps its own
    test, judged on the bundle's row. Saves a grading (about 15 s of the CI's two cores) each."""
    unknown = set(members) - {e.name for e in entries}
    if unknown:
        raise KeyError(f"bundle {name}: entries that do not exist: {sorted(unknown)}")
    for entry in entries:
        if entry.name in members:
            entry.bundle = name
    return entries


def on_wrong(honest_wrong: Mapping[str, object], **answers: object) -> dict[str, object]:
    """The honest wrong answers with some replaced (``answers``: grade id -> answer)."""
    return {**honest_wrong, **answers}


def style(name: str, what: str, answers: Mapping[str, object], extra_cells=(), **kw) -> Hostile:
    """A correct solution in another style: the perfect answers with ``answers`` replaced; full marks."""
    return Hostile(name, what, dict(answers), list(extra_cells), expect="full", over_perfect=True, **kw)


# ----------------------------------------------------------------------------------------
# Attacks that apply to every assignment. Each takes the assignment's honest wrong answers.
# ----------------------------------------------------------------------------------------

#: Writes, for every check of the job, a result computed by a correct implementation kept out
#: of the answer cells (exec'd into a private namespace): the grader must not read it.
_FORGE = """
import json as _json, os as _os
import numpy as _np
from course.exercises.base import Case as _Case, get as _get, run_case as _run_case
_NS = {}
exec(@@PERFECT@@, _NS)

def _forge(check):
    with _np.load(f"cases/{check['key']}.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    case = _Case(check["label"], arrays, check["config"])
    outputs, _ = _run_case(_get(check["exercise"]), _NS[check["symbol"]], case)
    folder = f"results/{check['key']}"
    _os.makedirs(folder, exist_ok=True)
    names = {}
    for i, (name, raw) in enumerate(outputs.items()):
        with open(f"{folder}/{i}.bin", "wb") as f:
            f.write(raw)
        names[name] = f"{i}.bin"
    with open(f"{folder}.json", "w") as f:
        _json.dump({"problems": [], "outputs": names}, f)

def _checks():
    try:
        with open("job.json") as f:
            job = _json.load(f)
    except OSError:
        return []
    return job.get("checks", []) + job.get("later", [])
"""

_FORGE_NOW = (
    _FORGE
    + """
for _check in _checks():
    try:
        _forge(_check)
    except Exception:
        pass
"""
)

#: Waits until each case has written its result, then overwrites it.
_REWRITE_LOOP = """
def _rewrite_when_done(deadline_s=240.0):
    import time
    start, done = time.monotonic(), set()
    while time.monotonic() - start < deadline_s:
        checks = _checks()
        for check in checks:
            if check["key"] not in done and _os.path.exists(f"results/{check['key']}.json"):
                try:
                    _forge(check)
                except Exception:
                    pass
                done.add(check["key"])
        if checks and len(done) == len(checks):
            return
        time.sleep(0.02)
"""

_FORGE_THREAD = (
    _FORGE
    + _REWRITE_LOOP
    + """
import threading as _threading
_threading.Thread(target=_rewrite_when_done).start()  # not a daemon: the process waits for it
"""
)

_FORGE_DAEMON = (
    _FORGE
    + _REWRITE_LOOP
    + """
if _os.fork() == 0:
    _os.setsid()
    try:
        _rewrite_when_done()
    finally:
        _os._exit(0)
"""
)

_HUGE_RESULT = """
import json as _json, os as _os
def _huge():
    try:
        with open("job.json") as f:
            job = _json.load(f)
    except OSError:
        return
    blob = b"\\x93NUMPY" + b"x" * (16 << 20)
    for check in job.get("checks", []) + job.get("later", []):
        folder = f"results/{check['key']}"
        _os.makedirs(folder, exist_ok=True)
        with open(f"{folder}/0.bin", "wb") as f:
            f.write(blob)
        with open(f"{folder}.json", "w") as f:
            _json.dump({"problems": ["x" * 1000] * 1000, "outputs": {f"n{i}": "0.bin" for i in range(200_000)}}, f)
exec("_huge()")
"""

#: Correct answers only if the cells can see the case inputs (or the job description).
_SEES = """
import os as _os
if {test}:
    exec(@@PERFECT@@, globals())
"""

#: The job description is in the cells' folder in both runs (their limits): only case data in it
#: (the checks, with their inputs, as the checking run once wrote it) would tell them anything.
_JOB_HOLDS_CASES = (
    '_os.path.exists("job.json") and any(k in __import__("json").load(open("job.json")) '
    'for k in ("checks", "later", "cases"))'
)

_READ_CLONE = """
import base64, glob, json, pathlib
for path in sorted(glob.glob("@@CLONE@@/solutions/*/*.ipynb")) + sorted(glob.glob("@@CLONE@@/SECRET*")):
    try:
        text = pathlib.Path(path).read_text()
    except OSError as exc:
        print("cannot read", path, type(exc).__name__)
        continue
    print(path, base64.b64encode(text.encode()).decode())
    if path.endswith("@@NOTEBOOK@@.ipynb".split("/")[-1]) and "@@NOTEBOOK@@".split("/")[0] in path:
        for cell in json.loads(text)["cells"]:
            if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                exec("".join(cell["source"]), globals())
"""

_READ_REPO = """
import base64, glob, json, pathlib
for path in ["@@REPO@@/solutions/@@NOTEBOOK@@.ipynb", "@@REPO@@/autograder/verdicts/withhold.py",
             "@@REPO@@/autograder/verdicts/engine.py", "@@REPO@@/.git/config"]:
    try:
        text = pathlib.Path(path).read_text()
    except OSError as exc:
        print("cannot read", path, type(exc).__name__)
        continue
    print(path, base64.b64encode(text.encode()).decode())
    if path.endswith(".ipynb"):
        for cell in json.loads(text)["cells"]:
            if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                exec("".join(cell["source"]), globals())
"""

_READ_ROOT = """
import base64, glob, pathlib
for path in ["@@SECRET@@", *glob.glob("/root/*"), *glob.glob("/root/.*")][:40]:
    try:
        data = pathlib.Path(path).read_bytes()[:4096]
    except OSError as exc:
        print("cannot read", path, type(exc).__name__)
        continue
    print(path, base64.b64encode(data).decode())
"""

_READ_ENVIRON = """
import base64, glob, os, pathlib
print("env", base64.b64encode(repr(dict(os.environ)).encode()).decode())
for path in ["/proc/1/environ", "/proc/self/environ", *glob.glob("/proc/[0-9]*/environ")][:200]:
    try:
        data = pathlib.Path(path).read_bytes()
    except OSError:
        continue
    print(path, base64.b64encode(data).decode())
"""

_ACTIVE_CONTENT = """
from IPython.display import HTML, SVG, Javascript, display
display(HTML('<script>window.hostile_xss_script_@@TOKEN@@ = 1</script><b>hello</b>'))
display(HTML('<img src="x" onerror="window.hostile_xss_img_@@TOKEN@@ = 1">'))
display(HTML('<a href="javascript:window.hostile_xss_href_@@TOKEN@@=1">click me</a>'))
display(Javascript("window.hostile_xss_js_@@TOKEN@@ = 1"))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg" onload="window.hostile_xss_svg_@@TOKEN@@=1">'
            '<circle r="4"/></svg>'))
"""


def _markdown_script(nb: nbformat.NotebookNode) -> None:
    cell = nbformat.v4.new_markdown_cell(
        "My notes.\n\n<script>window.hostile_xss_markdown_@@TOKEN@@ = 1</script>\n"
        '<img src="x" onerror="window.hostile_xss_mdimg_@@TOKEN@@ = 1">'
    )
    cell.id = "student-markdown-xss"
    nb.cells.insert(1, cell)


_DISK_FILL = (
    """
import os
written = 0
for place in [".", os.path.expanduser("~"), "/tmp", "/var/tmp", "/dev/shm"]:
    for i in range(24):
        if written >= 1536 << 20:
            break
        try:
            with open(os.path.join(place, f"backprop-hostile-@@TOKEN@@-fill-{i}"), "wb") as f:
                for _ in range(64):
                    f.write(b"\\0" * (1 << 20))
            written += 64 << 20
        except OSError:
            break
print("written MB:", written >> 20)
if written >= 1536 << 20:
    """
    + evidence("disk")
    + """
"""
)

_MEMORY_CHILDREN = (
    """
import os
def _hold(n_bytes):
    block = bytearray(n_bytes)
    block[::4096] = b"\\1" * len(block[::4096])  # touch every page
    return block
pipes, pids = [], []
for _ in range(4):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            block = _hold(1200 << 20)
            os.write(w, b"1")
            os.read(os.open("/dev/null", os.O_RDONLY), 1)
            import time
            time.sleep(3)
        except BaseException:
            pass
        os._exit(0)
    os.close(w)
    pipes.append(r)
    pids.append(pid)
held = sum(len(os.read(r, 1)) for r in pipes)
print("children holding 1.2 GB each:", held)
if held == 4:
    """
    + evidence("memory")
    + """
for pid in pids:
    os.waitpid(pid, 0)
"""
)

_FORK_CPU = """
import os, resource
def _burn(seconds):
    while resource.getrusage(resource.RUSAGE_SELF).ru_utime < seconds:
        pass
for k in range(4):
    if os.fork() == 0:
        try:
            _burn(4.0)
            with open(f"backprop-hostile-@@TOKEN@@-cpu-{k}", "w") as f:
                f.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_utime))
        finally:
            os._exit(0)
"""

_FORK_CPU_COLLECT = """
import glob, os, time
for _ in range(80):
    if len(glob.glob("backprop-hostile-@@TOKEN@@-cpu-*")) >= 4:
        break
    time.sleep(0.1)
"""

_FORK_CPU_REPORT = (
    """
import glob
total = sum(float(open(p).read() or 0) for p in glob.glob("backprop-hostile-@@TOKEN@@-cpu-*"))
print("CPU seconds used by the forks:", total)
if total >= 14:
    """
    + evidence("forkcpu")
    + """
"""
)


def _sleep_then_perfect(seconds: float) -> str:
    return f"""
import time
time.sleep({seconds})
exec(@@PERFECT@@, globals())
"""


def common_attacks(honest_wrong: Mapping[str, object], *, which: set[str] | None = None) -> list[Hostile]:
    """The attacks of classes 3 (forged results), 5 (reading the machine), exfiltration, 6 (active
    content) and 7 (exhaustion), on top of ``honest_wrong``; ``which`` keeps some by name."""
    hw = dict(honest_wrong)
    entries = [
        # (3) forged results
        Hostile(
            "forge_results_before_cases",
            "a cell writes the checking run's results/ before the cases run",
            hw,
            [("end", _FORGE_NOW)],
        ),
        Hostile(
            "forge_results_thread",
            "a thread left running by a cell rewrites each result after its case",
            hw,
            [("end", _FORGE_THREAD)],
        ),
        Hostile(
            "forge_results_daemon",
            "a forked setsid daemon outlives the cells and rewrites each result",
            hw,
            [("end", _FORGE_DAEMON)],
            peer=True,
        ),
        Hostile(
            "forge_huge_result",
            "a result record with 200,000 names and a 16 MB output per case",
            hw,
            [("end", _HUGE_RESULT)],
            peer=True,
        ),
        Hostile(
            "sees_cases",
            "correct answers only if the cells can read the case inputs (cases/)",
            hw,
            [
                (
                    "end",
                    _SEES.format(
                        test='_os.path.isdir("cases") and any(n.endswith(".npz") for n in _os.listdir("cases"))'
                    ),
                )
            ],
        ),
        Hostile(
            "sees_job",
            "correct answers only if the job description the cells can read (job.json) holds the cases",
            hw,
            [("end", _SEES.format(test=_JOB_HOLDS_CASES))],
        ),
        # (5) reading the machine, and exfiltration into the feedback
        Hostile(
            "read_other_clone",
            "reads another clone's solutions/ (exec's them), prints them base64-encoded",
            hw,
            [("end", _READ_CLONE)],
            secrets=("clone",),
        ),
        Hostile(
            "read_repo",
            "reads this repository's solutions/, autograder/ and .git, prints them base64-encoded",
            hw,
            [("end", _READ_REPO)],
            secrets=("solutions", "autograder"),
        ),
        Hostile("read_root", "reads /root, prints it base64-encoded", hw, [("end", _READ_ROOT)], secrets=("root",)),
        Hostile(
            "read_environ",
            "prints /proc/*/environ and its environment base64-encoded",
            hw,
            [("end", _READ_ENVIRON)],
            secrets=("environ",),
        ),
        # (6) active content
        Hostile(
            "active_content",
            "script, img onerror, javascript: links, JavaScript and SVG outputs, raw HTML",
            hw,
            [("end", _ACTIVE_CONTENT)],
            transform=_markdown_script,
            active=True,
        ),
        # (7) exhaustion
        Hostile(
            "disk_fill",
            "fills 1.5 GB of disk from the work folder, HOME and the tmpfs folders",
            hw,
            [("end", _DISK_FILL)],
            evidence="disk",
            peer=True,
        ),
        Hostile(
            "memory_children",
            "four children hold 1.2 GB each at the same time",
            hw,
            [("end", _MEMORY_CHILDREN)],
            evidence="memory",
            peer=True,
        ),
        Hostile(
            "fork_cpu",
            "four forks burn 4 s of CPU each, beyond the cell's budget",
            hw,
            [("end", _FORK_CPU), ("end", _FORK_CPU_COLLECT), ("end", _FORK_CPU_COLLECT), ("end", _FORK_CPU_REPORT)],
            evidence="forkcpu",
        ),
        Hostile(
            "sleeping_cell",
            "a cell sleeps 45 s of wall clock, then defines correct answers",
            hw,
            [("end", _sleep_then_perfect(45))],
        ),
        Hostile(
            "many_sleeping_cells",
            "fifteen cells sleep 9 s each (under any per-cell limit), then correct answers",
            hw,
            [("end", "import time\ntime.sleep(9)\nexec('')") for _ in range(15)] + [("end", _sleep_then_perfect(0))],
        ),
    ]
    if which is not None:
        entries = [e for e in entries if e.name in which]
    return [copy.deepcopy(e) for e in entries]

"""The sandbox that student code runs in: nothing it does escapes its limits."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import uuid
from pathlib import Path

import psutil
import pytest

from autograder.sandbox import bubblewrap as sandbox

PY = sys.executable
ROOT = Path(__file__).resolve().parent.parent

needs_bwrap = pytest.mark.skipif(
    not sandbox.bubblewrap_available() or os.getuid() != 0,
    reason="bubblewrap sandbox needs the 'bubblewrap' package and root (CI installs it)",
)
QUICK = sandbox.Limits(cpu_seconds=5, wall_seconds=60)


def run_python(code: str, tmp_path: Path, limits: sandbox.Limits = QUICK, **kwargs) -> sandbox.Result:
    return sandbox.run([PY, "-c", code], workdir=tmp_path, limits=limits, **kwargs)


def test_runs_python_with_the_course_library(tmp_path):
    result = run_python("import course, numpy; print(course.Linear.__name__)", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == b"Linear"


@needs_bwrap
def test_hides_solutions_git_and_other_paths(tmp_path):
    secret = tmp_path / "other_student"
    secret.mkdir()
    (secret / "answer.txt").write_text("42")
    work = tmp_path / "work"
    work.mkdir()
    code = (
        f"import os\nprint(sorted(os.listdir({str(ROOT)!r})))\nprint(os.path.exists({str(secret / 'answer.txt')!r}))\n"
    )
    result = run_python(code, work, hidden=[secret])
    assert result.returncode == 0, result.stderr
    listing, other = result.stdout.decode().splitlines()
    assert "solutions" not in listing and ".git" not in listing and "autograder" not in listing
    assert other == "False"


@needs_bwrap
def test_has_no_network(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)\nprint('connected')"
        result = run_python(code, tmp_path)
    assert b"connected" not in result.stdout
    assert result.returncode != 0


@needs_bwrap
def test_runs_as_an_unprivileged_user(tmp_path):
    result = run_python("import os; print(os.getuid()); os.setuid(0)", tmp_path)
    assert result.stdout.strip() == str(sandbox.NOBODY).encode()
    assert b"PermissionError" in result.stderr


def test_cpu_limit_stops_an_infinite_loop(tmp_path):
    result = run_python("while True: pass", tmp_path, limits=sandbox.Limits(cpu_seconds=2, wall_seconds=60))
    assert result.returncode != 0 and not result.timed_out
    assert result.signal in {"SIGXCPU", "SIGKILL"}


def test_wall_clock_limit_stops_a_sleeper(tmp_path):
    result = run_python("import time; time.sleep(60)", tmp_path, limits=sandbox.Limits(wall_seconds=2))
    assert result.timed_out


def test_memory_limit_stops_a_memory_bomb(tmp_path):
    result = run_python("import numpy as np; a = np.ones(2 * 10**9); print('allocated')", tmp_path)
    assert result.returncode != 0 and b"allocated" not in result.stdout


@needs_bwrap
def test_fork_bomb_is_contained(tmp_path):
    code = (
        "import os\n"
        "failures = 0\n"
        "while failures < 200:\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            import time; time.sleep(30)\n"
        "    except OSError:\n"
        "        failures += 1\n"
        "print('fork refused', failures)"
    )
    result = run_python(code, tmp_path, limits=sandbox.Limits(processes=32, cpu_seconds=10, wall_seconds=60))
    assert b"fork refused" in result.stdout


@needs_bwrap
def test_daemons_die_with_the_sandbox(tmp_path):
    marker = f"{uuid.uuid4().int % 10**6 + 10**6}"
    result = run_python(
        f"import subprocess; subprocess.Popen(['setsid', 'sleep', '{marker}']); print('spawned')", tmp_path
    )
    assert b"spawned" in result.stdout
    survivors = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", marker]]
    assert survivors == []


@needs_bwrap
def test_killing_the_parent_does_not_reach_the_grader(tmp_path):
    result = run_python("import os, signal; os.kill(os.getppid(), signal.SIGKILL); print('after')", tmp_path)
    assert result.returncode is not None  # and we are still here to look at it


def test_huge_output_is_truncated(tmp_path):
    limits = sandbox.Limits(output_bytes=1000, wall_seconds=60)
    result = run_python("import sys; sys.stdout.write('x' * 10**7)", tmp_path, limits=limits)
    assert result.truncated and len(result.stdout) == 1000


def test_without_bubblewrap_it_still_runs_but_warns(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "bubblewrap_available", lambda: False)
    with pytest.warns(sandbox.SandboxWarning, match="WITHOUT the sandbox"):
        result = run_python("print('graded anyway')", tmp_path)
    assert result.stdout.strip() == b"graded anyway" and not result.sandboxed
    with pytest.raises(RuntimeError, match="bubblewrap is required"):
        run_python("pass", tmp_path, require_sandbox=True)


def test_pass_fds_reach_the_command_and_close_here(tmp_path):
    """A pipe handed to the sandbox: the command writes to it, and once it has ended the
    reading side sees end-of-file (the grader's copy of the writing end was closed)."""
    read_end, write_end = os.pipe()
    code = f"import os; os.write({write_end}, b'hello'); os.close({write_end})"
    result = run_python(code, tmp_path, pass_fds=(write_end,))
    assert result.returncode == 0, result.stderr
    with pytest.raises(OSError):
        os.fstat(write_end)  # closed here: otherwise the read below would wait forever
    with os.fdopen(read_end, "rb") as pipe:
        assert pipe.read() == b"hello"


@needs_bwrap
def test_a_temporary_folder_other_than_tmp_is_hidden_too(tmp_path, monkeypatch):
    """With TMPDIR elsewhere, work folders and withheld library copies of other runs live
    there: the sandbox covers that folder as it covers /tmp."""
    other = tmp_path / "tmpdir"
    (other / "other-run").mkdir(parents=True)
    (other / "other-run" / "secret.txt").write_text("42")
    os.chmod(tmp_path, 0o755)
    monkeypatch.setattr(sandbox.tempfile, "gettempdir", lambda: str(other))
    work = tmp_path / "work"
    work.mkdir()
    result = run_python(f"import os; print(os.path.exists({str(other / 'other-run')!r}))", work)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == b"False"


def test_pass_fds_are_closed_even_when_the_command_cannot_start(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "bubblewrap_available", lambda: False)
    read_end, write_end = os.pipe()
    with pytest.raises(RuntimeError, match="bubblewrap is required"):
        run_python("pass", tmp_path, pass_fds=(write_end,), require_sandbox=True)
    with pytest.raises(OSError):
        os.fstat(write_end)
    os.close(read_end)


WALK = """
import json, os, sys
allowed, skip = json.loads(sys.argv[1]), {"/proc", "/sys", "/dev"}
outside, counts = [], dict.fromkeys(allowed, 0)
def place(path):  # the innermost allowed place (the repository may lie under /tmp, say)
    found = [a for a in allowed if path == a or path.startswith(a.rstrip("/") + "/")]
    return max(found, key=len) if found else None
def unreadable(error):  # a folder it may not list: fine inside the allow-list, reported outside
    if place(error.filename) is None:
        outside.append(error.filename)
for directory, dirs, files in os.walk("/", onerror=unreadable):
    if directory in skip:
        dirs[:] = []
        continue
    for name in dirs + files:
        path = os.path.join(directory, name)
        where = place(path)
        if where is None:
            outside.append(path)
        else:
            counts[where] += 1
with open("seen.json", "w") as f:
    json.dump({"outside": outside, "counts": counts}, f)
"""


@pytest.fixture
def planted(tmp_path):
    """Marker files where a hostile notebook would look: another clone of the project (with
    solutions), and /root, /home, /srv, /opt, /var, /mnt, /media, /work, the temporary folder."""
    tag = uuid.uuid4().hex[:12]
    places = [Path(p) for p in ("/root", "/home", "/srv", "/opt", "/var/tmp", "/mnt", "/media", "/work")]
    made = [tmp_path / "other-clone" / "solutions" / "01_neuron.ipynb"]
    made += [p / f"backprop-clone-{tag}" / "solutions" / "secret.txt" for p in places if p.is_dir()]
    for path in made:
        path.parent.mkdir(parents=True)
        path.write_text("hidden tests")
    yield made
    for path in made:
        shutil.rmtree(path.parent.parent)


def allow_list() -> dict[str, str]:
    """Every path a sandboxed process may see, by why; their parents appear as empty folders."""
    allowed = {
        "/usr": "system",
        "/tmp": "private tmpfs (the work folder inside)",
        "/proc": "own",
        "/dev": "minimal",
        sys.base_prefix: "interpreter",
        sys.prefix: "virtual environment",
        str(ROOT / "course"): "library",
    }
    allowed.update({f"/etc/{name}": "etc" for name in sandbox.ETC_FILES})
    allowed.update({f"/{name}": "merged /usr" for name in sandbox.TOP_LEVEL if os.path.lexists(f"/{name}")})
    return {str(Path(p).resolve()) if p.startswith(("/root", "/work")) else p: why for p, why in allowed.items()}


@needs_bwrap
def test_a_sandboxed_process_sees_only_the_allow_list(tmp_path, planted):
    """Walk the whole filesystem from inside (not /proc, /sys, /dev): every entry is on the
    allow-list or an empty parent of one; the planted markers, /work's other contents and the
    rest of this repository are not there."""
    allowed = allow_list()
    parents = {str(parent) for path in allowed for parent in Path(path).parents}
    work = tmp_path / "work"
    work.mkdir()
    limits = sandbox.Limits(cpu_seconds=120, wall_seconds=600)
    result = sandbox.run([PY, "-c", WALK, json.dumps(list(allowed))], workdir=work, limits=limits)
    assert result.returncode == 0, result.stderr
    seen = json.loads((work / "seen.json").read_text())
    extra = [p for p in seen["outside"] if p not in parents]
    assert extra == []
    assert not any("backprop-clone" in p or "other-clone" in p for p in seen["outside"])
    # The walk did see the allow-list (else it proves nothing): the library, numpy, the loader.
    assert seen["counts"][str(ROOT / "course")] > 10
    assert seen["counts"][sys.prefix] > 1000 and seen["counts"]["/usr"] > 1000
    assert seen["counts"]["/etc/ld.so.cache"] == 1


@needs_bwrap
def test_what_student_code_needs_is_there(tmp_path):
    """The course, numpy and matplotlib (with a writable config folder in $HOME) import and
    work; this repository's autograder does not (only the library is bound)."""
    code = (
        "import course, numpy, matplotlib.pyplot as plt\n"
        "plt.plot(numpy.arange(3)); plt.savefig('figure.png')\n"
        "import importlib.util\n"
        "print(course.Linear.__name__, importlib.util.find_spec('autograder'))\n"
    )
    result = run_python(code, tmp_path, limits=sandbox.Limits(cpu_seconds=30, wall_seconds=120))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [b"Linear", b"None"]
    assert result.stderr == b""  # nothing a cell's output would show (fontconfig, say)
    assert (tmp_path / "figure.png").stat().st_size > 0

"""Limits are totals for a whole sandboxed run (every process it starts), not per process:
memory, processes and CPU time in a control group, disk in a size-limited work folder."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from autograder.sandbox import bubblewrap as sandbox
from autograder.sandbox import cgroup

PY = sys.executable


def _cgroups_here() -> str | None:
    """Why control groups cannot be used here, or None when they can."""
    if os.getuid() != 0:
        return "needs root"
    try:
        cgroup.create(2**30, 16).remove()
    except (cgroup.CgroupUnavailable, OSError) as exc:
        return str(exc)
    return None


WHY_NOT = _cgroups_here()
needs_cgroups = pytest.mark.skipif(WHY_NOT is not None, reason=f"no usable control groups here: {WHY_NOT}")
needs_bwrap = pytest.mark.skipif(
    not sandbox.bubblewrap_available() or os.getuid() != 0,
    reason="bubblewrap sandbox needs the 'bubblewrap' package and root (CI installs it)",
)
needs_root = pytest.mark.skipif(os.getuid() != 0, reason="the work folder's tmpfs is mounted by root")


def run_python(code: str, workdir: Path, limits: sandbox.Limits, **kwargs) -> sandbox.Result:
    return sandbox.run([PY, "-c", code], workdir=workdir, limits=limits, **kwargs)


@pytest.fixture
def groups(monkeypatch) -> list[cgroup.Cgroup]:
    """Every control group the sandbox makes during the test."""
    made: list[cgroup.Cgroup] = []
    real = cgroup.create

    def recording(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(cgroup, "create", recording)
    return made


HOLDERS = """
import os
N, SIZE = 4, {size}
release_r, release_w = os.pipe()
kids = []
for _ in range(N):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r); os.close(release_w)
        try:
            block = b"x" * SIZE  # written, so it is resident
        except MemoryError:  # refused rather than killed: the total holds just the same
            os._exit(3)
        os.write(w, b"1")
        os.read(release_r, 1)  # held until every child has said so or died
        os._exit(0)
    os.close(w)
    kids.append((pid, r))
held = sum(os.read(r, 1) == b"1" for _, r in kids)
os.close(release_w)
statuses = [os.waitpid(pid, 0)[1] for pid, _ in kids]
killed = sum(os.WIFSIGNALED(s) for s in statuses)
refused = sum(os.WIFEXITED(s) and os.WEXITSTATUS(s) == 3 for s in statuses)
print(held, killed, refused)
"""


@needs_cgroups
def test_memory_held_by_four_children_is_limited_in_total(tmp_path, groups):
    """Four children each hold 150 MiB, under the per-process limit of 400 MiB, but 600 MiB
    together: the total limit kills some of them."""
    limits = sandbox.Limits(memory_bytes=400 * 2**20, cpu_seconds=30, wall_seconds=120)
    result = run_python(HOLDERS.format(size=150 * 2**20), tmp_path, limits)
    assert result.returncode == 0, result.stderr
    assert [g.kind for g in groups], f"the run had no control group: {result.notes}"
    held, killed, refused = map(int, result.stdout.split())
    why = f"held {held}, killed {killed}, refused {refused}; {result.notes}; {[g.dirs for g in groups]}"
    assert held < 4 and killed + refused >= 1, why
    assert result.out_of_memory or refused, why
    assert result.memory_peak <= 400 * 2**20


@needs_cgroups
def test_memory_within_the_total_is_not_disturbed(tmp_path):
    """The same four children with 50 MiB each fit in 400 MiB: nobody is killed."""
    limits = sandbox.Limits(memory_bytes=400 * 2**20, cpu_seconds=30, wall_seconds=120)
    result = run_python(HOLDERS.format(size=50 * 2**20), tmp_path, limits)
    assert result.stdout.split() == [b"4", b"0", b"0"], result.stderr
    assert not result.out_of_memory


FORKS = """
import os, sys
hold_r, hold_w = os.pipe()
started = 0
while started < 100:
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        os.close(hold_w)
        os.read(hold_r, 1)  # until the parent is gone
        os._exit(0)
    started += 1
print(started)
"""


@needs_cgroups
def test_a_fork_bomb_is_bounded_by_the_groups_process_limit(tmp_path):
    """As root (to whom the per-user process limit does not apply) in a group of 8 processes:
    the forks stop at 7 children."""
    group = cgroup.create(2**30, 8)
    try:
        proc = subprocess.run(
            [PY, "-c", FORKS], preexec_fn=lambda: group.enter(os.getpid()), capture_output=True, timeout=120
        )
    finally:
        group.remove()
    assert 1 <= int(proc.stdout) <= 7, proc.stderr


@needs_bwrap
@needs_cgroups
def test_a_fork_bomb_in_the_sandbox_is_bounded(tmp_path):
    result = run_python(FORKS, tmp_path, sandbox.Limits(processes=16, cpu_seconds=20, wall_seconds=120))
    assert result.returncode == 0, result.stderr
    assert 1 <= int(result.stdout) < 16


SPINNERS = """
import os
for _ in range(4):
    if os.fork() == 0:
        while True:
            pass
os.wait()
"""


@needs_cgroups
def test_cpu_time_of_forked_children_counts_toward_the_total(tmp_path):
    """Four busy children, each far under the per-process CPU limit: the run is stopped when
    they have used 3 CPU seconds together, not at the wall clock."""
    limits = sandbox.Limits(cpu_seconds=100, total_cpu_seconds=3, wall_seconds=300)
    result = run_python(SPINNERS, tmp_path, limits)
    assert result.cpu_exceeded and not result.timed_out
    assert result.signal == "SIGKILL"
    # Read every 0.1 s: at most that much beyond the budget on each core, and a little to kill.
    assert 3 <= result.cpu_used <= 3 + 0.2 * (os.cpu_count() or 1) + 1.0


@needs_cgroups
def test_the_group_is_removed_after_each_run_however_it_ended(tmp_path, groups):
    for i, (code, limits) in enumerate(
        [
            ("print('fine')", sandbox.Limits(wall_seconds=60)),
            (SPINNERS, sandbox.Limits(total_cpu_seconds=1, cpu_seconds=100, wall_seconds=120)),
            (HOLDERS.format(size=150 * 2**20), sandbox.Limits(memory_bytes=300 * 2**20, wall_seconds=120)),
            ("import time; time.sleep(600)", sandbox.Limits(wall_seconds=2)),
        ]
    ):
        work = tmp_path / f"w{i}"
        work.mkdir()
        run_python(code, work, limits)
    assert len(groups) == 4
    assert [d for g in groups for d in g.dirs if d.exists()] == []
    leftovers = [d for g in groups for d in g.dirs[0].parent.glob(f"backprop-{os.getpid()}-*")]
    assert leftovers == []


@needs_cgroups
def test_concurrent_sandboxes_get_separate_groups(tmp_path, groups):
    """Two runs at once, each holding 200 MiB under a total of 300 MiB: in one shared group
    one would be killed; each in its own, both hold.

    Each run's ends of the pipes are duplicated before its thread starts. (They were once
    duplicated inside the threads, racing the ``os.close(ready_w)`` below: on a loaded machine a
    thread could find ``ready_w`` already closed, its run never started, and the test read one
    "ready" instead of two. That was the failure once seen in the parallel suite, in 3 of 15
    runs under load; the control groups were never at fault.)"""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    code = (
        "import os, sys\n"
        "ready, go = map(int, sys.argv[1:])\n"
        "block = b'x' * (200 * 2**20)\n"
        "os.write(ready, b'1'); os.close(ready)\n"
        "os.read(go, 1)\n"
        "print('held')\n"
    )
    results: dict[int, sandbox.Result] = {}
    limits = sandbox.Limits(memory_bytes=300 * 2**20, cpu_seconds=30, wall_seconds=120)

    ends = {k: (os.dup(ready_w), os.dup(go_r)) for k in range(2)}

    def start(k: int) -> None:
        ready, go = ends[k]
        work = tmp_path / f"w{k}"
        work.mkdir()
        results[k] = sandbox.run(
            [PY, "-c", code, str(ready), str(go)],
            workdir=work,
            limits=limits,
            pass_fds=(ready, go),
            uid=sandbox.NOBODY - k,
        )

    threads = [threading.Thread(target=start, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    os.close(ready_w)
    said = os.read(ready_r, 1) + os.read(ready_r, 1)  # both hold their 200 MiB now (or died)
    os.close(go_w)
    for t in threads:
        t.join()
    os.close(ready_r)
    os.close(go_r)
    assert said == b"11"
    assert [r.stdout for r in results.values()] == [b"held\n", b"held\n"]
    assert len({tuple(g.dirs) for g in groups}) == 2


DISK = """
import errno, os, sys
target, chunk = sys.argv[1], b"x" * (4 * 2**20)
written, error = 0, None
try:
    for i in range(200):  # 800 MiB at most, 4 MiB a file (under the per-file limit)
        with open(os.path.join(target, f"fill{i}"), "wb") as f:
            f.write(chunk)
        written += len(chunk)
except OSError as exc:
    error = exc.errno
st = os.statvfs(target)
print(written, error, st.f_blocks * st.f_frsize)
"""


@needs_root
@needs_bwrap
def test_writing_past_the_disk_limit_into_the_work_folder_fails(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    limits = sandbox.Limits(disk_bytes=32 * 2**20, cpu_seconds=30, wall_seconds=120)
    result = sandbox.run([PY, "-c", DISK, "."], workdir=work, limits=limits)
    written, error, size = result.stdout.split()
    assert int(error) == errno.ENOSPC and int(written) <= 32 * 2**20
    assert int(size) == 32 * 2**20  # a tmpfs of its own, not the host's disk
    # Afterwards: the grader reads what the run left, from the real folder, no mount left.
    assert not os.path.ismount(work)
    kept = sum(p.stat().st_size for p in work.glob("fill*"))
    assert 0 < kept <= 32 * 2**20
    assert "tmpfs of 32 MiB" in " ".join(result.notes)


@needs_bwrap
@pytest.mark.parametrize("folder", ["/tmp", "/dev/shm"])
def test_writing_past_the_limit_into_tmp_fails(tmp_path, monkeypatch, folder):
    monkeypatch.setattr(sandbox, "TMP_BYTES", 24 * 2**20)
    monkeypatch.setattr(sandbox, "SHM_BYTES", 24 * 2**20)
    result = sandbox.run([PY, "-c", DISK, folder], workdir=tmp_path, limits=sandbox.Limits(wall_seconds=120))
    written, error, size = result.stdout.split()
    assert int(error) == errno.ENOSPC and int(written) <= 24 * 2**20
    assert int(size) == 24 * 2**20


@needs_root
def test_when_the_work_folder_cannot_be_mounted_its_files_stay_and_the_notes_say_so(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "_mount_tmpfs", lambda target, options, flags: "Operation not permitted")
    work = tmp_path / "work"
    work.mkdir()
    (work / "job.json").write_text("{}")
    result = run_python("print(open('job.json').read())", work, sandbox.Limits(wall_seconds=60))
    assert result.stdout.strip() == b"{}", result.stderr
    assert "total size is not limited (Operation not permitted), only each file" in " ".join(result.notes)


@needs_root
@needs_bwrap
def test_the_copy_back_takes_plain_files_only_and_keeps_them_private(tmp_path):
    """Links and FIFOs the run leaves are not copied back (the grader never follows them)."""
    work = tmp_path / "work"
    work.mkdir()
    code = (
        "import os\n"
        "os.symlink('/etc/ld.so.cache', 'link'); os.mkfifo('fifo'); os.mkdir('sub')\n"
        "open('sub/result.json', 'w').write('{}')\n"
    )
    result = run_python(code, work, sandbox.Limits(wall_seconds=60))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in work.iterdir()) == ["sub"]
    assert (work / "sub" / "result.json").read_text() == "{}"
    assert (work / "sub" / "result.json").stat().st_mode & 0o077 == 0


def test_without_control_groups_the_rlimits_hold_and_the_notes_say_so(tmp_path, monkeypatch):
    def unavailable(*args, **kwargs):
        raise cgroup.CgroupUnavailable("none in this test")

    monkeypatch.setattr(cgroup, "create", unavailable)
    result = run_python("while True: pass", tmp_path, sandbox.Limits(cpu_seconds=2, wall_seconds=60))
    assert result.signal in {"SIGXCPU", "SIGKILL"} and not result.timed_out
    assert not result.cpu_exceeded and result.cpu_used is None
    notes = " ".join(result.notes)
    assert "none in this test" in notes and "per process only (rlimits)" in notes


@needs_cgroups
def test_with_control_groups_the_notes_say_which(tmp_path):
    result = run_python("pass", tmp_path, sandbox.Limits(wall_seconds=60))
    assert any("limited in total for the run (cgroup v" in n for n in result.notes), result.notes
    assert json.dumps(result.notes)  # plain strings, fit for the report


@needs_root
@needs_bwrap
def test_a_very_deep_tree_in_the_work_folder_does_not_trouble_the_grader(tmp_path):
    """1500 nested folders (deeper than Python's recursion limit): the copy back stops at its
    depth, and the run's result is read as usual."""
    work = tmp_path / "work"
    work.mkdir()
    code = (
        "import os\n"
        "open('status.json', 'w').write('{}')\n"
        "for _ in range(1500):\n"
        "    os.mkdir('d'); os.chdir('d')\n"
        "open('bottom', 'w').write('x')\n"
    )
    result = run_python(code, work, sandbox.Limits(wall_seconds=120))
    assert result.returncode == 0, result.stderr
    assert (work / "status.json").read_text() == "{}"
    depth = sum(1 for _ in work.glob("/".join(["d"] * sandbox.COPY_DEPTH)))
    assert depth == 1 and not (work / Path(*["d"] * (sandbox.COPY_DEPTH + 1))).exists()


@needs_root
def test_a_work_folder_tmpfs_left_by_a_killed_grader_is_swept(tmp_path, monkeypatch):
    """A grader killed mid-run leaves its work folder mounted; the next run detaches it (the
    mount is named for its grader's pid), and leaves a live grader's alone."""
    dead, alive = tmp_path / "dead with space", tmp_path / "alive"
    for folder, pid in ((dead, 2**22 + 4242), (alive, os.getpid())):
        folder.mkdir()
        monkeypatch.setattr(os, "getpid", lambda pid=pid: pid)
        assert sandbox._mount_tmpfs(folder, "size=1m", 0) is None
        monkeypatch.undo()
    try:
        assert os.path.ismount(dead) and os.path.ismount(alive)
        work = tmp_path / "work"
        work.mkdir()
        run_python("pass", work, sandbox.Limits(wall_seconds=60))
        assert not os.path.ismount(dead) and os.path.ismount(alive)
    finally:
        for folder in (dead, alive):
            if os.path.ismount(folder):
                sandbox._umount(folder)

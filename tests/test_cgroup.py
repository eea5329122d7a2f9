"""The control-group backends, v2 against a stand-in cgroup tree (this machine may have no v2
controllers), v1 for real where the machine has it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.sandbox import cgroup

V2_KERNEL_FILES = ("memory.max", "memory.swap.max", "memory.oom.group", "pids.max", "cgroup.kill", "cgroup.procs")


@pytest.fixture
def v2_tree(tmp_path, monkeypatch) -> Path:
    """A stand-in for a cgroup2 mount: the grader's own cgroup ``grader.slice`` offering the
    controllers; a new child gets the files the kernel would make."""
    root = tmp_path / "cgroup2"
    own = root / "grader.slice"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (own / "cgroup.subtree_control").write_text("")

    def kernel_mkdir(path: Path) -> None:
        path.mkdir()
        for name in V2_KERNEL_FILES:
            (path / name).write_text("")

    monkeypatch.setattr(cgroup.Cgroup, "_mkdir", staticmethod(kernel_mkdir))
    monkeypatch.setattr(cgroup.Cgroup, "_rmdir", staticmethod(shutil.rmtree))  # the stand-in holds files
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text("0::/grader.slice\n")
    (proc / "mountinfo").write_text(
        f"30 23 0:26 / {root} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
    )
    return proc


def test_v2_group_is_made_in_the_graders_cgroup_with_the_totals(v2_tree):
    group = cgroup.create(300 * 2**20, 12, proc=v2_tree)
    own = v2_tree.parent / "cgroup2" / "grader.slice"
    assert group.kind == "cgroup v2" and group.dirs[0].parent == own
    assert (own / "cgroup.subtree_control").read_text().split() == ["+memory", "+pids", "+cpu"]
    files = {name: (group.dirs[0] / name).read_text() for name in V2_KERNEL_FILES[:4]}
    assert files == {"memory.max": str(300 * 2**20), "memory.swap.max": "0", "memory.oom.group": "1", "pids.max": "12"}


def test_v2_reads_cpu_memory_and_oom(v2_tree):
    group = cgroup.create(2**30, 8, proc=v2_tree)
    d = group.dirs[0]
    (d / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    (d / "memory.peak").write_text("123456\n")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n")
    assert group.cpu_seconds() == 2.5 and group.memory_peak() == 123456 and not group.out_of_memory()
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n")
    assert group.out_of_memory()


def test_v2_kill_all_uses_cgroup_kill_and_kills_what_is_listed(v2_tree):
    group = cgroup.create(2**30, 8, proc=v2_tree)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        (group.dirs[0] / "cgroup.procs").write_text(f"{child.pid}\n")
        real_pids = group.pids
        assert real_pids() == [child.pid]
        group.pids = lambda: [child.pid] if child.poll() is None else []  # the kernel drops the dead
        group.kill_all()
        assert (group.dirs[0] / "cgroup.kill").read_text() == "1"
        assert child.wait(timeout=60) == -9
    finally:
        child.kill()
        child.wait()
    group.remove()
    assert not group.dirs[0].exists()


def test_v2_enter_writes_the_pid(v2_tree):
    group = cgroup.create(2**30, 8, proc=v2_tree)
    group.enter(4242)
    assert (group.dirs[0] / "cgroup.procs").read_text() == "4242"


def test_v2_without_the_controllers_says_which_are_missing(v2_tree):
    (v2_tree.parent / "cgroup2" / "grader.slice" / "cgroup.controllers").write_text("cpu io memory\n")
    with pytest.raises(cgroup.CgroupUnavailable, match="pids"):
        cgroup.create(2**30, 8, proc=v2_tree)


def test_v2_in_a_cgroup_that_cannot_delegate_says_what_to_do(v2_tree, monkeypatch):
    real = cgroup._write

    def busy(path, value):  # the kernel's answer in a cgroup that holds processes itself
        if path.name == "cgroup.subtree_control":
            raise OSError(16, "Device or resource busy")
        real(path, value)

    monkeypatch.setattr(cgroup, "_write", busy)
    with pytest.raises(cgroup.CgroupUnavailable, match="Device or resource busy.*BACKPROP_CGROUP_PARENT"):
        cgroup.create(2**30, 8, proc=v2_tree)


def test_v2_parent_can_be_named(v2_tree, monkeypatch):
    other = v2_tree.parent / "cgroup2" / "delegated"
    shutil.copytree(v2_tree.parent / "cgroup2" / "grader.slice", other)
    monkeypatch.setenv("BACKPROP_CGROUP_PARENT", str(other))
    assert cgroup.create(2**30, 8, proc=v2_tree).dirs[0].parent == other


def test_mount_table_parsing_hybrid_and_container_roots():
    mountinfo = (
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
        "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "40 31 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
    )
    mounts = cgroup._mounts(mountinfo)
    assert mounts["cpuacct"] == mounts["cpu"] == (Path("/sys/fs/cgroup/cpu,cpuacct"), "/")
    assert mounts[""] == (Path("/sys/fs/cgroup/unified"), "/")
    own = cgroup._own_cgroups("4:memory:/docker/abc/job\n2:cpu,cpuacct:/\n0::/\n")
    assert own == {"memory": "/docker/abc/job", "cpu": "/", "cpuacct": "/", "": "/"}
    assert cgroup._folder(mounts["memory"], own["memory"]) == Path("/sys/fs/cgroup/memory/job")


def _v1_here() -> str | None:
    if os.getuid() != 0:
        return "needs root"
    mounts = cgroup._mounts(Path("/proc/self/mountinfo").read_text())
    missing = [c for c in cgroup.V1_NEEDED if c not in mounts]
    return f"no cgroup v1 hierarchy for {missing}" if missing else None


@pytest.mark.skipif(_v1_here() is not None, reason=f"cgroup v1 not here: {_v1_here()}")
def test_v1_for_real_limits_are_set_and_the_group_goes(monkeypatch):
    def no_v2(cls, *args):
        raise cgroup.CgroupUnavailable("v1 wanted")

    monkeypatch.setattr(cgroup.V2Cgroup, "make", classmethod(no_v2))
    group = cgroup.create(200 * 2**20, 9)
    try:
        assert group.kind == "cgroup v1"
        memory, pids, cpuacct = group.dirs
        assert int((memory / "memory.limit_in_bytes").read_text()) == 200 * 2**20
        if (memory / "memory.memsw.limit_in_bytes").exists():
            assert int((memory / "memory.memsw.limit_in_bytes").read_text()) == 200 * 2**20
        assert (pids / "pids.max").read_text().strip() == "9"
        spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass"
        subprocess.run([sys.executable, "-c", spin], preexec_fn=lambda: group.enter(os.getpid()), check=True)
        assert group.cpu_seconds() >= 0.5 and group.pids() == []
    finally:
        group.remove()
    assert not any(d.exists() for d in group.dirs)


def test_groups_left_by_a_killed_grader_are_swept_when_a_new_one_is_made(v2_tree):
    own = v2_tree.parent / "cgroup2" / "grader.slice"
    dead, busy, alive = (own / f"backprop-{p}-abc" for p in (2**22 + 12345, 2**22 + 12346, os.getpid()))
    for path in (dead, busy, alive):
        path.mkdir()
    (busy / "cgroup.procs").write_text("1\n")  # rmdir refuses a group that is not empty
    cgroup.create(2**30, 8, proc=v2_tree)
    assert (dead.exists(), busy.exists(), alive.exists()) == (False, True, True)


@pytest.fixture
def busy_unless_empty(v2_tree, monkeypatch):
    """The kernel's rule in the stand-in: no controllers for the children of a cgroup that
    holds processes; writing a pid into a cgroup.procs moves that process there."""
    own = v2_tree.parent / "cgroup2" / "grader.slice"
    real = cgroup._write

    def write(path: Path, value: str) -> None:
        if path.name == "cgroup.subtree_control" and cgroup._procs(path.parent):
            raise OSError(16, "Device or resource busy")
        if path.name == "cgroup.procs" and path.parent != own:
            left = [p for p in cgroup._procs(own) if p != int(value)]
            (own / "cgroup.procs").write_text("".join(f"{p}\n" for p in left))
        real(path, value)

    monkeypatch.setattr(cgroup, "_write", write)
    return own


def test_v2_in_a_scope_of_its_own_the_grader_moves_into_a_leaf(v2_tree, busy_unless_empty):
    """systemd-run --scope -p Delegate=yes: only the grader's processes in its cgroup."""
    (busy_unless_empty / "cgroup.procs").write_text(f"{os.getpid()}\n")
    group = cgroup.create(2**30, 8, proc=v2_tree)
    leaf = busy_unless_empty / cgroup.GRADER_LEAF
    assert cgroup._procs(leaf) == [os.getpid()] and cgroup._procs(busy_unless_empty) == []
    assert group.dirs[0].parent == busy_unless_empty


def test_v2_never_moves_processes_that_are_not_the_graders(v2_tree, busy_unless_empty):
    (busy_unless_empty / "cgroup.procs").write_text(f"{os.getpid()}\n1\n")  # init, say: someone else's
    with pytest.raises(cgroup.CgroupUnavailable, match="systemd-run --scope"):
        cgroup.create(2**30, 8, proc=v2_tree)
    assert cgroup._procs(busy_unless_empty) == [os.getpid(), 1]
    assert not (busy_unless_empty / cgroup.GRADER_LEAF).exists()

"""Control groups for the sandbox: limits on the *total* use of one sandboxed run.

Per-process limits (rlimits) let a run multiply its budget by forking: four children may each
hold the memory limit, and CPU time spent in children is not counted against the parent. A
control group counts every process of the run together. :func:`create` makes one, for one
run, and tries in this order:

* **cgroup v2** (most current Linux servers): a child of the grader's own cgroup (or of
  ``$BACKPROP_CGROUP_PARENT``, a cgroup delegated to the grader, for example a systemd unit
  with ``Delegate=yes``), with ``memory.max`` (``memory.swap.max`` 0, ``memory.oom.group`` 1:
  the whole run is killed when it runs out), ``pids.max``, and CPU time read from ``cpu.stat``.
  The parent must offer the ``memory`` and ``pids`` controllers and allow enabling them for its
  children. A cgroup that holds processes cannot: when those are all the grader's own (it was
  started with ``systemd-run --scope -p Delegate=yes ...``), they are moved into a leaf
  ``backprop-grader`` first; when others are there too (a login session), name a delegated
  cgroup in ``$BACKPROP_CGROUP_PARENT`` or the sandbox falls back to rlimits.
* **cgroup v1** (older systems, many containers): a child in each of the ``memory``, ``pids``
  and ``cpuacct`` hierarchies, with ``memory.limit_in_bytes`` (and ``memory.memsw.limit_in_bytes``
  when swap accounting is on, so that swap is no way out; else ``memory.swappiness`` 0),
  ``pids.max``, and CPU time read from ``cpuacct.usage``. When the group runs out of memory,
  the kernel kills one of its processes (the largest), not all of them.

CPU time is not a cgroup limit (``cpu.max`` limits speed, not the total): the sandbox reads
:meth:`Cgroup.cpu_seconds` while it waits and kills the whole group past its budget.

When neither works (not root, no controllers), :func:`create` says why, and the sandbox falls
back to per-process rlimits.
"""

from __future__ import annotations

import errno
import os
import signal
import time
import uuid
from abc import ABC, abstractmethod
from pathlib import Path

import psutil

__all__ = ["Cgroup", "CgroupUnavailable", "V1Cgroup", "V2Cgroup", "create"]

#: The controllers a cgroup v2 parent must offer; ``cpu`` is enabled too when it is there.
V2_NEEDED = ("memory", "pids")
#: The cgroup v1 hierarchies used, each found by the controller it carries.
V1_NEEDED = ("memory", "pids", "cpuacct")
#: Where the grader's own processes go when their cgroup must give its controllers away.
GRADER_LEAF = "backprop-grader"
#: How long :meth:`Cgroup.remove` waits for the killed processes to leave.
REMOVE_SECONDS = 10.0


class CgroupUnavailable(Exception):
    """No control group can be made here; the message says why."""


class Cgroup(ABC):
    """One run's control group: every process the run starts is counted in it."""

    #: What the sandbox's notes call it ("cgroup v2", "cgroup v1").
    kind: str

    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = dirs

    @abstractmethod
    def cpu_seconds(self) -> float:
        """CPU time (user and system) of every process the group has held, exited ones too."""

    @abstractmethod
    def memory_peak(self) -> int | None:
        """The most memory the group held at once (bytes), where the kernel tells."""

    @abstractmethod
    def out_of_memory(self) -> bool:
        """True when the kernel killed a process of the group at its memory limit."""

    def enter(self, pid: int) -> None:
        """Move process ``pid`` into the group (the sandbox's child does it to itself between
        fork and exec, before it runs anything: no process of the run is ever outside)."""
        for directory in self.dirs:
            fd = os.open(directory / "cgroup.procs", os.O_WRONLY)
            try:
                os.write(fd, str(pid).encode())
            finally:
                os.close(fd)

    def pids(self) -> list[int]:
        """The processes in the group now."""
        return sorted({pid for directory in self.dirs for pid in _procs(directory)})

    def kill_all(self) -> None:
        """SIGKILL every process of the group, again until none is left (a process may fork
        between one look and the next; ``pids.max`` bounds how often)."""
        deadline = time.monotonic() + REMOVE_SECONDS
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.01)

    def remove(self) -> None:
        """Kill what is left, wait until the group is empty, and delete it."""
        self.kill_all()
        deadline = time.monotonic() + REMOVE_SECONDS
        for directory in reversed(self.dirs):
            while True:
                try:
                    self._rmdir(directory)
                    break
                except FileNotFoundError:
                    break
                except OSError:  # EBUSY: dying processes still listed for a moment
                    if time.monotonic() > deadline:
                        raise
                    self.kill_all()
                    time.sleep(0.02)

    @staticmethod
    def _rmdir(directory: Path) -> None:
        os.rmdir(directory)

    @staticmethod
    def _mkdir(directory: Path) -> None:
        directory.mkdir()


def _sweep(parent: Path) -> None:
    """Delete the groups that graders killed before they could clean up left under ``parent``:
    those whose grader process is gone and which are empty (rmdir refuses the others)."""
    for path in parent.glob("backprop-*-*"):
        pid = path.name.split("-")[1]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            try:
                os.rmdir(path)
            except OSError:
                pass
        except OSError:
            pass


def _procs(folder: Path) -> list[int]:
    try:
        return [int(line) for line in (folder / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _only_ours(folder: Path) -> bool:
    """True when every process in cgroup ``folder`` is this grader's: this process, what it
    started, and its parents as far as they are in the same cgroup (the pool's main process)."""
    pids = set(_procs(folder))
    me = psutil.Process()
    ours = {me.pid, *(p.pid for p in me.children(recursive=True))}
    for parent in me.parents():
        if parent.pid not in pids:
            break
        ours.add(parent.pid)
    return bool(pids) and pids <= ours


def _move_into_leaf(folder: Path) -> None:
    """Move the processes of cgroup ``folder`` (all the grader's) into ``folder/backprop-grader``."""
    leaf = folder / GRADER_LEAF
    if not leaf.is_dir():
        Cgroup._mkdir(leaf)
    for pid in _procs(folder):
        try:
            _write(leaf / "cgroup.procs", str(pid))
        except ProcessLookupError:
            pass  # gone meanwhile
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                raise


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _keyed(path: Path, key: str) -> int | None:
    """The value of ``key`` in a flat-keyed cgroup file (``cpu.stat``, ``memory.events``)."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        return None
    return None


class V2Cgroup(Cgroup):
    kind = "cgroup v2"

    @classmethod
    def make(cls, parent: Path, memory_bytes: int, processes: int) -> V2Cgroup:
        try:
            offered = set((parent / "cgroup.controllers").read_text().split())
        except OSError as exc:
            raise CgroupUnavailable(f"no cgroup v2 group at {parent} ({exc.strerror or exc})") from exc
        missing = [c for c in V2_NEEDED if c not in offered]
        if missing:
            raise CgroupUnavailable(f"cgroup v2 at {parent} does not offer the {', '.join(missing)} controller(s)")
        wanted = [c for c in (*V2_NEEDED, "cpu") if c in offered]
        enabled = set((parent / "cgroup.subtree_control").read_text().split())
        if not set(wanted) <= enabled:
            try:
                try:
                    _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
                except OSError as exc:
                    # A cgroup holding processes cannot give its children controllers. When
                    # they are all the grader's own (systemd-run --scope -p Delegate=yes),
                    # move them into a leaf of their own, then try again.
                    if exc.errno != errno.EBUSY or not _only_ours(parent):
                        raise
                    _move_into_leaf(parent)
                    _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
            except OSError as exc:
                raise CgroupUnavailable(
                    f"cannot enable {', '.join(wanted)} for the children of {parent} ({exc.strerror or exc}); "
                    "a cgroup that holds other processes cannot: start the grader with "
                    "`systemd-run --scope -p Delegate=yes ...`, or name a delegated cgroup in BACKPROP_CGROUP_PARENT"
                ) from exc
        _sweep(parent)
        path = parent / f"backprop-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            cls._mkdir(path)
        except OSError as exc:
            raise CgroupUnavailable(f"cannot create a cgroup under {parent} ({exc.strerror or exc})") from exc
        group = cls([path])
        try:
            _write(path / "memory.max", str(memory_bytes))
            if (path / "memory.swap.max").exists():
                _write(path / "memory.swap.max", "0")
            if (path / "memory.oom.group").exists():
                _write(path / "memory.oom.group", "1")
            _write(path / "pids.max", str(processes))
        except OSError as exc:
            group.remove()
            raise CgroupUnavailable(f"cannot set the limits of {path} ({exc.strerror or exc})") from exc
        return group

    def cpu_seconds(self) -> float:
        return (_keyed(self.dirs[0] / "cpu.stat", "usage_usec") or 0) / 1e6

    def memory_peak(self) -> int | None:
        return _read_int(self.dirs[0] / "memory.peak")

    def out_of_memory(self) -> bool:
        return bool(_keyed(self.dirs[0] / "memory.events", "oom_kill"))

    def kill_all(self) -> None:
        kill = self.dirs[0] / "cgroup.kill"  # Linux 5.14: the kernel kills the group at once
        if kill.exists():
            try:
                _write(kill, "1")
            except OSError:
                pass
        super().kill_all()


class V1Cgroup(Cgroup):
    kind = "cgroup v1"

    def __init__(self, dirs: list[Path]) -> None:
        super().__init__(dirs)
        self.memory, self.pids_dir, self.cpuacct = dirs

    @classmethod
    def make(cls, parents: dict[str, Path], memory_bytes: int, processes: int) -> V1Cgroup:
        """``parents``: for each of :data:`V1_NEEDED`, the grader's own cgroup in that hierarchy."""
        missing = [c for c in V1_NEEDED if c not in parents]
        if missing:
            raise CgroupUnavailable(f"no cgroup v1 hierarchy for {', '.join(missing)}")
        name = f"backprop-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        made: list[Path] = []
        try:
            for controller in V1_NEEDED:
                _sweep(parents[controller])
                path = parents[controller] / name
                if not path.exists():  # comounted hierarchies (cpu,cpuacct) share one folder
                    cls._mkdir(path)
                made.append(path)
        except OSError as exc:
            for path in reversed(made):
                try:
                    path.rmdir()
                except OSError:
                    pass
            raise CgroupUnavailable(f"cannot create cgroup v1 groups ({exc.strerror or exc})") from exc
        group = cls(made)
        try:
            _write(group.memory / "memory.limit_in_bytes", str(memory_bytes))
            if (group.memory / "memory.memsw.limit_in_bytes").exists():
                _write(group.memory / "memory.memsw.limit_in_bytes", str(memory_bytes))
            elif (group.memory / "memory.swappiness").exists():
                _write(group.memory / "memory.swappiness", "0")  # no swap accounting: do not swap
            _write(group.pids_dir / "pids.max", str(processes))
        except OSError as exc:
            group.remove()
            raise CgroupUnavailable(f"cannot set cgroup v1 limits ({exc.strerror or exc})") from exc
        return group

    def cpu_seconds(self) -> float:
        return (_read_int(self.cpuacct / "cpuacct.usage") or 0) / 1e9

    def memory_peak(self) -> int | None:
        return _read_int(self.memory / "memory.max_usage_in_bytes")

    def out_of_memory(self) -> bool:
        return bool(_keyed(self.memory / "memory.oom_control", "oom_kill"))

    def remove(self) -> None:
        # The same folder may stand for two hierarchies (cpu,cpuacct mounted together).
        self.dirs = list(dict.fromkeys(self.dirs))
        super().remove()


def _own_cgroups(proc_self_cgroup: str) -> dict[str, str]:
    """The grader's cgroup in each hierarchy, by controller ("" for the v2 hierarchy)."""
    own: dict[str, str] = {}
    for line in proc_self_cgroup.splitlines():
        number, controllers, path = line.split(":", 2)
        if number == "0" and controllers == "":
            own[""] = path
        for controller in controllers.split(","):
            if controller:
                own[controller] = path
    return own


def _mounts(mountinfo: str) -> dict[str, tuple[Path, str]]:
    """Where each hierarchy is mounted, and which of its cgroups is the mount's root, by
    controller ("" for cgroup2)."""
    mounts: dict[str, tuple[Path, str]] = {}
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        fstype, options = fields[sep + 1], fields[sep + 3] if len(fields) > sep + 3 else ""
        mount = (Path(fields[4].replace("\\040", " ")), fields[3])
        if fstype == "cgroup2":
            mounts.setdefault("", mount)
        elif fstype == "cgroup":
            for option in options.split(","):
                mounts.setdefault(option, mount)
    return mounts


def _folder(mount: tuple[Path, str], own: str) -> Path:
    """The folder of cgroup ``own`` in a hierarchy mounted at ``mount``."""
    point, root = mount
    if root != "/" and (own == root or own.startswith(root.rstrip("/") + "/")):
        own = own[len(root) :]
    return point / own.lstrip("/")


def create(memory_bytes: int, processes: int, *, proc: Path = Path("/proc/self")) -> Cgroup:
    """A fresh control group for one run with these totals; raises :class:`CgroupUnavailable`
    saying why when none can be made here. ``proc`` holds this process's ``cgroup`` and
    ``mountinfo`` files (a stand-in in tests)."""
    try:
        own = _own_cgroups((proc / "cgroup").read_text())
        mounts = _mounts((proc / "mountinfo").read_text())
    except OSError as exc:
        raise CgroupUnavailable(f"cannot read this process's cgroups ({exc})") from exc
    reasons = []
    if "" in mounts:
        override = os.environ.get("BACKPROP_CGROUP_PARENT")
        parent = Path(override) if override else _folder(mounts[""], own.get("", "/"))
        try:
            return V2Cgroup.make(parent, memory_bytes, processes)
        except (CgroupUnavailable, OSError) as exc:
            reasons.append(str(exc))
    if any(c in mounts for c in V1_NEEDED):
        parents = {c: _folder(mounts[c], own.get(c, "/")) for c in V1_NEEDED if c in mounts}
        try:
            return V1Cgroup.make(parents, memory_bytes, processes)
        except (CgroupUnavailable, OSError) as exc:
            reasons.append(str(exc))
    raise CgroupUnavailable("; ".join(reasons) or "no cgroup hierarchy is mounted")

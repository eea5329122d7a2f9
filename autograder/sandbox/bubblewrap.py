"""The bubblewrap backend: run untrusted code (a student's kernel or check process) in a sandbox.

With bubblewrap (Debian package ``bubblewrap``) the command runs:

* as an unprivileged uid (``nobody`` by default);
* in fresh PID, network, IPC and UTS namespaces: no network at all, and every process it
  starts, including ``setsid`` daemons, dies with it;
* in a filesystem built from an **allow-list** (:func:`_bwrap_args`), nothing else of the host:
  read-only, the system's ``/usr`` (with ``/bin``, ``/lib``, ``/lib64``, ``/sbin`` as the host
  has them: links into ``/usr`` or folders), the loader cache, time zone and fontconfig
  settings from ``/etc`` (:data:`ETC_FILES`), the interpreter (``sys.base_prefix``), the virtual environment
  (``sys.prefix``), the course package (or the withheld copy in ``binds``); read-write, the
  work folder at :data:`SANDBOX_HOME` (its working directory and ``$HOME``); a minimal
  ``/dev``, the sandbox's own ``/proc``, and private size-limited ``/tmp`` and ``/dev/shm``.
  Not ``/work``, ``/home``, ``/root``, ``/var``, ``/srv``, ``/opt``, ``/mnt``, ``/media``, other
  clones of the project, the rest of the repository (``autograder`` is not importable inside);
* under **totals** for the whole run, every process it starts counted together, in a control
  group of its own (:mod:`autograder.sandbox.cgroup`, v2 or v1): memory (``memory_bytes``, files in the
  tmpfs folders included), processes (``processes``) and CPU time (``total_cpu_seconds``: read
  while it runs, the whole group killed past it);
* with the work folder on a tmpfs of ``disk_bytes`` that the grader mounts there for the run
  (when it runs as root), so a run cannot fill the host's disk; its files are copied back to
  the real folder afterwards (regular files and folders only, never links, at most
  :data:`COPY_DEPTH` deep, private to the grader) and the tmpfs unmounted (one left mounted by
  a grader killed mid-run is detached by the next run, as its control group is removed);
* also under per-process rlimits (CPU time, address space, processes of its uid, file size),
  and a wall-clock cap (``wall_seconds``), with its output captured up to a bound.

What holds is said in :attr:`Result.notes`. Without control groups (no root, no usable
controllers) memory, processes and CPU time are limited per process only (rlimits), and
without root the work folder's total size is not limited (only each file's). Without
bubblewrap the command still runs, as ``nobody`` when started as root, with the same limits,
but nothing is hidden and the network is reachable: :func:`run` warns loudly.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil

from autograder.sandbox import cgroup
from autograder.sandbox.backend import NOBODY, Limits, Result, SandboxWarning

__all__ = ["BACKEND", "Bubblewrap", "bubblewrap_available", "run"]

#: Where the work folder is mounted inside the sandbox (its working directory and $HOME).
SANDBOX_HOME = "/tmp/sandbox"
ROOT = Path(__file__).resolve().parents[2]
#: The course package, as ``import course`` finds it (the virtual environment's editable
#: install points here); ``binds`` may cover it with a withheld copy.
COURSE = ROOT / "course"
#: The only entries of /etc the sandbox sees: the dynamic loader's cache (and its configuration,
#: for systems without a cache), the time zone, and fontconfig's configuration (matplotlib runs
#: fc-list, whose complaint on stderr would otherwise land in a cell's output). Python, numpy,
#: matplotlib and a Jupyter kernel need nothing else there (no user database: $HOME is set, and
#: uids stay numeric).
ETC_FILES = ("ld.so.cache", "ld.so.conf", "localtime", "fonts")
#: The merged-/usr links (or, on older systems, folders) at the top of the filesystem.
TOP_LEVEL = ("bin", "lib", "lib32", "lib64", "libx32", "sbin")
#: Sizes of the sandbox's private /tmp and /dev/shm (tmpfs: they count as memory too).
TMP_BYTES = 256 * 2**20
SHM_BYTES = 64 * 2**20
#: Most files and folders the work folder's tmpfs may hold (bounds the copy back).
WORK_INODES = 20_000
#: How deep in the work folder the copy back goes.
COPY_DEPTH = 8
#: How often the CPU time of the run's control group is read while it runs.
POLL_SECONDS = 0.1
MNT_DETACH = 2
#: The "device" name of a work folder's tmpfs, followed by the grader's pid.
WORK_SOURCE = "backprop-work-"


@functools.cache
def bubblewrap_available() -> bool:
    """True when ``bwrap`` exists and can create the namespaces the sandbox needs here."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False
    probe = [*_bwrap_args(Path("/tmp"), (), NOBODY), "/bin/true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _start_child(limits: Limits, drop_to: int | None, group: cgroup.Cgroup | None) -> None:
    """Runs in the child between fork and exec: into the run's control group (before anything
    of the run exists, so none of it is ever outside), a new session, rlimits, and (without
    bubblewrap, which drops privileges itself) the unprivileged uid."""
    if group is not None:
        group.enter(os.getpid())
    os.setsid()
    if drop_to is not None and os.getuid() == 0:
        os.setgroups([])
        os.setgid(drop_to)
        os.setuid(drop_to)
    cpu = max(1, int(limits.cpu_seconds))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _private_interpreter() -> bool:
    """True when the Python installation lives under a folder others cannot enter (pyenv under
    /root, say): only bubblewrap, which binds it alone, makes it reachable for ``nobody``."""
    prefix = Path(sys.base_prefix).resolve()
    return any(a != Path("/") and not os.stat(a).st_mode & 0o001 for a in prefix.parents)


def _interpreter_binds() -> list[Path]:
    """The interpreter's installation and the virtual environment, bound read-only at their own
    paths (the venv's ``python`` links to the installation; its .pth files name their paths).
    Their parents appear as empty folders: nothing else of /root or /work is there."""
    paths = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.executable).resolve().parent]
    kept: list[Path] = []
    for path in sorted(set(paths), key=lambda p: len(p.parts)):
        if not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return kept


def _system_args() -> list[str]:
    """The system part of the allow-list: /usr, the top-level links, a few files of /etc."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in TOP_LEVEL:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--perms", "0755", "--dir", "/etc"]
    for name in ETC_FILES:
        path = Path("/etc") / name
        if path.exists():
            args += ["--ro-bind", str(path.resolve()), str(path)]
    return args


def _parent_dirs(targets: Sequence[Path]) -> list[str]:
    """Empty, traversable folders for the parents of the bound paths (/root, /work/main, ...):
    bubblewrap would make them private to root, out of reach for the unprivileged uid."""
    made: list[Path] = []
    for target in targets:
        for parent in reversed(target.parents):
            if parent != Path("/") and parent not in made and not any(parent.is_relative_to(t) for t in targets):
                made.append(parent)
    return [arg for parent in made for arg in ("--perms", "0755", "--dir", str(parent))]


def _bwrap_args(
    workdir: Path, hidden: Sequence[str | Path], uid: int, binds: Sequence[tuple[str | Path, str | Path]] = ()
) -> list[str]:
    """The bubblewrap command line: a new, empty root holding only the allow-list."""
    # fmt: off
    args = [
        shutil.which("bwrap") or "bwrap",
        *_system_args(),
        "--dev", "/dev",
        "--proc", "/proc",
        "--size", str(TMP_BYTES), "--perms", "1777", "--tmpfs", "/tmp",
        "--size", str(SHM_BYTES), "--perms", "1777", "--tmpfs", "/dev/shm",
    ]
    # fmt: on
    readable = [*_interpreter_binds(), COURSE]
    targets = readable + [Path(target) for _, target in binds]
    args += _parent_dirs(targets)
    for path in readable:
        args += ["--ro-bind", str(path), str(path)]
    for source, target in binds:  # later mounts cover earlier ones: a redacted library over the real one
        args += ["--ro-bind", str(Path(source).resolve()), str(target)]
        readable.append(Path(target))
    for path in hidden:  # only where it lies inside something bound: elsewhere it is not there
        path = Path(path).resolve()
        if not any(path.is_relative_to(r) for r in readable):
            continue
        if path.is_dir():
            args += ["--tmpfs", str(path)]
        elif path.exists():
            args += ["--ro-bind", "/dev/null", str(path)]
    # fmt: off
    args += [
        # The work folder appears at a fixed, neutral path (its real parents may be private).
        "--bind", str(workdir), SANDBOX_HOME,
        "--chdir", SANDBOX_HOME,
        # New PID, network, IPC and UTS namespaces: no network, and every process dies with the
        # sandbox. No user namespace: bwrap runs as root to mount, and the command then runs as
        # a real unprivileged uid, so the kernel's per-user process limit applies to it.
        "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
        "--setenv", "HOME", SANDBOX_HOME,
        "--",
        shutil.which("setpriv") or "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
        "--inh-caps=-all", "--bounding-set=-all", "--",
    ]
    # fmt: on
    return args


class _WorkDisk:
    """The work folder on a tmpfs of ``size`` bytes for the duration of a run (root only).

    :meth:`mount` moves the folder's files onto the tmpfs; :meth:`unmount` copies back what
    the run left (regular files and folders, no links or other special files, private to the
    grader) and unmounts. While mounted, the grader sees the run's files at the usual path.
    """

    MS_NOSUID, MS_NODEV = 2, 4

    def __init__(self, workdir: Path, size: int, uid: int) -> None:
        self.workdir, self.size, self.uid = workdir, size, uid
        self.mounted = False

    def mount(self) -> str | None:
        """Mount; returns why not, if it could not."""
        if os.getuid() != 0:
            return "not root"
        _sweep_mounts()
        stage = Path(tempfile.mkdtemp(prefix=".stage-", dir=self.workdir.parent))
        try:
            for entry in os.listdir(self.workdir):
                os.rename(self.workdir / entry, stage / entry)
            options = f"size={self.size},nr_inodes={WORK_INODES},mode=0700,uid={self.uid},gid={self.uid}"
            error = _mount_tmpfs(self.workdir, options, self.MS_NOSUID | self.MS_NODEV)
            if error is None:
                self.mounted = True
                shutil.copytree(stage, self.workdir, dirs_exist_ok=True, symlinks=True)
                for directory, dirs, files in os.walk(self.workdir):
                    for name in dirs + files:
                        os.lchown(os.path.join(directory, name), self.uid, self.uid)
            else:
                for entry in os.listdir(stage):
                    os.rename(stage / entry, self.workdir / entry)
            return error
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def unmount(self) -> None:
        if not self.mounted:
            return
        keep = Path(tempfile.mkdtemp(prefix=".kept-", dir=self.workdir.parent))
        try:
            _copy_plain(self.workdir, keep)
            _umount(self.workdir)
            self.mounted = False
            for entry in os.listdir(keep):
                os.rename(keep / entry, self.workdir / entry)
        finally:
            shutil.rmtree(keep, ignore_errors=True)


def _copy_plain(source: Path, target: Path) -> None:
    """Copy the regular files and folders under ``source`` into ``target``, never following a
    link, never blocking on a FIFO, at most :data:`COPY_DEPTH` folders deep (the grader reads
    nothing deeper, and a deeper tree would only cost it work); copies are private (0600/0700).
    """
    stack = [(source, target, 0)]
    while stack:
        folder, copy, depth = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if depth < COPY_DEPTH:
                    (copy / entry.name).mkdir(mode=0o700)
                    stack.append((Path(entry.path), copy / entry.name, depth + 1))
                continue
            try:
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue  # a link, or gone
            with os.fdopen(fd, "rb") as src:
                if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
                    continue
                out = os.open(copy / entry.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _mount_tmpfs(target: Path, options: str, flags: int) -> str | None:
    """Mount a tmpfs named for this grader process (``backprop-work-<pid>``, the "device" that
    the mount table shows), so that one left by a grader killed mid-run can be found."""
    source = f"{WORK_SOURCE}{os.getpid()}".encode()
    if _libc().mount(source, os.fsencode(target), b"tmpfs", flags, options.encode()) != 0:
        return os.strerror(ctypes.get_errno())
    return None


def _sweep_mounts(mountinfo: str | None = None) -> list[Path]:
    """Detach the work-folder tmpfs mounts of graders that are gone (killed before they could
    unmount); returns them."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return []
    swept = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        if fields[sep + 1 : sep + 2] != ["tmpfs"] or not fields[sep + 2].startswith(WORK_SOURCE):
            continue
        pid = fields[sep + 2][len(WORK_SOURCE) :]
        if not pid.isdigit() or psutil.pid_exists(int(pid)):
            continue
        # The mount table writes space, tab, newline and backslash as octal escapes.
        target = Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4]))
        if _libc().umount2(os.fsencode(target), MNT_DETACH) == 0:
            swept.append(target)
    return swept


def _umount(target: Path) -> None:
    """Unmount; if something still holds a file there (a grader thread reading a result as the
    run ended), retry a moment, then detach it (it goes once the last file is closed)."""
    for _ in range(20):
        if _libc().umount2(os.fsencode(target), 0) == 0:
            return
        time.sleep(0.05)
    if _libc().umount2(os.fsencode(target), MNT_DETACH) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"cannot unmount the work folder's tmpfs: {os.strerror(errno)}", str(target))


def _make_group(limits: Limits) -> tuple[cgroup.Cgroup | None, str]:
    """The run's control group, if one can be made, and which limits hold, in words."""
    try:
        group = cgroup.create(limits.memory_bytes, limits.processes)
    except cgroup.CgroupUnavailable as exc:
        return None, f"no control group ({exc}): memory, processes and CPU time are limited per process only (rlimits)"
    return group, f"memory, processes and CPU time are limited in total for the run ({group.kind})"


def run(
    argv: Sequence[str],
    *,
    workdir: str | Path,
    hidden: Sequence[str | Path] = (),
    limits: Limits = Limits(),
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    require_sandbox: bool = False,
    uid: int = NOBODY,
    binds: Sequence[tuple[str | Path, str | Path]] = (),
    pass_fds: Sequence[int] = (),
    use_cgroups: bool = True,
    on_start: Callable[[cgroup.Cgroup | None], None] | None = None,
) -> Result:
    """Run ``argv`` in ``workdir`` (the only writable place) inside the sandbox.

    Inside the sandbox the work folder is mounted at :data:`SANDBOX_HOME`; pass paths in
    ``argv`` relative to it.

    Output beyond ``limits.output_bytes`` per stream is cut off (``truncated``); a run past
    ``limits.wall_seconds`` is killed with its whole process tree (``timed_out``), and so is one
    whose processes used ``limits.total_cpu`` seconds of CPU together (``cpu_exceeded``, with a
    control group). Each run gets a control group of its own (``use_cgroups=False``: none, the
    rlimits alone). Give concurrent runs different ``uid`` values so that one run's processes
    never count against another's per-uid limit. ``binds`` are (source, target) pairs mounted
    read-only over the view, after everything else (without bubblewrap they are not applied:
    pass the environment the command needs to find them, such as ``PYTHONPATH``, in ``env``).
    ``pass_fds`` are file descriptors the command inherits (pipes to talk to it while it runs);
    they are closed here once it has started, so that the other ends see end-of-file when it
    is gone. ``on_start`` is called, once the command has started, with the run's control group
    (None without one), so that the caller can watch what the run uses while it goes on.
    """
    passed = list(pass_fds)
    group: cgroup.Cgroup | None = None
    disk: _WorkDisk | None = None
    try:
        workdir = Path(workdir).resolve()
        sandboxed = bubblewrap_available()
        notes: list[str] = []
        if not sandboxed:
            if require_sandbox:
                raise RuntimeError(
                    "bubblewrap is required but not usable here (install the Debian package 'bubblewrap')"
                )
            message = (
                "bubblewrap is not available: student code runs WITHOUT the sandbox (it can read the "
                "course files and reach the network). Install the Debian package 'bubblewrap'."
            )
            warnings.warn(message, SandboxWarning, stacklevel=2)
            notes.append(message)
        if os.getuid() == 0:
            os.chown(workdir, uid, uid)
        base_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(workdir),
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        base_env.update(env or {})
        drop_to = None if sandboxed else uid
        if drop_to is not None and _private_interpreter():
            drop_to = None  # the interpreter sits in a private directory only bwrap can expose
            notes.append("without bubblewrap the interpreter is only reachable as the current user")
        disk = _WorkDisk(workdir, limits.disk_bytes, uid)
        why_not = disk.mount()
        group, holds = _make_group(limits) if use_cgroups else (None, "no control group (not asked for)")
        space = (
            f"the work folder is a tmpfs of {limits.disk_bytes // 2**20} MiB"
            if why_not is None
            else f"the work folder's total size is not limited ({why_not}), only each file's"
        )
        notes.append(f"{holds}; {space}")  # one line: the grader logs the notes of every notebook
        command = (_bwrap_args(workdir, hidden, uid, binds) if sandboxed else []) + list(argv)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    cwd=workdir,
                    env=base_env,
                    preexec_fn=lambda: _start_child(limits, drop_to, group),
                    pass_fds=tuple(pass_fds),
                )
            finally:
                _close(passed)
            try:
                if on_start is not None:
                    on_start(group)
                if stdin is not None and proc.stdin is not None:  # a pipe whenever stdin is given
                    try:
                        proc.stdin.write(stdin)
                        proc.stdin.close()
                    except BrokenPipeError:
                        pass
                timed_out, cpu_exceeded = _wait(proc, limits, group)
            finally:
                if group is not None:
                    group.kill_all()
                _kill_tree(proc)
            streams = []
            truncated = False
            for f in (out, err):
                f.seek(0)
                data = f.read(limits.output_bytes + 1)
                truncated |= len(data) > limits.output_bytes
                streams.append(data[: limits.output_bytes])
        result = Result(proc.returncode, streams[0], streams[1], timed_out, truncated, sandboxed, notes, cpu_exceeded)
        if group is not None:
            result.out_of_memory = group.out_of_memory()
            result.cpu_used, result.memory_peak = group.cpu_seconds(), group.memory_peak()
        return result
    finally:
        _close(passed)  # also when it could not start
        try:
            if group is not None:
                group.remove()
        finally:
            if disk is not None:
                disk.unmount()


def _wait(proc: subprocess.Popen, limits: Limits, group: cgroup.Cgroup | None) -> tuple[bool, bool]:
    """Wait for the run to end; (timed out, CPU total used up) when it was stopped."""
    deadline = time.monotonic() + limits.wall_seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return True, False
        try:
            proc.wait(timeout=min(left, POLL_SECONDS) if group is not None else left)
            return False, False
        except subprocess.TimeoutExpired:
            if group is not None and group.cpu_seconds() > limits.total_cpu:
                return False, True


def _close(fds: list[int]) -> None:
    while fds:
        os.close(fds.pop())


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill the process group the child leads (its session), then reap the child."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


class Bubblewrap:
    """The sandbox backend of this module (:class:`autograder.sandbox.backend.Backend`)."""

    name = "bubblewrap"

    def available(self) -> bool:
        return bubblewrap_available()

    def why_unavailable(self) -> str:
        where = shutil.which("bwrap")
        why = "is not installed (or not on PATH)" if where is None else f"({where}) cannot create its namespaces"
        return f"bubblewrap {why}: install the Debian package 'bubblewrap'"

    def run(self, argv: Sequence[str], **options: Any) -> Result:
        return run(argv, **options)


BACKEND = Bubblewrap()

"""Run untrusted code (a student's kernel or check process) in a sandbox.

With bubblewrap (Debian package ``bubblewrap``) the command runs:

* as an unprivileged uid (``nobody`` by default), so kernel limits on processes apply;
* in fresh PID, network, IPC and UTS namespaces: no network at all, and every process it
  starts, including ``setsid`` daemons, dies with it;
* with the repository hidden (an empty tmpfs over it) except the virtualenv and the ``course``
  package, and any extra ``hidden`` paths (other students' work, the output folder) covered;
* under resource limits on CPU time, address space, processes and file size, plus a
  wall-clock timeout, with its output captured up to a bound.

Without bubblewrap it still runs, as ``nobody`` when started as root, with the same resource
limits, but nothing is hidden and the network is reachable: :func:`run` warns loudly.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Limits", "Result", "SandboxWarning", "bubblewrap_available", "run"]

NOBODY = 65534
#: Where the work folder is mounted inside the sandbox (its working directory and $HOME).
SANDBOX_HOME = "/tmp/sandbox"
ROOT = Path(__file__).resolve().parent.parent


class SandboxWarning(UserWarning):
    """Grading without bubblewrap: student code can see the course files and the network."""


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 60
    memory_bytes: int = 3 * 2**30
    processes: int = 64
    file_bytes: int = 32 * 2**20
    wall_seconds: float = 180.0
    output_bytes: int = 256 * 2**10


@dataclass
class Result:
    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    truncated: bool = False
    sandboxed: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def signal(self) -> str | None:
        """The signal that ended the process (SIGKILL, SIGXCPU, ...), if any."""
        # bwrap reports a child killed by signal N as exit status 128 + N.
        n = -self.returncode if self.returncode < 0 else self.returncode - 128 if self.returncode > 128 else 0
        return signal.Signals(n).name if n in signal.Signals._value2member_map_ else None


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


def _limit(limits: Limits, drop_to: int | None) -> None:
    """Runs in the child between fork and exec: a new session, rlimits, and (without
    bubblewrap, which drops privileges itself) the unprivileged uid."""
    os.setsid()
    if drop_to is not None and os.getuid() == 0:
        os.setgroups([])
        os.setgid(drop_to)
        os.setuid(drop_to)
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _interpreter_binds() -> list[str]:
    """Make the Python installation reachable for ``nobody`` when it lives under a private
    directory (pyenv under /root, say): cover that directory with an empty tmpfs, then bind
    just the installation back. Root's other files stay out of sight."""
    prefix = Path(sys.base_prefix).resolve()
    private = [a for a in reversed(prefix.parents) if a != Path("/") and not os.stat(a).st_mode & 0o001]
    if not private:
        return []
    args = ["--perms", "0755", "--tmpfs", str(private[0])]
    for directory in [d for d in reversed(prefix.parents) if d.is_relative_to(private[0]) and d != private[0]]:
        args += ["--perms", "0755", "--dir", str(directory)]  # traversable for the unprivileged uid
    return args + ["--ro-bind", str(prefix), str(prefix)]


def _temp_dir_args() -> list[str]:
    """Hide the temporary folder too when it is not /tmp (TMPDIR): grading work folders and
    withheld library copies live there, and one run must not read another's."""
    tmp = Path(tempfile.gettempdir()).resolve()
    keep = [ROOT, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()]
    if tmp in (Path("/tmp"), Path("/")) or any(p.is_relative_to(tmp) for p in keep):
        return []
    return ["--tmpfs", str(tmp)]


def _bwrap_args(
    workdir: Path, hidden: Sequence[Path], uid: int, binds: Sequence[tuple[Path, Path]] = ()
) -> list[str]:
    venv = Path(sys.prefix)
    args = [
        shutil.which("bwrap") or "bwrap",
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",
        "--tmpfs", "/dev/shm",
        *_temp_dir_args(),
        # Hide the repository (solutions, hidden tests, gradebook, git history) ...
        "--tmpfs", str(ROOT),
        # ... but keep what student code needs to import.
        "--ro-bind", str(ROOT / "course"), str(ROOT / "course"),
    ]
    if venv.is_relative_to(ROOT):
        args += ["--ro-bind", str(venv), str(venv)]
    args += _interpreter_binds()
    for source, target in binds:  # later mounts cover earlier ones: a redacted library over the real one
        args += ["--ro-bind", str(Path(source).resolve()), str(target)]
    for path in hidden:
        path = Path(path).resolve()
        if path.is_dir():
            args += ["--tmpfs", str(path)]
        elif path.exists():
            args += ["--ro-bind", "/dev/null", str(path)]
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
    return args


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
) -> Result:
    """Run ``argv`` in ``workdir`` (the only writable place) inside the sandbox.

    Inside the sandbox the work folder is mounted at :data:`SANDBOX_HOME`; pass paths in
    ``argv`` relative to it.

    Output beyond ``limits.output_bytes`` per stream is cut off (``truncated``); a run past
    ``limits.wall_seconds`` is killed with its whole process tree (``timed_out``). Give
    concurrent runs different ``uid`` values so that one run's processes never count against
    another's limit. ``binds`` are (source, target) pairs mounted read-only over the view,
    after everything else (without bubblewrap they are not applied: pass the environment the
    command needs to find them, such as ``PYTHONPATH``, in ``env``). ``pass_fds`` are file
    descriptors the command inherits (pipes to talk to it while it runs); they are closed here
    once it has started, so that the other ends see end-of-file when it is gone.
    """
    passed = list(pass_fds)
    try:
        workdir = Path(workdir).resolve()
        sandboxed = bubblewrap_available()
        notes = []
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
        if drop_to is not None and _interpreter_binds():
            drop_to = None  # the interpreter sits in a private directory only bwrap can expose
            notes.append("without bubblewrap the interpreter is only reachable as the current user")
        command = (_bwrap_args(workdir, hidden, uid, binds) if sandboxed else []) + list(argv)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(
                    command, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL, stdout=out, stderr=err,
                    cwd=workdir, env=base_env, preexec_fn=lambda: _limit(limits, drop_to), pass_fds=tuple(pass_fds),
                )
            finally:
                _close(passed)
            timed_out = False
            try:
                if stdin is not None:
                    try:
                        proc.stdin.write(stdin)
                        proc.stdin.close()
                    except BrokenPipeError:
                        pass
                proc.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_tree(proc)
            streams = []
            truncated = False
            for f in (out, err):
                f.seek(0)
                data = f.read(limits.output_bytes + 1)
                truncated |= len(data) > limits.output_bytes
                streams.append(data[: limits.output_bytes])
        return Result(proc.returncode, streams[0], streams[1], timed_out, truncated, sandboxed, notes)
    finally:
        _close(passed)  # also when it could not start


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

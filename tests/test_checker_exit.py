"""The checking process ends as soon as the grader is done with it, whatever its cells left
running: a thread a cell started (daemon or not) does not keep it alive until the run's cap."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import autograder.inside.checker

THREAD = "import threading, time\nthreading.Thread(target=time.sleep, args=(600,), daemon={daemon}).start()\n"
JOB = {
    "given_back": [],
    "cpu_seconds": 5,
    "case_wall_seconds": 15,
    "answer_cpu_seconds": 10,
    "other_cpu_seconds": 2,
    "cells_cpu_seconds": 40,
    "cell_wall_seconds": 10.0,
    "cells_wall_seconds": 80.0,
}


def _receive(sock: socket.socket) -> dict:
    head = b""
    while len(head) < 8:
        head += sock.recv(8 - len(head))
    n = int.from_bytes(head[:4], "big")
    data = b""
    while len(data) < n:
        data += sock.recv(n - len(data))
    return json.loads(data)


@pytest.mark.parametrize("daemon", [True, False])
def test_the_checking_process_ends_when_the_grader_closes_the_channel(tmp_path: Path, daemon: bool):
    shutil.copy(Path(autograder.inside.checker.__file__), tmp_path / "checker.py")
    (tmp_path / "job.json").write_text(json.dumps(JOB))
    (tmp_path / "cells.json").write_text(json.dumps([{"source": THREAD.format(daemon=daemon), "answer": False}]))
    ours, theirs = socket.socketpair()
    env = dict(os.environ, BACKPROP_GRADER_FD=str(theirs.fileno()))
    proc = subprocess.Popen(
        [sys.executable, "checker.py"], cwd=tmp_path, env=env, pass_fds=(theirs.fileno(),), stderr=subprocess.PIPE
    )
    theirs.close()
    try:
        assert _receive(ours) == {"op": "cells"}
        ours.close()  # the grader refuses to go on (it saw the thread), or is gone
        # A bound, not a timing: before the fix a non-daemon thread held the process for 600 s.
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert code == 0, proc.stderr.read().decode()
    assert json.loads((tmp_path / "status.json").read_text())["status"] == "ok"

"""What passes between the grader and a sandboxed run, and how the grader reads it safely.

Three ways, all read here as bytes with a size limit and never unpickled:

- files the run leaves in its work folder (``status.json``, the executed notebook):
  :func:`read_bytes`, :func:`read_json`;
- the channel with a checking run (:mod:`autograder.inside.checker`), a Unix socket: each
  message is 8 bytes of sizes (a JSON header's, a payload's), the header, the payload, and
  possibly file descriptors (:func:`send`, :func:`receive`);
- each case's own pipe, whose write end only the case's process keeps: :func:`read_pipe`.

The checker speaks the other side of this protocol; changing one means changing both.
"""

from __future__ import annotations

import json
import os
import select
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from autograder.verdicts.watch import WATCH_SECONDS

__all__ = ["MAX_RESULT_BYTES", "json_default", "read_bytes", "read_json", "read_pipe", "receive", "send"]

#: The largest file read back from the sandbox.
MAX_RESULT_BYTES = 64 * 2**20


def json_default(value: object) -> object:
    """NumPy scalars and arrays as JSON numbers and lists (a case's config holds them)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot send {type(value).__name__} to the sandbox")


def read_bytes(path: Path, limit: int = MAX_RESULT_BYTES) -> bytes | None:
    """The bytes of a regular file the sandbox wrote, if it holds at most ``limit`` of them.

    Not following symbolic links and never blocking: the student's code could have put a link
    to another file, a FIFO or a device in its place.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(limit + 1)
        return data if len(data) <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def read_json(path: Path) -> dict | None:
    """The JSON object in a file the sandbox wrote (:func:`read_bytes`); None for anything else."""
    raw = read_bytes(path)
    try:
        data = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def send(sock: socket.socket, header: dict, payload: bytes = b"", fds: list[int] | None = None) -> None:
    """One message to a checking run: 8 bytes of sizes, a JSON header, a payload (and ``fds``)."""
    data = json.dumps(header, default=json_default).encode()
    head = len(data).to_bytes(4, "big") + len(payload).to_bytes(4, "big")
    if fds:
        socket.send_fds(sock, [head], fds)
        sock.sendall(data + payload)
    else:
        sock.sendall(head + data + payload)


def receive(sock: socket.socket, deadline: float, limit: int = 1 << 16) -> dict:
    """One message from a checking run (a JSON header of at most ``limit`` bytes, no payload)."""

    def exactly(n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = sock.recv(n - got)
            if not chunk:
                raise EOFError("the checking run closed its channel")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    head = exactly(8)
    size, payload = int.from_bytes(head[:4], "big"), int.from_bytes(head[4:], "big")
    if size > limit or payload:
        raise ValueError("a message from the checking run was not of the expected form")
    message = json.loads(exactly(size))
    if not isinstance(message, dict):
        raise ValueError("a message from the checking run was not of the expected form")
    return message


def read_pipe(fd: int, limit: int, deadline: float, over: Callable[[], bool] | None = None) -> bytes | None:
    """What comes through the read end ``fd`` until every writer has closed it (b"" if nothing),
    None past ``limit`` bytes; gives up at ``deadline``, or as soon as ``over()`` (asked every
    :data:`WATCH_SECONDS` while it waits) says so. Closes ``fd``."""
    chunks: list[bytes] = []
    got = 0
    try:
        while True:
            left = max(0.0, deadline - time.monotonic())
            ready = select.select([fd], [], [], left if over is None else min(left, WATCH_SECONDS))[0]
            if not ready and over is not None and left > WATCH_SECONDS and not over():
                continue
            if not ready:
                return b""  # the case did not finish in time: nothing it wrote counts
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            got += len(chunk)
            if got > limit:
                return None
            chunks.append(chunk)
    finally:
        os.close(fd)

"""How a case's outputs travel from the student's code to the judge: plain ``.npy`` bytes.

The same encoding is used in the notebook and across the sandbox boundary, so that a verdict
never depends on where the student's code ran. Nothing is unpickled: what the untrusted side
sends is numbers, or a note saying why something was not numbers.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import numpy as np

__all__ = ["decode_outputs", "encode_outputs", "fingerprint", "modified", "pack_result", "unpack_result"]


def fingerprint(array: np.ndarray) -> np.ndarray:
    """A digest (32 bytes) of an input array as the student's code left it, for ``judge`` to
    tell whether the code modified its input in place. Sending the digest instead of the array
    saves megabytes on large cases and loses nothing: untrusted code that could forge one could
    forge the other."""
    a = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    digest.update(a.tobytes())
    return np.frombuffer(digest.digest(), dtype=np.uint8).copy()


def modified(outputs: dict, key: str, original: np.ndarray) -> bool:
    """Whether the :func:`fingerprint` in ``outputs[key]`` says the input was changed."""
    after = outputs.get(key)
    return isinstance(after, np.ndarray) and after.shape == (32,) and not np.array_equal(after, fingerprint(original))


def encode_outputs(outputs: dict[str, Any]) -> dict[str, bytes]:
    """Each output as ``.npy`` bytes; values that are not plain numeric arrays become a note."""
    encoded = {}
    for name, value in outputs.items():
        try:
            arr = np.array(value)  # a plain ndarray copy: subclasses and their methods are dropped
            if arr.dtype == object or arr.dtype.kind not in "biuf":
                raise TypeError(f"dtype {arr.dtype}")
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=False)
            encoded[name] = buf.getvalue()
        except Exception as exc:  # noqa: BLE001 - any failure means "not an array of numbers"
            encoded[name] = f"!{type(value).__name__}: {exc}"[:300].encode()
    return encoded


def pack_result(outputs: dict[str, bytes], problems: list[str]) -> bytes:
    """One case's encoded outputs and problems as bytes: a JSON line naming each output and its
    size, then the outputs one after another (what the checking run sends the grader)."""
    head = {"problems": problems, "outputs": [[name, len(raw)] for name, raw in outputs.items()]}
    return json.dumps(head).encode() + b"\n" + b"".join(outputs.values())


def unpack_result(data: bytes, max_names: int = 64) -> tuple[dict[str, bytes], list[str]] | None:
    """Inverse of :func:`pack_result` for untrusted bytes: None unless they are exactly one
    well-formed result with at most ``max_names`` outputs (names of at most 100 characters)."""
    line, _, body = data.partition(b"\n")
    try:
        head = json.loads(line)
        problems, listed = head["problems"], head["outputs"]
        if not (isinstance(problems, list) and isinstance(listed, list) and len(listed) <= max_names):
            return None
        outputs, at = {}, 0
        for name, size in listed:
            if not (isinstance(name, str) and len(name) <= 100 and isinstance(size, int) and size >= 0):
                return None
            if name in outputs:
                return None
            outputs[name], at = body[at : at + size], at + size
        if at != len(body):
            return None
        return outputs, [str(p)[:500] for p in problems[:20]]
    except (ValueError, TypeError, KeyError):
        return None


def decode_outputs(encoded: dict[str, bytes]) -> dict[str, np.ndarray | str]:
    """Inverse of :func:`encode_outputs`, loading with ``allow_pickle=False``."""
    decoded: dict[str, np.ndarray | str] = {}
    for name, raw in encoded.items():
        if raw[:1] == b"!":
            decoded[name] = raw[1:].decode(errors="replace")
            continue
        try:
            decoded[name] = np.load(io.BytesIO(raw), allow_pickle=False)
        except Exception as exc:  # noqa: BLE001
            decoded[name] = f"unreadable output ({exc})"
    return decoded

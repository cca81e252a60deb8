"""Atomic writes, locks, content hashes, and the safety rules of worker processes.

Every file the package writes goes through :func:`atomic_write`: the content
is written to a temporary file in the same folder, flushed and fsynced, then
renamed over the target. A crash or a kill leaves either the old file or the
new one, never half of one. The file gets the mode any program's new file
gets, ``0o666`` less the user's umask (``0o644`` with the usual ``022``),
not the ``0o600`` of a temporary file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from mtl.errors import MtlError


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[io.IOBase]:
    """Open a temporary file beside ``path``; rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # POSIX; Windows has no mode bits to set
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    """The process's umask: read from ``/proc/self/status`` where it exists (Linux), else set and restored.

    Reading it leaves it alone; setting it (the only way elsewhere) changes it
    for every thread for an instant.
    """
    with contextlib.suppress(OSError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """An exclusive lock between processes on ``path``, released by the system if the holder dies.

    POSIX ``flock``. Where it does not exist (Windows) the lock is a no-op:
    writes stay atomic, only concurrent duplicate work is no longer prevented.
    A worker process still importing its parent's script never waits here
    (:func:`check_main_guard`).
    """
    check_main_guard()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def exit_with_parent(parent: int, interval: float = 1.0) -> None:
    """Make this worker process exit within ``interval`` seconds (default 1) of process ``parent`` ending.

    Call it in a pool worker's initialiser with the pid of the process that
    made the pool. A worker waits for tasks on a queue whose write end it
    holds itself, so it never sees its parent die: a killed ``mtl sweep`` or
    feature extraction would otherwise leave its workers behind, computing
    and then waiting forever, a few hundred MB each. A daemon thread checks
    the parent every ``interval`` seconds and ends the process with status 1.
    """

    def watch() -> None:
        while True:
            time.sleep(interval)
            try:
                os.kill(parent, 0)  # signal 0: only asks whether the process exists
            except (ProcessLookupError, PermissionError):  # gone (or its pid reused by another user's process)
                os._exit(1)

    threading.Thread(target=watch, name="mtl-exit-with-parent", daemon=True).start()


def check_main_guard() -> None:
    """Raise :class:`~mtl.errors.MtlError` when called by a worker process importing its parent's script.

    A worker started with ``spawn`` or ``forkserver`` (feature extraction, a
    sweep's pool) first imports the parent's ``__main__`` script again. A
    script that calls :mod:`mtl` at its top level, without the guard
    ``if __name__ == "__main__":``, then calls it again in every worker, which
    would wait forever for a lock its parent holds (the parent waits for the
    worker). The error names the script and says what to add.
    """
    # The flag multiprocessing itself sets while a new process imports the
    # parent's main module (and checks before starting a process of its own).
    if not getattr(multiprocessing.current_process(), "_inheriting", False):
        return
    frame, script = sys._getframe(), "the main script"
    while frame is not None:
        if frame.f_globals.get("__name__") == "__mp_main__" and frame.f_code.co_name == "<module>":
            script = str(frame.f_globals.get("__file__", script))
            break
        frame = frame.f_back
    raise MtlError(f"{script}: mtl was called while a worker process was importing this script, which runs mtl "
                   "at its top level; worker processes import the script again, so it would wait forever for "
                   "its own parent. Put the script's top-level calls under `if __name__ == \"__main__\":`")


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_write(path, "w") as handle:
        json.dump(obj, handle, indent=2, sort_keys=True, default=_json_default)
        handle.write("\n")


def as_json(obj: Any) -> Any:
    """``obj`` as :func:`write_json` then :func:`read_json` give it back (lists for tuples, string keys, plain numbers)."""
    return json.loads(json.dumps(obj, default=_json_default))


def read_json(path: str | Path) -> Any:
    """The JSON content of ``path`` (UTF-8); :class:`json.JSONDecodeError` for a damaged file."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def file_digest(path: str | Path, algorithm: str = "sha1", chunk: int = 1 << 20) -> str:
    """Hex digest of a file's bytes."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def stable_hash(obj: Any, length: int = 16) -> str:
    """Short hex hash of a JSON-serialisable object (key order does not matter)."""
    text = json.dumps(obj, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")

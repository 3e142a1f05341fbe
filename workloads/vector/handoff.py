"""Hand an embedded collection between processes.

An embedded engine's files must be open in one process at a time (Qdrant Edge has no cross-process locking of
its own once its WAL is off). Yet the platform searches in one process (the MCP server) and indexes in another
(`python -m workloads.vector index --follow`). So each collection has an exclusive `flock` on `<dir>/lock`, and a
process that wants a held collection leaves a `wants-<pid>-<token>` file next to it and waits; the holder sees it
and releases at its next idle moment (never in the middle of an operation or of an indexing run), then takes it
back the same way when it needs it again. Reopening a collection costs a few tens of milliseconds.
"""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import IO

from workloads.vector.store import VectorError

DEFAULT_TIMEOUT_S = 60.0
POLL_S = 0.02


def lock_timeout() -> float:
    """How long to wait for another process to hand a collection over (`DP_VECTOR_LOCK_TIMEOUT`, seconds)."""
    raw = os.environ.get("DP_VECTOR_LOCK_TIMEOUT")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise VectorError(f"DP_VECTOR_LOCK_TIMEOUT must be a number of seconds, got {raw!r}") from None
    if value < 0:
        raise VectorError(f"DP_VECTOR_LOCK_TIMEOUT must not be negative, got {raw!r}")
    return value


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CollectionLock:
    """The exclusive right to open one collection's files, handed over on request."""

    def __init__(self, directory: Path, token: str, timeout: float) -> None:
        self.directory = directory
        self.timeout = timeout
        self._intent = directory / f"wants-{os.getpid()}-{token}"
        self._handle: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def acquire(self, what: str) -> None:
        """Take the lock, asking the holder to hand it over and waiting up to `timeout` seconds."""
        if self._handle is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        handle = open(self.directory / "lock", "a+")
        if not self._try(handle):
            deadline = time.monotonic() + self.timeout
            self._intent.touch()
            try:
                while not self._try(handle):
                    if time.monotonic() >= deadline:
                        handle.seek(0)
                        holder = handle.read().strip() or "?"
                        handle.close()
                        raise VectorError(f"{what} is held by another process (pid {holder}) that did not hand it "
                                          f"over within {self.timeout:g}s (an indexing run in progress?); retry later")
                    time.sleep(POLL_S)
            finally:
                self._intent.unlink(missing_ok=True)
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    @staticmethod
    def _try(handle: IO[str]) -> bool:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file releases the flock
            self._handle = None

    def others_waiting(self) -> bool:
        """Whether another process (or another store in this one) has asked for the collection."""
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return False
        for entry in entries:
            if not entry.name.startswith("wants-") or entry.name == self._intent.name:
                continue
            pid = entry.name.split("-")[1]
            if pid.isdigit() and _alive(int(pid)):
                return True
            Path(entry.path).unlink(missing_ok=True)  # left by a process that died while waiting
        return False

"""The audit trail: an append-only JSON-lines file whose entries are chained by SHA-256, so that any edit,
removal, reordering or insertion is detected by `verify`.

Each line is one entry: `seq` (1, 2, ...), `ts`, the event's fields, `prev` (the previous entry's hash; 64 zeros
for the first) and `hash`, the SHA-256 of the entry's canonical JSON (sorted keys, no spaces) without `hash`.
Changing any byte of an entry changes its hash; its successor's `prev` then no longer matches.

A chain alone cannot show that its tail was cut off (the shorter chain is still valid). So the head is anchored:
- after every append, `<log>.head` holds the newest (seq, hash), replaced atomically: a truncated log ends before
  the head, a rewritten tail no longer contains the head's hash;
- `anchor()` (`python -m workloads.governance audit anchor`, and the governance service every minute) also
  publishes the head to the Iceberg table `governance.audit_anchors`, in another store whose snapshots are
  immutable: whoever can rewrite the log and its head file together still cannot rewrite anchors already
  published. Entries after the last anchor are protected by the head file only.

Several processes may append to one log (the MCP server, admin commands): an exclusive `flock` on the log spans
reading the tail and writing the entry, and each entry is one `write` on a file opened with O_APPEND.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
HEAD_SUFFIX = ".head"
_TAIL_CHUNK = 1 << 16


class AuditWriteError(OSError):
    """The entry could not be written: callers fail closed (an unaudited action does not happen)."""


def entry_hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str,
                                     ensure_ascii=False).encode()).hexdigest()


def head_path(log: Path) -> Path:
    return log.with_name(log.name + HEAD_SUFFIX)


def _last_line(fd: int, size: int) -> bytes:
    """The last complete line of the file (without its newline), reading backwards in chunks."""
    end = size
    buffer = b""
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        buffer = os.pread(fd, end - start, start) + buffer
        end = start
        body = buffer[:-1] if buffer.endswith(b"\n") else buffer
        cut = body.rfind(b"\n")
        if cut >= 0:
            return body[cut + 1:]
    return buffer.rstrip(b"\n")


class AuditLog:
    """Appends chained entries to one file. Thread-safe and safe across processes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._fd: int | None = None  # opened on the first append: creating the log writes nothing
        self._tail: tuple[int, int, str] | None = None  # (file size after our last write, seq, hash)

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        return self._fd

    def _head(self, fd: int, size: int) -> tuple[int, str]:
        if self._tail is not None and self._tail[0] == size:
            return self._tail[1], self._tail[2]
        if size == 0:
            return 0, GENESIS
        with open(self.path, "rb") as reader:
            line = _last_line(reader.fileno(), size)
        try:
            last = json.loads(line)
            return int(last["seq"]), str(last["hash"])
        except (ValueError, KeyError, TypeError):
            raise AuditWriteError(f"audit log {self.path} ends with an unreadable entry: run "
                                  "`python -m workloads.governance audit verify` before appending") from None

    def append(self, **event: Any) -> dict[str, Any]:
        """Write one entry; returns it (with seq and hash). Raises `AuditWriteError` when it cannot be written."""
        with self._lock:
            try:
                fd = self._open()
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    size = os.fstat(fd).st_size
                    seq, prev = self._head(fd, size)
                    entry = {"seq": seq + 1, "ts": datetime.now(UTC).isoformat(timespec="microseconds"),
                             **event, "prev": prev}
                    entry["hash"] = entry_hash(entry)
                    # ASCII: no character a reader could take for a line break (U+2028, NEL...)
                    line = (json.dumps(entry, separators=(",", ":"), default=str) + "\n").encode()
                    os.write(fd, line)
                    self._tail = (size + len(line), entry["seq"], entry["hash"])
                    _write_head(self.path, entry["seq"], entry["hash"])
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            except AuditWriteError:
                raise
            except OSError as exc:
                raise AuditWriteError(f"audit log {self.path} cannot be written: {exc.strerror or exc}") from None
            return entry

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _write_head(log: Path, seq: int, digest: str) -> None:
    target = head_path(log)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps({"seq": seq, "hash": digest}))
    os.replace(tmp, target)


def read_head(log: Path) -> dict[str, Any] | None:
    try:
        return json.loads(head_path(log).read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return {"seq": None, "hash": None}


@dataclass
class Verification:
    log: str
    entries: int = 0
    problems: list[str] = field(default_factory=list)
    head: dict[str, Any] | None = None
    anchors_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"log": self.log, "ok": self.ok, "entries": self.entries, "head": self.head,
                "anchors_checked": self.anchors_checked, "problems": self.problems}


def _entries(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as reader:
        for number, line in enumerate(reader, start=1):
            yield number, line


def verify(path: Path, anchors: list[tuple[int, str]] = (), max_problems: int = 20) -> Verification:
    """Check the chain, the head file and published anchors; each problem names the line and what is wrong."""
    path = Path(path)
    result = Verification(str(path), head=read_head(path))
    problems = result.problems
    by_seq: dict[int, str] = {}
    expected_seq, prev = 1, GENESIS
    if not path.exists():
        if result.head or anchors:
            problems.append(f"{path} is missing but its head or anchors say it had entries")
        return result
    for number, raw in _entries(path):
        if len(problems) >= max_problems:
            problems.append("... (stopped after too many problems)")
            break
        if not raw.endswith(b"\n"):
            problems.append(f"line {number}: incomplete last entry (no newline): written partially or cut")
        try:
            entry = json.loads(raw)
            seq, stated_prev, stated_hash = int(entry["seq"]), entry["prev"], entry["hash"]
        except (ValueError, KeyError, TypeError):
            problems.append(f"line {number}: not a readable audit entry (edited?)")
            continue
        result.entries += 1
        if entry_hash(entry) != stated_hash:
            problems.append(f"line {number} (seq {seq}): content does not match its hash (edited)")
        if seq < expected_seq:
            kind = "inserted or duplicated" if seq in by_seq else "out of order (reordered)"
            problems.append(f"line {number}: seq {seq} after seq {expected_seq - 1}: {kind}")
        elif seq > expected_seq:
            problems.append(f"line {number}: seq {seq} follows seq {expected_seq - 1}: "
                            f"{seq - expected_seq} entr{'y' if seq - expected_seq == 1 else 'ies'} removed")
        elif stated_prev != prev:
            problems.append(f"line {number} (seq {seq}): does not chain to the entry before it "
                            "(an entry was inserted, removed or replaced)")
        by_seq.setdefault(seq, stated_hash)
        expected_seq, prev = seq + 1, stated_hash
    last_seq = expected_seq - 1
    checks = ([("head file", result.head)] if result.head else []) + [
        ("published anchor", {"seq": s, "hash": h}) for s, h in anchors]
    for what, mark in checks:
        seq, digest = mark.get("seq"), mark.get("hash")
        if not isinstance(seq, int):
            problems.append(f"{what} is unreadable (edited?)")
        elif seq > last_seq:
            problems.append(f"{what} is at seq {seq} but the log ends at seq {last_seq}: its tail was truncated")
        elif by_seq.get(seq) != digest:
            problems.append(f"{what} seq {seq} hash does not match the log's entry: the log was rewritten")
    result.anchors_checked = len(anchors)
    return result


def iter_entries(path: Path) -> Iterator[dict[str, Any]]:
    """The readable entries of a log, in file order (for reports and metrics; `verify` judges integrity)."""
    for _, raw in _entries(Path(path)):
        try:
            yield json.loads(raw)
        except ValueError:
            continue

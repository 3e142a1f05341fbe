"""Catalog metadata with a cache, so metadata tools answer in microseconds instead of a catalog round trip.

A loaded table is served from memory for `ttl` seconds; after that the catalog is asked again and, if the
table's metadata pointer (`metadata_location`, which changes with every commit) is unchanged, the cached
entry and everything derived from it (`memo`) are kept, else they are replaced: a new snapshot invalidates.
One caller re-checks an entry while the others keep being served the cached one (no stampede of identical
catalog requests under load); only a first load makes callers wait.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from workloads.mcp_server.errors import NotFound, Unavailable
from workloads.mcp_server.models import PartitionField, Snapshot


@dataclass
class CachedTable:
    name: str
    table: Any  # pyiceberg Table
    checked_at: float
    memo: dict[Any, Any] = field(default_factory=dict)

    @property
    def metadata_location(self) -> str:
        return self.table.metadata_location


def _table_name(identifier: tuple[str, ...]) -> str:
    return ".".join(identifier)


class CatalogCache:
    def __init__(self, catalog: Any, ttl: float, clock=time.monotonic):
        self.catalog = catalog
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._refreshing: dict[str, threading.Lock] = {}
        self._tables: dict[str, CachedTable] = {}
        self._names: tuple[float, list[str]] | None = None

    @contextmanager
    def _refresh(self, key: str, have_cached: bool) -> Iterator[bool]:
        """Yields True if this caller should (re)load `key`, False if it should use the cached value."""
        with self._lock:
            lock = self._refreshing.setdefault(key, threading.Lock())
        if not lock.acquire(blocking=not have_cached):
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def names(self) -> list[str]:
        """Every table as `namespace.table`, sorted."""
        cached = self._names
        if cached and self._clock() - cached[0] < self.ttl:
            return cached[1]
        with self._refresh("", cached is not None) as load:
            if not load and cached:
                return cached[1]
            fresh = self._names
            if fresh and self._clock() - fresh[0] < self.ttl:  # reloaded while this caller waited
                return fresh[1]
            now = self._clock()
            try:
                names = sorted(_table_name(ident) for ns in self.catalog.list_namespaces()
                               for ident in self.catalog.list_tables(ns))
            except Exception as exc:  # the catalog's own errors vary by backend (SQL, REST, Glue)
                raise Unavailable(f"catalog unreachable: {type(exc).__name__}: {exc}") from exc
            self._names = (now, names)
            return names

    def in_memory(self, table: str | None = None) -> bool:
        """Whether the table list (and `table`, given as namespace.table) can be answered without I/O now."""
        now = self._clock()
        if not self._names or now - self._names[0] >= self.ttl:
            return False
        if table is None:
            return True
        entry = self._tables.get(table) or next(
            (e for n, e in self._tables.items() if n.lower() == table.lower()), None)
        return entry is not None and now - entry.checked_at < self.ttl

    def resolve(self, namespace: str | None, table: str) -> str:
        """The catalog name of a reference (case-insensitive; an unqualified name must be unique)."""
        wanted = f"{namespace}.{table}".lower() if namespace else None
        names = self.names()
        if wanted:
            match = [n for n in names if n.lower() == wanted]
        else:
            match = [n for n in names if n.rsplit(".", 1)[-1].lower() == table.lower()]
            if len(match) > 1:
                raise NotFound(f"table {table!r} is ambiguous: qualify it as one of {', '.join(match)}")
        if not match:
            raise NotFound(f"unknown table {wanted or table!r}: list_tables shows the tables you can read")
        return match[0]

    def get(self, name: str) -> CachedTable:
        entry = self._tables.get(name)
        if entry and self._clock() - entry.checked_at < self.ttl:
            return entry
        with self._refresh(name, entry is not None) as load:
            current = self._tables.get(name)
            if not load and current:
                return current
            if current and self._clock() - current.checked_at < self.ttl:  # loaded while this caller waited
                return current
            now = self._clock()
            try:
                table = self.catalog.load_table(name)
            except Exception as exc:
                if type(exc).__name__ in ("NoSuchTableError", "NoSuchNamespaceError", "NoSuchIdentifierError"):
                    raise NotFound(f"unknown table {name!r}") from None
                raise Unavailable(f"catalog unreachable: {type(exc).__name__}: {exc}") from exc
            if current and current.metadata_location == table.metadata_location:
                current.checked_at = now
                return current
            entry = self._tables[name] = CachedTable(name, table, now)
            return entry

    def ping(self) -> None:
        """Raise `Unavailable` unless the catalog answers now (readiness)."""
        try:
            self.catalog.list_namespaces()
        except Exception as exc:
            raise Unavailable(f"catalog unreachable: {type(exc).__name__}: {exc}") from exc


def snapshot_model(snapshot: Any) -> Snapshot:
    summary = snapshot.summary
    fields = {k: v for k, v in summary.model_dump().items() if k != "operation"} if summary is not None else {}
    return Snapshot(
        snapshot_id=snapshot.snapshot_id,
        parent_id=snapshot.parent_snapshot_id,
        timestamp=datetime.fromtimestamp(snapshot.timestamp_ms / 1000, UTC).isoformat(timespec="milliseconds"),
        timestamp_ms=snapshot.timestamp_ms,
        operation=summary.operation.value if summary is not None else None,
        summary={k: str(v) for k, v in fields.items()},
    )


def snapshots(entry: CachedTable) -> list[Snapshot]:
    """All snapshots of the table, oldest first (memoised per metadata version)."""
    if "snapshots" not in entry.memo:
        entry.memo["snapshots"] = sorted((snapshot_model(s) for s in entry.table.snapshots()),
                                         key=lambda s: s.timestamp_ms)
    return entry.memo["snapshots"]


def partitioning(entry: CachedTable) -> list[PartitionField]:
    table = entry.table
    schema = table.schema()
    return [PartitionField(name=f.name, source_column=schema.find_column_name(f.source_id) or str(f.source_id),
                           transform=str(f.transform)) for f in table.spec().fields]

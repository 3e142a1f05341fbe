"""The embedded query engine: DuckDB over Iceberg without DuckDB's iceberg extension (it cannot be installed
offline). Queries run on in-memory DuckDB connections with external access off (no files, no network, no
extensions), no Python replacement scans and locked configuration; a connection serves one query at a time
and is emptied afterwards (pooled: opening one costs ~12 ms). Only the tables the query names are scanned
through pyiceberg (only the columns it uses, at the snapshot asked for) into Arrow, registered, and exposed
as secured views named like the catalog tables. Scans are cached by (table, snapshot, columns, limit):
a snapshot never changes, so the cache needs no invalidation, only a size bound. The time limit interrupts
DuckDB; the row limit stops reading the result stream.
"""
from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict
from typing import Literal

import duckdb
import pyarrow as pa
from sqlglot import exp

from workloads.mcp_server.catalog import CatalogCache
from workloads.mcp_server.errors import QueryFailed
from workloads.mcp_server.masking import secured_select
from workloads.mcp_server.models import RowSet
from workloads.mcp_server.rows import collect
from workloads.mcp_server.sql_guard import QueryPlan

BATCH_ROWS = 1024
POOL_SIZE = 4
SCAN_CACHE_BYTES = 256 * 1024 * 1024


class ScanCache:
    """Least-recently-used Arrow scans, bounded in bytes."""

    def __init__(self, max_bytes: int = SCAN_CACHE_BYTES):
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple, pa.Table] = OrderedDict()
        self._bytes = 0

    def get(self, key: tuple) -> pa.Table | None:
        with self._lock:
            table = self._items.get(key)
            if table is not None:
                self._items.move_to_end(key)
            return table

    def put(self, key: tuple, table: pa.Table) -> None:
        if table.nbytes > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = table
            self._bytes += table.nbytes
            while self._bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.nbytes


class DuckDBEngine:
    name = "duckdb"
    dialect = "duckdb"

    def __init__(self, cache: CatalogCache, timeout: float, masking: Literal["redact", "null"] = "redact",
                 threads: int = 2):
        self.cache = cache
        self.timeout = timeout
        self.masking = masking
        self.threads = threads
        self.scans = ScanCache()
        self._pool: queue.LifoQueue[duckdb.DuckDBPyConnection] = queue.LifoQueue(maxsize=POOL_SIZE)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            conn = duckdb.connect(":memory:", config={
                "enable_external_access": False, "python_enable_replacements": False, "threads": self.threads,
                "autoload_known_extensions": False, "autoinstall_known_extensions": False})
            conn.execute("SET lock_configuration = true")
            return conn

    def _release(self, conn: duckdb.DuckDBPyConnection, created: list[tuple[str, str, str]]) -> None:
        """Drop what the query registered and pool the connection; close it if anything is left behind."""
        try:
            for source, namespace, table in created:
                conn.execute(f"DROP VIEW IF EXISTS {_qualified(namespace, table)}")
                conn.execute(f"DROP SCHEMA IF EXISTS {_quoted(namespace)}")
                conn.unregister(source)
            self._pool.put_nowait(conn)
        except (duckdb.Error, queue.Full):
            conn.close()

    def run(self, plan: QueryPlan) -> RowSet:
        started = time.perf_counter()
        conn = self._connect()
        created: list[tuple[str, str, str]] = []
        timer = None
        try:
            snapshot_ids = self._register(conn, plan, created)
            remaining = self.timeout - (time.perf_counter() - started)
            if remaining <= 0:
                raise QueryFailed(f"query exceeded the time limit of {self.timeout:g} s while scanning tables")
            timer = threading.Timer(remaining, conn.interrupt)
            timer.daemon = True
            timer.start()
            reader = conn.sql(plan.expression.sql(dialect=self.dialect)).to_arrow_reader(BATCH_ROWS)
            columns, rows, truncated = collect(reader.schema, reader, plan.row_limit)
        except duckdb.InterruptException:
            raise QueryFailed(f"query exceeded the time limit of {self.timeout:g} s") from None
        except duckdb.Error as exc:
            raise QueryFailed(f"query failed: {str(exc).strip()}") from None
        finally:
            if timer is not None:
                timer.cancel()
            self._release(conn, created)
        masked = sorted(f"{name}.{c}" for name, access in plan.tables.items() for c in access.masked)
        return RowSet(columns=columns, rows=rows, row_count=len(rows), truncated=truncated, masked_columns=masked,
                      engine=self.name, elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
                      snapshot_ids=snapshot_ids)

    def _scan(self, name: str, access, snapshot_id: int | None) -> pa.Table:
        key = (name, snapshot_id, tuple(access.scan_columns), access.scan_limit)
        data = self.scans.get(key) if snapshot_id is not None else None
        if data is None:
            table = self.cache.get(name).table
            data = table.scan(selected_fields=tuple(access.scan_columns), snapshot_id=snapshot_id,
                              limit=access.scan_limit).to_arrow()
            if snapshot_id is not None:
                self.scans.put(key, data)
        return data

    def _register(self, conn: duckdb.DuckDBPyConnection, plan: QueryPlan,
                  created: list[tuple[str, str, str]]) -> dict[str, int | None]:
        snapshot_ids: dict[str, int | None] = {}
        for i, (name, access) in enumerate(plan.tables.items()):
            table = self.cache.get(name).table
            snapshot = table.snapshot_by_id(access.snapshot_id) if access.snapshot_id else table.current_snapshot()
            snapshot_ids[name] = snapshot.snapshot_id if snapshot else None
            source = f"__dp_source_{i}"
            namespace, table_name = name.rsplit(".", 1)
            conn.register(source, self._scan(name, access, snapshot_ids[name]))
            created.append((source, namespace, table_name))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_quoted(namespace)}")
            view = exp.Create(this=exp.table_(table_name, db=namespace, quoted=True), kind="VIEW",
                              expression=secured_select(access, exp.table_(source), self.masking))
            conn.execute(view.sql(dialect=self.dialect))
        return snapshot_ids


def _quoted(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("duckdb")


def _qualified(namespace: str, table: str) -> str:
    return exp.table_(table, db=namespace, quoted=True).sql("duckdb")

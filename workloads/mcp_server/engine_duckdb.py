"""The embedded query engine: DuckDB over Iceberg without DuckDB's iceberg extension (it cannot be installed
offline). Each query gets its own in-memory DuckDB with external access off (no files, no network, no
extensions) and no Python replacement scans; only the tables the query names are scanned through pyiceberg
(only the columns it uses, at the snapshot asked for) into Arrow, registered, and exposed as secured views
named like the catalog tables. The time limit interrupts DuckDB; the row limit stops reading the stream.
"""
from __future__ import annotations

import threading
import time
from typing import Literal

import duckdb
from sqlglot import exp

from workloads.mcp_server.catalog import CatalogCache
from workloads.mcp_server.errors import QueryFailed
from workloads.mcp_server.masking import secured_select
from workloads.mcp_server.models import RowSet
from workloads.mcp_server.rows import collect
from workloads.mcp_server.sql_guard import QueryPlan

BATCH_ROWS = 1024


class DuckDBEngine:
    name = "duckdb"
    dialect = "duckdb"

    def __init__(self, cache: CatalogCache, timeout: float, masking: Literal["redact", "null"] = "redact",
                 threads: int = 2):
        self.cache = cache
        self.timeout = timeout
        self.masking = masking
        self.threads = threads

    def run(self, plan: QueryPlan) -> RowSet:
        started = time.perf_counter()
        conn = duckdb.connect(":memory:", config={
            "enable_external_access": False, "python_enable_replacements": False, "threads": self.threads,
            "autoload_known_extensions": False, "autoinstall_known_extensions": False})
        timer = None
        try:
            snapshot_ids = self._register(conn, plan)
            conn.execute("SET lock_configuration = true")
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
            conn.close()
        masked = sorted(f"{name}.{c}" for name, access in plan.tables.items() for c in access.masked)
        return RowSet(columns=columns, rows=rows, row_count=len(rows), truncated=truncated, masked_columns=masked,
                      engine=self.name, elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
                      snapshot_ids=snapshot_ids)

    def _register(self, conn: duckdb.DuckDBPyConnection, plan: QueryPlan) -> dict[str, int | None]:
        snapshot_ids: dict[str, int | None] = {}
        for i, (name, access) in enumerate(plan.tables.items()):
            table = self.cache.get(name).table
            snapshot = table.snapshot_by_id(access.snapshot_id) if access.snapshot_id else table.current_snapshot()
            snapshot_ids[name] = snapshot.snapshot_id if snapshot else None
            scan = table.scan(selected_fields=tuple(access.scan_columns),
                              snapshot_id=snapshot_ids[name], limit=access.scan_limit)
            source = f"__dp_source_{i}"
            conn.register(source, scan.to_arrow())
            namespace, table_name = name.rsplit(".", 1)
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {exp.to_identifier(namespace, quoted=True).sql(self.dialect)}")
            view = exp.Create(this=exp.table_(table_name, db=namespace, quoted=True), kind="VIEW",
                              expression=secured_select(access, exp.table_(source), self.masking))
            conn.execute(view.sql(dialect=self.dialect))
        return snapshot_ids

"""Governance's own Iceberg tables, in the namespace `governance`, created on first use:

- `governance.quality_results`: one row per suite run (which table, batch, how many expectations passed, what
  the gate did, the lineage run it belongs to, every outcome as JSON): the record the MCP server and the metrics
  read;
- `governance.audit_anchors`: audit log heads published by `audit anchor` (see `audit.py`).
"""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from pyiceberg.schema import Schema
from pyiceberg.types import BooleanType, LongType, NestedField, StringType, TimestamptzType

NAMESPACE = "governance"
QUALITY_RESULTS = "governance.quality_results"
AUDIT_ANCHORS = "governance.audit_anchors"
_ensured: set[tuple[int, str]] = set()
_lock = threading.Lock()

QUALITY_SCHEMA = Schema(
    NestedField(1, "checked_at", TimestamptzType(), required=True),
    NestedField(2, "table", StringType(), required=True, doc="the table the suite checks"),
    NestedField(3, "layer", StringType(), required=True),
    NestedField(4, "batch", StringType(), doc="what was checked (source snapshots)"),
    NestedField(5, "rows", LongType(), required=True),
    NestedField(6, "expectations", LongType(), required=True),
    NestedField(7, "passed", LongType(), required=True),
    NestedField(8, "success", BooleanType(), required=True),
    NestedField(9, "action", StringType(), required=True,
                doc="published | quarantined (silver batch set aside) | held (gold not published) | warned"),
    NestedField(10, "summary", StringType(), required=True),
    NestedField(11, "details", StringType(), doc="every expectation's outcome, JSON"),
    NestedField(12, "run_id", StringType(), doc="OpenLineage run id of the job"),
    NestedField(13, "seconds", StringType()),
)
ANCHOR_SCHEMA = Schema(
    NestedField(1, "anchored_at", TimestamptzType(), required=True),
    NestedField(2, "log", StringType(), required=True, doc="audit log file name"),
    NestedField(3, "seq", LongType(), required=True),
    NestedField(4, "hash", StringType(), required=True),
    NestedField(5, "host", StringType()),
)


def ensure(catalog: Any, identifier: str) -> Any:
    """The table, created with its namespace when missing (idempotent, once per process and catalog)."""
    schema = QUALITY_SCHEMA if identifier == QUALITY_RESULTS else ANCHOR_SCHEMA
    key = (id(catalog), identifier)
    with _lock:
        if key not in _ensured:
            catalog.create_namespace_if_not_exists(NAMESPACE)
            catalog.create_table_if_not_exists(identifier, schema=schema)
            _ensured.add(key)
    return catalog.load_table(identifier)


def _append(catalog: Any, identifier: str, rows: pa.Table) -> None:
    from pyiceberg.exceptions import CommitFailedException

    for attempt in range(5):
        tbl = ensure(catalog, identifier)
        try:
            tbl.append(rows)
            return
        except CommitFailedException:
            time.sleep(0.05 * (attempt + 1))
    raise RuntimeError(f"{identifier}: gave up after 5 conflicting commits")


def record_quality(catalog: Any, entries: list[tuple[Any, str, str | None]]) -> None:
    """Append (report, action, run id) rows in one commit."""
    if not entries:
        return
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    rows = [{"checked_at": r.checked_at, "table": r.suite, "layer": r.layer, "batch": r.batch, "rows": r.rows,
             "expectations": len(r.outcomes), "passed": len(r.outcomes) - len(r.failures), "success": r.success,
             "action": action, "summary": r.summary(), "details": r.details(), "run_id": run_id,
             "seconds": f"{r.seconds:.3f}"} for r, action, run_id in entries]
    _append(catalog, QUALITY_RESULTS,
            pa.Table.from_pylist(rows, schema=schema_to_pyarrow(QUALITY_SCHEMA, include_field_ids=False)))


def quality_rows(catalog: Any, since: datetime | None = None) -> pa.Table:
    """Quality results (all, or since a time); empty when nothing was recorded yet."""
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
    from pyiceberg.expressions import AlwaysTrue, GreaterThanOrEqual

    try:
        tbl = catalog.load_table(QUALITY_RESULTS)
    except (NoSuchTableError, NoSuchNamespaceError):
        return pa.table({"table": pa.array([], pa.string())})
    where = GreaterThanOrEqual("checked_at", since.isoformat()) if since else AlwaysTrue()
    return tbl.scan(row_filter=where, selected_fields=("checked_at", "table", "layer", "success", "action",
                                                         "summary", "rows", "expectations", "passed")).to_arrow()


def latest_quality(catalog: Any) -> dict[str, dict[str, Any]]:
    """The newest result per table: {table: {status, checked_at, details}} (status passing | failing)."""
    rows = quality_rows(catalog)
    latest: dict[str, dict[str, Any]] = {}
    for row in rows.to_pylist():
        current = latest.get(row["table"])
        if current is None or row["checked_at"] >= current["_at"]:
            latest[row["table"]] = {"_at": row["checked_at"], "status": "passing" if row["success"] else "failing",
                                    "checked_at": row["checked_at"].isoformat(),
                                    "details": f"{row['action']}: {row['summary']}"}
    return {table: {k: v for k, v in entry.items() if k != "_at"} for table, entry in latest.items()}


def publish_anchor(catalog: Any, log: str, seq: int, digest: str) -> None:
    import socket

    from pyiceberg.io.pyarrow import schema_to_pyarrow

    row = {"anchored_at": datetime.now(UTC), "log": log, "seq": seq, "hash": digest, "host": socket.gethostname()}
    _append(catalog, AUDIT_ANCHORS,
            pa.Table.from_pylist([row], schema=schema_to_pyarrow(ANCHOR_SCHEMA, include_field_ids=False)))


def anchors(catalog: Any, log: str) -> list[tuple[int, str]]:
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
    from pyiceberg.expressions import EqualTo

    try:
        tbl = catalog.load_table(AUDIT_ANCHORS)
    except (NoSuchTableError, NoSuchNamespaceError):
        return []
    rows = tbl.scan(row_filter=EqualTo("log", log), selected_fields=("seq", "hash")).to_arrow().to_pylist()
    return sorted((int(r["seq"]), r["hash"]) for r in rows)


class LatestQuality:
    """`latest_quality` served from memory for `ttl` seconds (the MCP server asks on every describe_table);
    a catalog without governance tables simply has no results."""

    def __init__(self, catalog: Any, ttl: float):
        self.catalog, self.ttl = catalog, ttl
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, dict[str, Any]]] | None = None

    def get(self, table: str) -> dict[str, Any] | None:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] >= self.ttl:
                self._cached = (time.monotonic(), latest_quality(self.catalog))
            return self._cached[1].get(table)

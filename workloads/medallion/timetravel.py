"""Reading a table as it was: by snapshot id or by point in time. A small API for other workloads (the MCP
server's `table_history`, audits, debugging a bad refine) that works on any catalog the platform uses.

Times are UTC (naive datetimes are taken as UTC). A point in time resolves to the snapshot that was current then,
following the table's own history (so a rollback is respected); times before the first snapshot or snapshots
removed by expiry (`maintain --retain-hours`) are refused with a clear message.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from workloads.medallion.catalog import table
from workloads.medallion.state import STATE_PROPERTIES


class TimeTravelError(ValueError):
    """The requested version of a table does not exist (any more)."""


def _millis(when: datetime | str) -> int:
    moment = datetime.fromisoformat(when) if isinstance(when, str) else when
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")


def history(identifier: str, catalog: Any = None) -> list[dict[str, Any]]:
    """The snapshots on the table's current lineage, oldest first, with what each one did."""
    tbl = table(identifier, catalog)
    current = tbl.metadata.current_snapshot_id
    entries = []
    for entry in tbl.history():
        snapshot = tbl.metadata.snapshot_by_id(entry.snapshot_id)
        if snapshot is None:  # expired: the log keeps its id, the data is gone
            continue
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        entries.append({
            "snapshot_id": snapshot.snapshot_id,
            "parent_id": snapshot.parent_snapshot_id,
            "committed_at": _iso(entry.timestamp_ms),
            "operation": snapshot.summary.operation.value if snapshot.summary else None,
            "added_records": int(summary.get("added-records", 0)),
            "deleted_records": int(summary.get("deleted-records", 0)),
            "total_records": int(summary.get("total-records", 0)),
            "schema_id": snapshot.schema_id,
            "current": snapshot.snapshot_id == current,
            "progress": {k: json.loads(v) for k, v in summary.items() if k in STATE_PROPERTIES},
        })
    return entries


def snapshot_at(identifier: str, when: datetime | str, catalog: Any = None) -> int:
    """The id of the snapshot that was current at `when`."""
    tbl = table(identifier, catalog)
    at_ms = _millis(when)
    found = None
    for entry in tbl.history():
        if entry.timestamp_ms <= at_ms:
            found = entry
    if found is None:
        raise TimeTravelError(f"{identifier} has no snapshot at or before {_iso(at_ms)}")
    if tbl.metadata.snapshot_by_id(found.snapshot_id) is None:
        raise TimeTravelError(f"{identifier} as of {_iso(at_ms)} was snapshot {found.snapshot_id}, "
                              "which has been expired by maintenance")
    return found.snapshot_id


def read(identifier: str, *, snapshot_id: int | None = None, as_of: datetime | str | None = None,
         columns: tuple[str, ...] = ("*",), row_filter: str | None = None, limit: int | None = None,
         catalog: Any = None):
    """The table's rows (Arrow) as of a snapshot id or a point in time; the current version when neither is given.

    Columns are resolved with the schema of that snapshot, so a column added later is simply absent."""
    from pyiceberg.expressions import AlwaysTrue

    if snapshot_id is not None and as_of is not None:
        raise TimeTravelError("give a snapshot id or a point in time, not both")
    tbl = table(identifier, catalog)
    if as_of is not None:
        snapshot_id = snapshot_at(identifier, as_of, catalog)
    if snapshot_id is not None and tbl.metadata.snapshot_by_id(snapshot_id) is None:
        raise TimeTravelError(f"{identifier} has no snapshot {snapshot_id} (never existed or expired)")
    scan = tbl.scan(row_filter=row_filter or AlwaysTrue(), selected_fields=columns, snapshot_id=snapshot_id,
                    limit=limit)
    return scan.to_arrow()

"""Consumer progress kept in Iceberg snapshot summaries, so it commits atomically with the data it describes.

This is how the Iceberg Kafka Connect sink does exactly-once: the snapshot that adds a batch's rows also records
the offsets after that batch. After a crash nothing needs reconciling: the table says where to resume. The same
trick records which upstream snapshot a silver or gold table has processed.

Maintenance (compaction) creates snapshots of its own; it copies these properties forward, and readers also walk
back through ancestors to the newest snapshot that has them.
"""
from __future__ import annotations

import json
from typing import Any

from workloads.medallion.tables import KAFKA_OFFSETS_PROPERTY, SOURCE_SNAPSHOTS_PROPERTY

STATE_PROPERTIES = (KAFKA_OFFSETS_PROPERTY, SOURCE_SNAPSHOTS_PROPERTY)


def _latest_property(table: Any, key: str, required: bool = True) -> dict:
    """The newest value of `key` on the current lineage; {} for a table nothing was committed to yet.

    A table with data but no progress anywhere on its lineage (written by another tool, whose snapshots expired
    ours) is refused: starting over from the beginning would duplicate everything."""
    metadata = table.metadata
    snapshot = metadata.current_snapshot()
    while snapshot is not None:
        if snapshot.summary is not None and key in snapshot.summary.additional_properties:
            return json.loads(snapshot.summary.additional_properties[key])
        if snapshot.parent_snapshot_id is None:
            break
        snapshot = metadata.snapshot_by_id(snapshot.parent_snapshot_id)
    current = metadata.current_snapshot()
    if required and current is not None and int(current.summary.get("total-records") or 0) > 0:
        raise RuntimeError(f"{'.'.join(table.name()[-2:])} holds rows but no `{key}` progress on its current "
                           "snapshots: it was written outside these jobs; refusing to start over and duplicate")
    return {}


def kafka_offsets(table: Any) -> dict[str, dict[int, int]]:
    """`{topic: {partition: next offset to read}}` as committed with the table's data."""
    raw = _latest_property(table, KAFKA_OFFSETS_PROPERTY)
    return {topic: {int(p): int(o) for p, o in parts.items()} for topic, parts in raw.items()}


def offsets_property(offsets: dict[str, dict[int, int]]) -> dict[str, str]:
    return {KAFKA_OFFSETS_PROPERTY: json.dumps(
        {topic: {str(p): o for p, o in sorted(parts.items())} for topic, parts in sorted(offsets.items())})}


def source_snapshots(table: Any) -> dict[str, int]:
    """`{"bronze.orders": snapshot id}`: the upstream snapshots whose rows this table already holds."""
    return {k: int(v) for k, v in _latest_property(table, SOURCE_SNAPSHOTS_PROPERTY).items()}


def sources_property(sources: dict[str, int]) -> dict[str, str]:
    return {SOURCE_SNAPSHOTS_PROPERTY: json.dumps(dict(sorted(sources.items())))}


def carried_state(table: Any) -> dict[str, str]:
    """The state properties to copy into a snapshot that does not change progress (compaction)."""
    props: dict[str, str] = {}
    for key in STATE_PROPERTIES:
        value = _latest_property(table, key, required=False)
        if value:
            props[key] = json.dumps(value)
    return props


def snapshots_after(table: Any, snapshot_id: int | None) -> set[int]:
    """Ids of the snapshots on the current lineage after `snapshot_id` (all of them when None)."""
    metadata = table.metadata
    found: set[int] = set()
    snapshot = metadata.current_snapshot()
    while snapshot is not None and snapshot.snapshot_id != snapshot_id:
        found.add(snapshot.snapshot_id)
        parent = snapshot.parent_snapshot_id
        snapshot = metadata.snapshot_by_id(parent) if parent is not None else None
    return found


def has_appends_after(table: Any, snapshot_id: int | None) -> bool:
    """Whether rows were appended after `snapshot_id` (compaction and expiry add none)."""
    from pyiceberg.table.snapshots import Operation

    metadata = table.metadata
    return any(metadata.snapshot_by_id(s).summary.operation == Operation.APPEND
               for s in snapshots_after(table, snapshot_id))

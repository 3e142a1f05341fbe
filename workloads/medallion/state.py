"""Consumer progress kept in Iceberg snapshot summaries, so it commits atomically with the data it describes.

This is how the Iceberg Kafka Connect sink does exactly-once: the snapshot that adds a batch's rows also records
the offsets after that batch. After a crash nothing needs reconciling: the table says where to resume. The same
trick records which upstream snapshot a silver or gold table has processed.

Maintenance (compaction) creates snapshots of its own; it copies these properties forward, and readers also walk
back through ancestors to the newest snapshot that has them.

Kafka offsets only mean something for one incarnation of a topic: a topic deleted and created again (or an
in-memory broker restarted) numbers its messages from 0 again. So the offsets are committed with the topic's id
and an *offset epoch*, a number that goes up each time the ingest job finds the topic is a new one (`resume`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from workloads.medallion.tables import KAFKA_EPOCHS_PROPERTY, KAFKA_OFFSETS_PROPERTY, SOURCE_SNAPSHOTS_PROPERTY

STATE_PROPERTIES = (KAFKA_OFFSETS_PROPERTY, KAFKA_EPOCHS_PROPERTY, SOURCE_SNAPSHOTS_PROPERTY)


def _latest_summary(table: Any, key: str, required: bool = True) -> dict[str, str]:
    """The summary properties of the newest snapshot on the current lineage that has `key`; {} when none has
    and the table is empty.

    A table with data but no progress anywhere on its lineage (written by another tool, whose snapshots expired
    ours) is refused: starting over from the beginning would duplicate everything."""
    metadata = table.metadata
    snapshot = metadata.current_snapshot()
    while snapshot is not None:
        if snapshot.summary is not None and key in snapshot.summary.additional_properties:
            return snapshot.summary.additional_properties
        if snapshot.parent_snapshot_id is None:
            break
        snapshot = metadata.snapshot_by_id(snapshot.parent_snapshot_id)
    current = metadata.current_snapshot()
    if required and current is not None and int(current.summary.get("total-records") or 0) > 0:
        raise RuntimeError(f"{'.'.join(table.name()[-2:])} holds rows but no `{key}` progress on its current "
                           "snapshots: it was written outside these jobs; refusing to start over and duplicate")
    return {}


def _latest_property(table: Any, key: str, required: bool = True) -> dict:
    """The newest value of `key` on the current lineage; {} for a table nothing was committed to yet."""
    return json.loads(_latest_summary(table, key, required).get(key, "{}"))


@dataclass(frozen=True)
class Progress:
    """How far a table got in one Kafka topic: the next offset per partition, in which offset epoch, and the
    topic's id when the broker reports one (None for progress committed before epochs were recorded)."""
    offsets: dict[int, int] = field(default_factory=dict)
    epoch: int = 0
    topic_id: str | None = None


def kafka_progress(table: Any) -> dict[str, Progress]:
    """`{topic: Progress}` as committed with the table's data (offsets and epochs come from the same snapshot)."""
    summary = _latest_summary(table, KAFKA_OFFSETS_PROPERTY)
    offsets = json.loads(summary.get(KAFKA_OFFSETS_PROPERTY, "{}"))
    epochs = json.loads(summary.get(KAFKA_EPOCHS_PROPERTY, "{}"))
    return {topic: Progress({int(p): int(o) for p, o in parts.items()}, int(epochs.get(topic, {}).get("epoch", 0)),
                            epochs.get(topic, {}).get("id"))
            for topic, parts in offsets.items()}


def kafka_offsets(table: Any) -> dict[str, dict[int, int]]:
    """`{topic: {partition: next offset to read}}` as committed with the table's data (in each topic's current
    offset epoch)."""
    return {topic: progress.offsets for topic, progress in kafka_progress(table).items()}


def progress_properties(progress: dict[str, Progress]) -> dict[str, str]:
    """The snapshot summary properties that commit `progress` with a batch's rows."""
    ordered = sorted(progress.items())
    return {KAFKA_OFFSETS_PROPERTY: json.dumps({t: {str(p): o for p, o in sorted(pr.offsets.items())}
                                                for t, pr in ordered}),
            KAFKA_EPOCHS_PROPERTY: json.dumps({t: {"epoch": pr.epoch, "id": pr.topic_id} for t, pr in ordered})}


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

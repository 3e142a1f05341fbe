"""Exactly-once appends: rows and the progress they represent go into one Iceberg snapshot.

Every writer here follows the same loop: load the table, read the progress committed with it, drop the rows it
already holds (Kafka offsets compare only within one offset epoch, see `state`), append the rest with the new
progress in the snapshot summary. The tables disable pyiceberg's own
commit retries (see `tables.TABLE_PROPERTIES`), so a concurrent commit (another writer, or maintenance) comes back
here as `CommitFailedException` and the loop starts over from the fresh table state: a retry can never add a row
twice.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import structlog

from workloads.medallion import state
from workloads.medallion.catalog import table

ATTEMPTS = 8
log = structlog.get_logger()


def arrow_schema(iceberg_schema: Any) -> pa.Schema:
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    return schema_to_pyarrow(iceberg_schema, include_field_ids=False)


def conform(rows: pa.Table, iceberg_schema: Any) -> pa.Table:
    """`rows` in the table's column order and types; columns the rows lack are null (optional ones only)."""
    target = arrow_schema(iceberg_schema)
    columns = []
    for f in target:
        if f.name in rows.column_names:
            column = rows.column(f.name)
            columns.append(column if column.type == f.type else column.cast(f.type))
        else:
            columns.append(pa.nulls(rows.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=target)


def merge_progress(identifier: str, held: dict[str, state.Progress], batch: dict[str, state.Progress]
                   ) -> tuple[dict[str, state.Progress], dict[str, dict[int, int]]]:
    """The progress after the batch, and per topic and partition the offset below which the batch's rows are
    already in the table.

    Offsets compare only within one offset epoch: a batch from a newer epoch (a topic created again) holds nothing
    the table has, and replaces the table's progress in that topic. A batch from an older epoch than the table's
    comes from a writer that missed the topic's re-creation: refused, it would move the offsets back."""
    merged, floors = dict(held), {}
    for topic, new in batch.items():
        old = held.get(topic, state.Progress())
        if new.epoch < old.epoch:
            raise RuntimeError(f"{identifier} is at offset epoch {old.epoch} of {topic}, this batch at {new.epoch}: "
                               "another ingest job found the topic re-created; restart this one")
        if new.epoch > old.epoch or not old.offsets:
            merged[topic], floors[topic] = new, {}
            continue
        if new.topic_id and old.topic_id and new.topic_id != old.topic_id:
            raise RuntimeError(f"{identifier} holds offsets of {topic} id {old.topic_id} at epoch {old.epoch}, this "
                               f"batch read id {new.topic_id} at the same epoch: refusing to mix two topics' offsets")
        offsets = dict(old.offsets)
        for p, offset in new.offsets.items():
            offsets[p] = max(offsets.get(p, 0), offset)
        merged[topic] = state.Progress(offsets, old.epoch, new.topic_id or old.topic_id)
        floors[topic] = old.offsets
    return merged, floors


def _uncommitted(rows: pa.Table, floors: dict[str, dict[int, int]], topic_col: str, partition_col: str,
                 offset_col: str) -> np.ndarray:
    """Mask of the rows whose (topic, partition, offset) is at or past the floor of their topic and partition."""
    keep = np.ones(rows.num_rows, dtype=bool)
    if not rows.num_rows or not any(floors.values()):
        return keep
    partitions = rows.column(partition_col).to_numpy()
    offsets = rows.column(offset_col).to_numpy()
    topics = rows.column(topic_col)
    distinct = topics.unique().to_pylist()
    for topic in distinct:
        topic_floors = floors.get(topic)
        if not topic_floors:
            continue
        in_topic = (np.ones(rows.num_rows, dtype=bool) if len(distinct) == 1
                    else pc.equal(topics, topic).to_numpy(zero_copy_only=False))
        floor = np.zeros(max(max(topic_floors), int(partitions.max())) + 1, dtype=np.int64)
        for p, offset in topic_floors.items():
            floor[p] = offset
        keep &= ~in_topic | (offsets >= floor[partitions])
    return keep


def append_kafka_rows(identifier: str, rows: pa.Table, progress: dict[str, state.Progress], *,
                      topic_col: str, partition_col: str, offset_col: str,
                      new_fields: list[pa.Field] | None = None, catalog: Any = None) -> tuple[int | None, int]:
    """Append the rows not yet in the table and advance its Kafka progress to `progress`, in one snapshot.

    Returns (snapshot id or None when there was nothing to commit, rows appended). Commits even with no rows
    when the progress moves (a batch of only bad records), so a restart never reads them again.
    """
    from pyiceberg.exceptions import CommitFailedException

    for attempt in range(1, ATTEMPTS + 1):
        tbl = table(identifier, catalog)
        held = state.kafka_progress(tbl)
        merged, floors = merge_progress(identifier, held, progress)
        keep = _uncommitted(rows, floors, topic_col, partition_col, offset_col)
        if merged == held and not keep.any():
            return None, 0
        fresh = rows if keep.all() else rows.filter(pa.array(keep))
        try:
            snapshot_id = commit(tbl, fresh, state.progress_properties(merged), new_fields)
            return snapshot_id, fresh.num_rows
        except CommitFailedException as exc:
            log.warning("commit conflict, retrying", table=identifier, attempt=attempt, error=str(exc))
    raise RuntimeError(f"{identifier}: gave up after {ATTEMPTS} conflicting commits")


def commit(tbl: Any, rows: pa.Table, properties: dict[str, str], new_fields: list[pa.Field] | None = None,
           overwrite: bool = False) -> int:
    """One snapshot on `tbl` (as loaded: a concurrent commit since then fails it) with `properties` in its
    summary; evolves the schema first, in the same commit, when `new_fields` are given."""
    with tbl.transaction() as tx:
        if new_fields:
            with tx.update_schema() as update:
                update.union_by_name(pa.schema(new_fields))
        data = conform(rows, tx.table_metadata.schema())
        if overwrite and tx.table_metadata.current_snapshot() is not None:
            tx.overwrite(data, snapshot_properties=properties)
        else:
            tx.append(data, snapshot_properties=properties)
    return tbl.metadata.current_snapshot_id

"""Table maintenance: compact small files, expire old snapshots, delete the files no snapshot needs any more.

Micro-batches leave many small files and one snapshot per batch; both slow down planning and commits. Here:
- compaction rewrites the small data files of a table into target-sized ones in one snapshot that changes no
  row; it carries the progress watermarks forward (`state.carried_state`) so consumers are not disturbed, and
  incremental readers skip it (it is not an append);
- expiry removes snapshots older than the retention window, except those a downstream consumer still has to
  read from: a bronze table keeps everything from the bronze snapshot its silver table last processed, a silver
  table everything from the oldest snapshot a gold table last processed (an incremental read starts there);
- files referenced only by expired snapshots are deleted afterwards.
A conflict with a concurrent writer skips the table for this round (the writer wins; the next round retries).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from workloads.medallion import state
from workloads.medallion.catalog import table
from workloads.medallion.tables import ENTITIES, GOLD_SOURCES, all_tables, bronze, gold, silver

SMALL_FILE_BYTES = 32 * 1024 * 1024
MIN_SMALL_FILES = 4


@dataclass
class MaintenanceResult:
    table: str
    files_compacted: int
    files_written: int
    snapshots_expired: int
    files_deleted: int
    seconds: float


def consumers_of(identifier: str) -> list[tuple[str, str]]:
    """(downstream table, the key under which it records its progress on `identifier`)."""
    for entity in ENTITIES:
        if identifier == bronze(entity):
            return [(silver(entity), identifier)]
        if identifier == silver(entity):
            return [(gold(name), identifier) for name, sources in GOLD_SOURCES.items() if entity in sources]
    return []


def compact(tbl: Any, small_bytes: int = SMALL_FILE_BYTES, min_files: int = MIN_SMALL_FILES) -> tuple[int, int]:
    """Rewrite the table's small data files into larger ones; (files replaced, files written)."""
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files

    if tbl.current_snapshot() is None:
        return 0, 0
    tasks = list(tbl.scan().plan_files())
    small = [t for t in tasks if t.file.file_size_in_bytes < small_bytes and not t.delete_files]
    if len(small) < min_files:
        return 0, 0
    rows = ArrowScan(tbl.metadata, tbl.io, tbl.schema(), AlwaysTrue()).to_table(small)
    with tbl.transaction() as tx:
        with tx.update_snapshot(snapshot_properties=state.carried_state(tbl)).overwrite() as rewrite:
            for task in small:
                rewrite.delete_data_file(task.file)
            written = list(_dataframe_to_data_files(tx.table_metadata, rows, tbl.io, write_uuid=rewrite.commit_uuid))
            for data_file in written:
                rewrite.append_data_file(data_file)
    return len(small), len(written)


def _referenced_files(tbl: Any) -> set[str]:
    """Every manifest list, manifest and data file any snapshot of the table refers to."""
    io, seen_manifests, files = tbl.io, set(), set()
    for snapshot in tbl.metadata.snapshots:
        files.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(io):
            if manifest.manifest_path in seen_manifests:
                continue
            seen_manifests.add(manifest.manifest_path)
            files.add(manifest.manifest_path)
            entries = manifest.fetch_manifest_entry(io, discard_deleted=False)
            files.update(entry.data_file.file_path for entry in entries)
    return files


def expire(tbl: Any, identifier: str, retain: timedelta, catalog: Any = None) -> tuple[int, int]:
    """Expire snapshots out of the retention window that no consumer needs; (snapshots expired, files deleted)."""
    cutoff_ms = int((datetime.now(timezone.utc) - retain).timestamp() * 1000)
    for downstream, key in consumers_of(identifier):
        watermark = state.source_snapshots(table(downstream, catalog)).get(key)
        snapshot = tbl.metadata.snapshot_by_id(watermark) if watermark is not None else None
        if snapshot is None:  # the consumer has not started (or its snapshot is unknown): keep everything
            return 0, 0
        cutoff_ms = min(cutoff_ms, snapshot.timestamp_ms)
    current = tbl.metadata.current_snapshot_id
    doomed = [s.snapshot_id for s in tbl.metadata.snapshots if s.timestamp_ms < cutoff_ms and s.snapshot_id != current]
    if not doomed:
        return 0, 0
    before = _referenced_files(tbl)
    tbl.maintenance.expire_snapshots().by_ids(doomed).commit()
    unreferenced = before - _referenced_files(tbl)
    for path in unreferenced:
        tbl.io.delete(path)
    return len(doomed), len(unreferenced)


def maintain(retain_hours: float = 1.0, catalog: Any = None, log: Any = None) -> list[MaintenanceResult]:
    from pyiceberg.exceptions import CommitFailedException

    results = []
    retain = timedelta(hours=retain_hours)
    for spec in all_tables():
        started = time.perf_counter()
        try:
            tbl = table(spec.identifier, catalog)
            compacted, written = compact(tbl)
            expired, deleted = expire(tbl, spec.identifier, retain, catalog)
        except CommitFailedException as exc:
            if log:
                log.info("maintenance skipped: concurrent commit", table=spec.identifier, error=str(exc))
            continue
        result = MaintenanceResult(spec.identifier, compacted, written, expired, deleted,
                                   time.perf_counter() - started)
        results.append(result)
        if log and (compacted or expired):
            log.info("maintained", table=result.table, files_compacted=compacted, files_written=written,
                     snapshots_expired=expired, files_deleted=deleted, seconds=round(result.seconds, 3))
    return results

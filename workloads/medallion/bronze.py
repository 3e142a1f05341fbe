"""Kafka -> bronze, exactly once, in micro-batches.

- The consumer is assigned every partition at the offsets committed in the bronze tables' snapshot summaries
  (no consumer group, no Kafka offset commits), so a restart resumes exactly after the last committed batch.
- A batch is parsed in bulk (`records`); unreadable records go to `bronze.quarantine` with their reason.
- Commit order per batch: quarantine first, then one snapshot per bronze table, each carrying the offsets the
  batch reached for its topic. Each writer skips the rows at offsets it already committed, so a crash between
  two commits (or a concurrent writer) neither loses nor duplicates a record.
"""
from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import structlog
import xxhash

from workloads.medallion import state
from workloads.medallion.catalog import table
from workloads.medallion.commits import append_kafka_rows, arrow_schema
from workloads.medallion.kafka_io import consumer, ensure_topics, partitions_of
from workloads.medallion.quarantine import quarantine_rows
from workloads.medallion.records import read_values
from workloads.medallion.tables import (
    AUDIT_COLUMNS,
    BRONZE_QUARANTINE,
    ENTITY_BY_TOPIC,
    EVENT_FIELDS,
    TOPICS,
    bronze,
)



def _positive(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a positive whole number, got {raw!r}")
    return int(raw)


MAX_PAYLOAD_BYTES = _positive("DP_MEDALLION_MAX_PAYLOAD_BYTES", 256 * 1024)
BATCH_MESSAGES = _positive("DP_MEDALLION_BATCH_MESSAGES", 250_000)
_CHUNK = 1000  # messages per consume() call: larger calls are slower in confluent-kafka
log = structlog.get_logger()


@dataclass
class TopicBatch:
    values: list[bytes | None] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)

    def end_offsets(self) -> dict[int, int]:
        """Next offset to read per partition after this batch."""
        parts = np.asarray(self.partitions, dtype=np.int32)
        offs = np.asarray(self.offsets, dtype=np.int64)
        return {int(p): int(offs[parts == p].max()) + 1 for p in np.unique(parts)}


@dataclass
class BatchResult:
    messages: int
    rows: int
    quarantined: int
    skipped: int  # already committed by an earlier run (replayed after a crash)
    snapshots: dict[str, int]
    new_fields: dict[str, list[str]]
    seconds: float


class BronzeIngestor:
    """Owns the consumer; `poll` gathers a micro-batch, `write` commits it."""

    def __init__(self, catalog: Any = None, max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> None:
        self.catalog = catalog
        self.max_payload_bytes = max_payload_bytes
        self._consumer = None
        self._assigned: set[tuple[str, int]] = set()
        self._at_end: set[tuple[str, int]] = set()  # partitions whose end was reached and nothing came since

    def open(self) -> BronzeIngestor:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        ensure_topics()
        partitions = partitions_of(list(TOPICS.values()))
        assignment = []
        for entity, topic in TOPICS.items():
            committed = state.kafka_offsets(table(bronze(entity), self.catalog)).get(topic, {})
            assignment += [TopicPartition(topic, p, committed.get(p, OFFSET_BEGINNING)) for p in partitions[topic]]
        self._consumer = consumer()
        self._consumer.assign(assignment)
        self._assigned = {(tp.topic, tp.partition) for tp in assignment}
        log.info("bronze consumer assigned", partitions=len(assignment),
                 resume={f"{tp.topic}[{tp.partition}]": tp.offset for tp in assignment if tp.offset >= 0})
        return self

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def __enter__(self) -> BronzeIngestor:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def poll(self, max_messages: int = BATCH_MESSAGES, max_seconds: float = 5.0,
             until_caught_up: bool = True, stop: Any = None) -> tuple[dict[str, TopicBatch], bool]:
        """Gather up to `max_messages` for at most `max_seconds`; with `until_caught_up`, return as soon as every
        partition reported its end and nothing more arrives. Returns (batches per topic, caught up)."""
        from confluent_kafka import KafkaError

        batches: dict[str, TopicBatch] = defaultdict(TopicBatch)
        count, caught_up = 0, False
        deadline = time.monotonic() + max_seconds
        while count < max_messages and time.monotonic() < deadline and not (stop and stop.requested):
            msgs = self._consumer.consume(num_messages=min(_CHUNK, max_messages - count), timeout=0.2)
            errors = [m for m in msgs if m.error() is not None]
            if errors:
                msgs = [m for m in msgs if m.error() is None]
            if msgs:
                topics = [m.topic() for m in msgs]
                if topics.count(topics[0]) == len(topics):
                    groups = {topics[0]: msgs}
                else:
                    groups = defaultdict(list)
                    for topic, m in zip(topics, msgs):
                        groups[topic].append(m)
                for topic, group in groups.items():
                    batch = batches[topic]
                    partitions = [m.partition() for m in group]
                    batch.values += [m.value() for m in group]
                    batch.partitions += partitions
                    batch.offsets += [m.offset() for m in group]
                    if self._at_end:
                        self._at_end -= {(topic, p) for p in set(partitions)}
                count += len(msgs)
            for m in errors:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    self._at_end.add((m.topic(), m.partition()))
                elif m.error().fatal() or m.error().code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise RuntimeError(f"Kafka consumer error: {m.error()}")
                else:
                    log.warning("kafka consumer error", error=str(m.error()))
            if not msgs:
                caught_up = self._at_end >= self._assigned
                if until_caught_up and caught_up:
                    break
        return dict(batches), caught_up

    def write(self, batches: dict[str, TopicBatch]) -> BatchResult:
        """Commit one micro-batch: quarantine first, then each topic's bronze table with its offsets."""
        started = time.perf_counter()
        now = datetime.now(timezone.utc)
        end = {topic: b.end_offsets() for topic, b in batches.items() if b.values}
        rejected, bronze_rows, new_fields = [], {}, {}
        for topic, batch in batches.items():
            if not batch.values:
                continue
            rows, rejects, fields = self._read_topic(topic, batch, now)
            bronze_rows[topic], new_fields[topic] = rows, fields
            if rejects.num_rows:
                rejected.append(rejects)
        snapshots: dict[str, int] = {}
        quarantined = skipped = written = 0
        if rejected:
            rows = pa.concat_tables(rejected)
            snapshot, quarantined = append_kafka_rows(BRONZE_QUARANTINE, rows, end, topic_col="source",
                                                      partition_col="partition", offset_col="offset",
                                                      catalog=self.catalog)
            skipped += rows.num_rows - quarantined
            if snapshot:
                snapshots[BRONZE_QUARANTINE] = snapshot
        for topic, rows in bronze_rows.items():
            identifier = bronze(ENTITY_BY_TOPIC[topic])
            snapshot, appended = append_kafka_rows(identifier, rows, {topic: end[topic]}, topic_col="_topic",
                                                   partition_col="_partition", offset_col="_offset",
                                                   new_fields=new_fields[topic], catalog=self.catalog)
            written += appended
            skipped += rows.num_rows - appended
            if snapshot:
                snapshots[identifier] = snapshot
        return BatchResult(messages=sum(len(b.values) for b in batches.values()), rows=written,
                           quarantined=quarantined, skipped=skipped, snapshots=snapshots,
                           new_fields={t: [f.name for f in fs] for t, fs in new_fields.items() if fs},
                           seconds=time.perf_counter() - started)

    def _read_topic(self, topic: str, batch: TopicBatch, now: datetime) -> tuple[pa.Table, pa.Table, list[pa.Field]]:
        entity = ENTITY_BY_TOPIC[topic]
        current = table(bronze(entity), self.catalog).schema()
        schema = pa.schema([pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type)
                            for f in arrow_schema(current) if f.name not in AUDIT_COLUMNS])
        required = [f.name for f in EVENT_FIELDS[entity] if f.required]
        parsed = read_values(batch.values, schema, required, self.max_payload_bytes)
        partitions = np.asarray(batch.partitions, dtype=np.int32)
        offsets = np.asarray(batch.offsets, dtype=np.int64)
        idx = parsed.indices
        n = len(idx)
        audit = {
            "_ingested_at": pa.array(np.full(n, np.datetime64(now.replace(tzinfo=None), "us")),
                                     pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC")),
            "_topic": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([topic])),
            "_partition": pa.array(partitions[idx]),
            "_offset": pa.array(offsets[idx]),
            "_payload_hash": payload_hashes(batch.values, idx),
        }
        rows = parsed.table
        for name, column in audit.items():
            rows = rows.append_column(name, column)
        rejects = parsed.rejects
        quarantine = quarantine_rows(
            now, topic, [int(partitions[r.index]) for r in rejects], [int(offsets[r.index]) for r in rejects],
            [r.event_id for r in rejects], [r.code for r in rejects], [r.reason for r in rejects],
            [batch.values[r.index] for r in rejects], self.max_payload_bytes)
        return rows, quarantine, parsed.new_fields


def payload_hashes(values: list[bytes | None], idx: np.ndarray) -> pa.Array:
    """xxh3-128 of the raw values at `idx`, hex (an audit fingerprint; 5x cheaper than md5 per record)."""
    digest = xxhash.xxh3_128_hexdigest
    chosen = values if len(idx) == len(values) else [values[i] for i in idx.tolist()]
    return pa.array(list(map(digest, chosen)), pa.string())


def ingest(stop: Any = None, follow: bool = False, interval: float = 1.0, catalog: Any = None,
           max_messages: int = BATCH_MESSAGES, max_batches: int | None = None) -> list[BatchResult]:
    """Run the ingest loop: until caught up (default) or until `stop` (with `follow`).

    The next batch is polled in a background thread while the current one is written (polling holds the GIL,
    parsing and writing mostly do not). A prefetched batch that is never written is simply read again next time:
    its offsets were not committed.
    """
    from concurrent.futures import ThreadPoolExecutor

    results: list[BatchResult] = []
    with BronzeIngestor(catalog) as ingestor, ThreadPoolExecutor(1, thread_name_prefix="poll") as poller:
        def poll():
            return ingestor.poll(max_messages=max_messages, max_seconds=interval if follow else 30.0,
                                 until_caught_up=not follow, stop=stop)

        pending = poller.submit(poll)
        while pending is not None:
            batches, caught_up = pending.result()
            done = (stop is not None and stop.requested) or (not follow and (caught_up or not batches)) or (
                max_batches is not None and len(results) + 1 >= max_batches)
            pending = None if done else poller.submit(poll)
            if any(b.values for b in batches.values()):
                result = ingestor.write(batches)
                results.append(result)
                log.info("bronze batch", messages=result.messages, rows=result.rows,
                         quarantined=result.quarantined, skipped=result.skipped,
                         snapshot_id=",".join(f"{t}={s}" for t, s in result.snapshots.items()) or None,
                         new_fields=result.new_fields or None, seconds=round(result.seconds, 3))
    return results

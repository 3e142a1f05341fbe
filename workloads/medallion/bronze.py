"""Kafka -> bronze, exactly once, in micro-batches.

- The consumer is assigned every partition at the offsets committed in the bronze tables' snapshot summaries
  (no consumer group, no Kafka offset commits), so a restart resumes exactly after the last committed batch;
  a topic that is not the one those offsets count in (re-created, or a restarted in-memory broker) is read from
  its beginning in a new offset epoch (`resume`), checked at start, every `TOPIC_CHECK_SECONDS` and after
  connection errors.
- A batch is parsed in bulk (`records`); unreadable records go to `bronze.quarantine` with their reason.
- Commit order per batch: quarantine first, then one snapshot per bronze table (side by side), each carrying the
  offsets the batch reached for its topic. Each writer skips the rows at offsets it already committed, so a crash between
  two commits (or a concurrent writer) neither loses nor duplicates a record.
- Three stages overlap: the next batch is consumed (a thread; holds the GIL), this one parsed (mostly in Arrow's
  C++), the previous one committed (a thread; Parquet encoding and I/O). Commits stay strictly in batch order.
"""
from __future__ import annotations

import functools
import gc
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import repeat
from operator import is_not
from typing import Any

import numpy as np
import pyarrow as pa
import structlog
import xxhash

from workloads.medallion import resume, state
from workloads.medallion.catalog import table
from workloads.medallion.commits import append_kafka_rows, arrow_schema
from workloads.medallion.kafka_io import consumer, ensure_topics, high_watermarks, partitions_of, topic_ids
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
TOPIC_CHECK_SECONDS = 30.0
_CHUNK = 1000  # messages per consume() call: larger calls are slower in confluent-kafka
_EPOCH = "_offset_epoch"
log = structlog.get_logger()


@dataclass
class TopicBatch:
    values: list[bytes | None] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    # Where the batch leaves the topic: every assigned partition's next offset, the offset epoch and the topic id.
    # None for a batch made by hand: then it is the batch's own end offsets, in epoch 0.
    progress: state.Progress | None = None

    def end_offsets(self) -> dict[int, int]:
        """Next offset to read per partition after this batch's messages."""
        parts = np.asarray(self.partitions, dtype=np.int32)
        offs = np.asarray(self.offsets, dtype=np.int64)
        return {int(p): int(offs[parts == p].max()) + 1 for p in np.unique(parts)}

    def end(self) -> state.Progress:
        return self.progress or state.Progress(self.end_offsets())


@dataclass
class BatchResult:
    messages: int
    rows: int
    quarantined: int
    skipped: int  # already committed by an earlier run (replayed after a crash)
    snapshots: dict[str, int]
    new_fields: dict[str, list[str]]
    seconds: float


@dataclass
class PreparedBatch:
    """A batch parsed and given its audit columns, ready to commit."""
    messages: int
    progress: dict[str, state.Progress]
    rows: dict[str, pa.Table]  # per topic
    evolve: dict[str, list[pa.Field]]  # per topic: columns to add to the bronze table first
    new_fields: dict[str, list[str]]  # per topic: new event fields seen (reported)
    rejects: pa.Table | None
    seconds: float


class BronzeIngestor:
    """Owns the consumer; `poll` gathers a micro-batch, `prepare` parses it, `commit` writes it."""

    def __init__(self, catalog: Any = None, max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> None:
        self.catalog = catalog
        self.max_payload_bytes = max_payload_bytes
        self._consumer = None
        self._assigned: set[tuple[str, int]] = set()
        self._at_end: set[tuple[str, int]] = set()  # partitions whose end was reached and nothing came since
        self._positions: dict[str, state.Progress] = {}  # per topic: where the next batch starts
        self._topic_ids: dict[str, str | None] = {}
        self._checked_at = 0.0
        self._suspect = False  # a consumer error says the topics may have changed: check before the next poll
        self._out_of_range: dict[str, set[int]] = defaultdict(set)  # partitions that refused their offset

    def open(self) -> BronzeIngestor:
        ensure_topics()
        topics = list(TOPICS.values())
        partitions = partitions_of(topics)
        self._topic_ids = topic_ids(topics)
        self._checked_at, self._suspect = time.monotonic(), False
        self._consumer = consumer(error_cb=self._on_client_error)
        try:
            self._assign(partitions)
        except BaseException:
            self.close()
            raise
        return self

    def _assign(self, partitions: dict[str, list[int]]) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        quarantined = state.kafka_progress(table(BRONZE_QUARANTINE, self.catalog))
        assignment = []
        for entity, topic in TOPICS.items():
            held = state.kafka_progress(table(bronze(entity), self.catalog)).get(topic)

            def low(p: int, topic: str = topic) -> int:
                return self._consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[0]

            start = resume.plan(topic, partitions[topic], self._topic_ids[topic], held, quarantined.get(topic),
                                low, functools.partial(high_watermarks, topic, partitions[topic]),
                                frozenset(self._out_of_range.get(topic, ())))
            self._positions[topic] = start.progress
            assignment += [TopicPartition(topic, p, OFFSET_BEGINNING if o is None else o)
                           for p, o in start.starts.items()]
        self._consumer.assign(assignment)
        self._assigned = {(tp.topic, tp.partition) for tp in assignment}
        self._at_end, self._out_of_range = set(), defaultdict(set)
        log.info("bronze consumer assigned", partitions=len(assignment),
                 resume={f"{tp.topic}[{tp.partition}]": tp.offset for tp in assignment if tp.offset >= 0},
                 epochs={t: p.epoch for t, p in self._positions.items() if p.epoch})

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def __enter__(self) -> BronzeIngestor:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_client_error(self, error: Any) -> None:
        """Client-level errors (not tied to a message): a lost connection may be a broker restart, after which
        the same topic names can be new topics; the batch in hand ends and the topics are checked first."""
        from confluent_kafka import KafkaError

        if error.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
            if not self._suspect:
                log.warning("Kafka connection lost: checking the topics before reading on", error=str(error))
            self._suspect = True
        elif error.fatal():
            log.error("fatal Kafka client error", error=str(error))
            self._suspect = True
        else:
            log.warning("kafka client error", error=str(error))

    def topics_due_for_check(self) -> bool:
        return self._suspect or time.monotonic() - self._checked_at >= TOPIC_CHECK_SECONDS

    def reopen_if_topics_changed(self) -> bool:
        """Compare the topics' ids with those at `open`; when one changed, or a partition refused its offset, or a
        consumer error asked for a check and the broker reports no ids, start over from the committed state:
        `open` then decides again where each topic resumes. Call it only with every polled batch committed."""
        ids = topic_ids(list(TOPICS.values()))
        changed = [t for t, uid in ids.items() if uid != self._topic_ids.get(t)]
        blind = self._suspect and not any(ids.values())
        if not changed and not blind and not self._out_of_range and self._consumer is not None:
            self._checked_at, self._suspect = time.monotonic(), False
            return False
        why = (f"new topic ids: {', '.join(changed)}" if changed else
               f"offsets refused: {', '.join(sorted(self._out_of_range))}" if self._out_of_range else
               "connection lost and the broker reports no topic ids" if blind else "the consumer was not assigned")
        log.warning("reassigning the consumer from the committed offsets", why=why)
        self.close()
        self.open()  # clears the suspicion once the consumer is assigned again
        return True

    def poll(self, max_messages: int = BATCH_MESSAGES, max_seconds: float = 5.0,
             until_caught_up: bool = True, stop: Any = None) -> tuple[dict[str, TopicBatch], bool]:
        """Gather up to `max_messages` for at most `max_seconds`; with `until_caught_up`, return as soon as every
        partition reported its end and nothing more arrives. Returns (batches per topic, caught up)."""
        from confluent_kafka import KafkaError, Message

        value, topic_of, partition_of, offset_of, error_of = (Message.value, Message.topic, Message.partition,
                                                              Message.offset, Message.error)
        batches: dict[str, TopicBatch] = defaultdict(TopicBatch)
        count, caught_up = 0, False
        deadline = time.monotonic() + max_seconds
        while count < max_messages and time.monotonic() < deadline and not (stop and stop.requested) \
                and not self._suspect:
            msgs = self._consumer.consume(num_messages=min(_CHUNK, max_messages - count), timeout=0.2)
            errors = list(map(error_of, msgs))
            if any(map(is_not, errors, repeat(None))):  # (KafkaError cannot be compared with None by ==)
                errors = [m for m, e in zip(msgs, errors) if e is not None]
                msgs = [m for m in msgs if m.error() is None]
            else:
                errors = []
            if msgs:
                topics = list(map(topic_of, msgs))
                if topics.count(topics[0]) == len(topics):
                    groups = {topics[0]: msgs}
                else:
                    groups = defaultdict(list)
                    for topic, m in zip(topics, msgs):
                        groups[topic].append(m)
                for topic, group in groups.items():
                    batch = batches[topic]
                    partitions = list(map(partition_of, group))
                    batch.values += map(value, group)
                    batch.partitions += partitions
                    batch.offsets += map(offset_of, group)
                    if self._at_end:
                        self._at_end -= {(topic, p) for p in set(partitions)}
                count += len(msgs)
            if self._errors(errors, KafkaError):
                break
            if errors or not msgs:  # the last end-of-partition just came, or nothing did
                caught_up = self._at_end >= self._assigned
                if until_caught_up and caught_up:
                    break
        for topic, batch in batches.items():
            position = self._positions[topic]
            position = state.Progress({**position.offsets, **batch.end_offsets()}, position.epoch, position.topic_id)
            self._positions[topic] = batch.progress = position
        return dict(batches), caught_up

    def _errors(self, errors: list[Any], KafkaError: Any) -> bool:
        """Handle consumer errors; True when the batch should end here so the topics get checked first."""
        suspect = False
        for m in errors:
            code = m.error().code()
            if code == KafkaError._PARTITION_EOF:
                self._at_end.add((m.topic(), m.partition()))
            elif m.error().fatal() or code == KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise RuntimeError(f"Kafka consumer error: {m.error()}")
            else:
                # An offset the partition does not have, or a lost connection (a broker restart): the topic may
                # have been re-created; what was read so far is committed, then the topic ids are checked.
                if code in (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE):
                    self._out_of_range[m.topic()].add(m.partition())
                suspect = suspect or code in (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE,
                                              KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN,
                                              KafkaError.UNKNOWN_TOPIC_ID)
                log.warning("kafka consumer error", error=str(m.error()))
        self._suspect = self._suspect or suspect
        return suspect

    def prepare(self, batches: dict[str, TopicBatch]) -> PreparedBatch:
        """Parse and validate a batch, add the audit columns: everything but the commits."""
        started = time.perf_counter()
        now = datetime.now(timezone.utc)
        batches = {topic: b for topic, b in batches.items() if b.values}
        progress = {topic: b.end() for topic, b in batches.items()}
        rows, evolve, new_fields, rejected = {}, {}, {}, []
        for topic, batch in batches.items():
            rows[topic], rejects, fields, missing = self._read_topic(topic, batch, progress[topic].epoch, now)
            evolve[topic] = fields + missing
            if fields:
                new_fields[topic] = [f.name for f in fields]
            if rejects.num_rows:
                rejected.append(rejects)
        return PreparedBatch(sum(len(b.values) for b in batches.values()), progress, rows, evolve, new_fields,
                             pa.concat_tables(rejected) if rejected else None, time.perf_counter() - started)

    def commit(self, prepared: PreparedBatch) -> BatchResult:
        """Commit a prepared batch: quarantine first, then each topic's bronze table with its progress."""
        started = time.perf_counter()
        snapshots: dict[str, int] = {}
        quarantined = skipped = written = 0
        if prepared.rejects is not None:
            rows = prepared.rejects
            snapshot, quarantined = append_kafka_rows(BRONZE_QUARANTINE, rows, prepared.progress, topic_col="source",
                                                      partition_col="partition", offset_col="offset",
                                                      catalog=self.catalog)
            skipped += rows.num_rows - quarantined
            if snapshot:
                snapshots[BRONZE_QUARANTINE] = snapshot

        def append(topic: str) -> tuple[int | None, int]:
            return append_kafka_rows(bronze(ENTITY_BY_TOPIC[topic]), prepared.rows[topic],
                                     {topic: prepared.progress[topic]}, topic_col="_topic",
                                     partition_col="_partition", offset_col="_offset",
                                     new_fields=prepared.evolve[topic], catalog=self.catalog)

        # The bronze tables are independent of one another: committed side by side (Parquet encoding and the
        # catalog round trips overlap); each only after the quarantine, which must not fall behind them.
        with ThreadPoolExecutor(max(len(prepared.rows), 1), thread_name_prefix="bronze") as tables:
            appends = {topic: tables.submit(append, topic) for topic in prepared.rows}
        for topic, future in appends.items():
            snapshot, appended = future.result()
            written += appended
            skipped += prepared.rows[topic].num_rows - appended
            if snapshot:
                snapshots[bronze(ENTITY_BY_TOPIC[topic])] = snapshot
        return BatchResult(messages=prepared.messages, rows=written, quarantined=quarantined, skipped=skipped,
                           snapshots=snapshots, new_fields=prepared.new_fields,
                           seconds=prepared.seconds + time.perf_counter() - started)

    def write(self, batches: dict[str, TopicBatch]) -> BatchResult:
        """Prepare and commit one micro-batch."""
        return self.commit(self.prepare(batches))

    def _read_topic(self, topic: str, batch: TopicBatch, epoch: int,
                    now: datetime) -> tuple[pa.Table, pa.Table, list[pa.Field], list[pa.Field]]:
        """(bronze rows, quarantine rows, new event fields, audit columns the table still lacks)."""
        entity = ENTITY_BY_TOPIC[topic]
        current = arrow_schema(table(bronze(entity), self.catalog).schema())
        schema = pa.schema([pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type)
                            for f in current if f.name not in AUDIT_COLUMNS])
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
            _EPOCH: pa.array(np.full(n, epoch, dtype=np.int32)),
        }
        rows = parsed.table
        for name, column in audit.items():
            rows = rows.append_column(name, column)
        rejects = parsed.rejects
        quarantine = quarantine_rows(
            now, topic, [int(partitions[r.index]) for r in rejects], [int(offsets[r.index]) for r in rejects],
            [r.event_id for r in rejects], [r.code for r in rejects], [r.reason for r in rejects],
            [batch.values[r.index] for r in rejects], self.max_payload_bytes)
        missing = [] if _EPOCH in current.names else [pa.field(_EPOCH, pa.int32())]  # tables from before epochs
        return rows, quarantine, parsed.new_fields, missing


def payload_hashes(values: list[bytes | None], idx: np.ndarray) -> pa.Array:
    """xxh3-128 of the raw values at `idx`, hex (an audit fingerprint; 5x cheaper than md5 per record)."""
    digest = xxhash.xxh3_128_hexdigest
    chosen = values if len(idx) == len(values) else [values[i] for i in idx.tolist()]
    return pa.array(list(map(digest, chosen)), pa.string())


def _log_batch(result: BatchResult) -> None:
    log.info("bronze batch", messages=result.messages, rows=result.rows, quarantined=result.quarantined,
             skipped=result.skipped, snapshot_id=",".join(f"{t}={s}" for t, s in result.snapshots.items()) or None,
             new_fields=result.new_fields or None, seconds=round(result.seconds, 3))


@contextmanager
def _rare_garbage_collection() -> Iterator[None]:
    """A batch allocates millions of short-lived objects (a Python object per Kafka message, its value...): with
    the default thresholds the cycle collector runs over a thousand times per million messages and rescans every
    long-lived object (modules, the catalog) each time, 10-15% of the CPU. Collect rarely, and never the objects
    that existed before the loop."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def ingest(stop: Any = None, follow: bool = False, interval: float = 1.0, catalog: Any = None,
           max_messages: int = BATCH_MESSAGES, max_batches: int | None = None) -> list[BatchResult]:
    """Run the ingest loop: until caught up (default) or until `stop` (with `follow`).

    A batch polled (or prepared) but never committed is simply read again next time: its offsets were not
    committed. Before the topics are checked (`TOPIC_CHECK_SECONDS`, or a consumer error), everything polled is
    committed first: what was read from a topic's old incarnation is kept, and a reopen starts from the tables.
    """
    results: list[BatchResult] = []
    committing: Future | None = None

    def finish_commit() -> None:
        nonlocal committing
        if committing is not None:
            result, committing = committing.result(), None
            results.append(result)
            _log_batch(result)

    with _rare_garbage_collection(), BronzeIngestor(catalog) as ingestor, \
            ThreadPoolExecutor(1, thread_name_prefix="poll") as poller, \
            ThreadPoolExecutor(1, thread_name_prefix="commit") as committer:
        def poll() -> tuple[dict[str, TopicBatch], bool]:
            return ingestor.poll(max_messages=max_messages, max_seconds=interval if follow else 30.0,
                                 until_caught_up=not follow, stop=stop)

        pending: Future | None = poller.submit(poll)
        batches_seen = 0
        while pending is not None:
            batches, caught_up = pending.result()
            has_data = any(b.values for b in batches.values())
            batches_seen += has_data
            done = (stop is not None and stop.requested) or (not follow and (caught_up or not has_data)) or (
                max_batches is not None and batches_seen >= max_batches)
            check = not done and ingestor.topics_due_for_check()
            pending = None if done or check else poller.submit(poll)
            if has_data:
                prepared = ingestor.prepare(batches)
                finish_commit()
                committing = committer.submit(ingestor.commit, prepared)
            if check:
                finish_commit()
                _check_topics(ingestor, stop if follow else None)
                pending = poller.submit(poll)
        finish_commit()
    return results


def _check_topics(ingestor: BronzeIngestor, stop: Any) -> None:
    """`reopen_if_topics_changed`, waiting for the broker to answer when there is a `stop` to wait on (a follow
    job outlives a broker restart); otherwise a broker that does not answer ends the run with its error."""
    from confluent_kafka import KafkaException

    while True:
        try:
            ingestor.reopen_if_topics_changed()
            return
        except (RuntimeError, KafkaException) as exc:
            if stop is None:
                raise
            log.warning("cannot check the Kafka topics yet, retrying", error=str(exc))
            if stop.wait(2.0):
                return

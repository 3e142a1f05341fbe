"""Kafka clients of the workload: topics, an idempotent producer and an offset-assigned consumer.

The consumer never joins a consumer group and never commits offsets to Kafka: the bronze tables hold the offsets
(see `state`), and the consumer is assigned every partition explicitly at those offsets.
"""
from __future__ import annotations

import time
from typing import Any

import structlog

from workloads.common.platform import kafka_config
from workloads.medallion.tables import TOPIC_PARTITIONS, TOPICS


def _metadata(admin, timeout: float):
    from confluent_kafka import KafkaException

    try:
        return admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        where = kafka_config()["bootstrap.servers"]
        raise RuntimeError(f"Kafka at {where} did not answer within {timeout:.0f} s ({exc.args[0].str()}): "
                           "is the broker running, is DP_KAFKA_BOOTSTRAP_SERVERS right?") from exc


def ensure_topics(topics: list[str] | None = None, partitions: int = TOPIC_PARTITIONS, timeout: float = 10.0) -> None:
    """Create the workload's topics that are missing (idempotent)."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    topics = topics or list(TOPICS.values())
    admin = AdminClient(kafka_config())
    existing = _metadata(admin, timeout)
    missing = [NewTopic(t, partitions, 1) for t in topics if t not in existing]
    for topic, future in admin.create_topics(missing, request_timeout=timeout).items() if missing else ():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise RuntimeError(f"cannot create Kafka topic {topic}: {exc}") from exc


def partitions_of(topics: list[str], timeout: float = 10.0) -> dict[str, list[int]]:
    """The partitions of each topic, from the cluster's metadata."""
    from confluent_kafka.admin import AdminClient

    metadata = _metadata(AdminClient(kafka_config()), timeout)
    missing = [t for t in topics if t not in metadata]
    if missing:
        raise RuntimeError(f"Kafka topics missing: {', '.join(missing)}")
    return {t: sorted(metadata[t].partitions) for t in topics}


def topic_ids(topics: list[str], timeout: float = 10.0) -> dict[str, str | None]:
    """Each topic's id (KIP-516): a topic deleted and created again under the same name gets a new one. None for
    all when the broker cannot say (Kafka before 2.8)."""
    from confluent_kafka import KafkaError, KafkaException, TopicCollection
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(kafka_config())
    try:
        described = {t: f.result() for t, f in admin.describe_topics(TopicCollection(topics),
                                                                     request_timeout=timeout).items()}
    except KafkaException as exc:
        if exc.args[0].code() in (KafkaError._UNSUPPORTED_FEATURE, KafkaError.UNSUPPORTED_VERSION):
            structlog.get_logger().warning("the broker reports no topic ids: a re-created topic is recognised by "
                                           "its offsets only", error=str(exc))
            return dict.fromkeys(topics)
        where = kafka_config()["bootstrap.servers"]
        raise RuntimeError(f"Kafka at {where} did not describe topics {', '.join(topics)}: {exc}") from exc
    ids = {}
    for topic, description in described.items():
        uid = description.topic_id
        zero = uid is None or (uid.get_most_significant_bits() == 0 and uid.get_least_significant_bits() == 0)
        ids[topic] = None if zero else str(uid)
    return ids


def high_watermarks(topic: str, partitions: list[int], timeout: float = 10.0) -> dict[int, int]:
    """Each partition's end (the offset the next record gets), as fetch responses report it.

    Tansu answers a ListOffsets request with the last record batch's first offset + 1 (1 after a 1,000-record
    batch), so the end is read from fetch responses, which carry the true high watermark: the probe fetches (a
    little) from each partition's beginning and keeps the larger of both answers."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    probe = consumer(**{"fetch.max.bytes": 1 << 20, "max.partition.fetch.bytes": 64 << 10,
                        "queued.min.messages": 1, "fetch.wait.max.ms": 10})
    try:
        listed = {p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1] for p in partitions}
        probe.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        waiting, deadline = set(partitions), time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            waiting -= {m.partition() for m in probe.consume(500, 0.1)}  # a record or the end: a fetch answered
        if waiting:
            where = kafka_config()["bootstrap.servers"]
            raise RuntimeError(f"Kafka at {where} did not serve {topic} partitions {sorted(waiting)} within "
                               f"{timeout:.0f} s")
        fetched = {p: probe.get_watermark_offsets(TopicPartition(topic, p), cached=True)[1] for p in partitions}
        return {p: max(listed[p], fetched[p]) for p in partitions}
    finally:
        probe.close()


def producer(**overrides: Any):
    """Idempotent producer (acks=all, no duplicates on retry), batching generously for throughput."""
    from confluent_kafka import Producer

    return Producer(kafka_config(**{
        "enable.idempotence": True, "acks": "all", "linger.ms": 20, "batch.size": 1_000_000,
        "queue.buffering.max.messages": 1_000_000, "compression.type": "lz4", **overrides}))


def consumer(**overrides: Any):
    """A consumer that is only ever `assign`ed: no group join (Tansu's is slow), no offset commits to Kafka."""
    from confluent_kafka import Consumer

    return Consumer(kafka_config(**{
        "group.id": "dp-medallion-bronze",  # required by librdkafka; never joined
        "enable.auto.commit": False, "enable.auto.offset.store": False, "enable.partition.eof": True,
        # An assigned offset the partition does not have is reported, never silently moved (see `resume`).
        "auto.offset.reset": "error",
        "fetch.max.bytes": 100 * 1024 * 1024, "max.partition.fetch.bytes": 50 * 1024 * 1024,
        # Prefetch generously: with librdkafka's default (100k messages) the fetcher stalls between consume calls.
        "queued.min.messages": 1_000_000, "queued.max.messages.kbytes": 256 * 1024, "fetch.wait.max.ms": 50,
        **overrides}))

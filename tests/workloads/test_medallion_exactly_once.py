"""Exactly-once ingest under crashes: the ingest job is killed with SIGKILL at random moments (while polling,
parsing, between the quarantine commit and the bronze commits, during a commit...) and restarted, round after
round. Every record the broker acknowledged must end up exactly once in bronze or in the quarantine, checked by
its (topic, partition, offset)."""
from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from itertools import islice

import pytest

from workloads.medallion.catalog import ensure_tables, table
from workloads.medallion.generator import Event, Shop, send
from workloads.medallion.state import kafka_offsets
from workloads.medallion.tables import BRONZE_QUARANTINE, ENTITIES, TOPICS, bronze

pytestmark = pytest.mark.slow
ROUNDS = 8


def wait_for(path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}")


def committed_positions() -> Counter:
    positions: Counter = Counter()
    for entity in ENTITIES:
        data = table(bronze(entity)).scan(selected_fields=("_topic", "_partition", "_offset")).to_arrow()
        positions.update(zip(data["_topic"].to_pylist(), data["_partition"].to_pylist(), data["_offset"].to_pylist()))
    quarantine = table(BRONZE_QUARANTINE).scan(selected_fields=("source", "partition", "offset")).to_arrow()
    positions.update(zip(quarantine["source"].to_pylist(), quarantine["partition"].to_pylist(),
                         quarantine["offset"].to_pylist()))
    return positions


def test_sigkill_at_random_points_loses_and_duplicates_nothing(platform_env, tmp_path):
    ensure_tables()
    rng = random.Random(2024)
    delivered: list[tuple[str, int, int]] = []
    stream = Shop(seed=5).events()
    env = {**platform_env, "DP_MEDALLION_BATCH_MESSAGES": "1500"}
    command = [sys.executable, "-m", "workloads.medallion", "ingest", "--follow", "--interval", "0.2"]
    kills = 0
    for round_ in range(ROUNDS):
        # More data each round, good and bad, so every restart has work in flight.
        batch = list(islice(stream, 6000)) + [Event(TOPICS["orders"], f"bad-{round_}", b"{broken json")]
        send(batch, delivered=delivered)
        log_path = tmp_path / f"ingest-{round_}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            wait_for(log_path, "bronze consumer assigned")
            time.sleep(rng.uniform(0.0, 1.2))  # a few batches of 1,500 take about that long: kill mid-way
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.wait(timeout=30)
    assert kills >= ROUNDS - 1

    # A last, clean run to the end: then every acknowledged record is in exactly once.
    finish = subprocess.run([sys.executable, "-m", "workloads.medallion", "ingest"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert finish.returncode == 0, finish.stderr[-2000:]
    for _ in range(10):
        positions = committed_positions()
        if sum(positions.values()) >= len(delivered):
            break
        subprocess.run([sys.executable, "-m", "workloads.medallion", "ingest"], env=env, check=True, timeout=120,
                       capture_output=True)
    duplicated = {p: n for p, n in positions.items() if n > 1}
    lost = set(delivered) - set(positions)
    assert not duplicated, f"{len(duplicated)} records committed twice, e.g. {list(duplicated)[:3]}"
    assert not lost, f"{len(lost)} acknowledged records missing, e.g. {sorted(lost)[:3]}"
    assert set(positions) == set(delivered)
    assert table(BRONZE_QUARANTINE).scan().to_arrow().num_rows == ROUNDS
    # The offsets committed with the bronze data are exactly where each partition ends.
    ends: dict[tuple[str, int], int] = {}
    for topic, partition, offset in delivered:
        ends[(topic, partition)] = max(ends.get((topic, partition), 0), offset + 1)
    committed = {(topic, p): o for entity in ENTITIES
                 for topic, parts in kafka_offsets(table(bronze(entity))).items() for p, o in parts.items()}
    assert committed == ends


def test_crash_between_quarantine_and_bronze_commits_is_repaired_on_restart(platform_env, monkeypatch):
    """The quarantine is committed first; if the process dies before the bronze commits, the restart reads the
    batch again, writes the bronze rows and skips the quarantine rows already there."""
    from workloads.medallion import bronze as bronze_job

    ensure_tables()
    events = list(islice(Shop(seed=3).events(), 500)) + [Event(TOPICS["clickstream"], "bad", b"[1]")]
    send(events)
    real_append = bronze_job.append_kafka_rows

    def crash_after_quarantine(identifier, *args, **kwargs):
        if identifier != BRONZE_QUARANTINE:
            raise KeyboardInterrupt("simulated crash before the bronze commits")
        return real_append(identifier, *args, **kwargs)

    monkeypatch.setattr(bronze_job, "append_kafka_rows", crash_after_quarantine)
    with pytest.raises(KeyboardInterrupt):
        bronze_job.ingest()
    assert table(BRONZE_QUARANTINE).scan().to_arrow().num_rows == 1
    assert all(table(bronze(e)).current_snapshot() is None for e in ENTITIES)

    monkeypatch.setattr(bronze_job, "append_kafka_rows", real_append)
    results = bronze_job.ingest()
    assert sum(r.rows for r in results) == 500
    assert sum(r.skipped for r in results) == 1 and sum(r.quarantined for r in results) == 0
    assert sum(committed_positions().values()) == len(events) == len(committed_positions())


def test_a_concurrent_writer_is_fenced_and_nothing_is_written_twice(platform_env, monkeypatch):
    """Two writers with the same batch: the second one's commit conflicts (its table state is stale), it re-reads
    the offsets committed by the first and finds nothing left to add."""
    from workloads.medallion import commits
    from workloads.medallion.bronze import BronzeIngestor, TopicBatch

    ensure_tables()
    values = [json.dumps(e.value).encode() for e in islice(Shop(seed=4).events(), 2000)
              if e.topic == TOPICS["clickstream"]]
    batch = {TOPICS["clickstream"]: TopicBatch(values, [0] * len(values), list(range(len(values))))}
    stale = table(bronze("clickstream"))  # loaded before the first writer commits
    first = BronzeIngestor().write(batch)
    assert first.rows == len(values)

    loads = []
    real_table = commits.table

    def stale_then_fresh(identifier, catalog=None):
        loads.append(identifier)
        return stale if len(loads) == 1 else real_table(identifier, catalog)

    monkeypatch.setattr(commits, "table", stale_then_fresh)
    second = BronzeIngestor().write(batch)
    assert len(loads) == 2  # the stale attempt failed on commit, the retry saw the first writer's offsets
    assert (second.rows, second.skipped) == (0, len(values))
    assert sum(committed_positions().values()) == len(values) == len(committed_positions())

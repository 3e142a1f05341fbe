"""Exactly-once ingest under crashes: the ingest job is killed with SIGKILL at random moments (while polling,
parsing, between the quarantine commit and the bronze commits, during a commit...) and restarted, round after
round. Every record the broker acknowledged must end up exactly once in bronze or in the quarantine, checked by
its (topic, partition, offset)."""
from __future__ import annotations

import os
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
ROUNDS = 6


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
        with open(tmp_path / f"ingest-{round_}.log", "wb") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            time.sleep(rng.uniform(1.5, 4.0))  # startup takes ~1.5 s: kills land before, during and after batches
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

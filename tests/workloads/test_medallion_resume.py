"""Resuming over existing data when the topic is a new one: a restarted in-memory broker (or a topic deleted and
created again) numbers its messages from 0 again, below the offsets committed with the bronze data. The ingest job
must notice (topic ids, else offsets past the end), read the new topic from its beginning in a new offset epoch,
and still neither lose nor duplicate a record, at start and under a running `--follow` job."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from itertools import islice

import pytest

from workloads.common.tansu import free_port, start_tansu
from workloads.medallion import bronze as bronze_job
from workloads.medallion import resume
from workloads.medallion.catalog import ensure_tables, table
from workloads.medallion.commits import merge_progress
from workloads.medallion.generator import Event, Shop, send
from workloads.medallion.kafka_io import topic_ids
from workloads.medallion.runner import Stop
from workloads.medallion.state import Progress, kafka_progress
from workloads.medallion.tables import BRONZE_QUARANTINE, ENTITIES, TOPICS, bronze


def stop_broker(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=10)


def broker(monkeypatch: pytest.MonkeyPatch, port: int | None = None) -> subprocess.Popen:
    process, bootstrap = start_tansu(port=port)
    monkeypatch.setenv("DP_KAFKA_BOOTSTRAP_SERVERS", bootstrap)
    return process


def held() -> int:
    total = 0
    for identifier in [bronze(e) for e in ENTITIES] + [BRONZE_QUARANTINE]:
        snapshot = table(identifier).current_snapshot()
        total += int(snapshot.summary["total-records"]) if snapshot else 0
    return total


def ingest_until(rows: int, timeout: float = 45) -> None:
    """Ingest until bronze + quarantine hold `rows` (Tansu may report a partition's end early)."""
    deadline = time.monotonic() + timeout
    while held() < rows and time.monotonic() < deadline:
        bronze_job.ingest()
    assert held() == rows


def positions() -> Counter:
    """(topic, epoch, partition, offset) of every record in bronze and the quarantine (which has no epoch)."""
    found: Counter = Counter()
    for entity in ENTITIES:
        data = table(bronze(entity)).scan(selected_fields=("_topic", "_offset_epoch", "_partition", "_offset"))
        data = data.to_arrow()
        found.update(zip(data["_topic"].to_pylist(), data["_offset_epoch"].to_pylist(),
                         data["_partition"].to_pylist(), data["_offset"].to_pylist()))
    return found


def wave(seed: int, n: int) -> list[Event]:
    return list(islice(Shop(seed=seed).events(), n))


def send_wave(seed: int, n: int) -> tuple[list[tuple[str, int, int]], tuple[str, int, int]]:
    """`n` good events and one unreadable record: (positions of the good ones, position of the bad one)."""
    good: list[tuple[str, int, int]] = []
    bad: list[tuple[str, int, int]] = []
    send(wave(seed, n), delivered=good)
    send([Event(TOPICS["orders"], f"bad-{seed}", b"{not json")], delivered=bad)
    return good, bad[0]


def quarantined() -> list[tuple[str, int, int]]:
    rows = table(BRONZE_QUARANTINE).scan(selected_fields=("source", "partition", "offset")).to_arrow()
    return sorted(zip(rows["source"].to_pylist(), rows["partition"].to_pylist(), rows["offset"].to_pylist()))


def ends(delivered: list[tuple[str, int, int]]) -> dict[str, dict[int, int]]:
    found: dict[str, dict[int, int]] = {}
    for topic, partition, offset in delivered:
        found.setdefault(topic, {})[partition] = max(found.get(topic, {}).get(partition, 0), offset + 1)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("ids", [True, False], ids=["by topic id", "by offsets past the end"])
def test_a_fresh_broker_after_an_earlier_one_loses_and_duplicates_nothing(ids, catalog_env, monkeypatch):
    if not ids:  # a broker that reports no topic ids (Kafka before 2.8)
        monkeypatch.setattr(bronze_job, "topic_ids", lambda topics: dict.fromkeys(topics))
    ensure_tables()
    earlier = broker(monkeypatch)
    try:
        first, first_bad = send_wave(1, 3000)
        ingest_until(3001)
    finally:
        stop_broker(earlier)

    fresh = broker(monkeypatch)
    try:
        second, second_bad = send_wave(2, 600)
        assert all(o < ends(first)[t].get(p, 0) for t, p, o in second)  # below the committed offsets
        if ids:  # the job as deployed, for its log line
            run = subprocess.run([sys.executable, "-m", "workloads.medallion", "ingest"], capture_output=True,
                                 text=True, timeout=120)
            assert run.returncode == 0, run.stderr[-2000:]
            assert run.stderr.count("topic is not the one the committed offsets count in") == len(TOPICS)
            assert "why='new topic id'" in run.stderr
        ingest_until(3001 + 601)

        # Every record of both brokers exactly once: the first broker's in epoch 0, the new one's in epoch 1.
        assert positions() == Counter([(t, 0, p, o) for t, p, o in first] + [(t, 1, p, o) for t, p, o in second])
        assert quarantined() == sorted([first_bad, second_bad])
        current = topic_ids(list(TOPICS.values()))
        for entity, topic in TOPICS.items():
            progress = kafka_progress(table(bronze(entity)))[topic]
            assert (progress.epoch, progress.offsets) == (1, ends(second + [second_bad])[topic])
            assert progress.topic_id == (current[topic] if ids else None)

        # Then on as usual within the new epoch: more records, each once; nothing read twice.
        third, third_bad = send_wave(3, 300)
        ingest_until(3001 + 601 + 301)
        assert positions() == Counter([(t, 0, p, o) for t, p, o in first] +
                                      [(t, 1, p, o) for t, p, o in second + third])
        assert quarantined() == sorted([first_bad, second_bad, third_bad])
    finally:
        stop_broker(fresh)


@pytest.mark.slow
def test_a_broker_restarted_under_a_running_follow_job(catalog_env, monkeypatch):
    """The connection drops, the job commits what it read and checks the topic ids before reading on; the new
    broker's topics are read from their beginning, without restarting the job."""
    ensure_tables()
    port = free_port()
    process = broker(monkeypatch, port)
    stop, failure = Stop(), []

    def follow() -> None:
        try:
            bronze_job.ingest(stop=stop, follow=True, interval=0.2)
        except BaseException as exc:  # reported by the test below
            failure.append(exc)

    job = threading.Thread(target=follow)
    try:
        first: list[tuple[str, int, int]] = []
        send(list(islice(Shop(seed=4).events(), 2000)), delivered=first)
        job.start()
        wait_until(lambda: held() == 2000, failure)
        stop_broker(process)
        process = broker(monkeypatch, port)  # same address: only the topic ids tell
        second: list[tuple[str, int, int]] = []
        send(list(islice(Shop(seed=5).events(), 500)), delivered=second)
        wait_until(lambda: held() == 2500, failure)
    finally:
        stop.set("test")
        job.join(timeout=60)
        stop_broker(process)
    assert not failure and not job.is_alive()
    assert positions() == Counter([(t, 0, p, o) for t, p, o in first] + [(t, 1, p, o) for t, p, o in second])


def wait_until(condition, failure: list, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert not failure, failure
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


# The decisions themselves, without a broker.

def lows(values: dict[int, int]):
    return values.__getitem__


def highs(values: dict[int, int]):
    return lambda: values


def test_plan_continues_an_epoch_the_quarantine_already_started():
    """The quarantine commits first: a crash before the bronze commit leaves it in the new epoch already."""
    old = Progress({0: 500, 1: 400}, 0, "A")
    started = Progress({0: 20, 1: 0}, 1, "B")
    plan = resume.plan("t", [0, 1], "B", old, started, lows({0: 0, 1: 0}), highs({0: 30, 1: 5}))
    assert plan.starts == {0: None, 1: None} and plan.progress == Progress({}, 1, "B")
    again = resume.plan("t", [0, 1], "C", old, started, lows({0: 0, 1: 0}), highs({0: 30, 1: 5}))
    assert again.progress.epoch == 2  # a third topic: a new epoch above both


def test_plan_resumes_the_same_topic_and_says_what_the_broker_dropped():
    held = Progress({0: 50, 1: 7}, 3, "A")
    def no_fetch() -> dict[int, int]:
        raise AssertionError("the ends are not needed when the topic id matches")

    plan = resume.plan("t", [0, 1, 2], "A", held, None, lows({0: 80, 1: 0, 2: 0}), no_fetch)
    # Partition 0 lost 50..79 to retention; 1 resumes where it was; 2 is new.
    assert plan.starts == {0: 80, 1: 7, 2: None}
    assert plan.progress == Progress({0: 80, 1: 7}, 3, "A")
    # Without ids on either side, a committed offset past a partition's end says the topic is another one.
    legacy = Progress({0: 50, 1: 7}, 0, None)
    assert resume.plan("t", [0, 1], "A", legacy, None, lows({0: 0, 1: 0}), highs({0: 50, 1: 9})).starts == {0: 50, 1: 7}
    assert resume.plan("t", [0, 1], "A", legacy, None, lows({0: 0, 1: 0}), highs({0: 60, 1: 6})).progress == \
        Progress({}, 1, "A")
    # A partition that refused its offset (truncated by an unclean leader election) reads on from its end.
    truncated = resume.plan("t", [0, 1], "A", held, None, lows({0: 0, 1: 0}), highs({0: 60, 1: 3}), frozenset({1}))
    assert truncated.starts == {0: 50, 1: 3} and truncated.progress.epoch == 4


def test_merge_compares_offsets_within_one_epoch_only():
    held = {"t": Progress({0: 500, 1: 400}, 0, "A")}
    merged, floors = merge_progress("bronze.x", held, {"t": Progress({0: 30}, 1, "B")})
    assert merged == {"t": Progress({0: 30}, 1, "B")} and floors == {"t": {}}
    merged, floors = merge_progress("bronze.x", held, {"t": Progress({0: 600}, 0, "A")})
    assert merged == {"t": Progress({0: 600, 1: 400}, 0, "A")} and floors == {"t": {0: 500, 1: 400}}
    with pytest.raises(RuntimeError, match="another ingest job found the topic re-created"):
        merge_progress("bronze.x", {"t": Progress({0: 5}, 2, "B")}, {"t": Progress({0: 600}, 1, "A")})
    with pytest.raises(RuntimeError, match="refusing to mix"):
        merge_progress("bronze.x", held, {"t": Progress({0: 600}, 0, "B")})

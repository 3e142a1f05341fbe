"""The embedded platform for real: `dp local up` in a private state dir on free ports, data through bronze, silver
and gold, `status --json`, then `down` leaving no process and no port behind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from local import lifecycle
from local.preflight import port_free
from local.services import declare
from local.settings import LocalSettings
from local.tables import LAYERS
from tests.local.conftest import REPO, dp_local

pytestmark = pytest.mark.slow


@pytest.fixture
def fast_env(local_env):
    """A quicker trickle than the default, so the test sees data move within seconds."""
    local_env.update({"DP_LOCAL_RATE": "50", "DP_LOCAL_INTERVAL": "1", "DP_LOCAL_TIMEOUT": "150"})
    return local_env


def status_json(env) -> dict:
    result = dp_local("status", "--json", env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def layer_rows(tables: dict[str, int], layer: str) -> int:
    return sum(rows for name, rows in tables.items() if name.split(".")[0] == layer)


def assert_nothing_left(settings: LocalSettings, pids: list[int], ports: list[int]) -> None:
    alive = [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    assert lifecycle.platform_processes(settings) == []
    assert [port for port in ports if not port_free(port)] == []


def wait_for_bronze_above(env, rows: int, timeout: float = 60) -> None:
    """New data keeps arriving: bronze grows beyond `rows` (the producer trickles, ingest follows)."""
    deadline = time.monotonic() + timeout
    while layer_rows(status_json(env)["tables"], "bronze") <= rows:
        assert time.monotonic() < deadline, f"bronze stayed at {rows} rows or fewer"
        time.sleep(1)


def test_up_status_down_then_restart_attached(fast_env):
    from workloads.medallion.tables import all_tables

    settings = LocalSettings.from_env(fast_env)
    services = declare(settings)
    ports = [port for service in services for port in service.ports.values()]
    pids: list[int] = []
    try:
        up = dp_local("up", "--detach", env=fast_env, timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "Embedded data platform is up" in up.stdout
        assert f"export DP_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{fast_env['DP_LOCAL_KAFKA_PORT']}" in up.stdout
        pids = [p.pid for p in lifecycle.platform_processes(settings)]
        assert len(pids) > len(services)  # supervisord + every service still running (+ their children)

        state = status_json(fast_env)
        assert set(state) == {"services", "tables"}
        assert list(state["services"]) == [s.name for s in services]
        for service in services:
            assert state["services"][service.name] in ({"RUNNING", "EXITED"} if service.exits else {"RUNNING"})
        assert state["services"]["init"] == "EXITED"
        assert {spec.identifier for spec in all_tables()} <= set(state["tables"])  # listed from the catalog
        assert all(isinstance(rows, int) for rows in state["tables"].values())
        for layer in LAYERS:
            assert layer_rows(state["tables"], layer) > 0, (layer, state["tables"])
        wait_for_bronze_above(fast_env, layer_rows(state["tables"], "bronze"))

        again = dp_local("up", "--detach", env=fast_env, timeout=120)
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stdout
    finally:
        down = dp_local("down", env=fast_env, timeout=180)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped the platform" in down.stdout
    assert_nothing_left(settings, pids, ports)

    after = status_json(fast_env)  # down keeps the data
    assert set(after["services"].values()) == {lifecycle.NOT_RUNNING}
    for layer in LAYERS:
        assert layer_rows(after["tables"], layer) > 0

    again = dp_local("down", env=fast_env, timeout=60)
    assert again.returncode == 0 and "Nothing running" in again.stdout

    restart_in_foreground_then_interrupt(fast_env, settings, ports, layer_rows(after["tables"], "bronze"))

    purge = dp_local("down", "--purge", env=fast_env, timeout=60)
    assert purge.returncode == 0, purge.stderr
    assert not settings.home.exists()


def restart_in_foreground_then_interrupt(env, settings: LocalSettings, ports: list[int], bronze_rows: int) -> None:
    """`dp local up` (attached) over the data of an earlier run: new data flows; Ctrl-C stops everything."""
    output = settings.home.parent / "up.out"
    with output.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "dp.cli", "local", "up"], env=env, cwd=REPO,
                                   stdout=out, stderr=subprocess.STDOUT)
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 240
        while "Attached" not in output.read_text():
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.5)
        pids = [p.pid for p in lifecycle.platform_processes(settings)]
        assert pids
        wait_for_bronze_above(env, bronze_rows)
        assert_every_message_reaches_bronze(env, settings, bronze_rows)
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert process.wait(timeout=120) == 0, output.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            dp_local("down", env=env, timeout=180)
    assert "stopped the platform" in output.read_text()
    assert_nothing_left(settings, pids, ports)


def assert_every_message_reaches_bronze(env, settings: LocalSettings, rows_before: int) -> None:
    """The restarted (in-memory) broker numbers its offsets from 0 again, below the offsets the earlier run
    committed with its bronze data: every message it now holds must still land in bronze (a table or quarantine)."""
    from confluent_kafka import Consumer

    from workloads.medallion.kafka_io import high_watermarks
    from workloads.medallion.tables import TOPICS

    lifecycle.Supervisor(settings).rpc.supervisor.stopProcess("producer")
    bootstrap = f"127.0.0.1:{env['DP_LOCAL_KAFKA_PORT']}"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test"})
    try:
        metadata = consumer.list_topics(timeout=10).topics
    finally:
        consumer.close()
    saved = os.environ.get("DP_KAFKA_BOOTSTRAP_SERVERS")
    os.environ["DP_KAFKA_BOOTSTRAP_SERVERS"] = bootstrap  # high_watermarks reaches Kafka as the workloads do
    try:
        deadline = time.monotonic() + 60
        while True:
            # Tansu under-reports ListOffsets (the last batch's first offset + 1): count from fetch responses
            in_kafka = sum(sum(high_watermarks(topic, list(metadata[topic].partitions)).values())
                           for topic in TOPICS.values())
            in_bronze = layer_rows(status_json(env)["tables"], "bronze") - rows_before
            if in_bronze == in_kafka:
                return
            assert time.monotonic() < deadline, f"{in_kafka} messages in Kafka since the restart, {in_bronze} in bronze"
            time.sleep(1)
    finally:
        if saved is None:
            os.environ.pop("DP_KAFKA_BOOTSTRAP_SERVERS", None)
        else:
            os.environ["DP_KAFKA_BOOTSTRAP_SERVERS"] = saved

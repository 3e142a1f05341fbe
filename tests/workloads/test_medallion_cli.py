"""`python -m workloads.medallion ...` as the embedded platform runs it: init is idempotent, the --follow jobs
stop cleanly on SIGTERM (finishing their batch, exit 0), and mistakes end with a clear message."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from workloads.medallion.catalog import table
from workloads.medallion.tables import BRONZE_QUARANTINE, ENTITIES, bronze, gold, silver

pytestmark = pytest.mark.slow
MEDALLION = [sys.executable, "-m", "workloads.medallion"]


def run(env, *args, timeout: float = 120):
    return subprocess.run([*MEDALLION, *args], env=env, capture_output=True, text=True, timeout=timeout)


def total(identifiers) -> int:
    count = 0
    for identifier in identifiers:
        snapshot = table(identifier).current_snapshot()
        count += int(snapshot.summary["total-records"]) if snapshot else 0
    return count


def wait_until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def stop(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    return process.returncode, out


def test_jobs_run_and_stop_cleanly(platform_env):
    first, again = run(platform_env, "init"), run(platform_env, "init")
    assert first.returncode == again.returncode == 0, first.stderr
    assert "bronze.orders" in first.stderr and "created=None" in again.stderr

    produced = run(platform_env, "produce", "--events", "3000", "--seed", "3")
    assert produced.returncode == 0, produced.stderr
    assert "produce done" in produced.stderr and "events=3000" in produced.stderr

    ingest = subprocess.Popen([*MEDALLION, "ingest", "--follow", "--interval", "0.3"], env=platform_env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    refine = subprocess.Popen([*MEDALLION, "refine", "--follow", "--interval", "0.3"], env=platform_env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: total([bronze(e) for e in ENTITIES] + [BRONZE_QUARANTINE]) == 3000)
        wait_until(lambda: total([gold("funnel_daily")]) > 0 and total([silver("clickstream")]) > 0)
    finally:
        code, ingest_log = stop(ingest)
        refine_code, refine_log = stop(refine)
    assert code == 0 and refine_code == 0, ingest_log[-2000:] + refine_log[-2000:]
    for log in (ingest_log, refine_log):
        assert "stopping after the current batch" in log and "signal='SIGTERM'" in log
    assert "event='bronze batch'" in ingest_log and "rows=" in ingest_log and "snapshot_id=" in ingest_log
    assert "event='silver batch'" in refine_log and "event='gold batch'" in refine_log

    maintained = run(platform_env, "maintain")
    assert maintained.returncode == 0, maintained.stderr


def test_mistakes_end_with_a_clear_message(platform_env):
    before_init = run(platform_env, "refine")
    assert before_init.returncode == 2
    assert "table bronze.customers does not exist: run `python -m workloads.medallion init` first" in before_init.stderr
    assert "Traceback" not in before_init.stderr

    no_broker = run({**platform_env, "DP_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "produce", "--events", "1",
                    timeout=90)
    assert no_broker.returncode == 2 and "Kafka" in no_broker.stderr and "Traceback" not in no_broker.stderr

    bad_option = run(platform_env, "produce", "--events", "0")
    assert bad_option.returncode == 2 and "--events" in bad_option.stderr

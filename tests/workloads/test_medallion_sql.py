"""The distributed path: the silver and gold transforms as Flink SQL and Trino SQL (workloads/medallion/sql).

- Flink: every job is planned by PyFlink's planner against the real schemas (see sqljobs.py for the connector
  swap); a job that names a wrong column or writes the wrong shape must fail the same check.
- Trino: every job is parsed as Trino SQL, transpiled to DuckDB and run over bronze data the Python jobs also
  refined: the SQL path must produce the same silver and gold tables.
"""
from __future__ import annotations

import subprocess
from itertools import islice
from pathlib import Path

import pytest

from workloads.medallion.bronze import ingest
from workloads.medallion.catalog import ensure_tables, table
from workloads.medallion.generator import Event, Shop, send
from workloads.medallion.refine import refine_once
from workloads.medallion.silver import utc_duckdb
from workloads.medallion.sqljobs import FLINK_VENV_PYTHON, duckdb_tables, jobs, plan_flink, run_trino_jobs
from workloads.medallion.tables import ENTITIES, GOLD_FIELDS, GOLD_KEYS, SILVER_QUARANTINE, TOPICS, bronze, gold, silver

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def flink_python() -> Path:
    """PyFlink's virtualenv, made by `make flink-venv` (idempotent; CI runs it before the tests)."""
    made = subprocess.run(["make", "-s", "flink-venv"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if made.returncode != 0 or not FLINK_VENV_PYTHON.exists():
        pytest.skip(f"`make flink-venv` failed (exit {made.returncode}): {(made.stderr or made.stdout)[-800:]}")
    return FLINK_VENV_PYTHON


def test_flink_jobs_plan_against_the_real_schemas(flink_python):
    broken = {
        "unknown_column": "INSERT INTO silver.orders SELECT event_id, no_such_column FROM bronze.orders",
        "wrong_shape": "INSERT INTO gold.revenue_daily SELECT event_date, category FROM silver.order_lines",
        "updates_into_append_only": "INSERT INTO silver.quarantine SELECT CURRENT_TIMESTAMP, source, CAST(NULL AS INT),"
                                    " CAST(NULL AS BIGINT), CAST(NULL AS STRING), 'x', 'y', CAST(NULL AS BYTES),"
                                    " COUNT(*), CAST(NULL AS STRING) FROM silver.quarantine GROUP BY source",
    }
    report = plan_flink(flink_python, extra_jobs=broken)
    planned = report["jobs"]
    assert set(jobs("flink")) <= set(planned)
    failures = {name: r["error"][:500] for name, r in planned.items() if not r["ok"] and name not in broken}
    assert not failures
    assert report["statement_set"]["ok"], report["statement_set"].get("error", "")[:1000]
    for name in broken:  # negative controls: the check can fail
        assert not planned[name]["ok"], name
    assert "no_such_column" in planned["unknown_column"]["error"]
    for entity in ENTITIES:  # silver jobs deduplicate and stay insert-only (an append-only Iceberg sink)
        plan = planned[f"silver_{entity}"]["plan"]
        assert "Deduplicate(keep=[FirstRow], key=[event_id]" in plan and "outputInsertOnly=[true]" in plan
    for name in GOLD_FIELDS:  # gold jobs are upsert streams on the gold tables' keys
        assert f"Sink(table=[default_catalog.gold.{name}]" in planned[f"gold_{name}"]["plan"]


INVALID = b'{"event_id":"bad-status","event_time":"2026-01-01T00:00:00Z","order_id":"o","customer_id":"c",' \
          b'"status":"lost","currency":"EUR","total_amount":1}'


def test_trino_jobs_compute_what_the_python_jobs_compute(platform_env):
    ensure_tables()
    events = list(islice(Shop(seed=21).events(), 4000)) + [Event(TOPICS["orders"], "o", INVALID)]
    send(events)
    while sum(len(r.snapshots) for r in ingest()):
        pass
    refine_once()

    con = utc_duckdb()
    duckdb_tables(con)
    for entity in ENTITIES:
        con.register("src", table(bronze(entity)).scan().to_arrow())
        con.execute(f"INSERT INTO {bronze(entity)} SELECT * FROM src")
    assert len(run_trino_jobs(con)) == len(jobs("trino"))

    def same(identifier: str, key: tuple[str, ...], ignore: tuple[str, ...] = ()) -> None:
        order = [(k, "ascending") for k in key]
        python = table(identifier).scan().to_arrow().drop_columns(list(ignore)).sort_by(order)
        sql = con.sql(f"SELECT * FROM {identifier}").to_arrow_table().drop_columns(list(ignore)).sort_by(order)
        assert python.num_rows == sql.num_rows > 0, identifier
        assert python.to_pylist() == sql.cast(python.schema).to_pylist(), identifier

    for entity in ENTITIES:
        same(silver(entity), ("event_id",))
    for name in GOLD_FIELDS:
        same(gold(name), GOLD_KEYS[name])
    same(SILVER_QUARANTINE, ("event_id",), ignore=("quarantined_at", "payload", "payload_bytes", "payload_hash"))

"""Governance inside the medallion flow, on a real broker (Tansu) and a real Iceberg catalog:

- quality gates: a batch that breaks a silver expectation is quarantined whole and gold is unchanged; the next
  good batch flows; a gold aggregate that does not reconcile with silver is held back;
- lineage: START/COMPLETE/FAIL events per job; each gold column traces back to its bronze fields; a lineage
  outage fails nothing (events are counted and spooled, then replayed); the graph renders;
- catalog metadata applied idempotently; results visible through metrics and the MCP server."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from itertools import islice

import pytest

from tests.workloads.test_medallion_pipeline import ingest_all, rows
from workloads.governance import lineage, metadata, settings
from workloads.governance.lineage_graph import load as load_graph
from workloads.governance.lineage_graph import render, to_dot
from workloads.governance.results import QUALITY_RESULTS
from workloads.medallion.catalog import ensure_tables, table
from workloads.medallion.generator import Event, Shop, send
from workloads.medallion.refine import refine_once
from workloads.medallion.tables import ENTITIES, GOLD_FIELDS, SILVER_QUARANTINE, TOPICS, gold, silver

pytestmark = pytest.mark.slow


@pytest.fixture
def governed(platform_env, tmp_path, monkeypatch):
    """The platform plus a private governance state dir (lineage file, audit logs)."""
    monkeypatch.setenv("DP_HOME", str(tmp_path / "home"))
    for name in ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG", "DP_LINEAGE_FILE", "DP_AUDIT_DIR", "DP_QUALITY_GATES"):
        monkeypatch.delenv(name, raising=False)
    lineage.reset_client()
    ensure_tables()
    yield {**platform_env, "DP_HOME": str(tmp_path / "home")}
    lineage.reset_client()


def quality(catalog_table: str) -> list[dict]:
    results = table(QUALITY_RESULTS).scan().to_arrow().to_pylist()
    return sorted((r for r in results if r["table"] == catalog_table), key=lambda r: r["checked_at"])


def events_of(job: str) -> list[dict]:
    events = [json.loads(line) for line in settings.lineage_file().read_text().splitlines()]
    return [e for e in events if e["job"]["name"] == job]


def orders_only(events: list[Event]) -> list[Event]:
    return [e for e in events if e.topic == TOPICS["orders"]]


def test_gates_lineage_metadata_metrics_and_mcp(governed, monkeypatch, tmp_path):
    from workloads.common.platform import load_catalog

    catalog = load_catalog()
    stream = Shop(seed=21).events()
    wave1 = list(islice(stream, 4000))
    send(wave1)
    ingest_all(len(wave1))
    changed = {r.table for r in refine_once()}
    assert changed == {silver(e) for e in ENTITIES} | {gold(g) for g in GOLD_FIELDS}
    for entity in ENTITIES:
        assert [r["action"] for r in quality(f"bronze.{entity}")] == ["published"]
        assert [r["success"] for r in quality(silver(entity))] == [True]
    assert all(r["success"] for g in GOLD_FIELDS for r in quality(gold(g)))

    # Lineage: one START and one COMPLETE per job and run, with schema and column lineage on the output.
    for output in [silver(e) for e in ENTITIES] + [gold(g) for g in GOLD_FIELDS]:
        events = events_of(output)
        assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
        assert events[0]["run"]["runId"] == events[1]["run"]["runId"]
        facets = events[1]["outputs"][0]["facets"]
        assert {"schema", "columnLineage"} <= set(facets)
    graph = load_graph([settings.lineage_file()])
    for name, fields in GOLD_FIELDS.items():
        for f in fields:
            origins = graph.origins(gold(name), f.name)
            assert origins and all(t.startswith("bronze.") for t, _ in origins), (name, f.name, origins)
    assert graph.origins(gold("revenue_daily"), "revenue") == {
        ("bronze.order_lines", c) for c in ("quantity", "unit_price", "discount")}
    assert graph.origins(gold("customer_ltv"), "revenue") == {("bronze.orders", "total_amount")}
    assert graph.origins(gold("funnel_daily"), "sessions") == {("bronze.clickstream", "event_time")}
    assert graph.upstream(gold("revenue_daily"), "day") == {("silver.order_lines", "event_date"): 1,
                                                            ("bronze.order_lines", "event_time"): 2}
    picture = render(to_dot(graph), tmp_path / "lineage.png", "png")
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 20_000

    # A batch that breaks a silver expectation (an order of 5,000,000: a valid row, an implausible total).
    customers_before = table(gold("customer_ltv")).current_snapshot().snapshot_id
    ltv_before = table(gold("customer_ltv")).scan().to_arrow()
    silver_orders = rows(silver("orders"))
    batch = orders_only(list(islice(stream, 3000)))[:40]
    bad = dict(batch[0].value, event_id="bad-total-0001", total_amount=5_000_000.0)
    batch.append(Event(TOPICS["orders"], bad["order_id"], bad))
    send(batch)
    ingest_all(len(wave1) + len(batch))
    assert refine_once() != []  # silver.orders advanced its watermark past the set-aside batch
    assert rows(silver("orders")) == silver_orders
    gated = [r for r in table(SILVER_QUARANTINE).scan().to_arrow().to_pylist() if r["reason_code"] == "quality_gate"]
    assert len(gated) == len(batch)
    assert "expect_column_values_to_be_between(total_amount)" in gated[0]["reason"]
    assert {json.loads(r["payload"])["event_id"] for r in gated} == {e.value["event_id"] for e in batch}
    assert table(gold("customer_ltv")).current_snapshot().snapshot_id == customers_before
    assert table(gold("customer_ltv")).scan().to_arrow().equals(ltv_before)
    assert [r["action"] for r in quality(silver("orders"))][-1] == "quarantined"
    failed = events_of(silver("orders"))[-1]
    assert failed["eventType"] == "FAIL" and "quality gate" in failed["run"]["facets"]["errorMessage"]["message"]

    # The next good batch flows as usual.
    good = orders_only(list(islice(stream, 3000)))[:30]
    send(good)
    ingest_all(len(wave1) + len(batch) + len(good))
    changed = {r.table for r in refine_once()}
    assert {silver("orders"), gold("customer_ltv")} <= changed
    assert rows(silver("orders")) == silver_orders + len(good)

    # Catalog metadata: applied once, then nothing to do; every change audited.
    spec = metadata.load(settings.metadata_file())
    audit = tmp_path / "home" / "audit"
    from workloads.governance.audit import AuditLog, verify

    first = metadata.apply(spec, catalog, AuditLog(settings.admin_audit_log()))
    assert len([c for c in first if c.changed]) == len(spec.tables) == 13
    assert not [c for c in metadata.apply(spec, catalog, AuditLog(settings.admin_audit_log())) if c.changed]
    customers = table(silver("customers"))
    assert customers.properties["dp.pii.columns"] == "email,full_name"
    assert customers.properties["comment"] == "typed, validated, deduplicated customers"
    assert customers.schema().find_field("email").doc == "lower case, trimmed"
    assert json.loads(table(gold("customer_ltv")).properties["dp.lineage.columns"])["revenue"] == [
        "silver.orders.total_amount"]
    assert verify(audit / "admin.jsonl").ok and verify(audit / "admin.jsonl").entries == 13

    # The MCP server shows quality, owners, lineage and masks by policy.
    for role in ("admin", "analyst"):
        monkeypatch.setenv(f"DP_MCP_{role.upper()}_KEY", f"{role}-key-0123456789")
    from workloads.mcp_server.config import Settings
    from workloads.mcp_server.service import Service

    service = Service(Settings.from_env(audit_log=audit / "mcp.jsonl", metadata_ttl=0.0), catalog=catalog)
    analyst = service.auth.from_key("analyst-key-0123456789")
    described = service.describe_table(analyst, silver("orders"))
    assert described.governance.owners == ["commerce-data@example.com"]
    assert described.governance.quality.status == "passing"  # the newest run; the gated one before it failed
    assert described.governance.tags == ["sales"]
    ltv = service.lineage(analyst, gold("customer_ltv"), depth=1)
    assert ltv.columns["revenue"] == ["silver.orders.total_amount"]
    assert {(e.upstream, e.downstream) for e in ltv.edges} == {(silver("customers"), gold("customer_ltv")),
                                                               (silver("orders"), gold("customer_ltv"))}
    sample = service.sample_rows(analyst, silver("customers"), 5)
    emails = [r[sample.columns.index(next(c for c in sample.columns if c.name == "email"))] for r in sample.rows]
    assert emails and all(re.fullmatch(r"[a-z]\*\*\*@example\.(com|org)", e) for e in emails), emails
    with pytest.raises(Exception, match="not allowed to read bronze.orders"):
        service.call("describe_table", analyst, "test", {}, lambda: service.describe_table(analyst, "bronze.orders"))
    service.close()

    # Metrics from durable state: quality, freshness, lineage, denials, audit chains.
    from prometheus_client import CollectorRegistry, generate_latest

    from workloads.governance.metrics import GovernanceCollector

    registry = CollectorRegistry()
    registry.register(GovernanceCollector(catalog))
    text = generate_latest(registry).decode()
    ratio = float(re.search(r'dp_quality_pass_ratio\{layer="silver",table="silver.orders"\} (\S+)', text)[1])
    assert 0 < ratio < 1
    assert 'dp_quality_last_success{layer="silver",table="silver.orders"} 1.0' in text
    assert re.search(r'dp_table_freshness_seconds\{layer="gold",table="gold.revenue_daily"\} \d', text)
    assert re.search(r'dp_lineage_events_file_total\{event_type="FAIL"\} 1.0', text)
    assert 'dp_access_denials_total{log="mcp.jsonl",reason="denied",tool="describe_table"} 1.0' in text
    assert 'dp_audit_chain_valid{log="admin.jsonl"} 1.0' in text

    # The commands a person runs.
    env = {**governed, "DP_HOME": str(tmp_path / "home")}
    traced = subprocess.run([sys.executable, "-m", "workloads.governance", "lineage", "trace",
                             "gold.customer_ltv.revenue", "--json"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert traced.returncode == 0, traced.stderr
    assert {(c["table"], c["column"], c["hops"]) for c in json.loads(traced.stdout)["columns"]} == {
        ("silver.orders", "total_amount", 1), ("bronze.orders", "total_amount", 2)}
    shown = subprocess.run([sys.executable, "-m", "workloads.governance", "quality", "show", "--json"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert json.loads(shown.stdout)["gold.revenue_daily"]["status"] == "passing"


def test_gold_held_when_it_does_not_reconcile_and_lineage_outages_fail_nothing(governed, monkeypatch):
    from workloads.governance.metrics import LINEAGE_EVENTS
    from workloads.medallion import gold as gold_job

    events = list(islice(Shop(seed=3).events(), 1500))
    send(events)
    ingest_all(len(events))
    # A bug in the revenue aggregate (lines counted twice) and the lineage receiver down.
    monkeypatch.setitem(gold_job.MERGE_SQL, "revenue_daily",
                        gold_job.MERGE_SQL["revenue_daily"].replace("count(*)", "2 * count(*)"))
    monkeypatch.setenv("OPENLINEAGE_URL", "http://127.0.0.1:9")  # nothing listens there
    lineage.reset_client()
    failed_before = LINEAGE_EVENTS.labels("silver.orders", "COMPLETE", "failed")._value.get()
    changed = {r.table for r in refine_once()}
    assert gold("revenue_daily") not in changed and gold("customer_ltv") in changed
    assert table(gold("revenue_daily")).current_snapshot() is None  # nothing published
    held = quality(gold("revenue_daily"))[-1]
    assert (held["action"], held["success"]) == ("held", False)
    assert "expect_column_sum_to_be_between(lines)" in held["summary"]
    assert LINEAGE_EVENTS.labels("silver.orders", "COMPLETE", "failed")._value.get() == failed_before + 1
    spooled = settings.lineage_spool().read_text().splitlines()
    assert len(spooled) == 14  # START + COMPLETE/FAIL for 7 jobs
    assert not settings.lineage_file().exists()

    # Receiver back (here: the file transport): the spool is replayed, in order.
    monkeypatch.delenv("OPENLINEAGE_URL")
    for name in [k for k in os.environ if k.startswith("OPENLINEAGE__")]:  # the client's own copies of the URL
        del os.environ[name]
    lineage.reset_client()
    assert lineage.replay() == (14, 0)
    assert not settings.lineage_spool().exists()
    replayed = [json.loads(line) for line in settings.lineage_file().read_text().splitlines()]
    assert [e["eventType"] for e in replayed if e["job"]["name"] == gold("revenue_daily")] == ["START", "FAIL"]

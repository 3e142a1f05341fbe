"""Catalog metadata as code: applied idempotently, edits and removals follow the file, mistakes are refused
before anything changes, and new columns that look like personal data are suggested for classification."""
from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pytest

from workloads.governance import metadata
from workloads.governance.audit import AuditLog, verify
from workloads.medallion.catalog import ensure_tables

FILE = """
version: 1
defaults: {owners: [team@example.com]}
tables:
  silver.customers:
    tags: [customer, crm]
    columns:
      email: {classification: pii.email, description: "lower case, trimmed"}
  gold.revenue_daily:
    owners: [finance@example.com]
    description: revenue per day
"""


@pytest.fixture
def catalog(catalog_env):
    from workloads.common.platform import load_catalog

    ensure_tables()
    return load_catalog()


def test_apply_is_idempotent_and_follows_edits(catalog, tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(FILE)
    audit = AuditLog(tmp_path / "admin.jsonl")
    first = {c.table: c for c in metadata.apply(metadata.load(path), catalog, audit)}
    assert set(first["silver.customers"].set_properties) == {
        "comment", "dp.owners", "dp.tags", "dp.classifications", "dp.pii.columns", "dp.lineage.upstreams",
        "dp.lineage.columns"}
    assert first["silver.customers"].column_docs == {"email": "lower case, trimmed"}
    customers = catalog.load_table("silver.customers")
    assert customers.properties["dp.owners"] == "team@example.com"  # the default owners
    assert json.loads(customers.properties["dp.classifications"]) == {"email": "pii.email"}
    assert customers.properties["dp.lineage.upstreams"] == "bronze.customers"
    gold = catalog.load_table("gold.revenue_daily")
    assert (gold.properties["comment"], gold.properties["dp.owners"]) == ("revenue per day", "finance@example.com")
    snapshot_meta = customers.metadata_location
    assert not any(c.changed for c in metadata.apply(metadata.load(path), catalog, audit))
    assert catalog.load_table("silver.customers").metadata_location == snapshot_meta  # nothing committed

    path.write_text(FILE.replace("    tags: [customer, crm]\n", "").replace("pii.email", "internal"))
    changed = {c.table: c for c in metadata.apply(metadata.load(path), catalog, audit) if c.changed}
    assert set(changed) == {"silver.customers"}
    assert set(changed["silver.customers"].removed_properties) == {"dp.tags", "dp.pii.columns"}
    properties = catalog.load_table("silver.customers").properties
    assert "dp.tags" not in properties and "dp.pii.columns" not in properties
    log = verify(tmp_path / "admin.jsonl")
    assert log.ok and log.entries == 3  # two tables, then one


@pytest.mark.parametrize(("text", "message"), [
    ("tables: {silver.customers: {columns: {email: {classification: secret}}}}", "classification"),
    ("tables: {silver.customers: {colour: blue}}", "colour"),
    ("tables: {silver.nothing: {}}", "silver.nothing: NoSuchTableError"),
    ("tables: {silver.customers: {columns: {mail: {classification: pii.email}}}}", "no column mail"),
    ("tables: [", "not valid YAML"),
])
def test_mistakes_are_refused_before_anything_changes(catalog, tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    before = catalog.load_table("silver.customers").metadata_location
    with pytest.raises(metadata.MetadataError, match=message):
        metadata.apply(metadata.load(path), catalog)
    assert catalog.load_table("silver.customers").metadata_location == before


def test_new_columns_that_look_personal_are_suggested(catalog, tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(FILE)
    from datetime import date, datetime, timezone
    from decimal import Decimal

    from pyiceberg.types import StringType

    table = catalog.load_table("silver.orders")
    with table.update_schema() as update:  # a new column, as schema evolution adds them
        update.add_column("buyer_contact", StringType())
    table = catalog.load_table("silver.orders")
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = [{"event_id": f"e{i}", "event_time": at, "event_date": date(2026, 1, 1), "order_id": "o",
             "customer_id": "c", "status": "placed", "currency": "EUR", "total_amount": Decimal("1.00"),
             "_ingested_at": at, "_partition": 0, "_offset": i, "buyer_contact": f"buyer{i}@example.com"}
            for i in range(5)]
    table.append(pa.Table.from_pylist(rows, schema=table.schema().as_arrow()))
    found = metadata.unclassified(metadata.load(path), catalog)
    assert {(s["table"], s["column"], s["classification"]) for s in found} >= {
        ("silver.orders", "buyer_contact", "pii.email")}
    assert not [s for s in found if s["column"] == "email" and s["table"] == "silver.customers"]  # classified


def test_apply_command_dry_run(catalog_env, tmp_path):
    ensure_tables()
    path = tmp_path / "catalog.yaml"
    path.write_text(FILE)
    done = subprocess.run([sys.executable, "-m", "workloads.governance", "metadata", "apply", "--file", str(path),
                           "--dry-run", "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dry_run"] and {c["table"] for c in report["changed"]} == {"silver.customers",
                                                                             "gold.revenue_daily"}
    bad = subprocess.run([sys.executable, "-m", "workloads.governance", "metadata", "apply", "--file",
                          str(tmp_path / "missing.yaml")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "missing.yaml" in bad.stderr

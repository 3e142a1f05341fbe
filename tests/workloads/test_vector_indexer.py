"""The table indexer against a real pyiceberg SQL catalog: incremental, idempotent by key, deletes followed,
bad rows counted; then the public `search()` the MCP server calls, and the `python -m workloads.vector` CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from decimal import Decimal

import pyarrow as pa
import pytest
from pydantic import ValidationError

import workloads.vector as vector
from workloads.vector.indexer import IndexSpec, index_table
from workloads.vector.store import VectorError, close_stores, open_store

SCHEMA = pa.schema([("sku", pa.string()), ("name", pa.string()), ("category", pa.string()),
                    ("price", pa.decimal128(10, 2)), ("in_stock", pa.bool_())])
SPEC = IndexSpec(collection="products", table="shop.products", key="sku", text="{name} ({category})",
                 payload=("category", "price", "in_stock"), keyword_fields=("category",))


def _rows(*items):
    return pa.Table.from_pylist([dict(zip(SCHEMA.names, item)) for item in items], schema=SCHEMA)


def _catalog_properties(root) -> dict[str, str]:
    (root / "warehouse").mkdir(parents=True, exist_ok=True)
    return {"uri": f"sqlite:///{root / 'catalog.db'}", "warehouse": (root / "warehouse").as_uri()}


@pytest.fixture
def catalog(tmp_path):
    """A SQL catalog of our own, passed explicitly: pyiceberg reads its environment variables once per process."""
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog("vectortest", **_catalog_properties(tmp_path / "lake"))


@pytest.fixture
def table(catalog):
    catalog.create_namespace("shop")
    created = catalog.create_table("shop.products", schema=SCHEMA)
    created.append(_rows(("s1", "red running shoes", "shoes", Decimal("59.90"), True),
                         ("s2", "tax invoice booklet", "office", Decimal("4.50"), True),
                         ("s3", "blue denim jeans", "clothing", Decimal("40.00"), False)))
    return created


@pytest.fixture
def store(tmp_path):
    with open_store("qdrant-edge", tmp_path / "vectors") as s:
        yield s


def test_incremental_and_idempotent(table, store, catalog, tmp_path, monkeypatch):
    first = index_table(SPEC, store=store, catalog=catalog)
    assert (first.mode, first.upserted, store.count("products")) == ("full", 3, 3)
    assert store.get_metadata("products")["source"]["snapshot_id"] == table.current_snapshot().snapshot_id

    again = index_table(SPEC, store=store, catalog=catalog)
    assert (again.mode, again.rows_read, store.count("products")) == ("up-to-date", 0, 3)
    # Up to date is decided from metadata: a collection held elsewhere (a server searching it) is not taken.
    monkeypatch.setenv("DP_VECTOR_LOCK_TIMEOUT", "0.2")
    with store.exclusive("products"), open_store("qdrant-edge", tmp_path / "vectors") as elsewhere:
        assert index_table(SPEC, store=elsewhere, catalog=catalog).mode == "up-to-date"

    # An append: only the new rows are read; s1 changes (same key -> same point), s4 is new, a keyless row is
    # counted and skipped.
    table.append(_rows(("s4", "crimson sneakers", "shoes", Decimal("70.00"), True),
                       ("s1", "red trail running shoes", "shoes", Decimal("64.90"), False),
                       (None, "no key", "shoes", Decimal("1.00"), True)))
    incremental = index_table(SPEC, store=store, catalog=catalog)
    assert (incremental.mode, incremental.rows_read, incremental.upserted, incremental.skipped) == \
        ("incremental", 3, 2, 1)
    assert store.count("products") == 4
    s1 = store.search("products", _embed("red trail running shoes (shoes)"), limit=1)[0]
    assert s1.id == "s1" and s1.payload == {"category": "shoes", "price": 64.9, "in_stock": False,
                                            "text": "red trail running shoes (shoes)"}

    # A delete is not an append: the whole table is re-read and points whose key left the table go.
    table.delete("sku = 's2'")
    reconciled = index_table(SPEC, store=store, catalog=catalog)
    assert (reconciled.mode, reconciled.deleted) == ("full", 1)
    stored = store.payloads("products")
    assert set(stored) == {"s1", "s3", "s4"}
    assert stored["s1"]["text"] == "red trail running shoes (shoes)"  # s1's later row still wins

    # A full re-read of an unchanged table re-embeds nothing (gold tables are rewritten on every run).
    forced = index_table(SPEC, store=store, catalog=catalog, full=True)
    assert (forced.mode, forced.upserted, forced.unchanged, forced.deleted) == ("full", 0, 3, 0)
    assert store.count("products") == 3

    # An overwrite (what a gold run does) changing one row: one point re-embedded, the rest kept.
    table.overwrite(_rows(("s1", "red trail running shoes", "shoes", Decimal("64.90"), False),
                          ("s3", "blue denim jeans", "clothing", Decimal("35.00"), False),
                          ("s4", "crimson sneakers", "shoes", Decimal("70.00"), True)))
    rewritten = index_table(SPEC, store=store, catalog=catalog)
    assert (rewritten.mode, rewritten.upserted, rewritten.unchanged) == ("full", 1, 2)
    assert store.payloads("products")["s3"]["price"] == 35.0


def _embed(text: str):
    from workloads.vector.embeddings import local_embedder

    return local_embedder().embed([text])[0]


def test_bad_specs_are_refused_before_anything_is_written(table, store, catalog):
    with pytest.raises(VectorError, match=r"has no column\(s\) \['colour'\]"):
        index_table(SPEC.model_copy(update={"payload": ("colour",)}), store=store, catalog=catalog)
    with pytest.raises(VectorError, match="does not exist"):
        index_table(SPEC.model_copy(update={"table": "shop.nope"}), store=store, catalog=catalog)
    assert store.collections() == []
    with pytest.raises(ValidationError, match="namespace.table"):
        IndexSpec(collection="c", table="products", key="sku", text="{name}")
    with pytest.raises(ValidationError, match="at least one column"):
        IndexSpec(collection="c", table="a.b", key="sku", text="no fields")
    with pytest.raises(ValidationError, match="not payload columns"):
        IndexSpec(collection="c", table="a.b", key="sku", text="{name}", keyword_fields=("category",))


def test_a_collection_stays_with_its_table(table, store, catalog):
    index_table(SPEC, store=store, catalog=catalog)
    catalog.create_table("shop.other", schema=SCHEMA)
    with pytest.raises(VectorError, match="indexes shop.products, not shop.other"):
        index_table(SPEC.model_copy(update={"table": "shop.other"}), store=store, catalog=catalog)


def test_public_search_over_an_indexed_table(table, catalog, tmp_path, monkeypatch):
    monkeypatch.setenv("DP_VECTOR_PATH", str(tmp_path / "platform-vectors"))
    monkeypatch.delenv("DP_VECTOR_BACKEND", raising=False)
    monkeypatch.delenv("DP_EMBEDDINGS_MODEL", raising=False)
    try:
        index_table(SPEC, catalog=catalog)
        assert vector.collections() == ["products"]
        hits = vector.search("products", "crimson sneakers", limit=2)
        assert hits[0]["id"] == "s1" and set(hits[0]) == {"id", "score", "payload"}
        assert hits[0]["score"] > hits[1]["score"]
        only_clothing = vector.search("products", "crimson sneakers", filters={"category": "clothing"})
        assert [h["id"] for h in only_clothing] == ["s3"]
        assert vector.search("products", "shoes", filters={"in_stock": False}) == [only_clothing[0] | {
            "score": pytest.approx(vector.search("products", "shoes", filters={"in_stock": False})[0]["score"])}]
        with pytest.raises(VectorError, match="non-empty"):
            vector.search("products", "  ")
        with pytest.raises(VectorError, match="no collection 'nope'"):
            vector.search("nope", "shoes")
    finally:
        close_stores()


def test_default_specs_fit_the_medallion_tables():
    from workloads.medallion import tables
    from workloads.vector.specs import DEFAULT_SPECS, select

    columns = {t.identifier: {f.name for f in t.schema.fields} for t in tables.all_tables()}
    for spec in DEFAULT_SPECS:
        assert set(spec.columns()) <= columns[spec.table], spec.collection
        assert not {"email", "full_name"} & set(spec.columns()), "personal data must stay out of payloads"
    assert [s.collection for s in select(["gold.customer_ltv"])] == ["customers"]


@pytest.mark.slow
def test_cli_indexes_the_default_specs_of_medallion_tables(catalog, tmp_path):
    """`python -m workloads.vector index` on the medallion schemas, as the local platform runs it."""
    from workloads.medallion import tables

    for namespace in ("silver", "gold"):
        catalog.create_namespace(namespace)
    ltv = catalog.create_table("gold.customer_ltv", schema=tables.gold_schema("customer_ltv"))
    arrow = ltv.schema().as_arrow()
    ltv.append(pa.Table.from_pylist([
        {"customer_id": "c1", "country": "DE", "segment": "business", "orders": 12, "revenue": Decimal("5400.00")},
        {"customer_id": "c2", "country": "FR", "segment": "consumer", "orders": 1, "revenue": Decimal("19.99")},
    ], schema=arrow))

    prefix = "PYICEBERG_CATALOG__VECTORTEST__"
    env = {**os.environ, "DP_CATALOG": "vectortest", f"{prefix}TYPE": "sql",
           "DP_VECTOR_PATH": str(tmp_path / "vectors"),
           **{prefix + k.upper(): v for k, v in _catalog_properties(tmp_path / "lake").items()}}
    env.pop("DP_EMBEDDINGS_MODEL", None)
    env["COLUMNS"] = "200"  # rich wraps tables to 80 columns when not on a terminal
    run = subprocess.run([sys.executable, "-m", "workloads.vector", "index"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "silver.order_lines: not created yet, skipped" in run.stderr
    assert "customers" in run.stderr and "full" in run.stderr
    again = subprocess.run([sys.executable, "-m", "workloads.vector", "index", "--full", "--table", "customers"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "mode=full" in again.stdout and "unchanged=2" in again.stdout and "upserted=0" in again.stdout
    found = subprocess.run([sys.executable, "-m", "workloads.vector", "search", "customers",
                            "large business customer in Germany", "--limit", "1", "--filter", "country=DE",
                            "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert found.returncode == 0, found.stderr
    [hit] = json.loads(found.stdout)
    assert hit["id"] == "c1" and hit["payload"]["segment"] == "business"
    refused = subprocess.run([sys.executable, "-m", "workloads.vector", "index", "--table", "gold.nope"], env=env,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "no index spec for ['gold.nope']" in refused.stderr

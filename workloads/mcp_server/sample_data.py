"""A small medallion-shaped catalog (bronze -> silver -> gold, PII columns, partitioning, several snapshots,
owners / quality / lineage properties) for the benchmark, the tests and trying the server without the
medallion jobs: `python -m workloads.mcp_server seed --catalog-uri sqlite:///... --warehouse file://...`.
Deterministic for a given size, so tests can assert on values."""
from __future__ import annotations

import datetime as dt
import decimal
import random
from typing import Any

import pyarrow as pa
from pyiceberg.transforms import IdentityTransform

COUNTRIES = ("DE", "FR", "NL", "US", "JP")
STATUSES = ("paid", "shipped", "refunded")


def open_sql_catalog(uri: str, warehouse: str, name: str = "platform"):
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(name, uri=uri, warehouse=warehouse)


def _customers(n: int) -> pa.Table:
    rng = random.Random(7)
    return pa.table({
        "customer_id": pa.array(range(1, n + 1), pa.int64()),
        "name": [f"Customer {i}" for i in range(1, n + 1)],
        "email": [f"customer{i}@example.com" for i in range(1, n + 1)],
        "phone": [f"+49 30 {1000000 + i}" for i in range(1, n + 1)],
        "national_id": [f"ID-{rng.randrange(10**8):08d}" for _ in range(n)],
        "country": [COUNTRIES[i % len(COUNTRIES)] for i in range(n)],
        "signup_date": pa.array([dt.date(2026, 1, 1) + dt.timedelta(days=i % 300) for i in range(n)], pa.date32()),
    })


def _orders(start: int, n: int, customers: int) -> pa.Table:
    rng = random.Random(start)
    base = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    ids = range(start, start + n)
    return pa.table({
        "order_id": pa.array(ids, pa.int64()),
        "customer_id": pa.array([1 + (i * 7) % customers for i in ids], pa.int64()),
        "amount": pa.array([decimal.Decimal(rng.randrange(100, 50000)) / 100 for _ in ids], pa.decimal128(10, 2)),
        "currency": ["EUR" if i % 3 else "USD" for i in ids],
        "status": [STATUSES[i % len(STATUSES)] for i in ids],
        "ordered_at": pa.array([base + dt.timedelta(minutes=17 * i) for i in ids], pa.timestamp("us", tz="UTC")),
    })


def _raw(orders: pa.Table) -> pa.Table:
    return pa.table({
        "offset": pa.array(range(orders.num_rows), pa.int64()),
        "key": [str(i) for i in orders["order_id"].to_pylist()],
        "value": [f'{{"order_id": {o}, "customer_id": {c}}}' for o, c in
                  zip(orders["order_id"].to_pylist(), orders["customer_id"].to_pylist(), strict=True)],
        "received_at": orders["ordered_at"],
    })


def _daily_revenue(orders: pa.Table, customers: pa.Table) -> pa.Table:
    country = dict(zip(customers["customer_id"].to_pylist(), customers["country"].to_pylist(), strict=True))
    totals: dict[tuple[dt.date, str], list[Any]] = {}
    for cid, amount, at in zip(orders["customer_id"].to_pylist(), orders["amount"].to_pylist(),
                               orders["ordered_at"].to_pylist(), strict=True):
        slot = totals.setdefault((at.date(), country[cid]), [0, decimal.Decimal(0)])
        slot[0] += 1
        slot[1] += amount
    keys = sorted(totals)
    return pa.table({
        "day": pa.array([k[0] for k in keys], pa.date32()),
        "country": [k[1] for k in keys],
        "orders": pa.array([totals[k][0] for k in keys], pa.int64()),
        "revenue": pa.array([float(totals[k][1]) for k in keys], pa.float64()),
    })


def seed(catalog, orders: int = 1000, customers: int = 200, batches: int = 3) -> dict[str, int]:
    """Create bronze.orders_raw, silver.customers, silver.orders and gold.daily_revenue (orders arrive in
    `batches` appends, so orders tables have several snapshots). Returns rows per table."""
    for namespace in ("bronze", "silver", "gold"):
        catalog.create_namespace_if_not_exists(namespace)
    people = _customers(customers)
    all_orders = _orders(1, orders, customers)
    tables = {
        "bronze.orders_raw": (_raw(all_orders), {"dp.owners": "platform-team@example.com",
                                                 "dp.lineage.upstreams": "kafka:orders"}, None),
        "silver.customers": (people, {"dp.owners": "crm-data@example.com",
                                      "dp.lineage.upstreams": "bronze.customers_raw",
                                      "dp.pii.columns": "name,email,phone,national_id"}, "country"),
        "silver.orders": (all_orders, {"dp.owners": "sales-data@example.com",
                                       "dp.lineage.upstreams": "bronze.orders_raw",
                                       "dp.quality.status": "passing",
                                       "dp.quality.checked-at": "2026-11-20T06:00:00Z"}, "currency"),
        "gold.daily_revenue": (_daily_revenue(all_orders, people), {
            "dp.owners": "finance-data@example.com,analytics@example.com",
            "dp.lineage.upstreams": "silver.orders,silver.customers",
            "dp.quality.status": "passing"}, None),
    }
    counts = {}
    for name, (data, properties, partition_by) in tables.items():
        table = catalog.create_table(name, schema=data.schema, properties=properties)
        if partition_by:
            with table.update_spec() as spec:
                spec.add_field(partition_by, IdentityTransform(), partition_by)
        step = -(-data.num_rows // batches) if name.endswith("orders") or name.endswith("raw") else data.num_rows
        for offset in range(0, data.num_rows, step):
            table.append(data.slice(offset, step))
        counts[name] = data.num_rows
    return counts

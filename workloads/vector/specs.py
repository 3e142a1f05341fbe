"""The collections the platform keeps by default, over the medallion workload's tables
(`workloads/medallion/tables.py`). Neither indexes personal data (emails, names): payloads bypass the MCP
server's column masking, so only non-identifying columns go in."""
from __future__ import annotations

from workloads.vector.indexer import IndexSpec

DEFAULT_SPECS: tuple[IndexSpec, ...] = (
    # One row per customer, rewritten by each gold run: "business customers in DE with many orders".
    IndexSpec(
        collection="customers",
        table="gold.customer_ltv",
        key="customer_id",
        text="{segment} customer from {country} with {orders} orders and {revenue} revenue",
        payload=("customer_id", "country", "segment", "orders", "revenue", "last_order_at"),
        keyword_fields=("country", "segment"),
    ),
    # Append-only silver lines: "garden products bought with a discount".
    IndexSpec(
        collection="order_lines",
        table="silver.order_lines",
        key=("order_id", "line_number"),
        text="{quantity} x {category} product {product_id} at {unit_price} each, discount {discount}",
        payload=("order_id", "line_number", "product_id", "category", "quantity", "unit_price", "line_amount",
                 "event_date"),
        keyword_fields=("category", "product_id"),
    ),
)


def select(tables: list[str] | None = None) -> list[IndexSpec]:
    """The default specs for the given tables or collection names (all when none are given)."""
    if not tables:
        return list(DEFAULT_SPECS)
    chosen = [s for s in DEFAULT_SPECS if s.table in tables or s.collection in tables]
    if unknown := set(tables) - {s.table for s in chosen} - {s.collection for s in chosen}:
        known = ", ".join(f"{s.table} ({s.collection})" for s in DEFAULT_SPECS)
        raise ValueError(f"no index spec for {sorted(unknown)}; known: {known}")
    return chosen

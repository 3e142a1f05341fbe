"""The data quality suites, one per table and layer, as data: which Great Expectations expectation, on which
column, with which arguments, and why. `quality.py` turns them into GX suites.

- bronze (schema and envelope): the event's declared fields exist, required ones are present, the Kafka envelope
  is whole (`_topic` is the entity's topic, partition and offset valid and unique together, payload hash shaped);
- silver (not null, unique keys, ranges, formats): required columns, `event_id` unique, plausible ranges beyond
  the row rules (an order above 1,000,000 is an upstream bug, not a sale), normalised code formats;
- gold (reconciliation): keys unique, and totals equal to the silver totals they are computed from (computed by
  `quality.silver_totals` at the silver snapshots the round read).

Row-level rules (a bad e-mail, a negative quantity) stay in silver's SQL and quarantine single rows; these suites
judge a whole batch, after it was transformed: a failure means the batch, or the code, is wrong.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workloads.medallion.tables import (
    AUDIT_COLUMNS,
    AUDIT_FIELDS,
    EVENT_FIELDS,
    GOLD_FIELDS,
    GOLD_KEYS,
    SILVER_FIELDS,
    TOPICS,
    bronze,
    gold,
    silver,
)

# Money sums are compared in floating point: a reconciliation tolerates this much (half a cent).
SUM_TOLERANCE = 0.005


@dataclass(frozen=True)
class Check:
    expectation: str  # GX class name, e.g. ExpectColumnValuesToNotBeNull
    kwargs: dict[str, Any] = field(default_factory=dict)
    why: str = ""

    @property
    def column(self) -> str | None:
        return self.kwargs.get("column")

    def columns(self) -> set[str]:
        names = set(self.kwargs.get("column_list", ()))
        return names | ({self.column} if self.column else set())


@dataclass(frozen=True)
class Suite:
    name: str  # the table it checks
    layer: str
    checks: tuple[Check, ...]

    def columns(self) -> set[str]:
        return set().union(*(c.columns() for c in self.checks))


def _not_null(columns: list[str]) -> list[Check]:
    return [Check("ExpectColumnValuesToNotBeNull", {"column": c}, "required") for c in columns]


# A record's Kafka position: unique in bronze (the epoch, when bronze has it, tells a re-created topic apart).
POSITION = tuple(c for c in ("_topic", "_offset_epoch", "_partition", "_offset") if c in AUDIT_COLUMNS)
ENVELOPE = [f.name for f in AUDIT_FIELDS if f.required]


def bronze_suite(entity: str, columns: set[str] | frozenset[str] = frozenset()) -> Suite:
    """`columns`: the batch's columns, so an optional envelope column bronze does not have yet is not required.
    Required event fields are not checked here: the bronze reader quarantines records without them, and the
    silver suite checks them again after typing."""
    declared = [f.name for f in EVENT_FIELDS[entity]]
    position = [c for c in POSITION if c in ENVELOPE or c in columns]
    checks = [
        Check("ExpectTableColumnsToMatchSet", {"column_set": declared + ENVELOPE, "exact_match": False},
              "the declared event fields and the Kafka envelope are all there"),
        *_not_null(ENVELOPE),
        Check("ExpectColumnValuesToBeInSet", {"column": "_topic", "value_set": [TOPICS[entity]]},
              "rows come from the entity's topic"),
        Check("ExpectColumnValuesToBeBetween", {"column": "_partition", "min_value": 0}, "partition numbers"),
        Check("ExpectColumnValuesToBeBetween", {"column": "_offset", "min_value": 0}, "offsets"),
        Check("ExpectCompoundColumnsToBeUnique", {"column_list": position},
              "exactly once: a Kafka position is ingested once"),
        Check("ExpectColumnValuesToMatchRegex", {"column": "_payload_hash", "regex": r"^[0-9a-f]{32}$"},
              "xxh3-128 hex"),
    ]
    return Suite(bronze(entity), "bronze", tuple(checks))


_SILVER_EXTRA: dict[str, list[Check]] = {
    "customers": [
        Check("ExpectColumnValuesToMatchRegex", {"column": "email", "regex": r"^[^@\sA-Z]+@[^@\sA-Z]+\.[^@\sA-Z]+$"},
              "lower-case e-mail addresses"),
        Check("ExpectColumnValuesToMatchRegex", {"column": "country", "regex": r"^[A-Z]{2}$"}, "ISO 3166 alpha-2"),
        Check("ExpectColumnValuesToBeInSet", {"column": "event_type", "value_set": ["created", "updated"]}),
        Check("ExpectColumnValuesToBeInSet", {"column": "segment", "value_set": ["consumer", "business"]},
              "null allowed"),
    ],
    "orders": [
        Check("ExpectColumnValuesToBeInSet", {"column": "status",
                                              "value_set": ["placed", "paid", "shipped", "cancelled"]}),
        Check("ExpectColumnValuesToMatchRegex", {"column": "currency", "regex": r"^[A-Z]{3}$"}, "ISO 4217"),
        Check("ExpectColumnValuesToBeBetween", {"column": "total_amount", "min_value": 0, "max_value": 1_000_000},
              "plausible order totals"),
        Check("ExpectColumnValuesToBeBetween", {"column": "item_count", "min_value": 0, "max_value": 10_000}),
    ],
    "order_lines": [
        Check("ExpectColumnValuesToBeBetween", {"column": "quantity", "min_value": 1, "max_value": 10_000},
              "plausible quantities"),
        Check("ExpectColumnValuesToBeBetween", {"column": "unit_price", "min_value": 0, "max_value": 100_000},
              "plausible prices"),
        Check("ExpectColumnValuesToBeBetween", {"column": "discount", "min_value": 0, "max_value": 1,
                                                "strict_max": True}),
        Check("ExpectColumnValuesToBeBetween", {"column": "line_number", "min_value": 1}),
    ],
    "clickstream": [
        Check("ExpectColumnValuesToBeInSet", {"column": "action", "value_set": [
            "page_view", "product_view", "add_to_cart", "checkout", "purchase"]}),
        Check("ExpectColumnValueLengthsToBeBetween", {"column": "session_id", "min_value": 1, "max_value": 128}),
    ],
}


def silver_suite(entity: str) -> Suite:
    required = [f.name for f in SILVER_FIELDS[entity] if f.required]
    checks = [*_not_null(required),
              Check("ExpectColumnValuesToBeUnique", {"column": "event_id"}, "deduplicated by event id"),
              *_SILVER_EXTRA[entity]]
    return Suite(silver(entity), "silver", tuple(checks))


# Per gold table: (gold column, name of the silver total it must equal, tolerance).
RECONCILED: dict[str, list[tuple[str, str, float]]] = {
    "revenue_daily": [("revenue", "line_amount_sum", SUM_TOLERANCE), ("units", "quantity_sum", 0),
                      ("lines", "lines", 0)],
    "customer_ltv": [("orders", "placed_orders", 0), ("revenue", "placed_revenue", SUM_TOLERANCE)],
    "funnel_daily": [("sessions", "session_days", 0)],
}


def gold_suite(name: str, totals: dict[str, float]) -> Suite:
    """`totals`: the silver totals (`quality.silver_totals`) that the gold sums must reconcile with."""
    key = list(GOLD_KEYS[name])
    required = [f.name for f in GOLD_FIELDS[name] if f.required]
    checks = [*_not_null(required),
              Check("ExpectCompoundColumnsToBeUnique", {"column_list": key}, "one row per key")
              if len(key) > 1 else Check("ExpectColumnValuesToBeUnique", {"column": key[0]}, "one row per key")]
    for column, total, tolerance in RECONCILED[name]:
        value = float(totals[total])
        checks.append(Check("ExpectColumnSumToBeBetween",
                            {"column": column, "min_value": value - tolerance, "max_value": value + tolerance},
                            f"reconciles with silver: {total} = {value:g}"))
    if name == "funnel_daily":
        checks.append(Check("ExpectColumnValuesToBeBetween",
                            {"column": "conversion_rate", "min_value": 0, "max_value": 1}))
    return Suite(gold(name), "gold", tuple(checks))


# The silver totals each gold table reconciles with, as DuckDB SQL over the silver tables read at the round's
# snapshots (registered as relations named like the entity).
TOTALS_SQL = {
    "revenue_daily": "SELECT coalesce(sum(line_amount), 0) AS line_amount_sum, coalesce(sum(quantity), 0) "
                     "AS quantity_sum, count(*) AS lines FROM order_lines",
    "customer_ltv": "SELECT count(*) AS placed_orders, coalesce(sum(total_amount), 0) AS placed_revenue "
                    "FROM orders WHERE status = 'placed'",
    "funnel_daily": "SELECT count(*) AS session_days FROM (SELECT DISTINCT event_date, session_id FROM clickstream)",
}
TOTALS_COLUMNS = {"revenue_daily": {"order_lines": ("line_amount", "quantity")},
                  "customer_ltv": {"orders": ("status", "total_amount")},
                  "funnel_daily": {"clickstream": ("event_date", "session_id")}}

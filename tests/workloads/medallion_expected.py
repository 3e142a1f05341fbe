"""What the medallion tables must contain for a list of generated events, computed in plain Python (no DuckDB,
no Iceberg), so the pipeline is checked against an independent implementation of the same business rules."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from workloads.medallion.generator import Event
from workloads.medallion.tables import ENTITY_BY_TOPIC


@dataclass
class Expected:
    silver_counts: dict[str, int]
    revenue: dict[tuple[str, str], tuple[Decimal, int, int]] = field(default_factory=dict)
    ltv: dict[str, tuple[int, Decimal]] = field(default_factory=dict)
    funnel: dict[str, tuple[int, int, int, int, int]] = field(default_factory=dict)


def _cents(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def expected(events: list[Event]) -> Expected:
    seen: set[str] = set()
    unique: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        if isinstance(event.value, dict) and event.value["event_id"] not in seen:
            seen.add(event.value["event_id"])
            unique[ENTITY_BY_TOPIC[event.topic]].append(event.value)
    result = Expected({entity: len(rows) for entity, rows in unique.items()})

    revenue: dict = defaultdict(lambda: [Decimal(0), 0, 0])
    for line in unique["order_lines"]:
        amount = line["quantity"] * round(line["unit_price"], 2) * (1 - (line["discount"] or 0))
        slot = revenue[(line["event_time"][:10], line["category"])]
        slot[0] += _cents(amount)
        slot[1] += line["quantity"]
        slot[2] += 1
    result.revenue = {k: tuple(v) for k, v in revenue.items()}

    ltv: dict = defaultdict(lambda: [0, Decimal(0)])
    for order in unique["orders"]:
        if order["status"] == "placed":
            ltv[order["customer_id"]][0] += 1
            ltv[order["customer_id"]][1] += _cents(order["total_amount"])
    for customer in unique["customers"]:
        ltv.setdefault(customer["customer_id"], [0, Decimal(0)])
    result.ltv = {k: tuple(v) for k, v in ltv.items()}

    stages: dict = defaultdict(lambda: defaultdict(set))
    for click in unique["clickstream"]:
        day = stages[click["event_time"][:10]]
        day["sessions"].add(click["session_id"])
        day[click["action"]].add(click["session_id"])
    result.funnel = {d: (len(s["sessions"]), len(s["product_view"]), len(s["add_to_cart"]), len(s["checkout"]),
                         len(s["purchase"])) for d, s in stages.items()}
    return result

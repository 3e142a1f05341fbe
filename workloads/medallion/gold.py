"""silver -> gold: business aggregates, maintained incrementally.

Each gold table records in its snapshot summary the silver snapshots it has folded in. A round reads only the
silver rows appended since then and merges them into the current aggregate:
- revenue_daily and customer_ltv are additive (sums, counts, min/max): old aggregate + aggregate of the new rows;
- funnel_daily counts distinct sessions, which do not add up: the days the new rows touch are recomputed from
  silver (only those days are read; Iceberg file statistics prune the rest), the other days are kept.
Gold tables are small, so the merged result replaces the table in one overwrite that carries the watermarks.

Quality gate (`workloads.governance.gates`): the merged aggregate must reconcile with the silver totals at the
snapshots read (revenue = sum of line amounts, orders = placed orders, sessions = distinct sessions per day...);
when it does not, nothing is published and the watermarks stay, so the next round tries again.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from workloads.governance import gates
from workloads.medallion import state
from workloads.medallion.catalog import table
from workloads.medallion.commits import ATTEMPTS, commit
from workloads.medallion.tables import GOLD_SOURCES, gold, silver

MERGE_SQL = {
    "revenue_daily": """
        SELECT day, category, CAST(sum(revenue) AS DECIMAL(18, 2)) AS revenue, CAST(sum(units) AS BIGINT) AS units,
               CAST(sum(lines) AS BIGINT) AS lines
        FROM (
            SELECT day, category, revenue, units, lines FROM current_gold
            UNION ALL
            SELECT event_date, category, sum(line_amount), sum(quantity), count(*) FROM new_order_lines GROUP BY 1, 2
        ) GROUP BY day, category ORDER BY day, category
    """,
    "customer_ltv": """
        WITH profiles AS (
            SELECT customer_id, country, segment, profile_updated_at FROM current_gold
            WHERE profile_updated_at IS NOT NULL
            UNION ALL
            SELECT customer_id, country, segment, event_time FROM new_customers
        ), latest AS (
            SELECT customer_id, arg_max(country, profile_updated_at) AS country,
                   arg_max(segment, profile_updated_at) AS segment, max(profile_updated_at) AS profile_updated_at
            FROM profiles GROUP BY customer_id
        ), totals AS (
            SELECT customer_id, sum(orders) AS orders, sum(revenue) AS revenue, min(first_order_at) AS first_order_at,
                   max(last_order_at) AS last_order_at
            FROM (
                SELECT customer_id, orders, revenue, first_order_at, last_order_at FROM current_gold
                UNION ALL
                SELECT customer_id, count(*), sum(total_amount), min(event_time), max(event_time)
                FROM new_orders WHERE status = 'placed' GROUP BY customer_id
            ) GROUP BY customer_id
        )
        SELECT customer_id, l.country, l.segment, l.profile_updated_at,
               CAST(coalesce(t.orders, 0) AS BIGINT) AS orders,
               CAST(coalesce(t.revenue, 0) AS DECIMAL(18, 2)) AS revenue, t.first_order_at, t.last_order_at
        FROM latest l FULL OUTER JOIN totals t USING (customer_id)
        ORDER BY customer_id
    """,
    "funnel_daily": """
        WITH touched AS (SELECT DISTINCT event_date FROM new_clickstream),
        sessions AS (  -- one row per session and day: which stages it reached
            SELECT event_date, bool_or(action = 'product_view') AS viewed, bool_or(action = 'add_to_cart') AS carted,
                   bool_or(action = 'checkout') AS checked_out, bool_or(action = 'purchase') AS purchased
            FROM days_clickstream WHERE event_date IN (SELECT event_date FROM touched)
            GROUP BY event_date, session_id
        ),
        recomputed AS (
            SELECT event_date AS day, count(*) AS sessions, count_if(viewed) AS product_views,
                   count_if(carted) AS add_to_carts, count_if(checked_out) AS checkouts,
                   count_if(purchased) AS purchases
            FROM sessions GROUP BY event_date
        )
        SELECT day, sessions, product_views, add_to_carts, checkouts, purchases,
               CAST(purchases AS DOUBLE) / sessions AS conversion_rate
        FROM (
            SELECT day, sessions, product_views, add_to_carts, checkouts, purchases FROM current_gold
            WHERE day NOT IN (SELECT event_date FROM touched)
            UNION ALL
            SELECT * FROM recomputed
        ) ORDER BY day
    """,
}


@dataclass
class GoldResult:
    table: str
    new_rows: int
    rows: int
    snapshot_id: int | None
    seconds: float
    quality: list[Any] = field(default_factory=list)  # governance.quality.Report of the gate
    held: bool = False  # failed its quality gate: not published
    sources: dict[str, int | None] = field(default_factory=dict)  # silver snapshots read


def _days_clickstream(silver_table: Any, processed: int | None, new_rows: pa.Table) -> pa.Table:
    """All silver clickstream rows of the days the new rows touch: the new rows, plus the older rows of those days
    as of the snapshot processed last time (only those days are read)."""
    import pyarrow.compute as pc
    from pyiceberg.expressions import In

    columns = ["event_date", "session_id", "action"]
    days = pc.unique(new_rows.column("event_date")).to_pylist()
    if processed is None or not days:
        return new_rows.select(columns)
    older = silver_table.scan(row_filter=In("event_date", [d.isoformat() for d in days]),
                              selected_fields=tuple(columns), snapshot_id=processed).to_arrow()
    return pa.concat_tables([older.cast(new_rows.select(columns).schema), new_rows.select(columns)])


def refine_gold(name: str, catalog: Any = None, con: Any = None) -> GoldResult | None:
    """One incremental round for one gold table; None when its silver sources have nothing new."""
    from pyiceberg.exceptions import CommitFailedException

    from workloads.medallion.silver import utc_duckdb

    for _ in range(ATTEMPTS):
        started = time.perf_counter()
        target = table(gold(name), catalog)
        processed = state.source_snapshots(target)
        sources, heads = {}, {}
        for entity in GOLD_SOURCES[name]:
            source = table(silver(entity), catalog)
            head = source.current_snapshot()
            sources[entity] = source
            heads[silver(entity)] = head.snapshot_id if head is not None else None
        if not any(state.has_appends_after(source, processed.get(silver(entity)))
                   for entity, source in sources.items()):
            return None
        db = con or utc_duckdb()
        new_count = 0
        for entity, source in sources.items():
            head = heads[silver(entity)]
            if not state.has_appends_after(source, processed.get(silver(entity))):
                rows = source.scan(limit=0).to_arrow()
            else:
                rows = source.incremental_append_scan(from_snapshot_id_exclusive=processed.get(silver(entity)),
                                                      to_snapshot_id_inclusive=head).to_arrow()
            new_count += rows.num_rows
            db.register(f"new_{entity}", rows)
            if name == "funnel_daily":
                db.register("days_clickstream", _days_clickstream(source, processed.get(silver(entity)), rows))
        if new_count == 0:  # only empty appends (batches a quality gate set aside): nothing to fold in
            return None
        db.register("current_gold", target.scan().to_arrow())
        merged = db.sql(MERGE_SQL[name]).to_arrow_table()
        watermarks = {s: h for s, h in heads.items() if h is not None}
        gate = gates.gold_gate(name, merged, sources, heads, db,
                               ", ".join(f"{s} snapshot {h}" for s, h in sorted(heads.items())))
        if gate.blocked:
            return GoldResult(gold(name), new_count, merged.num_rows, None, time.perf_counter() - started,
                              gate.reports, True, heads)
        try:
            snapshot_id = commit(target, merged, state.sources_property({**processed, **watermarks}),
                                 overwrite=True)
        except CommitFailedException:
            continue
        return GoldResult(gold(name), new_count, merged.num_rows, snapshot_id, time.perf_counter() - started,
                          gate.reports, False, heads)
    raise RuntimeError(f"{gold(name)}: gave up after {ATTEMPTS} conflicting commits")

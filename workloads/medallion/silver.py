"""bronze -> silver: typed, validated, deduplicated, incremental.

Each round reads only the bronze rows appended since the bronze snapshot recorded in the silver table's own
snapshot summary (an incremental append scan), so progress and data commit together. In DuckDB:
- deduplicate by `event_id`: the first copy by Kafka position wins, and ids already in silver (looked up only in
  the event-time range of the new rows, which Iceberg's file statistics prune) are dropped;
- type: money to decimals, codes normalised, `event_date` derived;
- validate business rules; rows that break one go to `silver.quarantine` with the rule that failed.
New optional columns that bronze gained (schema evolution) are carried through as they are.

Quality gate (`workloads.governance.gates`): the bronze batch and the silver rows are checked by their Great
Expectations suites before anything is committed; a batch that fails goes whole to `silver.quarantine` (reason
code `quality_gate`, each row with its bronze record) and silver only advances its watermark past it, so none
of it reaches gold.

Commit order: silver.quarantine, then silver. If a crash falls in between, the quarantine's watermark is ahead;
the next round then refines exactly up to that snapshot without writing the rejects again.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from workloads.governance import gates
from workloads.medallion import state
from workloads.medallion.catalog import table
from workloads.medallion.commits import ATTEMPTS, arrow_schema, commit
from workloads.medallion.tables import AUDIT_COLUMNS, EVENT_FIELDS, SILVER_QUARANTINE, bronze, silver

TIME_OK = ("event_time >= TIMESTAMPTZ '2000-01-01 00:00:00+00' "
           "AND event_time <= now() + INTERVAL 1 DAY")

# Per entity: the typed columns, then the rules in order (first failing rule is the reason).
COLUMNS = {
    "customers": """event_id, event_time, CAST(event_time AS DATE) AS event_date, lower(event_type) AS event_type,
        customer_id, lower(trim(email)) AS email, nullif(trim(full_name), '') AS full_name,
        upper(country) AS country, lower(segment) AS segment""",
    "orders": """event_id, event_time, CAST(event_time AS DATE) AS event_date, order_id, customer_id,
        lower(status) AS status, upper(currency) AS currency,
        TRY_CAST(round(total_amount, 2) AS DECIMAL(12, 2)) AS total_amount, item_count,
        lower(payment_method) AS payment_method""",
    "order_lines": """event_id, event_time, CAST(event_time AS DATE) AS event_date, order_id, line_number,
        product_id, lower(category) AS category, quantity,
        TRY_CAST(round(unit_price, 2) AS DECIMAL(12, 2)) AS unit_price,
        TRY_CAST(coalesce(discount, 0) AS DECIMAL(4, 3)) AS discount,
        TRY_CAST(round(quantity * round(unit_price, 2) * (1 - coalesce(discount, 0)), 2) AS DECIMAL(12, 2))
            AS line_amount""",
    "clickstream": """event_id, event_time, CAST(event_time AS DATE) AS event_date, session_id, customer_id,
        lower(action) AS action, page, product_id, lower(device) AS device""",
}
RULES = {
    "customers": [
        ("lower(event_type) IN ('created', 'updated')", "event_type must be created or updated"),
        (r"regexp_full_match(trim(email), '[^@\s]+@[^@\s]+\.[^@\s]+')", "email is not an e-mail address"),
        ("regexp_full_match(country, '[A-Za-z]{2}')", "country must be an ISO 3166 alpha-2 code"),
        ("segment IS NULL OR lower(segment) IN ('consumer', 'business')", "segment must be consumer or business"),
    ],
    "orders": [
        ("lower(status) IN ('placed', 'paid', 'shipped', 'cancelled')", "status is not a known order status"),
        ("regexp_full_match(currency, '[A-Za-z]{3}')", "currency must be an ISO 4217 code"),
        ("total_amount >= 0 AND TRY_CAST(round(total_amount, 2) AS DECIMAL(12, 2)) IS NOT NULL",
         "total_amount must be between 0 and 9,999,999,999.99"),
        ("item_count IS NULL OR item_count >= 0", "item_count must not be negative"),
    ],
    "order_lines": [
        ("line_number >= 1", "line_number must be at least 1"),
        ("quantity > 0", "quantity must be positive"),
        ("unit_price >= 0 AND TRY_CAST(round(unit_price, 2) AS DECIMAL(12, 2)) IS NOT NULL",
         "unit_price must be between 0 and 9,999,999,999.99"),
        ("discount IS NULL OR (discount >= 0 AND discount < 1)", "discount must be in [0, 1)"),
        ("TRY_CAST(round(quantity * round(unit_price, 2) * (1 - coalesce(discount, 0)), 2) AS DECIMAL(12, 2)) "
         "IS NOT NULL", "line amount out of range"),
    ],
    "clickstream": [
        ("lower(action) IN ('page_view', 'product_view', 'add_to_cart', 'checkout', 'purchase')",
         "action is not a known clickstream action"),
    ],
}
LINEAGE = "_ingested_at, _partition, _offset"


@dataclass
class SilverResult:
    table: str
    source_rows: int
    rows: int
    duplicates: int
    quarantined: int
    snapshot_id: int | None
    seconds: float
    quality: list[Any] = field(default_factory=list)  # governance.quality.Report per suite run
    gated: bool = False  # the batch failed its quality gate and was quarantined whole
    source: str = ""  # the bronze table read


def _reason_sql(entity: str) -> str:
    rules = [(TIME_OK, "event_time is before 2000 or more than a day in the future")] + RULES[entity]
    cases = " ".join(f"WHEN NOT coalesce({check}, false) THEN '{why}'" for check, why in rules)
    return f"CASE {cases} END"


def transform_sql(entity: str, extra_columns: list[str]) -> str:
    """The bronze -> silver SELECT over `new_rows` (bronze rows) and `known_ids` (event ids already in silver).

    Rows with a `_reject_reason` broke a rule; `_record` is then the bronze row as JSON, for the quarantine."""
    extras = "".join(f", {c}" for c in extra_columns)
    return f"""
        WITH ranked AS (
            SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY _ingested_at, _partition, _offset) AS copy
            FROM new_rows
        ), fresh AS (
            SELECT * EXCLUDE (copy), {_reason_sql(entity)} AS _reject_reason FROM ranked
            WHERE copy = 1 AND NOT EXISTS (SELECT 1 FROM known_ids k WHERE k.event_id = ranked.event_id)
        )
        SELECT {COLUMNS[entity]}{extras}, {LINEAGE}, _reject_reason,
               CASE WHEN _reject_reason IS NOT NULL THEN to_json(fresh) END AS _record
        FROM fresh
    """


@dataclass
class _Plan:
    bronze_table: Any
    silver_table: Any
    quarantine_table: Any
    start: int | None  # last bronze snapshot already in silver (exclusive)
    target: int  # bronze snapshot to refine up to (inclusive)
    write_rejects: bool


def _plan(entity: str, catalog: Any) -> _Plan | None:
    source = bronze(entity)
    bronze_table = table(source, catalog)
    current = bronze_table.current_snapshot()
    if current is None:
        return None
    silver_table, quarantine_table = table(silver(entity), catalog), table(SILVER_QUARANTINE, catalog)
    start = state.source_snapshots(silver_table).get(source)
    if start is not None and bronze_table.metadata.snapshot_by_id(start) is None:
        raise RuntimeError(f"{silver(entity)} was last refined up to {source} snapshot {start}, which no longer "
                           "exists (expired outside `maintain`?): an incremental read cannot start there")
    rejects_at = state.source_snapshots(quarantine_table).get(source)
    if not state.has_appends_after(bronze_table, start):
        return None
    pending = state.snapshots_after(bronze_table, start)
    if rejects_at is not None and rejects_at in pending:
        # A crash came between the two commits: catch up to where the rejects were written, without rewriting them.
        return _Plan(bronze_table, silver_table, quarantine_table, start, rejects_at, False)
    return _Plan(bronze_table, silver_table, quarantine_table, start, current.snapshot_id, True)


def _known_ids(silver_table: Any, new_rows: pa.Table) -> pa.Table:
    """Event ids already in silver within the new rows' event-time range (file statistics prune the scan)."""
    from pyiceberg.expressions import And, GreaterThanOrEqual, LessThanOrEqual

    if silver_table.current_snapshot() is None or new_rows.num_rows == 0:
        return pa.table({"event_id": pa.array([], pa.string())})
    low, high = pc.min_max(new_rows.column("event_time")).values()
    window = And(GreaterThanOrEqual("event_time", low.value), LessThanOrEqual("event_time", high.value))
    return silver_table.scan(row_filter=window, selected_fields=("event_id",)).to_arrow()


def refine_silver(entity: str, catalog: Any = None, con: Any = None) -> SilverResult | None:
    """One incremental round for one entity; None when bronze has nothing new."""
    from pyiceberg.exceptions import CommitFailedException

    for _ in range(ATTEMPTS):
        started = time.perf_counter()
        plan = _plan(entity, catalog)
        if plan is None:
            return None
        known = {f.name for f in EVENT_FIELDS[entity]} | set(AUDIT_COLUMNS)
        bronze_columns = plan.bronze_table.schema().column_names
        extras = [f for f in arrow_schema(plan.bronze_table.schema()) if f.name not in known]
        needed = ([f.name for f in EVENT_FIELDS[entity]] + [f.name for f in extras] + LINEAGE.split(", ")
                  + gates.envelope_columns(bronze_columns))
        new_rows = plan.bronze_table.incremental_append_scan(
            from_snapshot_id_exclusive=plan.start, to_snapshot_id_inclusive=plan.target,
            selected_fields=tuple(needed)).to_arrow()
        known_ids = _known_ids(plan.silver_table, new_rows)
        db = con or utc_duckdb()
        db.register("new_rows", new_rows)
        db.register("known_ids", known_ids)
        out = db.sql(transform_sql(entity, [f.name for f in extras])).to_arrow_table()
        reasons = out.column("_reject_reason")
        if reasons.null_count == out.num_rows:  # the usual case: skip copying the rows through a filter
            rejects, rows = out.slice(0, 0), out
        else:
            valid = reasons.is_null()
            rejects, rows = out.filter(pc.invert(valid)), out.filter(valid)
        rows = rows.drop_columns(["_reject_reason", "_record"])
        source = bronze(entity)
        gate = gates.silver_gate(entity, new_rows, rows, f"{source} snapshots ({plan.start}, {plan.target}]")
        quarantined = _quarantine(source, rejects)
        if gate.blocked:  # the whole batch is set aside: its rejects as they are, every other row with the gate
            quarantined = pa.concat_tables([quarantined, _gated(db, source, rows, gate.reason())])
            rows = rows.slice(0, 0)
        db.unregister("new_rows")
        db.unregister("known_ids")
        silver_names = set(plan.silver_table.schema().column_names)
        new_fields = [f for f in extras if f.name not in silver_names]
        try:
            if quarantined.num_rows and plan.write_rejects:
                processed = state.source_snapshots(plan.quarantine_table)
                commit(plan.quarantine_table, quarantined,
                       state.sources_property({**processed, source: plan.target}))
            processed = state.source_snapshots(plan.silver_table)
            snapshot_id = commit(plan.silver_table, rows, state.sources_property({**processed, source: plan.target}),
                                 new_fields=new_fields)
        except CommitFailedException:
            continue
        return SilverResult(silver(entity), new_rows.num_rows, rows.num_rows,
                            new_rows.num_rows - out.num_rows, quarantined.num_rows, snapshot_id,
                            time.perf_counter() - started, gate.reports, gate.blocked, source)
    raise RuntimeError(f"{silver(entity)}: gave up after {ATTEMPTS} conflicting commits")


def utc_duckdb() -> Any:
    """A DuckDB connection whose casts of timestamps to dates give UTC days, whatever the machine's zone."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # event_date is the UTC day
    return con


def _quarantine(source: str, rejects: pa.Table, code: str = "invalid_value") -> pa.Table:
    from workloads.medallion.quarantine import quarantine_rows

    records = [r.encode() for r in rejects.column("_record").to_pylist()]
    n = rejects.num_rows
    return quarantine_rows(datetime.now(timezone.utc), source, rejects.column("_partition").to_pylist(),
                           rejects.column("_offset").to_pylist(), rejects.column("event_id").to_pylist(),
                           [code] * n, rejects.column("_reject_reason").to_pylist(), records,
                           max_bytes=1 << 20)


def _gated(db: Any, source: str, rows: pa.Table, reason: str) -> pa.Table:
    """Quarantine rows for the valid rows of a batch that failed its quality gate, each with its bronze record
    (looked up in `new_rows` by Kafka position)."""
    db.register("gated_positions", rows.select(["_partition", "_offset"]))
    try:
        records = db.sql("SELECT n._partition, n._offset, n.event_id, to_json(n) AS _record FROM new_rows n "
                         "SEMI JOIN gated_positions g USING (_partition, _offset)").to_arrow_table()
    finally:
        db.unregister("gated_positions")
    records = records.append_column("_reject_reason", pa.array([reason] * records.num_rows, pa.string()))
    return _quarantine(source, records, gates.REASON_CODE)

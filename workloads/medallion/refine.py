"""One refine round: every silver table from its bronze table, then every gold table from its silver tables."""
from __future__ import annotations

from typing import Any

from workloads.medallion.gold import GoldResult, refine_gold
from workloads.medallion.silver import SilverResult, refine_silver, utc_duckdb
from workloads.medallion.tables import ENTITIES, GOLD_FIELDS


def refine_once(catalog: Any = None, log: Any = None) -> list[SilverResult | GoldResult]:
    """Refine what is new; returns one result per table that changed (empty when nothing was new)."""
    con = utc_duckdb()
    results: list[SilverResult | GoldResult] = []
    for entity in ENTITIES:
        if (result := refine_silver(entity, catalog, con)) is not None:
            results.append(result)
            if log:
                log.info("silver batch", table=result.table, source_rows=result.source_rows, rows=result.rows,
                         duplicates=result.duplicates, quarantined=result.quarantined,
                         snapshot_id=result.snapshot_id, seconds=round(result.seconds, 3))
    for name in GOLD_FIELDS:
        if (result := refine_gold(name, catalog, con)) is not None:
            results.append(result)
            if log:
                log.info("gold batch", table=result.table, new_rows=result.new_rows, rows=result.rows,
                         snapshot_id=result.snapshot_id, seconds=round(result.seconds, 3))
    return results

"""One refine round: every silver table from its bronze table, then every gold table from its silver tables.

Governance around each job: an OpenLineage run (START, then COMPLETE, or FAIL when the job raised or its quality
gate stopped the batch) with the output's schema, column lineage and row count; the quality suites' results are
recorded in `governance.quality_results` at the end of the round. Neither can fail the round: lineage outages are
counted, a results table that cannot be written is logged.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from workloads.medallion.gold import MERGE_SQL, GoldResult, refine_gold
from workloads.medallion.silver import SilverResult, refine_silver, utc_duckdb
from workloads.medallion.tables import ENTITIES, GOLD_FIELDS, gold, silver


def refine_once(catalog: Any = None, log: Any = None) -> list[SilverResult | GoldResult]:
    """Refine what is new; returns one result per table that changed (empty when nothing was new). A gold
    aggregate held back by its quality gate changed nothing: it is logged and recorded, not returned."""
    con = utc_duckdb()
    results: list[SilverResult | GoldResult] = []
    recorded: list[tuple[Any, str, str | None]] = []
    for entity in ENTITIES:
        result, run_id = _observed(silver(entity), lambda e=entity: refine_silver(e, catalog, con), catalog)
        if result is None:
            continue
        results.append(result)
        recorded += [(r, "quarantined" if result.gated else _action(r), run_id) for r in result.quality]
        if log:
            log.info("silver batch", table=result.table, source_rows=result.source_rows, rows=result.rows,
                     duplicates=result.duplicates, quarantined=result.quarantined, gated=result.gated or None,
                     snapshot_id=result.snapshot_id, seconds=round(result.seconds, 3))
    for name in GOLD_FIELDS:
        result, run_id = _observed(gold(name), lambda n=name: refine_gold(n, catalog, con), catalog,
                                   MERGE_SQL[name])
        if result is None:
            continue
        recorded += [(r, "held" if result.held else _action(r), run_id) for r in result.quality]
        if result.held:
            if log:
                log.error("gold batch held by its quality gate", table=result.table, new_rows=result.new_rows,
                          failed="; ".join(r.summary() for r in result.quality if not r.success))
            continue
        results.append(result)
        if log:
            log.info("gold batch", table=result.table, new_rows=result.new_rows, rows=result.rows,
                     snapshot_id=result.snapshot_id, seconds=round(result.seconds, 3))
    _record_quality(catalog, recorded)
    return results


def _action(report: Any) -> str:
    return "published" if report.success else "warned"


def _observed(output: str, job: Callable[[], SilverResult | GoldResult | None], catalog: Any,
              sql: str | None = None) -> tuple[SilverResult | GoldResult | None, str]:
    """Run one job inside an OpenLineage run; emits nothing when the job found nothing to do."""
    from workloads.governance.lineage import JobRun

    run = JobRun(output, sql)
    try:
        result = job()
    except Exception as exc:
        run.fail(exc, _inputs(output, None))
        raise
    if result is not None:
        _emit(run, output, result, catalog)
    return result, run.run_id


def _inputs(output: str, result: SilverResult | GoldResult | None) -> list[Any]:
    from workloads.governance import lineage
    from workloads.governance.column_lineage import job_inputs

    assertions = {}
    for report in getattr(result, "quality", ()):
        if report.layer == "bronze":
            assertions[report.suite] = report.assertions()
    return [lineage.dataset(name, assertions=assertions.get(name)) for name in job_inputs(output)]


def _emit(run: Any, output: str, result: SilverResult | GoldResult, catalog: Any) -> None:
    from workloads.governance import lineage
    from workloads.governance.column_lineage import InputField, job_lineage
    from workloads.medallion.catalog import table
    from workloads.medallion.tables import SILVER_QUARANTINE

    schema = table(output, catalog).schema()
    columns = dict(job_lineage(output))
    if output.startswith("silver."):  # evolved columns are carried as they are
        source = output.replace("silver.", "bronze.", 1)
        for f in schema.fields:
            columns.setdefault(f.name, (InputField(source, f.name, "DIRECT", "IDENTITY"),))
    own = [r.assertions() for r in result.quality if r.suite == output]
    outputs = [lineage.dataset(output, schema=schema, columns=columns, output=True, rows=result.rows,
                               assertions=own[0] if own else None)]
    if isinstance(result, SilverResult) and result.quarantined:
        outputs.append(lineage.dataset(SILVER_QUARANTINE, output=True, rows=result.quarantined))
    failure = None
    if getattr(result, "gated", False):
        failure = f"quality gate: batch quarantined in {SILVER_QUARANTINE}"
    elif getattr(result, "held", False):
        failure = "quality gate: aggregate not published"
    if failure:
        failure += " (" + "; ".join(f"{r.suite}: {r.summary()}" for r in result.quality if not r.success) + ")"
    run.finish(_inputs(output, result), outputs, failure)


def _record_quality(catalog: Any, entries: list[tuple[Any, str, str | None]]) -> None:
    if not entries:
        return
    from workloads.common.platform import load_catalog
    from workloads.governance.results import record_quality

    try:
        record_quality(catalog or load_catalog(), entries)
    except Exception as exc:  # noqa: BLE001 - the data is committed; losing a record must not fail the round
        structlog.get_logger().error("quality results not recorded", error=f"{type(exc).__name__}: {exc}")

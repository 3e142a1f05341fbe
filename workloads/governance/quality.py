"""Running the quality suites (`expectations.py`) with Great Expectations 1.x over an Arrow batch, and what a
gate decides from the result.

GX is imported on first use (2-4 s), with its progress bars and usage statistics off: the jobs that call it run
unattended. One ephemeral GX context per process holds a pandas datasource; each batch is handed over as a
DataFrame of only the columns the suite reads (decimals as float64, so sums and ranges are numeric).
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from workloads.governance.expectations import TOTALS_COLUMNS, TOTALS_SQL, Suite

_lock = threading.Lock()
_gx: dict[str, Any] = {}


@dataclass(frozen=True)
class Outcome:
    expectation: str  # snake_case GX type, e.g. expect_column_values_to_not_be_null
    column: str | None
    success: bool
    observed: str | None  # observed value or unexpected count/share, for a person
    why: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        target = f"({self.column})" if self.column else ""
        return f"{self.expectation}{target}: {self.observed}" if self.observed else f"{self.expectation}{target}"


@dataclass
class Report:
    suite: str  # the table checked
    layer: str
    rows: int
    outcomes: list[Outcome]
    checked_at: datetime
    seconds: float
    batch: str = ""  # what was checked, e.g. "bronze.orders snapshots (1, 2]"

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]

    def summary(self) -> str:
        passed = len(self.outcomes) - len(self.failures)
        text = f"{passed}/{len(self.outcomes)} expectations passed on {self.rows} rows"
        return text + ("" if self.success else "; failed: " + "; ".join(o.describe() for o in self.failures))

    def assertions(self) -> list[dict[str, Any]]:
        """As OpenLineage data quality assertions."""
        return [{"assertion": o.expectation, "success": o.success, "column": o.column,
                 "actual": o.observed, "description": o.why or None} for o in self.outcomes]

    def details(self) -> str:
        return json.dumps([{"expectation": o.expectation, "column": o.column, "success": o.success,
                            "observed": o.observed, "kwargs": o.kwargs} for o in self.outcomes], default=str)


def _context() -> tuple[Any, Any, Any]:
    """(gx module's expectations, the pandas batch definition) of this process's ephemeral context."""
    with _lock:
        if not _gx:
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
            import great_expectations as gx
            import great_expectations.expectations as gxe
            from great_expectations.data_context.types.base import ProgressBarsConfig

            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            source = context.data_sources.add_pandas("dp_batches")
            batch_definition = source.add_dataframe_asset("batch").add_batch_definition_whole_dataframe("whole")
            _gx.update(gx=gx, gxe=gxe, batch_definition=batch_definition)
        return _gx["gx"], _gx["gxe"], _gx["batch_definition"]


def _frame(rows: pa.Table, columns: set[str], names_only: set[str]) -> Any:
    """The columns the suite reads as pandas; decimals become float64 (GX compares numbers, not Decimals).
    Columns only checked for presence (`names_only`) are not converted: a placeholder carries the name."""
    present = [c for c in rows.column_names if c in columns]
    selected = rows.select(present)
    casts = [pa.field(f.name, pa.float64()) if pa.types.is_decimal(f.type) else f for f in selected.schema]
    frame = selected.cast(pa.schema(casts)).to_pandas()
    for name in rows.column_names:
        if name in names_only and name not in frame.columns:
            frame[name] = 0
    return frame


def _observed(result: dict[str, Any]) -> str | None:
    if result.get("unexpected_count"):
        sample = result.get("partial_unexpected_list") or []
        return (f"{result['unexpected_count']} unexpected ({result.get('unexpected_percent', 0):.2f}%), e.g. "
                f"{json.dumps(sample[:3], default=str)}")
    if result.get("observed_value") is not None:
        value = result["observed_value"]
        return json.dumps(value if isinstance(value, (list, int, str)) else float(value), default=str)
    return None


def run_suite(suite: Suite, rows: pa.Table, batch: str = "") -> Report:
    """Validate `rows` against `suite`; a column the batch lacks fails its expectations (GX reports it)."""
    started = time.perf_counter()
    gx, gxe, batch_definition = _context()
    # GX reports results in an order of its own: `meta` carries each check's position back.
    expectations = [getattr(gxe, check.expectation)(**check.kwargs, meta={"dp_check": i})
                    for i, check in enumerate(suite.checks)]
    frame = _frame(rows, suite.columns(), {c for check in suite.checks for c in check.kwargs.get("column_set", ())})
    gx_suite = gx.ExpectationSuite(name=suite.name, expectations=expectations)
    result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
        gx_suite, result_format="BASIC")
    outcomes = []
    for item in sorted(result.results, key=lambda r: r.expectation_config.meta["dp_check"]):
        check = suite.checks[item.expectation_config.meta["dp_check"]]
        failure = (item.exception_info or {}).get("exception_message") if not item.success else None
        observed = _observed(item.result or {}) or failure
        outcomes.append(Outcome(item.expectation_config.type, check.column, bool(item.success), observed,
                                check.why, check.kwargs))
    return Report(suite.name, suite.layer, rows.num_rows, outcomes, datetime.now(UTC),
                  time.perf_counter() - started, batch)


def silver_totals(name: str, tables: dict[str, Any], snapshots: dict[str, int | None], con: Any) -> dict[str, float]:
    """The silver totals gold.<name> must reconcile with, over the silver tables as of `snapshots`
    ({"silver.orders": snapshot id}); only the columns the totals need are read."""
    for entity, columns in TOTALS_COLUMNS[name].items():
        snapshot = snapshots.get(f"silver.{entity}")
        source = tables[entity]
        rows = (source.scan(selected_fields=columns, snapshot_id=snapshot).to_arrow() if snapshot is not None
                else source.scan(selected_fields=columns, limit=0).to_arrow())
        con.register(entity, rows)
    try:
        totals = con.sql(TOTALS_SQL[name]).to_arrow_table().to_pylist()[0]
    finally:
        for entity in TOTALS_COLUMNS[name]:
            con.unregister(entity)
    return {n: float(v) for n, v in totals.items()}

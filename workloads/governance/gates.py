"""Quality gates inside the medallion flow: what silver and gold call before they publish a batch.

- silver: the bronze batch it read (schema and envelope) and the silver rows it made (not null, unique, ranges,
  formats); when either fails, the whole batch goes to `silver.quarantine` (reason code `quality_gate`) instead
  of silver, so nothing of it reaches gold;
- gold: the merged aggregate, reconciled with the silver totals; when it fails, the aggregate is not published
  (the table keeps its current snapshot and watermarks, so the next round tries again).

`DP_QUALITY_GATES=warn` records failures without acting on them, `off` skips the suites.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from workloads.governance import settings

REASON_CODE = "quality_gate"


@dataclass
class Gate:
    reports: list[Any] = field(default_factory=list)  # quality.Report
    mode: str = "enforce"

    @property
    def failed(self) -> bool:
        return any(not r.success for r in self.reports)

    @property
    def blocked(self) -> bool:
        return self.failed and self.mode == "enforce"

    def reason(self) -> str:
        failed = [r for r in self.reports if not r.success]
        return "quality gate failed: " + " | ".join(f"{r.suite}: {r.summary()}" for r in failed)

    def action(self, report: Any, blocked_action: str) -> str:
        if report.success or not self.failed:
            return "published"
        return blocked_action if self.blocked else "warned"


def silver_gate(entity: str, bronze_rows: pa.Table, silver_rows: pa.Table, batch: str) -> Gate:
    mode = settings.gate_mode()
    if mode == "off":
        return Gate(mode=mode)
    from workloads.governance.expectations import bronze_suite, silver_suite
    from workloads.governance.quality import run_suite

    reports = [run_suite(bronze_suite(entity, set(bronze_rows.column_names)), bronze_rows, batch),
               run_suite(silver_suite(entity), silver_rows, batch)]
    return Gate(reports, mode)


def gold_gate(name: str, merged: pa.Table, silver_tables: dict[str, Any], heads: dict[str, int | None],
              con: Any, batch: str) -> Gate:
    mode = settings.gate_mode()
    if mode == "off":
        return Gate(mode=mode)
    from workloads.governance.expectations import gold_suite
    from workloads.governance.quality import run_suite, silver_totals

    totals = silver_totals(name, silver_tables, heads, con)
    return Gate([run_suite(gold_suite(name, totals), merged, batch)], mode)


def envelope_columns(available: list[str]) -> list[str]:
    """Bronze columns the envelope suite reads beyond what silver reads anyway (those the table has)."""
    if settings.gate_mode() == "off":
        return []
    from workloads.medallion.tables import AUDIT_COLUMNS

    return [c for c in AUDIT_COLUMNS if c in available and c not in ("_ingested_at", "_partition", "_offset")]

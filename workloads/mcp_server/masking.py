"""The secured view of a table, as SQL: the columns a query scans, with PII columns masked for callers without
PII rights (governance's masks: redact, hash, partial, null). Both engines use it, so masking is one
mechanism: DuckDB creates it as a view named like the table, Trino substitutes it for the table reference as a subquery. Masking happens before the caller's SQL
sees the data, so a filter, join or aggregate over a masked column only ever sees the mask."""
from __future__ import annotations

from sqlglot import exp

from workloads.governance.masking import mask_sql
from workloads.mcp_server.sql_guard import TableAccess


def secured_select(access: TableAccess, source: exp.Table, strategy: str) -> exp.Select:
    """`SELECT <scan columns, masked where needed> FROM source`; a masked column gets the mask its policy
    decision names (by classification), else `strategy` (the policy's default)."""
    masks = {c.name: c.mask or strategy for c in access.columns if c.access == "masked"}
    projections = [
        mask_sql(name, masks[name], access.column_types.get(name, "")) if name in masks
        else exp.column(name, quoted=True)
        for name in access.scan_columns
    ]
    return exp.select(*projections).from_(source)

"""The secured view of a table, as SQL: the columns a query scans, with PII columns masked for callers without
PII rights. Both engines use it, so masking is one mechanism: DuckDB creates it as a view named like the
table, Trino substitutes it for the table reference as a subquery. Masking happens before the caller's SQL
sees the data, so a filter, join or aggregate over a masked column only ever sees the mask."""
from __future__ import annotations

from typing import Literal

from sqlglot import exp

from workloads.mcp_server.sql_guard import TableAccess

REDACTED = "***"


def _masked(column: str, iceberg_type: str, strategy: Literal["redact", "null"]) -> exp.Expression:
    ident = exp.column(column, quoted=True)
    if strategy == "redact" and iceberg_type == "string":
        value: exp.Expression = exp.case().when(exp.Is(this=ident, expression=exp.null()), exp.null()).else_(
            exp.Literal.string(REDACTED))
    else:
        value = exp.null()
    return exp.alias_(value, column, quoted=True)


def secured_select(access: TableAccess, source: exp.Table, strategy: Literal["redact", "null"]) -> exp.Select:
    """`SELECT <scan columns, masked where needed> FROM source`."""
    how = {c.name: c.access for c in access.columns}
    projections = [
        _masked(name, access.column_types.get(name, ""), strategy) if how.get(name) == "masked"
        else exp.column(name, quoted=True)
        for name in access.scan_columns
    ]
    return exp.select(*projections).from_(source)

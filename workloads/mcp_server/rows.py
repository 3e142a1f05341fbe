"""Arrow record batches to JSON-safe rows with a row limit: dates and times as ISO 8601, decimals as strings
(exact), binary as base64, everything else as JSON already has it."""
from __future__ import annotations

import base64
import datetime as dt
import decimal
import uuid
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from workloads.mcp_server.models import ResultColumn


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        # Arrow maps come back as lists of (key, value) pairs
        return [jsonable(v) for v in value]
    return str(value)


def collect(schema: pa.Schema, batches: Iterable[pa.RecordBatch], limit: int) -> tuple[list[ResultColumn],
                                                                                     list[list[Any]], bool]:
    """Columns, at most `limit` rows, and whether more rows were there."""
    columns = [ResultColumn(name=f.name, type=str(f.type)) for f in schema]
    rows: list[list[Any]] = []
    for batch in batches:
        values = [column.to_pylist() for column in batch.columns]
        for row in zip(*values, strict=True):
            if len(rows) == limit:
                return columns, rows, True
            rows.append([jsonable(v) for v in row])
    return columns, rows, False

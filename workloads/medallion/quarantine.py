"""Rows of the quarantine tables (bronze: unreadable records; silver: rows that broke a business rule)."""
from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import xxhash

from workloads.medallion.commits import arrow_schema
from workloads.medallion.tables import quarantine_schema


def quarantine_rows(at: datetime, source: str, partitions: list[int | None], offsets: list[int | None],
                    event_ids: list[str | None], codes: list[str], reasons: list[str],
                    payloads: list[bytes | None], max_bytes: int) -> pa.Table:
    """One row per rejected record; the payload is kept whole up to `max_bytes` (its size and hash always)."""
    n = len(codes)
    return pa.Table.from_pydict({
        "quarantined_at": [at] * n,
        "source": [source] * n,
        "partition": partitions,
        "offset": offsets,
        "event_id": event_ids,
        "reason_code": codes,
        "reason": reasons,
        "payload": [None if p is None else p[:max_bytes] for p in payloads],
        "payload_bytes": [0 if p is None else len(p) for p in payloads],
        "payload_hash": [None if p is None else xxhash.xxh3_128_hexdigest(p) for p in payloads],
    }, schema=arrow_schema(quarantine_schema()))

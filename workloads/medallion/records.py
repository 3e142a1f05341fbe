"""Reading a micro-batch of raw Kafka values into Arrow, sorting out the ones that cannot be read.

Fast path: the values are joined with newlines and parsed in one `pyarrow.json` call against the bronze table's
schema (multi-threaded C++). When that fails, the batch is bisected so that the bad records are isolated while the
good ones are still parsed in bulk; each isolated record is then examined in Python to say what is wrong with it.
Nothing is dropped: every record ends up either in the returned table or in `rejects` with a reason.

Fields the schema does not know yet are inferred by pyarrow and returned as `new_fields`: the caller evolves the
table's schema in the same commit (schema evolution without a deploy, like the Kafka Connect sink's
`evolve-schema-enabled`). New fields must be flat (string, number, boolean, timestamp) and named like a column.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.json as pj

COLUMN_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_CHUNK = 4096
_READ_OPTIONS = pj.ReadOptions(block_size=16 << 20)  # fewer, larger blocks parse faster
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class Reject:
    index: int  # position in the batch
    code: str
    reason: str
    event_id: str | None = None


@dataclass
class ParsedBatch:
    table: pa.Table  # the readable records, known columns first, then new fields
    indices: np.ndarray  # position in the batch of each row of `table`
    rejects: list[Reject] = field(default_factory=list)
    new_fields: list[pa.Field] = field(default_factory=list)


class _DuplicateField(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateField(key)
        seen[key] = value
    return seen


_TYPE_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


def _json_type(value: object) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _type_error(name: str, value: object, arrow_type: pa.DataType) -> str | None:
    """Why `value` cannot be stored in a column of `arrow_type`, or None when it can."""
    if pa.types.is_string(arrow_type):
        ok, expected = isinstance(value, str), "a string"
    elif pa.types.is_integer(arrow_type):
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "an integer"
        if ok and not _INT64[0] <= value <= _INT64[1]:
            return f"field '{name}' is out of the 64-bit integer range: {value}"
    elif pa.types.is_floating(arrow_type):
        ok, expected = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif pa.types.is_boolean(arrow_type):
        ok, expected = isinstance(value, bool), "a boolean"
    elif pa.types.is_timestamp(arrow_type):
        ok, expected = isinstance(value, str), "an ISO-8601 timestamp string"
        if ok:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                return f"field '{name}' is not an ISO-8601 timestamp: {value[:64]!r}"
    else:
        return None
    return None if ok else f"field '{name}' must be {expected}, got {_json_type(value)} {json.dumps(value)[:64]}"


def classify(raw: bytes, schema: pa.Schema, required: set[str]) -> tuple[str, str, str | None] | None:
    """(reason_code, reason, event_id) for one record that pyarrow could not read; None if nothing is wrong."""
    try:
        obj = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as exc:
        return "malformed_json", f"not UTF-8 text: {exc}", None
    except _DuplicateField as exc:
        return "duplicate_field", f"field '{exc.args[0]}' appears more than once", None
    except ValueError as exc:
        return "malformed_json", f"malformed JSON: {exc}", None
    if not isinstance(obj, dict):
        return "not_an_object", f"expected a JSON object, got {_json_type(obj)}", None
    event_id = obj.get("event_id") if isinstance(obj.get("event_id"), str) else None
    for f in schema:
        value = obj.get(f.name)
        if value is not None and (problem := _type_error(f.name, value, f.type)):
            return "wrong_type", problem, event_id
    if absent := [f.name for f in schema if f.name in required and obj.get(f.name) is None]:
        return "missing_field", missing_reason(absent), event_id
    for name, value in obj.items():
        if name not in schema.names and isinstance(value, (dict, list)):
            why = f"new field '{name}' is nested ({_json_type(value)}): only flat fields evolve"
            return "unsupported_field", why, event_id
    return None


def _read(values: list[bytes], schema: pa.Schema) -> pa.Table:
    joined = b"\n".join(values)
    if joined.count(b"\n") != len(values) - 1:  # a raw newline inside a record would split it
        raise pa.ArrowInvalid("a record contains a raw newline")
    table = pj.read_json(pa.BufferReader(pa.py_buffer(joined)), read_options=_READ_OPTIONS,
                         parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer"))
    if table.num_rows != len(values):
        raise pa.ArrowInvalid(f"read {table.num_rows} rows from {len(values)} records")
    return table


def _bisect(values: list[bytes], idx: np.ndarray, schema: pa.Schema,
            good: list[tuple[pa.Table, np.ndarray]], bad: list[int]) -> None:
    try:
        good.append((_read(values, schema), idx))
    except pa.ArrowInvalid:
        if len(values) == 1:
            bad.append(int(idx[0]))
            return
        mid = len(values) // 2
        _bisect(values[:mid], idx[:mid], schema, good, bad)
        _bisect(values[mid:], idx[mid:], schema, good, bad)


def _parse(values: list[bytes], idx: np.ndarray, schema: pa.Schema,
           required: set[str]) -> tuple[list[tuple[pa.Table, np.ndarray]], list[int]]:
    """Bulk-parse; when that fails, per chunk: bulk again, else sort the chunk's records out in Python (a few
    microseconds each, so a flood of garbage stays cheap) and bisect what Python accepts but pyarrow does not."""
    good: list[tuple[pa.Table, np.ndarray]] = []
    bad: list[int] = []
    try:
        good.append((_read(values, schema), idx))
        return good, bad
    except pa.ArrowInvalid:
        pass
    for start in range(0, len(values), _CHUNK):
        chunk, chunk_idx = values[start:start + _CHUNK], idx[start:start + _CHUNK]
        try:
            good.append((_read(chunk, schema), chunk_idx))
            continue
        except pa.ArrowInvalid:
            pass
        fine = np.array([classify(v, schema, required) is None for v in chunk], dtype=bool)
        bad += chunk_idx[~fine].tolist()
        if fine.any():
            _bisect([v for v, ok in zip(chunk, fine) if ok], chunk_idx[fine], schema, good, bad)
    return good, bad


def _flat_type(arrow_type: pa.DataType) -> pa.DataType | None:
    """The column type a newly seen field gets, or None when it cannot become a column (nested)."""
    if pa.types.is_timestamp(arrow_type):
        return pa.timestamp("us", tz="UTC")
    if pa.types.is_integer(arrow_type):
        return pa.int64()
    if pa.types.is_floating(arrow_type) or pa.types.is_boolean(arrow_type) or pa.types.is_string(arrow_type):
        return arrow_type
    return None


def _settle_new_fields(parts: list[tuple[pa.Table, np.ndarray]], known: set[str],
                       rejects: list[Reject]) -> list[pa.Field]:
    """Decide the type of each new field (first seen wins) and reject the rows that disagree with it."""
    chosen: dict[str, pa.DataType] = {}
    problems: dict[str, str] = {}
    for table, _ in parts:
        for f in table.schema:
            if f.name in known or pa.types.is_null(f.type) or f.name in chosen or f.name in problems:
                continue
            flat = _flat_type(f.type)
            if not COLUMN_NAME.match(f.name):
                problems[f.name] = f"new field '{f.name[:64]}' is not a valid column name (lower case, digits, _)"
            elif flat is None:
                problems[f.name] = f"new field '{f.name}' is nested ({f.type}): only flat fields evolve"
            else:
                chosen[f.name] = flat
    for t_index, (table, idx) in enumerate(parts):
        bad_rows = np.zeros(table.num_rows, dtype=bool)
        for f in table.schema:
            if f.name in known or pa.types.is_null(f.type):
                continue
            present = table.column(f.name).is_valid().to_numpy(zero_copy_only=False)
            reason = problems.get(f.name)
            if reason is None and _flat_type(f.type) != chosen[f.name]:
                reason = f"new field '{f.name}' is {f.type} here but {chosen[f.name]} in other records"
            if reason is None:
                continue
            for row in np.nonzero(present & ~bad_rows)[0]:
                rejects.append(Reject(int(idx[row]), "unsupported_field" if f.name in problems else "wrong_type",
                                      reason))
            bad_rows |= present
        if bad_rows.any():
            keep = ~bad_rows
            parts[t_index] = (table.filter(pa.array(keep)), idx[keep])
    return [pa.field(name, t) for name, t in chosen.items()]


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
               for f in schema]
    return pa.table(columns, schema=schema)


def _missing_required(table: pa.Table, required: list[str]) -> np.ndarray:
    mask = np.zeros(table.num_rows, dtype=bool)
    for name in required:
        column = table.column(name)
        if column.null_count:
            mask |= column.is_null().to_numpy(zero_copy_only=False)
    return mask


def read_values(values: list[bytes | None], schema: pa.Schema, required: list[str],
                max_bytes: int) -> ParsedBatch:
    """Parse raw Kafka values against `schema` (the event fields, all nullable); never raises on bad data."""
    n = len(values)
    rejects: list[Reject] = []
    try:
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=n)
    except TypeError:  # tombstones (None values)
        lengths = np.fromiter((-1 if v is None else len(v) for v in values), dtype=np.int64, count=n)
    unreadable = (lengths <= 0) | (lengths > max_bytes)
    for i in np.nonzero(unreadable)[0]:
        size = int(lengths[i])
        if size > max_bytes:
            rejects.append(Reject(int(i), "oversized", f"payload of {size} bytes exceeds the {max_bytes}-byte limit"))
        else:
            rejects.append(Reject(int(i), "empty", "empty payload (null or zero bytes)"))
    if unreadable.any():
        idx = np.nonzero(~unreadable)[0]
        candidates = [values[i] for i in idx]
    else:
        idx, candidates = np.arange(n), values
    required_set = set(required)
    parts, bad = _parse(candidates, idx, schema, required_set) if len(candidates) else ([], [])
    for i in bad:
        problem = classify(values[i], schema, required_set)
        if problem is None:  # valid JSON pyarrow could not take as is (e.g. pretty-printed): read it compacted
            try:
                parts.append((_read([_compact(values[i])], schema), np.array([i])))
                continue
            except pa.ArrowInvalid as exc:
                problem = ("malformed_json", f"record could not be read: {exc}", None)
        rejects.append(Reject(i, *problem))
    new_fields = _settle_new_fields(parts, set(schema.names), rejects)
    full_schema = pa.schema(list(schema) + new_fields)
    tables = [_conform(t, full_schema) for t, _ in parts if t.num_rows]
    table = pa.concat_tables(tables) if tables else full_schema.empty_table()
    indices = np.concatenate([i for t, i in parts if t.num_rows]) if tables else np.empty(0, dtype=np.int64)

    missing = _missing_required(table, required)
    if missing.any():
        event_ids = table.column("event_id") if "event_id" in table.column_names else None
        for row in np.nonzero(missing)[0]:
            absent = [name for name in required if not table.column(name)[int(row)].is_valid]
            event_id = event_ids[int(row)].as_py() if event_ids is not None else None
            rejects.append(Reject(int(indices[row]), "missing_field", missing_reason(absent), event_id))
        keep = ~missing
        table, indices = table.filter(pa.array(keep)), indices[keep]
    return ParsedBatch(table, indices, sorted(rejects, key=lambda r: r.index), new_fields)


def missing_reason(absent: list[str]) -> str:
    return f"required field(s) missing or null: {', '.join(absent)}"


def _compact(raw: bytes) -> bytes:
    """The same (valid) JSON without insignificant whitespace."""
    return json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=False).encode()

"""Keep a collection in sync with the Iceberg table it indexes.

One collection per table. Each row becomes one point: id = the key column(s) (so re-indexing a row replaces its
point instead of adding one), vector = the embedding of a text built from the row, payload = chosen columns.

Incremental: the collection's metadata remembers the table snapshot it last indexed. When every snapshot since
then only appended data (or compacted it: `replace`), only the appended files are read
(`incremental_append_scan`). After an overwrite or delete, an expired/rolled-back snapshot, or with `full=True`,
the whole table is re-read: rows whose text or payload changed are re-embedded and upserted, unchanged ones are
left alone (gold tables are rewritten on every run), and points whose key left the table are deleted. The snapshot
is recorded only after its rows are stored, so a crash means the next run redoes the work, never skips it.

A table should hold one row per key; when a key repeats, the row read last wins.
"""
from __future__ import annotations

import datetime as dt
import decimal
import string
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator

from workloads.vector.embeddings import Embedder, get_embedder
from workloads.vector.store import VectorError, VectorStore, check_name, get_store

log = structlog.get_logger(__name__)

TEXT_KEY = "text"  # payload key holding the embedded text, so a hit shows what matched
KEY_SEPARATOR = "|"
APPEND_ONLY = {"append", "replace"}  # snapshot operations an incremental append scan can follow
IDLE = {"up-to-date", "empty"}  # modes in which nothing was read or written


class TableMissing(VectorError):
    """The table to index is not in the catalog (yet: the medallion jobs create it on their first run)."""


class IndexSpec(BaseModel):
    """What to index: table, key, how to write a row as text, which columns to carry in the payload."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    collection: str
    table: str = Field(description="Iceberg identifier, namespace.table (e.g. gold.products)")
    key: tuple[str, ...] = Field(description="column(s) whose values identify a row")
    text: str = Field(description="str.format template over columns, e.g. '{name}: {description}'")
    payload: tuple[str, ...] = ()
    keyword_fields: tuple[str, ...] = Field(default=(), description="payload keys to index for filtering")

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        try:
            return check_name(value)
        except VectorError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("table")
    @classmethod
    def _table_identifier(cls, value: str) -> str:
        if value.count(".") < 1 or any(not part for part in value.split(".")):
            raise ValueError(f"table must be namespace.table, got {value!r}")
        return value

    @field_validator("key", mode="before")
    @classmethod
    def _key_tuple(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("key")
    @classmethod
    def _key_not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("key needs at least one column")
        return value

    @field_validator("text")
    @classmethod
    def _template(cls, value: str) -> str:
        fields = template_fields(value)
        if not fields:
            raise ValueError("text template must reference at least one column, e.g. '{name}'")
        return value

    @field_validator("keyword_fields")
    @classmethod
    def _keyword_fields_in_payload(cls, value: tuple[str, ...], info) -> tuple[str, ...]:
        if missing := set(value) - set(info.data.get("payload", ())):
            raise ValueError(f"keyword_fields {sorted(missing)} are not payload columns")
        return value

    def columns(self) -> list[str]:
        return list(dict.fromkeys([*self.key, *template_fields(self.text), *self.payload]))


def template_fields(template: str) -> list[str]:
    """Column names a `str.format` template references; refuses positional and attribute/index fields."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"bad text template {template!r}: {exc}") from None
    names = [name for _, name, _, _ in parsed if name is not None]
    if bad := [n for n in names if not n.isidentifier()]:
        raise ValueError(f"text template fields must be column names, got {bad}")
    return list(dict.fromkeys(names))


@dataclass
class IndexResult:
    collection: str
    table: str
    mode: str  # up-to-date | empty | incremental | full
    snapshot_id: int | None
    rows_read: int = 0
    upserted: int = 0
    unchanged: int = 0  # rows re-read whose point already holds the same text and payload (not re-embedded)
    deleted: int = 0
    skipped: int = 0  # rows without a key or whose text fails to render: counted, logged, not stored
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def json_safe(value: Any) -> Any:
    """Payload values as JSON types (both engines store JSON)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return str(value)


class _Blank(dict):
    """Template values: a missing/None column renders as an empty string."""

    def __missing__(self, key: str) -> str:
        return ""


def render_text(template: str, row: Mapping[str, Any]) -> str:
    values = _Blank({k: ("" if v is None else v) for k, v in row.items()})
    return " ".join(template.format_map(values).split())


def _plan(table: Any, last_snapshot_id: int | None, full: bool) -> tuple[str, Any]:
    """(mode, scan) for the table's current snapshot given the last indexed one."""
    from pyiceberg.table.snapshots import ancestors_of

    current = table.current_snapshot()
    if current is None:
        return "empty", None
    if not full and last_snapshot_id == current.snapshot_id:
        return "up-to-date", None
    if not full and last_snapshot_id is not None:
        since: list[Any] = []
        for snapshot in ancestors_of(current, table.metadata):
            if snapshot.snapshot_id == last_snapshot_id:
                if all(s.summary is not None and s.summary.operation.value in APPEND_ONLY for s in since):
                    return "incremental", table.incremental_append_scan(
                        from_snapshot_id_exclusive=last_snapshot_id, to_snapshot_id_inclusive=current.snapshot_id)
                break
            since.append(snapshot)
    return "full", table.scan(snapshot_id=current.snapshot_id)


def index_table(spec: IndexSpec, *, store: VectorStore | None = None, catalog: Any = None,
                embedder: Embedder | None = None, full: bool = False, batch_size: int = 512,
                on_progress: Callable[[int], None] | None = None) -> IndexResult:
    """Bring `spec.collection` up to date with `spec.table`; returns what was done. `on_progress(rows)` is called
    after each stored batch (for a progress bar)."""
    from pyiceberg.exceptions import NoSuchTableError

    from workloads.common.platform import load_catalog

    started = time.perf_counter()
    store = store or get_store()
    catalog = catalog or load_catalog()
    embedder = embedder or get_embedder()
    try:
        table = catalog.load_table(spec.table)
    except NoSuchTableError:
        raise TableMissing(f"table {spec.table!r} does not exist in the catalog") from None
    schema_columns = {f.name for f in table.schema().fields}
    if missing := [c for c in spec.columns() if c not in schema_columns]:
        raise VectorError(f"{spec.table} has no column(s) {missing}; it has {sorted(schema_columns)}")
    if TEXT_KEY in spec.payload:
        raise VectorError(f"payload column {TEXT_KEY!r} is reserved for the embedded text")

    if not full and (idle := _idle(spec, store, embedder, table)):
        result = idle  # decided from metadata alone: no need to take the collection from a process searching it
    else:
        store.create_collection(spec.collection, embedder.dim, keyword_fields=spec.keyword_fields)
        with store.exclusive(spec.collection):
            last = _check_collection(spec, store, embedder)
            result = _sync(spec, store, embedder, table, last, full, batch_size, on_progress)
    result.seconds = round(time.perf_counter() - started, 3)
    if result.mode not in IDLE:  # `--follow` checks often; log what changed
        log.info("vector.indexed", **result.as_dict())
    return result


def _idle(spec: IndexSpec, store: VectorStore, embedder: Embedder, table: Any) -> IndexResult | None:
    """An up-to-date (or empty) result when the collection already reflects the table's current snapshot."""
    if not store.has_collection(spec.collection):
        return None
    metadata = store.get_metadata(spec.collection)
    source = metadata.get("source", {})
    if metadata.get("embedder") != embedder.name or source.get("table") != spec.table:
        return None  # let the full path explain (or record) it
    current = table.current_snapshot()
    if current is None:
        return IndexResult(spec.collection, spec.table, "empty", None)
    if source.get("snapshot_id") == current.snapshot_id:
        return IndexResult(spec.collection, spec.table, "up-to-date", current.snapshot_id)
    return None


def _sync(spec: IndexSpec, store: VectorStore, embedder: Embedder, table: Any, last: int | None, full: bool,
          batch_size: int, on_progress: Callable[[int], None] | None) -> IndexResult:
    mode, scan = _plan(table, last, full)
    result = IndexResult(spec.collection, spec.table, mode, getattr(table.current_snapshot(), "snapshot_id", None))
    if scan is not None:
        # A full re-read (gold tables are rewritten on every run) re-embeds only the rows that changed.
        stored_now = store.payloads(spec.collection) if mode == "full" else None
        seen: set[str] = set()
        for batch in _batches(scan, spec.columns(), batch_size):
            rows = _store_batch(spec, store, embedder, batch, seen, stored_now, result)
            if on_progress:
                on_progress(rows)
        if stale := set(stored_now or ()) - seen:
            store.delete(spec.collection, sorted(stale))
            result.deleted = len(stale)
        store.build_index(spec.collection)
    if mode not in IDLE:
        _record_source(spec, store, result.snapshot_id)
    return result


def _check_collection(spec: IndexSpec, store: VectorStore, embedder: Embedder) -> int | None:
    """Refuse a collection filled from another table or by another embedder; the last snapshot indexed."""
    metadata = store.get_metadata(spec.collection)
    if (recorded := metadata.get("embedder")) is None:
        store.set_metadata(spec.collection, {"embedder": embedder.name})
    elif recorded != embedder.name:
        raise VectorError(f"collection {spec.collection!r} was embedded with {recorded}, not {embedder.name}: "
                          "drop it (python -m workloads.vector drop ...) to re-embed")
    source = metadata.get("source", {})
    if source.get("table") not in (None, spec.table):
        raise VectorError(f"collection {spec.collection!r} indexes {source['table']}, not {spec.table}")
    if source.get("table") is None:  # claim the collection for this table, even while the table is empty
        _record_source(spec, store, None)
    return source.get("snapshot_id")


def _record_source(spec: IndexSpec, store: VectorStore, snapshot_id: int | None) -> None:
    store.set_metadata(spec.collection, {"source": {"table": spec.table, "snapshot_id": snapshot_id,
                                                    "key": list(spec.key), "text": spec.text}})


def _batches(scan: Any, columns: list[str], batch_size: int) -> Iterable[list[dict[str, Any]]]:
    reader = scan.select(*columns).to_arrow_batch_reader()
    pending: list[dict[str, Any]] = []
    for record_batch in reader:
        pending.extend(record_batch.to_pylist())
        while len(pending) >= batch_size:
            yield pending[:batch_size]
            pending = pending[batch_size:]
    if pending:
        yield pending


def _store_batch(spec: IndexSpec, store: VectorStore, embedder: Embedder, rows: list[dict[str, Any]],
                 seen: set[str], stored_now: dict[str, dict[str, Any]] | None, result: IndexResult) -> int:
    """Embed and upsert one batch of rows. `stored_now` (full re-reads only): each point's payload as stored,
    kept current as this run writes, so a row equal to its point is skipped and a key repeated later in the table
    still wins."""
    latest: dict[str, dict[str, Any]] = {}  # point id -> payload; a key repeated in the batch: the later row wins
    keyless = 0
    for row in rows:
        result.rows_read += 1
        if any(row[k] is None for k in spec.key):
            keyless += 1
            continue
        point_id = KEY_SEPARATOR.join(str(json_safe(row[k])) for k in spec.key)
        seen.add(point_id)  # even when its text fails below: keep the point rather than delete it
        try:
            text = render_text(spec.text, row)
        except (ValueError, TypeError) as exc:  # e.g. '{price:.2f}' on a string column
            result.skipped += 1
            log.warning("vector.row_text_failed", table=spec.table, id=point_id, error=str(exc))
            continue
        latest[point_id] = {c: json_safe(row[c]) for c in spec.payload} | {TEXT_KEY: text}
    if keyless:
        result.skipped += keyless
        log.warning("vector.rows_without_key", table=spec.table, key=list(spec.key), rows=keyless)
    if stored_now is not None:
        changed = {i: p for i, p in latest.items() if stored_now.get(i) != p}
        result.unchanged += len(latest) - len(changed)
        latest = changed
    if latest:
        ids, payloads = list(latest), list(latest.values())
        store.upsert(spec.collection, ids, embedder.embed([p[TEXT_KEY] for p in payloads]), payloads)
        result.upserted += len(ids)
        if stored_now is not None:
            stored_now.update(latest)
    return len(rows)

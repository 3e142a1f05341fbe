"""Typed results of every operation. MCP tools return them (the SDK derives each tool's output schema from
them) and REST routes declare them as response models, so both surfaces publish the same schemas."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class TableSummary(BaseModel):
    name: str = Field(description="namespace.table")
    namespace: str
    table: str


class TableList(BaseModel):
    tables: list[TableSummary]


class Column(BaseModel):
    id: int
    name: str
    type: str
    required: bool
    doc: str | None = None
    pii: bool = Field(description="the column holds personal data (policy or table property)")
    access: Literal["clear", "masked"] = Field(description="how this caller sees the column's values")


class PartitionField(BaseModel):
    name: str
    source_column: str
    transform: str


class Snapshot(BaseModel):
    snapshot_id: int
    parent_id: int | None
    timestamp: str = Field(description="commit time, ISO 8601 UTC")
    timestamp_ms: int
    operation: str | None
    summary: dict[str, str]


class SnapshotRef(BaseModel):
    """A snapshot in brief (table_history has the full summaries)."""
    snapshot_id: int
    timestamp: str = Field(description="commit time, ISO 8601 UTC")
    operation: str | None
    total_records: int | None = Field(description="rows in the table as of this snapshot, when recorded")


class QualityStatus(BaseModel):
    status: str | None = None
    checked_at: str | None = None
    details: str | None = None


class Governance(BaseModel):
    """Owners, quality and lineage as recorded (table properties, the metadata file, the quality results of
    the governance workload); empty when unknown."""
    owners: list[str] = Field(default_factory=list)
    quality: QualityStatus | None = None
    upstreams: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    classifications: dict[str, str] = Field(default_factory=dict, description="column -> classification (pii.email...)")
    sources: list[str] = Field(default_factory=list, description="where these facts were read from")


class TableDescription(BaseModel):
    name: str
    location: str
    format_version: int
    columns: list[Column]
    partitioning: list[PartitionField]
    current_snapshot_id: int | None
    snapshots: list[SnapshotRef] = Field(description="most recent first (at most 5; table_history lists all)")
    snapshot_count: int
    row_count: int | None = Field(description="total-records of the current snapshot, when recorded")
    properties: dict[str, str]
    governance: Governance


class ResultColumn(BaseModel):
    name: str
    type: str


class RowSet(BaseModel):
    columns: list[ResultColumn]
    rows: list[list[Any]] = Field(description="one list of values per row, in column order")
    row_count: int
    truncated: bool = Field(description="more rows existed beyond the row limit")
    masked_columns: list[str] = Field(default_factory=list, description="result columns fed by masked PII")
    engine: str
    elapsed_ms: float
    snapshot_ids: dict[str, int | None] = Field(default_factory=dict, description="snapshot read per table")


class History(BaseModel):
    name: str
    current_snapshot_id: int | None
    snapshots: list[Snapshot] = Field(description="oldest first")
    as_of: Snapshot | None = Field(default=None, description="the snapshot read, when rows were asked for")
    rows: RowSet | None = None


class VectorHit(BaseModel):
    id: str | int
    score: float
    payload: dict[str, Any] = Field(default_factory=dict)


class VectorResult(BaseModel):
    collection: str
    hits: list[VectorHit]


class CollectionList(BaseModel):
    collections: list[str]


class LineageNode(BaseModel):
    name: str
    readable: bool = Field(description="this caller may read the table (else only its name is shown)")
    exists: bool = Field(description="the table is in the catalog (upstreams may be external sources)")


class LineageEdge(BaseModel):
    upstream: str
    downstream: str


class Lineage(BaseModel):
    root: str
    nodes: list[LineageNode]
    edges: list[LineageEdge]
    columns: dict[str, list[str]] = Field(default_factory=dict, description="column lineage of the root table: "
                                          "column -> the namespace.table.column inputs it is computed from")
    source: str = Field(description="where lineage facts come from")


class ErrorBody(BaseModel):
    error: str
    detail: str
    decision: dict[str, Any] | None = None

"""The operations behind both surfaces (MCP tools and REST routes): one implementation, one place where every
call is rate-limited, authorised, measured and audited. Callers pass an authenticated `Principal`; errors are
`ServiceError`s with messages meant for the caller."""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from workloads.governance.results import LatestQuality
from workloads.mcp_server import vector
from workloads.mcp_server.audit import AuditLog
from workloads.mcp_server.auth import Authenticator, Principal
from workloads.mcp_server.catalog import CachedTable, CatalogCache, partitioning, snapshots
from workloads.mcp_server.config import Settings
from workloads.mcp_server.errors import Denied, NotFound, Refused, ServiceError
from workloads.mcp_server.metrics import Metrics
from workloads.mcp_server.models import (
    CollectionList, Column, History, Lineage, LineageEdge, LineageNode, RowSet, SnapshotRef, TableDescription,
    TableList, TableSummary, VectorHit, VectorResult,
)
from workloads.mcp_server.policy import Decision, Policy
from workloads.mcp_server.ratelimit import RateLimiter
from workloads.mcp_server.sql_guard import TableAccess, plan_query, table_read
from workloads.mcp_server.stewardship import MetadataFile

log = logging.getLogger(__name__)
T = TypeVar("T")
RECENT_SNAPSHOTS = 5
MAX_VECTOR_HITS = 100
MAX_LINEAGE_DEPTH = 10


def make_engine(settings: Settings, cache: CatalogCache, masking: str):
    if settings.engine == "trino":
        from workloads.mcp_server.engine_trino import TrinoEngine

        return TrinoEngine(settings, masking)
    from workloads.mcp_server.engine_duckdb import DuckDBEngine

    return DuckDBEngine(cache, settings.query_timeout, masking)


def _split_name(table: str) -> tuple[str | None, str]:
    if not isinstance(table, str) or not table.strip():
        raise Refused("table name is empty: give namespace.table (list_tables shows them)")
    namespace, _, name = table.strip().rpartition(".")
    return namespace or None, name


class Service:
    def __init__(self, settings: Settings, *, catalog: Any = None, policy: Policy | None = None,
                 engine: Any = None, audit: AuditLog | None = None):
        if catalog is None:
            from workloads.common.platform import load_catalog

            catalog = load_catalog(settings.catalog)
        self.settings = settings
        self.policy = policy or Policy.load(settings.policy_path)
        self.cache = CatalogCache(catalog, settings.metadata_ttl)
        self.auth = Authenticator(settings, self.policy)
        self.limiter = RateLimiter()
        self.audit = audit or AuditLog(settings.audit_log)
        self.metrics = Metrics()
        self._decisions: dict[tuple[str, str], tuple[float, Decision]] = {}
        self.metadata_file = MetadataFile(settings.table_metadata_path)
        self.quality = LatestQuality(catalog, settings.metadata_ttl)
        self.engine = engine or make_engine(settings, self.cache, self.policy.spec.masking)

    # -- the envelope every call goes through -------------------------------------------------------------
    def call(self, tool: str, principal: Principal, transport: str, args: dict[str, Any],
             operation: Callable[[], T], client: str | None = None) -> T:
        started = time.perf_counter()
        outcome, detail, decision, rows = "ok", None, None, None
        try:
            self.limiter.take(principal.name, principal.rate_limit_per_minute)
            result = operation()
            rows = _rows_returned(result)
            return result
        except ServiceError as exc:
            outcome, detail, decision = exc.outcome, exc.message, exc.decision
            raise
        except Exception as exc:
            log.exception("%s failed", tool)
            outcome, detail = "error", f"{type(exc).__name__}: {exc}"
            raise ServiceError(f"internal error in {tool} ({type(exc).__name__}); it was logged") from exc
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.calls.labels(tool, transport, outcome).inc()
            self.metrics.latency.labels(tool, transport).observe(elapsed)
            if outcome in ("denied", "rate_limited"):
                self.metrics.denials.labels(tool, outcome).inc()
            elif outcome != "ok":
                self.metrics.errors.labels(tool, outcome).inc()
            self.audit.record(principal=principal.name, role=principal.role, auth=principal.method,
                              transport=transport, tool=tool, args=args, outcome=outcome, detail=detail,
                              decision=decision, rows=rows, duration_ms=round(elapsed * 1000, 3), client=client)

    def unauthenticated(self, transport: str, tool: str | None, reason: str, client: str | None = None) -> None:
        """Count and audit a call refused before any principal was known."""
        self.metrics.calls.labels(tool or "-", transport, "unauthenticated").inc()
        self.metrics.denials.labels(tool or "-", "unauthenticated").inc()
        self.audit.record(principal=None, role=None, auth=None, transport=transport, tool=tool, args=None,
                          outcome="unauthenticated", detail=reason, decision=None, rows=None, duration_ms=0.0,
                          client=client)

    # -- access ----------------------------------------------------------------------------------------------
    def _table_decision(self, role: str, name: str) -> Decision:
        """The policy's table decision, remembered for the metadata TTL: a Rego evaluation costs ~150 us, and
        list_tables asks one per table per call."""
        now = time.monotonic()
        cached = self._decisions.get((role, name))
        if cached and now - cached[0] < self.settings.metadata_ttl:
            return cached[1]
        decision = self.policy.table(role, name)
        self._decisions[role, name] = (now, decision)
        return decision

    def _authorized(self, principal: Principal, table: str) -> CachedTable:
        name = self.cache.resolve(*_split_name(table))
        decision = self._table_decision(principal.role, name)
        if not decision.allowed:
            raise Denied(f"not allowed to read {name}: {decision.reason} (rule: {decision.rule})",
                         decision=decision.as_dict())
        return self.cache.get(name)

    def _access(self, principal: Principal, name: str) -> tuple[Decision, TableAccess]:
        decision = self._table_decision(principal.role, name)
        if not decision.allowed:
            return decision, TableAccess(name, [], {})
        entry = self.cache.get(name)
        key = ("access", principal.role)
        if key not in entry.memo:
            fields = entry.table.schema().fields
            columns = self.policy.columns(principal.role, name, [f.name for f in fields], entry.table.properties)
            entry.memo[key] = (columns, {f.name: str(f.field_type) for f in fields})
        columns, types = entry.memo[key]
        return decision, TableAccess(name, columns, types)

    def _limit(self, limit: int | None) -> int:
        if limit is None:
            return self.settings.row_limit
        if not isinstance(limit, int) or limit < 1:
            raise Refused("limit must be a positive integer")
        return min(limit, self.settings.row_limit)

    # -- operations ----------------------------------------------------------------------------------------
    def list_tables(self, principal: Principal) -> TableList:
        names = [n for n in self.cache.names() if self._table_decision(principal.role, n).allowed]
        return TableList(tables=[TableSummary(name=n, namespace=n.rsplit(".", 1)[0], table=n.rsplit(".", 1)[1])
                                 for n in names])

    def describe_table(self, principal: Principal, table: str) -> TableDescription:
        entry = self._authorized(principal, table)
        key = ("describe", principal.role)
        if key not in entry.memo:
            _, access = self._access(principal, entry.name)
            t = entry.table
            how = {c.name: c for c in access.columns}
            columns = [Column(id=f.field_id, name=f.name, type=str(f.field_type), required=f.required, doc=f.doc,
                              pii=how[f.name].pii, access=how[f.name].access)
                       for f in t.schema().fields if how[f.name].access != "denied"]
            current = t.current_snapshot()
            total = current.summary.get("total-records") if current and current.summary else None
            history = snapshots(entry)
            entry.memo[key] = dict(
                name=entry.name, location=t.location(), format_version=t.format_version, columns=columns,
                partitioning=partitioning(entry), current_snapshot_id=current.snapshot_id if current else None,
                snapshots=[SnapshotRef(snapshot_id=s.snapshot_id, timestamp=s.timestamp, operation=s.operation,
                                       total_records=_int(s.summary.get("total-records")))
                           for s in reversed(history[-RECENT_SNAPSHOTS:])], snapshot_count=len(history),
                row_count=_int(total), properties=dict(t.properties))
        governance = self.metadata_file.governance(entry.name, entry.table.properties, self.quality.get(entry.name))
        return TableDescription(**entry.memo[key], governance=governance)

    def sample_rows(self, principal: Principal, table: str, limit: int | None = 10) -> RowSet:
        entry = self._authorized(principal, table)
        _, access = self._access(principal, entry.name)
        return self.engine.run(table_read(entry.name, access, self._limit(limit)))

    def query(self, principal: Principal, sql: str, limit: int | None = None) -> RowSet:
        plan = plan_query(sql, self.engine.dialect, self.cache.resolve,
                          lambda name: self._access(principal, name), self._limit(limit))
        return self.engine.run(plan)

    def table_history(self, principal: Principal, table: str, snapshot_id: int | None = None,
                      as_of: str | None = None, limit: int | None = 10) -> History:
        entry = self._authorized(principal, table)
        history = snapshots(entry)
        current = entry.table.current_snapshot()
        result = History(name=entry.name, current_snapshot_id=current.snapshot_id if current else None,
                         snapshots=history)
        if snapshot_id is None and as_of is None:
            return result
        if snapshot_id is not None and as_of is not None:
            raise Refused("give snapshot_id or as_of, not both")
        if snapshot_id is not None:
            chosen = next((s for s in history if s.snapshot_id == snapshot_id), None)
            if chosen is None:
                raise NotFound(f"{entry.name} has no snapshot {snapshot_id} (it may have been expired)")
        else:
            moment = _parse_instant(as_of)
            ms = int(moment.timestamp() * 1000)
            chosen = next((s for s in reversed(history) if s.timestamp_ms <= ms), None)
            if chosen is None:
                first = history[0].timestamp if history else "none"
                raise NotFound(f"{entry.name} has no snapshot at or before {moment.isoformat()} (first: {first})")
        _, access = self._access(principal, entry.name)
        rows = self.engine.run(table_read(entry.name, access, self._limit(limit), chosen.snapshot_id))
        return result.model_copy(update={"as_of": chosen, "rows": rows})

    def lineage(self, principal: Principal, table: str, depth: int = 3) -> Lineage:
        root = self._authorized(principal, table).name
        if not isinstance(depth, int) or not 1 <= depth <= MAX_LINEAGE_DEPTH:
            raise Refused(f"depth must be between 1 and {MAX_LINEAGE_DEPTH}")
        names = set(self.cache.names())
        readable = {n for n in names if self._table_decision(principal.role, n).allowed}
        upstreams = {n: self._upstreams(n) for n in readable}
        downstreams: dict[str, set[str]] = {}
        for child, parents in upstreams.items():
            for parent in parents:
                downstreams.setdefault(parent, set()).add(child)
        edges: set[tuple[str, str]] = set()
        for graph, upward in ((upstreams, True), (downstreams, False)):
            frontier, seen = {root}, {root}
            for _ in range(depth):
                nxt = set()
                for node in frontier:
                    for other in graph.get(node, ()):
                        edges.add((other, node) if upward else (node, other))
                        if other not in seen:
                            seen.add(other)
                            nxt.add(other)
                frontier = nxt
        nodes = {root} | {n for edge in edges for n in edge}
        return Lineage(root=root, nodes=[LineageNode(name=n, readable=n in readable, exists=n in names)
                                         for n in sorted(nodes)],
                       edges=[LineageEdge(upstream=u, downstream=d) for u, d in sorted(edges)],
                       columns=self._column_lineage(principal, root),
                       source="dp.lineage.upstreams / dp.lineage.columns table properties (governance metadata, "
                              "derived from the jobs' SQL) and the table metadata file")

    def _column_lineage(self, principal: Principal, name: str) -> dict[str, list[str]]:
        """Column lineage of a table, for the columns this caller may see."""
        entry = self.cache.get(name)
        try:
            recorded = json.loads(entry.table.properties.get("dp.lineage.columns") or "{}")
        except ValueError:
            return {}
        _, access = self._access(principal, name)
        visible = {c.name for c in access.columns if c.access != "denied"}
        return {column: inputs for column, inputs in sorted(recorded.items()) if column in visible}

    def _upstreams(self, name: str) -> list[str]:
        entry = self.cache.get(name)
        return self.metadata_file.governance(name, entry.table.properties).upstreams

    def vector_collections(self, principal: Principal) -> CollectionList:
        return CollectionList(collections=[c for c in vector.collections()
                                           if self.policy.collection(principal.role, c).allowed])

    def vector_search(self, principal: Principal, collection: str, query: str, limit: int = 10,
                      filters: dict[str, Any] | None = None) -> VectorResult:
        decision = self.policy.collection(principal.role, collection)
        if not decision.allowed:
            raise Denied(f"not allowed to search {collection}: {decision.reason} (rule: {decision.rule})",
                         decision=decision.as_dict())
        if not isinstance(limit, int) or not 1 <= limit <= MAX_VECTOR_HITS:
            raise Refused(f"limit must be between 1 and {MAX_VECTOR_HITS}")
        hits = vector.search(collection, query, limit, filters)
        return VectorResult(collection=collection, hits=[VectorHit(**hit) for hit in hits])

    def ready(self) -> None:
        self.cache.ping()

    def close(self) -> None:
        self.audit.close()


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _rows_returned(result: Any) -> int | None:
    if isinstance(result, RowSet):
        return result.row_count
    if isinstance(result, History) and result.rows is not None:
        return result.rows.row_count
    return None


def _parse_instant(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise Refused(f"as_of must be an ISO 8601 timestamp such as 2026-11-20T10:00:00Z, got {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

"""The MCP surface (official `mcp` SDK, `MCPServer`): tools and a schema resource over the service layer.
Over HTTP the caller was authenticated by the ASGI layer in front of `/mcp` (app.py), which leaves the
principal in the request scope; over stdio the server runs as the credential in `DP_MCP_API_KEY` /
`DP_MCP_TOKEN`. Tool results are pydantic models, so each tool publishes a typed output schema."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from workloads.mcp_server.auth import Principal
from workloads.mcp_server.errors import ServiceError, Unauthenticated
from workloads.mcp_server.models import History, Lineage, RowSet, TableDescription, TableList, VectorResult
from workloads.mcp_server.service import Service

PRINCIPAL_SCOPE_KEY = "dp.principal"
T = TypeVar("T")
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

INSTRUCTIONS = """Discover and query the data platform's Iceberg tables (namespaces bronze, silver, gold).
Start with list_tables, then describe_table for schema, partitioning, snapshots, owners, quality and lineage.
sample_rows shows a few rows; query runs one read-only SELECT (DuckDB or Trino SQL) over namespace.table names.
table_history lists snapshots and reads a table as of a snapshot id or timestamp. PII columns may be masked
('***') and some columns hidden, depending on your role."""

TableArg = Annotated[str, Field(description="table as namespace.table, e.g. gold.daily_revenue")]
LimitArg = Annotated[int, Field(ge=1, description="most rows to return (capped by the server's row limit)")]


def build_mcp(service: Service, transport: str, stdio_principal: Callable[[], Principal] | None = None) -> MCPServer:
    """An `MCPServer` whose tools call `service`; `transport` labels metrics and audit lines."""
    mcp = MCPServer("dataplatform", instructions=INSTRUCTIONS, version="1", log_level="WARNING")

    def caller(ctx: Context) -> tuple[Principal, str | None]:
        request = ctx.request_context.request if ctx.request_context else None
        if request is not None:
            principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
            if principal is None:  # the ASGI layer always sets it; refuse rather than run unauthenticated
                raise Unauthenticated("no authenticated caller on this request")
            client = request.client.host if request.client else None
            return principal, client
        if stdio_principal is None:
            raise Unauthenticated("no credentials on this transport")
        return stdio_principal(), None

    def run(ctx: Context, tool: str, args: dict[str, Any], operation: Callable[[Principal], T]) -> T:
        try:
            principal, client = caller(ctx)
        except Unauthenticated as exc:
            service.unauthenticated(transport, tool, exc.message)
            raise ToolError(f"unauthenticated: {exc.message}") from None
        try:
            return service.call(tool, principal, transport, args, lambda: operation(principal), client)
        except ServiceError as exc:
            raise ToolError(f"{exc.outcome}: {exc.message}") from None

    async def run_metadata(ctx: Context, tool: str, args: dict[str, Any], operation: Callable[[Principal], T],
                           table: str | None = None) -> T:
        """Metadata answered from the cache runs on the event loop; anything that may touch the catalog runs
        in a worker thread (the loop must not block on I/O)."""
        if service.cache.in_memory(table):
            return run(ctx, tool, args, operation)
        return await anyio.to_thread.run_sync(run, ctx, tool, args, operation)

    @mcp.tool(annotations=READ_ONLY)
    async def list_tables(ctx: Context) -> TableList:
        """List the Iceberg tables you may read, as namespace.table."""
        return await run_metadata(ctx, "list_tables", {}, service.list_tables)

    @mcp.tool(annotations=READ_ONLY)
    async def describe_table(table: TableArg, ctx: Context) -> TableDescription:
        """Describe a table: columns (with PII flags and whether you see them masked), partitioning, recent
        snapshots, row count, properties, owners, quality status and lineage upstreams (empty when unknown)."""
        return await run_metadata(ctx, "describe_table", {"table": table},
                                  lambda p: service.describe_table(p, table), table)

    @mcp.tool(annotations=READ_ONLY)
    def sample_rows(table: TableArg, ctx: Context, limit: LimitArg = 10) -> RowSet:
        """A few rows of a table (current snapshot), with PII masked according to your role."""
        return run(ctx, "sample_rows", {"table": table, "limit": limit},
                   lambda p: service.sample_rows(p, table, limit))

    @mcp.tool(annotations=READ_ONLY)
    def query(sql: Annotated[str, Field(description="one read-only SELECT / WITH statement over namespace.table "
                                                    "names (DuckDB SQL on the embedded platform, Trino SQL when "
                                                    "deployed)")],
              ctx: Context, limit: LimitArg = 100) -> RowSet:
        """Run one read-only SQL query. DDL, DML, several statements, table functions and unknown or
        forbidden tables are refused with the reason. Results are limited in rows and time."""
        return run(ctx, "query", {"sql": sql, "limit": limit}, lambda p: service.query(p, sql, limit))

    @mcp.tool(annotations=READ_ONLY)
    def table_history(table: TableArg, ctx: Context,
                      snapshot_id: Annotated[int | None, Field(description="read rows as of this snapshot")] = None,
                      as_of: Annotated[str | None, Field(description="read rows as of this ISO 8601 time")] = None,
                      limit: LimitArg = 10) -> History:
        """Time travel: list a table's snapshots (oldest first); with snapshot_id or as_of, also read rows as
        the table was then."""
        args = {"table": table, "snapshot_id": snapshot_id, "as_of": as_of, "limit": limit}
        return run(ctx, "table_history", args,
                   lambda p: service.table_history(p, table, snapshot_id, as_of, limit))

    @mcp.tool(annotations=READ_ONLY)
    def vector_search(collection: Annotated[str, Field(description="vector collection name")],
                      query: Annotated[str, Field(description="natural-language search text")], ctx: Context,
                      limit: Annotated[int, Field(ge=1, le=100)] = 10,
                      filters: Annotated[dict[str, str | int | float | bool] | None,
                                         Field(description="equality conditions on payload fields")] = None,
                      ) -> VectorResult:
        """Semantic search over a vector collection built from the platform's tables."""
        args = {"collection": collection, "query": query, "limit": limit, "filters": filters}
        return run(ctx, "vector_search", args,
                   lambda p: service.vector_search(p, collection, query, limit, filters))

    @mcp.tool(annotations=READ_ONLY)
    def lineage(table: TableArg, ctx: Context,
                depth: Annotated[int, Field(ge=1, le=10, description="hops up and down")] = 3) -> Lineage:
        """Upstream and downstream tables of a table, as recorded in lineage metadata."""
        return run(ctx, "lineage", {"table": table, "depth": depth}, lambda p: service.lineage(p, table, depth))

    @mcp.resource("table://{namespace}/{table}/schema", name="table-schema", mime_type="application/json",
                  description="Columns of an Iceberg table as you see them (types, PII flags, masking)")
    def table_schema(namespace: str, table: str, ctx: Context) -> str:
        try:
            description = run(ctx, "table_schema", {"table": f"{namespace}.{table}"},
                              lambda p: service.describe_table(p, f"{namespace}.{table}"))
        except ToolError as exc:
            raise ResourceError(str(exc)) from None
        return json.dumps({"name": description.name,
                           "columns": [c.model_dump() for c in description.columns],
                           "partitioning": [p.model_dump() for p in description.partitioning]})

    return mcp

"""The REST surface under /api/v1: the same operations as the MCP tools, on the same service layer, with an
OpenAPI document (FastAPI's). Errors come back as `ErrorBody` JSON with the status of the service error.
(No `from __future__ import annotations` here: FastAPI reads the route signatures at run time.)"""
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPBearer
from pydantic import BaseModel, Field

from workloads.mcp_server.auth import Principal
from workloads.mcp_server.errors import RateLimited, ServiceError, Unauthenticated
from workloads.mcp_server.models import (
    CollectionList, ErrorBody, History, Lineage, RowSet, TableDescription, TableList, VectorResult,
)
from workloads.mcp_server.service import MAX_VECTOR_HITS, Service

TRANSPORT = "rest"
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")
_bearer = HTTPBearer(auto_error=False, description="JWT bearer token (or an API key as bearer)")
TablePath = Annotated[str, Path(description="namespace.table", min_length=1, max_length=512)]
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in (
        (400, "refused (not read-only SQL, bad arguments)"), (401, "unauthenticated"), (403, "denied by policy"),
        (404, "unknown table or snapshot"), (422, "query failed or invalid arguments"), (429, "rate limited"),
        (503, "catalog, engine or vector layer unavailable"))
}


class QueryRequest(BaseModel):
    sql: str = Field(description="one read-only SELECT / WITH statement", max_length=100_000)
    limit: int = Field(default=100, ge=1, description="most rows (capped by the server's row limit)")


class VectorSearchRequest(BaseModel):
    collection: str = Field(min_length=1, max_length=256)
    query: str = Field(min_length=1, max_length=10_000)
    limit: int = Field(default=10, ge=1, le=MAX_VECTOR_HITS)
    filters: dict[str, str | int | float | bool] | None = None


def error_response(exc: ServiceError) -> JSONResponse:
    headers = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="dataplatform"'
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    body = ErrorBody(error=exc.outcome, detail=exc.message, decision=exc.decision)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=exc.status, headers=headers)


def install(app: FastAPI, service: Service) -> None:
    """Add the /api/v1 routes and the error mapping to `app`."""

    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Framework refusals (unparsable body, unknown path, wrong method) in the same shape too."""
        body = ErrorBody(error="invalid_request" if exc.status_code < 500 else "error", detail=str(exc.detail))
        return JSONResponse(body.model_dump(exclude_none=True), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        """Invalid parameters get the same error shape as every other refusal."""
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        body = ErrorBody(error="invalid_request", detail=problems or "invalid request")
        return JSONResponse(body.model_dump(exclude_none=True), status_code=422)

    def caller(request: Request, _key: str | None = Security(_api_key), _token: Any = Security(_bearer)) -> Principal:
        try:
            return service.auth.from_headers(request.headers)
        except Unauthenticated as exc:
            route = getattr(request.scope.get("route"), "name", None) or request.url.path
            service.unauthenticated(TRANSPORT, route, exc.message,
                                    request.client.host if request.client else None)
            raise

    Caller = Annotated[Principal, Depends(caller)]
    router = APIRouter(prefix="/api/v1", responses=ERRORS)

    def call(request: Request, principal: Principal, tool: str, args: dict[str, Any], operation):
        return service.call(tool, principal, TRANSPORT, args, operation,
                            request.client.host if request.client else None)

    @router.get("/tables", response_model=TableList, name="list_tables")
    def list_tables(request: Request, principal: Caller) -> TableList:
        """The tables you may read."""
        return call(request, principal, "list_tables", {}, lambda: service.list_tables(principal))

    @router.get("/tables/{table}", response_model=TableDescription, name="describe_table")
    def describe_table(request: Request, principal: Caller, table: TablePath) -> TableDescription:
        """Schema, partitioning, snapshots, owners, quality and lineage upstreams of a table."""
        return call(request, principal, "describe_table", {"table": table},
                    lambda: service.describe_table(principal, table))

    @router.get("/tables/{table}/sample", response_model=RowSet, name="sample_rows")
    def sample_rows(request: Request, principal: Caller, table: TablePath,
                    limit: Annotated[int, Query(ge=1)] = 10) -> RowSet:
        """A few rows of the table, PII masked according to your role."""
        return call(request, principal, "sample_rows", {"table": table, "limit": limit},
                    lambda: service.sample_rows(principal, table, limit))

    @router.get("/tables/{table}/history", response_model=History, name="table_history")
    def table_history(request: Request, principal: Caller, table: TablePath,
                      snapshot_id: int | None = None, as_of: Annotated[str | None, Query(max_length=64)] = None,
                      limit: Annotated[int, Query(ge=1)] = 10) -> History:
        """Snapshots of the table; with snapshot_id or as_of, rows as the table was then."""
        args = {"table": table, "snapshot_id": snapshot_id, "as_of": as_of, "limit": limit}
        return call(request, principal, "table_history", args,
                    lambda: service.table_history(principal, table, snapshot_id, as_of, limit))

    @router.get("/tables/{table}/lineage", response_model=Lineage, name="lineage")
    def lineage(request: Request, principal: Caller, table: TablePath,
                depth: Annotated[int, Query(ge=1, le=10)] = 3) -> Lineage:
        """Upstream and downstream tables, as recorded."""
        return call(request, principal, "lineage", {"table": table, "depth": depth},
                    lambda: service.lineage(principal, table, depth))

    @router.post("/query", response_model=RowSet, name="query")
    def query(request: Request, principal: Caller, body: QueryRequest) -> RowSet:
        """Run one read-only SQL query."""
        return call(request, principal, "query", body.model_dump(),
                    lambda: service.query(principal, body.sql, body.limit))

    @router.get("/vector/collections", response_model=CollectionList, name="vector_collections")
    def vector_collections(request: Request, principal: Caller) -> CollectionList:
        """The vector collections you may search."""
        return call(request, principal, "vector_collections", {}, lambda: service.vector_collections(principal))

    @router.post("/vector/search", response_model=VectorResult, name="vector_search")
    def vector_search(request: Request, principal: Caller, body: VectorSearchRequest) -> VectorResult:
        """Semantic search over a vector collection."""
        return call(request, principal, "vector_search", body.model_dump(),
                    lambda: service.vector_search(principal, body.collection, body.query, body.limit,
                                                  body.filters))

    app.include_router(router)

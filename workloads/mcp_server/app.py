"""The HTTP application: REST under /api/v1 (OpenAPI at /openapi.json, docs at /docs), MCP over streamable HTTP
at /mcp, and /healthz, /readyz (catalog reachable), /metrics (Prometheus).

/mcp is the SDK's streamable-HTTP endpoint behind a small ASGI layer that authenticates every request (401
with a reason, audited) and hands the principal to the tools through the request scope; the SDK also binds
each MCP session to the credential that opened it and checks `Host`/`Origin` against DNS rebinding. Its
session manager runs inside this app's lifespan (a mounted app's own lifespan would never run).
"""
from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.transport_security import TransportSecuritySettings
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from workloads.mcp_server import rest
from workloads.mcp_server.config import Settings
from workloads.mcp_server.errors import ServiceError, Unauthenticated
from workloads.mcp_server.mcp_tools import PRINCIPAL_SCOPE_KEY, build_mcp
from workloads.mcp_server.service import Service

LOOPBACK = ("127.0.0.1", "localhost", "::1")
TRANSPORT = "mcp-http"


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """DNS-rebinding protection: on for a loopback bind (as the SDK does) or when allowed hosts are set."""
    hosts = list(settings.allowed_hosts)
    if settings.host in LOOPBACK:
        hosts += ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    if not hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    origins = [f"{scheme}://{host}" for host in hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                     allowed_origins=origins)


class Authenticated:
    """ASGI layer in front of the MCP endpoint: no valid credential, no MCP."""

    def __init__(self, app: ASGIApp, service: Service):
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope["client"][0] if scope.get("client") else None
        try:
            principal = self.service.auth.from_headers(Headers(scope=scope))
        except Unauthenticated as exc:
            self.service.unauthenticated(TRANSPORT, None, exc.message, client)
            await rest.error_response(exc)(scope, receive, send)
            return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        # The SDK compares this identity on every request of a session: a session opened by one credential
        # cannot be used with another. The token itself is not kept.
        scope["user"] = AuthenticatedUser(AccessToken(
            token="", client_id=principal.name, scopes=[principal.role], subject=principal.name,
            claims={"iss": principal.issuer} if principal.issuer else None))
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, service: Service | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    service = service or Service(settings)
    mcp = build_mcp(service, TRANSPORT)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # A session manager runs once, so each start of the app makes a new one (tests restart apps). JSON
        # responses: a tool call is answered in the request's own task instead of through an SSE stream (these
        # tools never send requests back to the client).
        mcp.streamable_http_app(streamable_http_path="/mcp", transport_security=transport_security(settings),
                                host=settings.host, json_response=True)
        # Everything loaded so far lives as long as the process: keep it out of the collector's full passes,
        # which otherwise walk every module and model on the way and show up as tail latency.
        gc.collect()
        gc.freeze()
        async with mcp.session_manager.run():
            yield

    async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        await mcp.session_manager.handle_request(scope, receive, send)

    app = FastAPI(title="Data platform MCP server", version="1", lifespan=lifespan,
                  description="Discover and query the platform's Iceberg tables. The same operations are MCP "
                              "tools at /mcp (streamable HTTP).")
    app.state.service = service

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "catalog unreachable"}})
    def readyz() -> JSONResponse:
        """The catalog is reachable."""
        try:
            service.ready()
        except ServiceError as exc:
            return JSONResponse({"status": "unavailable", "detail": exc.message}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["health"], response_class=Response)
    def metrics() -> Response:
        """Prometheus metrics: calls, latency, errors and denials per tool."""
        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    rest.install(app, service)
    # After the REST routes: the MCP endpoint, authenticated, at exactly /mcp (no redirect to /mcp/).
    app.router.routes.append(Route("/mcp", endpoint=Authenticated(mcp_endpoint, service),
                                   methods=["GET", "POST", "DELETE"], include_in_schema=False))
    return app

"""`python -m workloads.mcp_server serve|stdio|keygen|hash-key|seed`.

- serve: the HTTP app (REST + MCP at /mcp) under uvicorn (uvloop + httptools).
- stdio: MCP over stdin/stdout for a local agent; runs as the credential in DP_MCP_API_KEY / DP_MCP_TOKEN.
  stdout carries only the protocol: everything else goes to stderr.
- keygen / hash-key: make an API key and the sha256 line for the policy file (the key itself is never stored).
- seed: fill an Iceberg SQL catalog with the small sample dataset (sample_data.py).
"""
from __future__ import annotations

import secrets
import sys

import typer
from rich.console import Console

from workloads.mcp_server.errors import ConfigError

app = typer.Typer(help="The data platform's MCP server (REST + MCP).", no_args_is_help=True, add_completion=False)
err = Console(stderr=True, soft_wrap=True)  # paths and keys stay on one line


def _settings(**overrides):
    from workloads.mcp_server.config import Settings

    try:
        return Settings.from_env(**overrides)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@app.command()
def serve(host: str = typer.Option(None, help="bind address (default DP_MCP_HOST or 127.0.0.1)"),
          port: int = typer.Option(None, help="port (default DP_MCP_PORT or 8765)"),
          access_log: bool = typer.Option(False, help="uvicorn access log (the audit log records every call)")):
    """Serve REST (/api/v1), MCP (/mcp), /healthz, /readyz and /metrics over HTTP."""
    import uvicorn

    from workloads.mcp_server.app import create_app

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = _settings(**overrides)
    try:
        application = create_app(settings)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    err.print(f"MCP server on [bold]http://{shown}:{settings.port}[/bold]  (MCP: /mcp  REST: /api/v1  "
              f"docs: /docs  engine: {settings.engine}  policy: {settings.policy_path}  audit: {settings.audit_log})")
    uvicorn.run(application, host=settings.host, port=settings.port, loop="uvloop", http="httptools",
                log_level="warning", access_log=access_log)


@app.command()
def stdio():
    """Speak MCP over stdin/stdout (for a local agent)."""
    import logging

    from workloads.mcp_server.auth import Principal
    from workloads.mcp_server.errors import Unauthenticated
    from workloads.mcp_server.mcp_tools import build_mcp
    from workloads.mcp_server.service import Service

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    settings = _settings()
    try:
        service = Service(settings)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None

    def principal() -> Principal:
        if settings.stdio_api_key is not None:
            return service.auth.from_key(settings.stdio_api_key.get_secret_value())
        if settings.stdio_token is not None:
            return service.auth.from_token(settings.stdio_token.get_secret_value())
        raise Unauthenticated("the stdio server has no credentials: set DP_MCP_API_KEY or DP_MCP_TOKEN")

    try:
        build_mcp(service, "mcp-stdio", principal).run("stdio")
    finally:
        service.close()


@app.command()
def keygen(name: str = typer.Argument(..., help="key name, e.g. the team or agent using it"),
           role: str = typer.Option("agent", help="policy role of the key")):
    """Make a new API key: prints it once (give it to its user) and the policy entry holding only its hash."""
    from workloads.mcp_server.policy import hash_key

    key = secrets.token_urlsafe(32)
    err.print("API key (shown once, store it in a secret manager):")
    typer.echo(key)
    err.print("policy entry (keys:):")
    err.print(f"  - {{name: {name}, role: {role}, sha256: \"{hash_key(key)}\"}}", markup=False)


@app.command("hash-key")
def hash_key_cmd():
    """Print the sha256 of a key read from stdin (for the policy file)."""
    from workloads.mcp_server.policy import hash_key

    typer.echo(hash_key(sys.stdin.readline().strip()))


@app.command()
def seed(catalog_uri: str = typer.Option(..., help="SQLAlchemy URI of the catalog, e.g. sqlite:////tmp/c.db"),
         warehouse: str = typer.Option(..., help="warehouse location, e.g. file:///tmp/warehouse"),
         orders: int = typer.Option(1000, min=1)):
    """Create the sample bronze/silver/gold tables in an Iceberg SQL catalog."""
    from workloads.mcp_server.sample_data import open_sql_catalog
    from workloads.mcp_server.sample_data import seed as seed_tables

    counts = seed_tables(open_sql_catalog(catalog_uri, warehouse), orders=orders)
    for name, rows in counts.items():
        err.print(f"created {name}: {rows:,} rows")


if __name__ == "__main__":
    app()

"""Shared pieces of the MCP server tests (test_mcp_*.py): a seeded Iceberg SQL catalog, a test policy with
known keys, a service over them, a real uvicorn server on 127.0.0.1, and MCP SDK client helpers."""
from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from tests.workloads.conftest import catalog_variables
from workloads.mcp_server.config import Settings
from workloads.mcp_server.policy import hash_key
from workloads.mcp_server.sample_data import open_sql_catalog, seed
from workloads.mcp_server.service import Service

KEYS = {"admin": "admin-key-0123456789", "analyst": "analyst-key-0123456789", "agent": "agent-key-0123456789",
        "nobody": "nobody-key-0123456789", "limited": "limited-key-0123456789"}
JWT_SECRET = "test-jwt-secret-that-is-long-enough-for-hs256"

POLICY = f"""
version: 1
masking: redact
pii_columns: ["*.*.email", "*.*.phone"]
roles:
  admin: {{tables: ["*"], collections: ["*"], pii: true}}
  analyst:
    tables: ["silver.*", "gold.*"]
    deny_columns: ["silver.customers.national_id"]
    collections: ["revenue"]
    pii: false
  agent: {{tables: ["gold.*"], collections: [], pii: false}}
  nobody: {{tables: [], pii: false}}
  limited: {{tables: ["gold.*"], pii: false, rate_limit_per_minute: 3}}
keys:
{chr(10).join(f"  - {{name: {name}, role: {name}, sha256: {hash_key(key)}}}" for name, key in KEYS.items())}
"""


@dataclass
class Lake:
    root: Path
    catalog: Any
    variables: dict[str, str]  # environment that opens this catalog in a subprocess
    policy: Path
    counts: dict[str, int]


def make_lake(root: Path, name: str) -> Lake:
    variables = catalog_variables(root, name=name)
    catalog = open_sql_catalog(variables[f"PYICEBERG_CATALOG__{name.upper()}__URI"],
                               variables[f"PYICEBERG_CATALOG__{name.upper()}__WAREHOUSE"], name)
    counts = seed(catalog, orders=1000, customers=200, batches=3)
    policy = root / "policy.yaml"
    policy.write_text(POLICY)
    return Lake(root, catalog, variables, policy, counts)


def make_service(lake: Lake, audit: Path, **overrides: Any) -> Service:
    settings = Settings.from_env({}, policy_path=lake.policy, audit_log=audit, jwt_secret=JWT_SECRET,
                                 metadata_ttl=overrides.pop("metadata_ttl", 60.0), **overrides)
    return Service(settings, catalog=lake.catalog)


def audit_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn (uvloop, httptools) on 127.0.0.1 in a thread; yields the base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           loop="uvloop", http="httptools"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def with_mcp(url: str, key: str | None, body: Callable[[Any], Awaitable[Any]]) -> Any:
    """Open an MCP SDK client over streamable HTTP (with `key` as X-API-Key) and run `body(client)`."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async def main() -> Any:
        headers = {"X-API-Key": key} if key else None
        async with create_mcp_http_client(headers=headers) as http, \
                Client(streamable_http_client(f"{url}/mcp", http_client=http), cache=None) as client:
            return await body(client)

    return anyio.run(main)

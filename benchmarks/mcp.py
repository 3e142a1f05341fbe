"""`dp bench mcp`: latency of MCP metadata tool calls (list_tables / describe_table) over streamable HTTP.

A real server (`python -m workloads.mcp_server serve`: uvicorn, uvloop, httptools) runs in a subprocess on
127.0.0.1 over a temporary Iceberg SQL catalog filled with the sample medallion tables; real MCP SDK clients
call it, first one client sequentially, then 50 clients at once (each its own MCP session, calls back to
back). The baseline, measured in the same run against the same server, is a bare HTTP GET /healthz round
trip with the same HTTP client library, sequentially and at the same concurrency.
Goal on 2 cores: tool-call p99 <= 10 ms sequential, <= 50 ms with 50 concurrent clients.
"""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

CLIENTS = 50
CATALOG = "bench"  # a SQL catalog keeps its name in its rows: seed and server must agree
KEY_ENV = "DP_MCP_BENCH_KEY"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    return {"p50_ms": pick(0.50), "p99_ms": pick(0.99)}


def _policy(path: Path) -> None:
    path.write_text(f"""version: 1
pii_columns: ["*.*.email"]
roles:
  bench: {{tables: ["*"], collections: ["*"], pii: false, rate_limit_per_minute: 100000000}}
keys:
  - {{name: bench, role: bench, env: {KEY_ENV}}}
""")


def _start_server(workdir: Path, port: int, key: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DP_CATALOG": CATALOG,
        f"PYICEBERG_CATALOG__{CATALOG.upper()}__TYPE": "sql",
        f"PYICEBERG_CATALOG__{CATALOG.upper()}__URI": f"sqlite:///{workdir / 'catalog.db'}",
        f"PYICEBERG_CATALOG__{CATALOG.upper()}__WAREHOUSE": f"file://{workdir / 'warehouse'}",
        "DP_MCP_POLICY": str(workdir / "policy.yaml"),
        "DP_MCP_AUDIT_LOG": str(workdir / "audit.jsonl"),
        KEY_ENV: key,
    }
    log = open(workdir / "server.log", "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen([sys.executable, "-m", "workloads.mcp_server", "serve", "--host", "127.0.0.1",
                                "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited ({process.returncode}): {(workdir / 'server.log').read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError("server did not answer /healthz within 60 s")


async def _baseline(url: str, calls: int, clients: int) -> tuple[list[float], list[float]]:
    import httpx2

    async def loop(client, n: int, out: list[float]) -> None:
        for _ in range(n):
            started = time.perf_counter()
            response = await client.get(url)
            out.append(time.perf_counter() - started)
            response.raise_for_status()

    sequential: list[float] = []
    async with httpx2.AsyncClient() as client:
        await loop(client, 50, [])
        await loop(client, calls, sequential)
    concurrent: list[float] = []
    shared = [httpx2.AsyncClient() for _ in range(clients)]
    try:
        await asyncio.gather(*(loop(c, 5, []) for c in shared))
        await asyncio.gather(*(loop(c, max(1, calls // clients), concurrent) for c in shared))
    finally:
        await asyncio.gather(*(c.aclose() for c in shared))
    return sequential, concurrent


async def _tool_calls(url: str, key: str, calls: int, clients: int) -> tuple[list[float], list[float]]:
    from contextlib import AsyncExitStack

    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    tables: list[str] = []

    async def loop(client: Any, n: int, out: list[float]) -> None:
        for i in range(n):
            name, args = ("list_tables", {}) if i % 2 == 0 else ("describe_table", {"table": tables[i % len(tables)]})
            started = time.perf_counter()
            result = await client.call_tool(name, args)
            out.append(time.perf_counter() - started)
            if result.is_error:
                raise RuntimeError(f"{name} failed: {result.content}")

    async with AsyncExitStack() as stack:
        sessions = []
        for _ in range(clients):
            http = await stack.enter_async_context(create_mcp_http_client(headers={"X-API-Key": key}))
            sessions.append(await stack.enter_async_context(
                Client(streamable_http_client(url, http_client=http), cache=None)))
        listed = await sessions[0].call_tool("list_tables", {})
        tables += [t["name"] for t in listed.structured_content["tables"]]
        sequential: list[float] = []
        await loop(sessions[0], 50, [])
        await loop(sessions[0], calls, sequential)
        concurrent: list[float] = []
        await asyncio.gather(*(loop(s, 4, []) for s in sessions))
        await asyncio.gather(*(loop(s, max(2, calls // clients), concurrent) for s in sessions))
    return sequential, concurrent


def run(calls: int = 2000, clients: int = CLIENTS, progress: bool = True) -> dict[str, Any]:
    """Start a server, measure, stop it; returns the figures (shape of `dp bench mcp --json`)."""
    import logging
    import secrets

    from rich.console import Console

    from workloads.mcp_server.sample_data import open_sql_catalog, seed

    logging.getLogger("httpx").setLevel(logging.WARNING)
    console = Console(stderr=True, quiet=not progress)
    key = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="dp-bench-mcp-") as tmp:
        workdir = Path(tmp)
        with console.status("seeding a sample Iceberg catalog"):
            seed(open_sql_catalog(f"sqlite:///{workdir / 'catalog.db'}", f"file://{workdir / 'warehouse'}", CATALOG))
            _policy(workdir / "policy.yaml")
        port = _free_port()
        with console.status(f"starting the MCP server on 127.0.0.1:{port}"):
            server = _start_server(workdir, port, key)
        try:
            base = f"http://127.0.0.1:{port}"
            with console.status(f"baseline: GET /healthz, {calls} sequential, then {clients} clients"):
                base_seq, base_conc = asyncio.run(_baseline(f"{base}/healthz", calls, clients))
            with console.status(f"MCP tool calls: {calls} sequential, then {clients} clients"):
                seq, conc = asyncio.run(_tool_calls(f"{base}/mcp", key, calls, clients))
        finally:
            server.terminate()
            server.wait(timeout=30)
    console.print(f"{len(seq)} sequential and {len(conc)} concurrent tool calls; "
                  f"{len(base_seq)} + {len(base_conc)} baseline requests")
    return {
        "sequential": _percentiles(seq),
        "concurrent": {"clients": clients, **_percentiles(conc)},
        "baseline": {"sequential": _percentiles(base_seq), "concurrent": {"clients": clients,
                                                                          **_percentiles(base_conc)}},
    }

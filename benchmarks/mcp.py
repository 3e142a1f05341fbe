"""`dp bench mcp`: latency of MCP metadata tool calls (list_tables / describe_table) over streamable HTTP.

A real server (`python -m workloads.mcp_server serve`: uvicorn, uvloop, httptools) runs in a subprocess on
127.0.0.1 over a temporary Iceberg SQL catalog filled with the sample medallion tables; real MCP SDK clients
call it: first one client, calls back to back (sequential); then 50 clients at once, each its own MCP session
(concurrent). Concurrent clients behave like agents: each makes `rate` calls per second (default 5, so 250
calls/s offered in all), and a call's latency counts from when it was due, so a server that falls behind
shows up in the figures instead of slowing the clients down (no coordinated omission). `rate=0` makes them
call back to back: then latency is only concurrency / throughput, and on 2 shared cores the Python MCP
client (~2 ms of CPU per call, mostly validating results against the tools' output schemas) costs more than
the server (~1 ms). The baseline, measured in the same run against the same server, is a bare GET /healthz
with the same HTTP client library, sequential and at the same concurrency and rate.
Goal on 2 cores: tool-call p99 <= 10 ms sequential, <= 50 ms with 50 concurrent clients.
"""
from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

CLIENTS = 50
RATE = 5.0  # calls per second per concurrent client; 0 = back to back
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


async def _paced(call: Any, n: int, rate: float, out: list[float]) -> None:
    """`n` calls of `call(i)`. With `rate`, call i is due at start + i / rate (start offset at random within one
    period) and its latency counts from when it was due; without, calls go back to back."""
    period = 1.0 / rate if rate else 0.0
    start = time.perf_counter() + random.random() * period
    for i in range(n):
        due = start + i * period if rate else time.perf_counter()
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        await call(i)
        out.append(time.perf_counter() - due)


async def _healthz_round_trips(url: str, clients: int, calls: int, rate: float) -> list[float]:
    """Baseline: `clients` HTTP clients (the MCP client's own library, httpx2) GET /healthz."""
    import httpx2

    latencies: list[float] = []
    pool = [httpx2.AsyncClient() for _ in range(clients)]

    def caller(client: Any) -> Any:
        async def call(_: int) -> None:
            (await client.get(url)).raise_for_status()
        return call

    try:
        await asyncio.gather(*(_paced(caller(c), 20, 0, []) for c in pool))  # warm up: connections, code
        await asyncio.gather(*(_paced(caller(c), calls, rate, latencies) for c in pool))
    finally:
        await asyncio.gather(*(c.aclose() for c in pool))
    return latencies


async def _tool_call_round_trips(url: str, key: str, clients: int, calls: int, rate: float) -> list[float]:
    """`clients` MCP SDK clients (one session each, streamable HTTP) alternate list_tables / describe_table."""
    from contextlib import AsyncExitStack

    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    latencies: list[float] = []
    async with AsyncExitStack() as stack:
        sessions = []
        for _ in range(clients):
            http = await stack.enter_async_context(create_mcp_http_client(headers={"X-API-Key": key}))
            sessions.append(await stack.enter_async_context(
                Client(streamable_http_client(url, http_client=http), cache=None)))
        listed = await sessions[0].call_tool("list_tables", {})
        tables = [t["name"] for t in listed.structured_content["tables"]]

        def caller(client: Any) -> Any:
            async def call(i: int) -> None:
                name, args = ("list_tables", {}) if i % 2 == 0 else ("describe_table",
                                                                     {"table": tables[i // 2 % len(tables)]})
                result = await client.call_tool(name, args)
                if result.is_error:
                    raise RuntimeError(f"{name} failed: {result.content}")
            return call

        await asyncio.gather(*(_paced(caller(c), 20, 0, []) for c in sessions))  # warm up: sessions, caches
        await asyncio.gather(*(_paced(caller(c), calls, rate, latencies) for c in sessions))
    return latencies


def _client_process(kind: str, url: str, key: str, clients: int, calls: int, rate: float) -> list[float]:
    """One load-generating process (module level so a process pool can run it)."""
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    if kind == "healthz":
        return asyncio.run(_healthz_round_trips(url, clients, calls, rate))
    return asyncio.run(_tool_call_round_trips(url, key, clients, calls, rate))


def _measure(kind: str, url: str, key: str, clients: int, calls: int, rate: float) -> list[float]:
    """Latencies of `calls` calls spread over `clients` concurrent clients. The clients are spread over one
    process per core: a Python MCP client costs more CPU per call than the server does, and one process
    driving all of them would measure its own event loop's queue instead of the server."""
    if clients == 1:
        return _client_process(kind, url, key, 1, calls, 0)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    processes = max(1, min(clients, os.cpu_count() or 1))
    shares = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    per_client = max(1, calls // clients)
    with ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_client_process, kind, url, key, share, per_client, rate) for share in shares]
        return [latency for future in futures for latency in future.result()]


def run(calls: int = 2000, clients: int = CLIENTS, rate: float = RATE, progress: bool = True) -> dict[str, Any]:
    """Start a server, measure, stop it; returns the figures (shape of `dp bench mcp --json`)."""
    import logging
    import secrets

    import psutil
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
            phases, server_cpu = {}, {}
            for label, kind, path in (("baseline", "healthz", "/healthz"), ("tool calls", "mcp", "/mcp")):
                for n in (1, clients):
                    pace = f", {rate:g} calls/s each" if n > 1 and rate else ""
                    with console.status(f"{label}: {calls} calls from {n} client{'s' if n > 1 else ''}{pace}"):
                        before = sum(psutil.Process(server.pid).cpu_times()[:2])
                        phases[kind, n] = _measure(kind, f"{base}{path}", key, n, calls, rate)
                        spent = sum(psutil.Process(server.pid).cpu_times()[:2]) - before
                        server_cpu[kind, n] = spent * 1000 / max(1, len(phases[kind, n]))
            seq, conc = phases["mcp", 1], phases["mcp", clients]
            base_seq, base_conc = phases["healthz", 1], phases["healthz", clients]
        finally:
            server.terminate()
            server.wait(timeout=30)
    offered = f"{clients} clients x {rate:g} calls/s" if rate else f"{clients} clients back to back"
    console.print(f"{len(seq)} sequential and {len(conc)} concurrent tool calls ({offered}), {len(base_seq)} + "
                  f"{len(base_conc)} baseline requests; server CPU per tool call {server_cpu['mcp', 1]:.2f} ms "
                  f"sequential, {server_cpu['mcp', clients]:.2f} ms concurrent (incl. warm-up)")
    return {
        "sequential": _percentiles(seq),
        "concurrent": {"clients": clients, **_percentiles(conc)},
        "baseline": {"sequential": _percentiles(base_seq), "concurrent": {"clients": clients,
                                                                          **_percentiles(base_conc)}},
    }

"""The MCP server end to end: the MCP SDK's own client over streamable HTTP (a real uvicorn on 127.0.0.1) and
over stdio (a subprocess), against real Iceberg tables in a temporary SQL catalog. Every tool is called, and
errors come back as MCP tool errors with the reason."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import httpx
import pyarrow.compute as pc
import pytest
from mcp.shared.exceptions import MCPError

from tests.workloads.mcp_support import KEYS, audit_lines, make_lake, make_service, running, with_mcp
from workloads.mcp_server.app import create_app

TOOLS = {"list_tables", "describe_table", "sample_rows", "query", "table_history", "vector_search", "lineage"}


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return make_lake(tmp_path_factory.mktemp("mcp-lake"), "mcpserver")


@pytest.fixture(scope="module")
def vector_env(tmp_path_factory, lake):
    """A real vector collection ("revenue") built from gold.daily_revenue by the vector layer."""
    from workloads.vector.indexer import IndexSpec, index_table
    from workloads.vector.store import close_stores

    mp = pytest.MonkeyPatch()
    mp.setenv("DP_VECTOR_BACKEND", "qdrant-edge")
    mp.setenv("DP_VECTOR_PATH", str(tmp_path_factory.mktemp("vectors")))
    mp.delenv("DP_EMBEDDINGS_MODEL", raising=False)
    close_stores()
    spec = IndexSpec(collection="revenue", table="gold.daily_revenue", key=("day", "country"),
                     text="revenue of {country} on {day}: {revenue}", payload=("country", "day"),
                     keyword_fields=("country",))
    index_table(spec, catalog=lake.catalog)
    yield
    close_stores()
    mp.undo()


@pytest.fixture(scope="module")
def server(tmp_path_factory, lake, vector_env):
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    service = make_service(lake, audit)
    with running(create_app(service.settings, service)) as url:
        yield url, audit
    service.close()


def leaves(exc: BaseException):
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


def text(result) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def test_lists_every_tool_with_typed_output_and_read_only_hint(server):
    url, _ = server

    async def body(client):
        return (await client.list_tools()).tools, (await client.list_resource_templates()).resource_templates

    tools, templates = with_mcp(url, KEYS["analyst"], body)
    assert {t.name for t in tools} == TOOLS
    for tool in tools:
        assert tool.output_schema and tool.output_schema["type"] == "object", tool.name
        assert tool.annotations.read_only_hint is True and tool.description
    query = next(t for t in tools if t.name == "query")
    assert "sql" in query.input_schema["required"]
    assert [t.uri_template for t in templates] == ["table://{namespace}/{table}/schema"]


def test_every_tool_answers_with_structured_content(server, lake):
    url, audit = server
    orders = lake.catalog.load_table("silver.orders")

    async def body(client):
        out = {}
        out["list"] = await client.call_tool("list_tables", {})
        out["describe"] = await client.call_tool("describe_table", {"table": "gold.daily_revenue"})
        out["sample"] = await client.call_tool("sample_rows", {"table": "silver.customers", "limit": 5})
        out["query"] = await client.call_tool("query", {"sql": (
            "SELECT currency, count(*) AS n, sum(amount) AS total FROM silver.orders GROUP BY currency "
            "ORDER BY currency")})
        out["history"] = await client.call_tool("table_history", {"table": "silver.orders"})
        first = out["history"].structured_content["snapshots"][0]["snapshot_id"]
        out["as_of"] = await client.call_tool("table_history", {"table": "silver.orders", "snapshot_id": first,
                                                                "limit": 1000})
        out["lineage"] = await client.call_tool("lineage", {"table": "gold.daily_revenue"})
        out["vector"] = await client.call_tool("vector_search", {"collection": "revenue",
                                                                 "query": "revenue of Japan", "limit": 3,
                                                                 "filters": {"country": "JP"}})
        out["schema"] = await client.read_resource("table://silver/customers/schema")
        return out

    out = with_mcp(url, KEYS["analyst"], body)
    for name, result in out.items():
        if name != "schema":
            assert not result.is_error, (name, text(result))

    tables = [t["name"] for t in out["list"].structured_content["tables"]]
    assert tables == ["gold.daily_revenue", "silver.customers", "silver.orders"]  # no bronze for analysts

    described = out["describe"].structured_content
    assert [c["name"] for c in described["columns"]] == ["day", "country", "orders", "revenue"]
    assert described["governance"]["owners"] == ["finance-data@example.com", "analytics@example.com"]
    assert described["governance"]["upstreams"] == ["silver.orders", "silver.customers"]
    assert described["governance"]["quality"]["status"] == "passing"
    assert described["row_count"] == lake.counts["gold.daily_revenue"]

    sample = out["sample"].structured_content
    columns = [c["name"] for c in sample["columns"]]
    assert "national_id" not in columns and sample["row_count"] == 5
    emails = {row[columns.index("email")] for row in sample["rows"]}
    assert emails == {"***"}  # PII masked for analysts

    data = orders.scan().to_arrow()
    rows = out["query"].structured_content["rows"]
    for currency, n, total in rows:
        mask = pc.equal(data["currency"], currency)
        assert n == pc.sum(mask.cast("int64")).as_py()
        assert total == str(pc.sum(pc.filter(data["amount"], mask)).as_py())

    snapshots = out["history"].structured_content["snapshots"]
    assert len(snapshots) == 3 and out["history"].structured_content["rows"] is None
    as_of = out["as_of"].structured_content
    assert as_of["as_of"]["snapshot_id"] == snapshots[0]["snapshot_id"]
    assert as_of["rows"]["row_count"] == int(snapshots[0]["summary"]["total-records"]) < lake.counts["silver.orders"]

    lineage = out["lineage"].structured_content
    edges = {(e["upstream"], e["downstream"]) for e in lineage["edges"]}
    assert ("silver.orders", "gold.daily_revenue") in edges and ("bronze.orders_raw", "silver.orders") in edges
    nodes = {n["name"]: n for n in lineage["nodes"]}
    assert nodes["bronze.orders_raw"]["readable"] is False and nodes["bronze.customers_raw"]["exists"] is False

    hits = out["vector"].structured_content["hits"]
    assert 1 <= len(hits) <= 3 and all(h["payload"]["country"] == "JP" for h in hits)

    schema = out["schema"].contents[0].text
    assert '"email"' in schema and '"masked"' in schema and "national_id" not in schema

    tools = {line["tool"] for line in audit_lines(audit) if line["principal"] == "analyst"}
    assert TOOLS <= tools


@pytest.mark.parametrize(("tool", "args", "expected"), [
    ("query", {"sql": "SELECT 1; DROP TABLE silver.orders"}, "refused: exactly one statement"),
    ("query", {"sql": "DELETE FROM silver.orders"}, "refused: only read-only SELECT"),
    ("query", {"sql": "SELECT * FROM read_csv('/etc/passwd')"}, "refused: table functions are not allowed"),
    ("query", {"sql": "SELECT * FROM silver.nope"}, "refused: unknown table 'silver.nope'"),
    ("query", {"sql": "SELECT national_id FROM silver.customers"}, "denied: not allowed to read column"),
    ("query", {"sql": "SELEC oops"}, "refused:"),
    ("query", {"sql": "SELECT no_such_column FROM silver.orders"}, "query_failed:"),
    ("sample_rows", {"table": "bronze.orders_raw"}, "denied: not allowed to read bronze.orders_raw"),
    ("describe_table", {"table": "gold.missing"}, "not_found: unknown table"),
    ("table_history", {"table": "silver.orders", "snapshot_id": 1}, "not_found: silver.orders has no snapshot 1"),
    ("table_history", {"table": "silver.orders", "as_of": "yesterday"}, "refused: as_of must be an ISO 8601"),
    ("vector_search", {"collection": "secret", "query": "x"}, "denied: not allowed to search secret"),
    ("sample_rows", {"table": "silver.orders", "limit": 0}, "validation error"),
])
def test_errors_are_tool_errors_with_the_reason(server, tool, args, expected):
    url, _ = server
    result = with_mcp(url, KEYS["analyst"], lambda client: client.call_tool(tool, args))
    assert result.is_error
    assert expected in text(result)


def test_unauthenticated_and_unknown_keys_get_401_and_are_audited(server):
    url, audit = server
    before = len(audit_lines(audit))
    with pytest.raises(BaseException) as refused:  # the SDK client cannot even open a session
        with_mcp(url, None, lambda client: client.list_tools())
    assert any(isinstance(e, MCPError) for e in leaves(refused.value))
    assert audit_lines(audit)[before]["outcome"] == "unauthenticated"
    before = len(audit_lines(audit))
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer not.a.jwt"}):
        response = httpx.post(f"{url}/mcp", headers={"Accept": "application/json, text/event-stream", **headers},
                              json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"] == "unauthenticated" and response.json()["detail"]
    refusals = audit_lines(audit)[before:]
    assert [r["outcome"] for r in refusals] == ["unauthenticated"] * 3
    assert {r["transport"] for r in refusals} == {"mcp-http"}
    assert "wrong" not in audit.read_text()  # presented credentials never reach the audit log


def test_foreign_host_header_is_refused_dns_rebinding(server):
    url, _ = server
    response = httpx.post(f"{url}/mcp", headers={"Host": "attacker.example", "X-API-Key": KEYS["analyst"],
                                                 "Accept": "application/json, text/event-stream"},
                          json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 421


def test_health_readiness_and_metrics(server):
    url, _ = server
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{url}/readyz").json() == {"status": "ready"}
    with_mcp(url, KEYS["agent"], lambda client: client.call_tool("sample_rows", {"table": "silver.orders"}))
    metrics = httpx.get(f"{url}/metrics").text
    assert 'dp_mcp_calls_total{outcome="ok",tool="list_tables",transport="mcp-http"}' in metrics
    assert 'dp_mcp_denials_total{reason="denied",tool="sample_rows"}' in metrics
    assert 'dp_mcp_call_seconds_bucket{le="0.005",tool="describe_table",transport="mcp-http"}' in metrics


def test_new_snapshot_invalidates_cached_metadata(tmp_path, lake):
    service = make_service(lake, tmp_path / "audit.jsonl", metadata_ttl=0.0)
    admin = service.auth.from_key(KEYS["admin"])
    table = lake.catalog.load_table("gold.daily_revenue")
    before = service.describe_table(admin, "gold.daily_revenue")
    assert service.describe_table(admin, "gold.daily_revenue") == before  # unchanged metadata: same answer
    try:
        table.append(table.scan(limit=1).to_arrow())
        after = service.describe_table(admin, "gold.daily_revenue")
        assert after.snapshot_count == before.snapshot_count + 1
        assert after.row_count == before.row_count + 1
    finally:
        table.manage_snapshots().rollback_to_snapshot(before.current_snapshot_id).commit()
    service.close()


def _stdio(lake, audit: Path, credentials: dict[str, str]):
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    env = {"PATH": os.environ["PATH"], **lake.variables, "DP_MCP_POLICY": str(lake.policy),
           "DP_MCP_AUDIT_LOG": str(audit), **credentials}
    params = StdioServerParameters(command=sys.executable, args=["-m", "workloads.mcp_server", "stdio"], env=env,
                                   cwd=str(Path(__file__).resolve().parents[2]))
    return Client(params, cache=None)


@pytest.mark.slow
def test_stdio_transport_end_to_end(tmp_path, lake):
    audit = tmp_path / "audit.jsonl"

    async def main():
        async with _stdio(lake, audit, {"DP_MCP_API_KEY": KEYS["agent"]}) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            listed = await client.call_tool("list_tables", {})
            counted = await client.call_tool("query", {"sql": "SELECT count(*) FROM gold.daily_revenue"})
            refused = await client.call_tool("query", {"sql": "ATTACH '/tmp/x.db' AS x"})
            denied = await client.call_tool("describe_table", {"table": "silver.customers"})
            others = [await client.call_tool(tool, args) for tool, args in (
                ("describe_table", {"table": "gold.daily_revenue"}),
                ("sample_rows", {"table": "gold.daily_revenue", "limit": 2}),
                ("table_history", {"table": "gold.daily_revenue", "as_of": "2999-01-01T00:00:00Z", "limit": 2}),
                ("lineage", {"table": "gold.daily_revenue"}))]
            no_vectors = await client.call_tool("vector_search", {"collection": "revenue", "query": "x"})
        async with _stdio(lake, audit, {}) as client:
            anonymous = await client.call_tool("list_tables", {})
        return tools, listed, counted, refused, denied, others, no_vectors, anonymous

    tools, listed, counted, refused, denied, others, no_vectors, anonymous = anyio.run(main)
    assert [r.is_error for r in others] == [False] * 4
    assert others[1].structured_content["row_count"] == 2 and others[2].structured_content["rows"]["row_count"] == 2
    assert no_vectors.is_error and "no collection rule of role agent" in text(no_vectors)
    assert tools == TOOLS
    assert [t["name"] for t in listed.structured_content["tables"]] == ["gold.daily_revenue"]
    assert counted.structured_content["rows"] == [[lake.counts["gold.daily_revenue"]]]
    assert refused.is_error and "got ATTACH" in text(refused)
    assert denied.is_error and "denied" in text(denied)
    assert anonymous.is_error and "set DP_MCP_API_KEY or DP_MCP_TOKEN" in text(anonymous)
    outcomes = [(line["transport"], line["outcome"]) for line in audit_lines(audit)]
    assert ("mcp-stdio", "refused") in outcomes and ("mcp-stdio", "unauthenticated") in outcomes


def test_handshake_era_clients_get_sessions_bound_to_their_credential(server):
    """Clients of the 2025 protocol (initialize handshake, Mcp-Session-Id) work too, and a session opened with
    one key cannot be used with another."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    url, _ = server

    async def legacy():
        async with create_mcp_http_client(headers={"X-API-Key": KEYS["agent"]}) as http, \
                Client(streamable_http_client(f"{url}/mcp", http_client=http), mode="legacy", cache=None) as client:
            return await client.call_tool("list_tables", {})

    listed = anyio.run(legacy)
    assert [t["name"] for t in listed.structured_content["tables"]] == ["gold.daily_revenue"]

    headers = {"Accept": "application/json, text/event-stream"}
    opened = httpx.post(f"{url}/mcp", headers={**headers, "X-API-Key": KEYS["admin"]}, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    session = opened.headers["mcp-session-id"]
    hijack = httpx.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers={
        **headers, "X-API-Key": KEYS["agent"], "mcp-session-id": session, "mcp-protocol-version": "2025-06-18"})
    assert hijack.status_code == 404


@pytest.mark.slow
def test_serve_command_configured_by_environment(tmp_path, lake):
    import subprocess
    import time

    from tests.workloads.mcp_support import free_port

    port = free_port()
    env = {"PATH": os.environ["PATH"], **lake.variables, "DP_MCP_POLICY": str(lake.policy),
           "DP_MCP_AUDIT_LOG": str(tmp_path / "audit.jsonl")}
    command = [sys.executable, "-m", "workloads.mcp_server", "serve", "--port", str(port)]
    repo = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(command, env=env, cwd=repo, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "server did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").json() == {"status": "ready"}:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        listed = with_mcp(f"http://127.0.0.1:{port}", KEYS["agent"], lambda c: c.call_tool("list_tables", {}))
        assert [t["name"] for t in listed.structured_content["tables"]] == ["gold.daily_revenue"]
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}" in stderr  # tells a person where it listens

    bad = subprocess.run(command, env={**env, "DP_MCP_POLICY": str(tmp_path / "missing.yaml")}, cwd=repo,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "missing.yaml" in bad.stderr and "No such file" in bad.stderr

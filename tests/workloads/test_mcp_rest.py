"""The REST surface (/api/v1): the same operations as the MCP tools with HTTP status codes for refusals, an
OpenAPI document, and schemathesis generating requests from that document in process (ASGI): no request may
end in a server error, and responses must match the documented schemas."""
from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from fastapi.testclient import TestClient

from tests.workloads.mcp_support import KEYS, audit_lines, make_lake, make_service
from workloads.mcp_server.app import create_app


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return make_lake(tmp_path_factory.mktemp("mcp-rest"), "mcprest")


@pytest.fixture(scope="module")
def rest_app(tmp_path_factory, lake):
    service = make_service(lake, tmp_path_factory.mktemp("audit") / "audit.jsonl", rate_limit_per_minute=100_000)
    yield create_app(service.settings, service)
    service.close()


@pytest.fixture(scope="module")
def client(rest_app):
    with TestClient(rest_app) as test_client:
        yield test_client


def get(client, path: str, role: str = "analyst", **params):
    return client.get(path, params=params, headers={"X-API-Key": KEYS[role]})


def test_operations(client, lake):
    assert [t["name"] for t in get(client, "/api/v1/tables", "agent").json()["tables"]] == ["gold.daily_revenue"]
    described = get(client, "/api/v1/tables/silver.orders").json()
    assert described["partitioning"] == [{"name": "currency", "source_column": "currency", "transform": "identity"}]
    assert described["snapshot_count"] == 3 and len(described["snapshots"]) == 3
    sample = get(client, "/api/v1/tables/silver.customers/sample", limit=4).json()
    assert sample["row_count"] == 4 and "silver.customers.email" in sample["masked_columns"]
    history = get(client, "/api/v1/tables/silver.orders/history", as_of="2100-01-01T00:00:00Z", limit=3).json()
    assert history["as_of"]["snapshot_id"] == described["current_snapshot_id"] and history["rows"]["row_count"] == 3
    lineage = get(client, "/api/v1/tables/silver.orders/lineage", depth=1).json()
    assert {(e["upstream"], e["downstream"]) for e in lineage["edges"]} == {
        ("bronze.orders_raw", "silver.orders"), ("silver.orders", "gold.daily_revenue")}
    answer = client.post("/api/v1/query", headers={"Authorization": f"Bearer {KEYS['analyst']}"},
                         json={"sql": "SELECT count(*) AS n FROM silver.orders", "limit": 5}).json()
    assert answer["columns"] == [{"name": "n", "type": "int64"}] and answer["rows"] == [[lake.counts["silver.orders"]]]


def test_refusals_map_to_status_codes(client):
    assert client.get("/api/v1/tables").status_code == 401
    unknown = client.get("/api/v1/tables", headers={"X-API-Key": "nope"})
    assert (unknown.status_code, unknown.json()["detail"]) == (401, "unknown API key")
    denied = get(client, "/api/v1/tables/bronze.orders_raw")
    assert denied.status_code == 403 and denied.json()["decision"]["rule"] == "roles.analyst.tables"
    assert get(client, "/api/v1/tables/gold.nothing").status_code == 404
    refused = client.post("/api/v1/query", headers={"X-API-Key": KEYS["analyst"]},
                          json={"sql": "SELECT 1; DROP TABLE silver.orders"})
    assert refused.status_code == 400 and refused.json()["error"] == "refused"
    failed = client.post("/api/v1/query", headers={"X-API-Key": KEYS["analyst"]},
                         json={"sql": "SELECT missing FROM silver.orders"})
    assert failed.status_code == 422 and "missing" in failed.json()["detail"]
    for _ in range(3):
        get(client, "/api/v1/tables", "limited")
    limited = get(client, "/api/v1/tables", "limited")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    audited = audit_lines(client.app.state.service.audit.path)
    assert {"unauthenticated", "denied", "not_found", "refused", "query_failed", "rate_limited"} <= {
        line["outcome"] for line in audited}
    assert {line["transport"] for line in audited} == {"rest"}


def test_openapi_document_lists_every_operation(client):
    document = client.get("/openapi.json").json()
    assert set(document["paths"]) == {
        "/healthz", "/readyz", "/metrics", "/api/v1/tables", "/api/v1/tables/{table}",
        "/api/v1/tables/{table}/sample", "/api/v1/tables/{table}/history", "/api/v1/tables/{table}/lineage",
        "/api/v1/query", "/api/v1/vector/collections", "/api/v1/vector/search"}
    assert {"APIKeyHeader", "HTTPBearer"} <= set(document["components"]["securitySchemes"])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_makes_the_server_fail(lake, tmp_path, mode):
    """Requests generated from the OpenAPI document, sent as an analyst to the ASGI app in process: valid or
    invalid, allowed or refused, none may end in a 5xx or a response that contradicts the document, and
    invalid requests must be rejected.
    (schemathesis' lazy pytest fixture breaks on pytest 9, so its strategies are driven with hypothesis.)"""
    service = make_service(lake, tmp_path / "audit.jsonl", rate_limit_per_minute=100_000)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(service.settings, service))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 11
    nothing_to_vary = []
    for operation in operations:
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis.settings(max_examples=12, deadline=None, derandomize=True, database=None,
                             suppress_health_check=list(hypothesis.HealthCheck))
        def check(case):
            # positive_data_acceptance is left out: a schema-valid body can still be refused SQL (400 with why).
            case.call_and_validate(headers={"X-API-Key": KEYS["analyst"]},
                                   excluded_checks=[positive_data_acceptance])

        try:
            check()
        except hypothesis.errors.Unsatisfiable:  # no parameter or body to make invalid
            assert mode is GenerationMode.NEGATIVE, operation.label
            nothing_to_vary.append(operation.label)
    assert set(nothing_to_vary) <= {"GET /healthz", "GET /readyz", "GET /metrics", "GET /api/v1/tables",
                                    "GET /api/v1/vector/collections"}
    assert len(audit_lines(service.audit.path)) > 20  # the calls really reached the service
    service.close()

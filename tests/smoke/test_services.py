"""From the machine running the suite, as a client would: health endpoints answer, a message goes through Kafka and
comes back, the Iceberg tables exist and got data recently, the MCP server answers a tool call (and refuses a
caller without a key), and Prometheus scrapes every target."""
from __future__ import annotations

import json
import os
import ssl
import time
import uuid
from datetime import datetime, timezone

import httpx
import pytest

from dp.inventory import Http, Inventory

SMOKE_TOPIC = "dp.smoke"  # never one of the platform's topics: the round trip must not feed the pipelines
DATA_OPERATIONS = {"append", "overwrite"}  # a maintenance rewrite (replace) is not new data


def verify(check: Http) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cadata=check.ca_pem) if check.ca_pem else True


def test_http_healthy(health: Http) -> None:
    response = httpx.get(health.url, verify=verify(health), timeout=10)
    assert response.is_success, f"{health.url}: HTTP {response.status_code} {response.text[:200]}"


# --- Kafka ------------------------------------------------------------------------------------------------------
def kafka_config(inventory: Inventory) -> dict:
    kafka = inventory.kafka
    conf = {"bootstrap.servers": kafka.bootstrap_servers, "security.protocol": kafka.security_protocol}
    if kafka.sasl_mechanism:
        conf["sasl.mechanism"] = kafka.sasl_mechanism
    if kafka.sasl_mechanism == "OAUTHBEARER" and kafka.region:  # MSK IAM
        try:
            from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
        except ImportError:
            pytest.fail("MSK IAM authentication needs the package aws-msk-iam-sasl-signer-python and AWS "
                        "credentials (the workloads' role)")

        def token(_config):
            value, expiry_ms = MSKAuthTokenProvider.generate_auth_token(kafka.region)
            return value, expiry_ms / 1000

        conf["oauth_cb"] = token
    return conf


def test_kafka_round_trip(inventory: Inventory) -> None:
    """Produce one unique message to the smoke topic (created if missing) and read exactly it back."""
    if inventory.kafka is None:
        pytest.skip(inventory.reason("kafka"))
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    conf = kafka_config(inventory)
    admin = AdminClient(conf)
    metadata = admin.list_topics(timeout=15)
    if SMOKE_TOPIC not in metadata.topics:
        replicas = min(3, len(metadata.brokers))
        futures = admin.create_topics([NewTopic(SMOKE_TOPIC, 1, replicas, config={"retention.ms": "3600000"})])
        try:
            futures[SMOKE_TOPIC].result(30)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    payload = json.dumps({"smoke": str(uuid.uuid4()), "at": time.time()}).encode()
    delivered = []
    producer = Producer({**conf, "acks": "all", "enable.idempotence": True})
    producer.produce(SMOKE_TOPIC, payload, key=b"smoke",
                     on_delivery=lambda err, msg: delivered.append((err, msg)))
    assert producer.flush(30) == 0, "the message was not delivered within 30 s"
    [(error, message)] = delivered
    assert error is None, f"produce failed: {error}"
    consumer = Consumer({**conf, "group.id": f"dp-smoke-{uuid.uuid4()}", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(SMOKE_TOPIC, message.partition(), message.offset())])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            record = consumer.poll(1)
            if record is None:
                continue
            assert record.error() is None, f"consume failed: {record.error()}"
            assert record.value() == payload, "read back a different message at the produced offset"
            return
        pytest.fail(f"produced at {SMOKE_TOPIC}[{message.partition()}]@{message.offset()}, not read back in 30 s")
    finally:
        consumer.close()


# --- Iceberg ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def catalog(inventory: Inventory):
    if inventory.catalog is None:
        pytest.skip(inventory.reason("catalog"))
    from pyiceberg.catalog import load_catalog

    return load_catalog(inventory.catalog.name, **inventory.catalog.properties)


def test_namespaces_present(inventory: Inventory, catalog) -> None:
    present = {".".join(ns) for ns in catalog.list_namespaces()}
    missing = sorted(set(inventory.catalog.namespaces) - present)
    assert not missing, f"namespaces missing from the catalog: {missing}"


def test_table_present(catalog, table: str) -> None:
    assert catalog.table_exists(table), f"{table} does not exist in the catalog"


def test_layer_fresh(inventory: Inventory, catalog, layer: str) -> None:
    """Data reached the layer recently: its newest append/overwrite commit is at most `fresh_within` s old."""
    newest: dict[str, int] = {}
    for identifier in inventory.tables.identifiers:
        if identifier.split(".")[0] != layer or not catalog.table_exists(identifier):
            continue
        commits = [s.timestamp_ms for s in catalog.load_table(identifier).snapshots()
                   if s.summary is not None and s.summary.operation.value in DATA_OPERATIONS]
        if commits:
            newest[identifier] = max(commits)
    assert newest, f"no data was ever committed to {layer}"
    table, at = max(newest.items(), key=lambda item: item[1])
    age = time.time() - at / 1000
    when = datetime.fromtimestamp(at / 1000, timezone.utc).isoformat(timespec="seconds")
    limit = inventory.tables.fresh_within
    assert age <= limit, f"{layer} is stale: newest data commit {when} ({table}), {age:.0f} s ago > {limit:.0f} s"


# --- MCP --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mcp(inventory: Inventory):
    if inventory.mcp is None:
        pytest.skip(inventory.reason("mcp"))
    return inventory.mcp


def test_mcp_refuses_a_caller_without_key(mcp) -> None:
    response = httpx.get(f"{mcp.url}/api/v1/tables", timeout=10)
    assert response.status_code == 401, f"an anonymous call got HTTP {response.status_code}, expected 401"


def test_mcp_tool_call(mcp) -> None:
    """`list_tables` over MCP (streamable HTTP) with the agent's key: no error, the expected tables listed."""
    import anyio
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    key = os.environ.get(mcp.api_key_env)
    if not key:
        pytest.fail(f"no API key: export {mcp.api_key_env} (the key the MCP server was started with)")

    async def call():
        async with create_mcp_http_client(headers={"X-API-Key": key}) as http, \
                Client(streamable_http_client(f"{mcp.url}/mcp", http_client=http), cache=None) as client:
            return await client.call_tool("list_tables", {})

    result = anyio.run(call)
    assert not result.is_error, f"list_tables failed: {result.content}"
    listed = {t["name"] for t in result.structured_content["tables"]}
    missing = sorted(set(mcp.expect_tables) - listed)
    assert not missing, f"list_tables did not list {missing}"


# --- Prometheus -------------------------------------------------------------------------------------------------
def prometheus_get(inventory: Inventory, path: str, params: dict) -> dict:
    prometheus = inventory.prometheus
    url = prometheus.url.rstrip("/") + path
    headers = {}
    if prometheus.sigv4_region:  # Amazon Managed Prometheus: SigV4-signed with the caller's AWS credentials
        try:
            from botocore.auth import SigV4Auth
            from botocore.awsrequest import AWSRequest
            from botocore.session import Session
        except ImportError:
            pytest.fail("Amazon Managed Prometheus needs botocore and AWS credentials to sign the query")
        request = AWSRequest(method="GET", url=str(httpx.URL(url, params=params)))
        SigV4Auth(Session().get_credentials(), "aps", prometheus.sigv4_region).add_auth(request)
        headers = dict(request.headers)
    response = httpx.get(url, params=params, headers=headers, timeout=15)
    assert response.is_success, f"{url}: HTTP {response.status_code} {response.text[:200]}"
    return response.json()["data"]


def down_targets(inventory: Inventory) -> tuple[int, list[str]]:
    """(targets seen, those not up) from the scrape targets, or from `up` on Amazon Managed Prometheus."""
    if inventory.prometheus.sigv4_region:
        series = prometheus_get(inventory, "/api/v1/query", {"query": "up"})["result"]
        return len(series), [f"{s['metric'].get('job')} {s['metric'].get('instance')}" for s in series
                             if s["value"][1] != "1"]
    targets = prometheus_get(inventory, "/api/v1/targets", {"state": "active"})["activeTargets"]
    return len(targets), [f"{t['labels'].get('job')} {t['scrapeUrl']}: {t['health']} {t.get('lastError', '')}"
                          for t in targets if t["health"] != "up"]


def test_prometheus_targets_up(inventory: Inventory) -> None:
    """Every scrape target is up; a target not scraped yet after a deploy gets up to 90 s."""
    if inventory.prometheus is None:
        pytest.skip(inventory.reason("prometheus"))
    deadline = time.monotonic() + 90
    while True:
        seen, down = down_targets(inventory)
        if seen and not down or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert seen, "Prometheus has no scrape targets"
    assert not down, "targets not up:\n" + "\n".join(down)

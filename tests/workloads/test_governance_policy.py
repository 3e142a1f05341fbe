"""Access decisions from the Rego policy: allowed, denied and masked cases for admin, analyst and agent, each
explained by the rule that decided; the same decisions from an OPA server's data API (served here by a small
HTTP server that loads the bundle `policy bundle` writes); and masks applied by the MCP server's queries."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from workloads.governance.policy import DecisionPoint, PolicyUnavailable, RegoEngine, bundle
from workloads.mcp_server.config import HERE as MCP_DIR
from workloads.mcp_server.errors import Unavailable
from workloads.mcp_server.policy import Policy

CUSTOMERS = {"dp.classifications": json.dumps({"email": "pii.email", "full_name": "pii.name"}),
             "dp.pii.columns": "email,full_name"}
COLUMNS = ["customer_id", "email", "full_name", "country"]


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.load(MCP_DIR / "access.yaml", environ={})


def spec(policy: Policy) -> dict:
    return policy.spec.model_dump(mode="json", exclude={"keys"})


@pytest.mark.parametrize(("role", "table", "allowed", "rule"), [
    ("admin", "bronze.orders", True, "roles.admin.tables '*'"),
    ("analyst", "silver.customers", True, "roles.analyst.tables 'silver.*'"),
    ("analyst", "bronze.orders", False, "roles.analyst.tables"),
    ("agent", "gold.customer_ltv", True, "roles.agent.tables 'gold.*'"),
    ("agent", "silver.customers", False, "roles.agent.tables"),
    ("intruder", "gold.customer_ltv", False, "roles"),
])
def test_table_decisions_name_their_rule(policy, role, table, allowed, rule):
    decision = policy.table(role, table)
    assert (decision.allowed, decision.rule) == (allowed, rule)
    assert table in decision.reason or role in decision.reason


def test_column_decisions_clear_masked_denied(policy):
    admin = {c.name: c for c in policy.columns("admin", "silver.customers", COLUMNS, CUSTOMERS)}
    assert admin["email"].access == "clear" and admin["email"].pii
    assert admin["email"].rule == "classification pii.email (table property dp.classifications); roles.admin.pii is true"
    analyst = {c.name: c for c in policy.columns("analyst", "silver.customers", COLUMNS, CUSTOMERS)}
    assert (analyst["email"].access, analyst["email"].mask) == ("masked", "partial")  # masks: pii.email
    assert (analyst["full_name"].access, analyst["full_name"].mask) == ("masked", "redact")
    assert (analyst["country"].access, analyst["country"].pii) == ("clear", False)
    quarantine = policy.columns("analyst", "silver.quarantine", ["reason", "payload"])
    assert [(c.name, c.access) for c in quarantine] == [("reason", "clear"), ("payload", "denied")]
    assert quarantine[1].rule == "roles.analyst.deny_columns '*.quarantine.payload'"
    agent = {c.name: c for c in policy.columns("agent", "gold.customer_ltv", ["customer_id", "email"])}
    assert agent["email"].access == "masked" and agent["email"].rule.startswith("pii_columns '*.*.email'")
    assert agent["email"].mask == "redact"  # no classification: the policy's default mask


def test_collections(policy):
    assert policy.collection("agent", "orders").allowed
    assert policy.collection("nobody", "orders").rule == "roles"


class _FakeOpa(BaseHTTPRequestHandler):
    """OPA's data API (POST /v1/data/<package path>/<rule> {"input": ...} -> {"result": ...}) over the bundle."""
    engine: RegoEngine | None = None

    def do_POST(self):  # noqa: N802 - http.server's naming
        path = self.path.removeprefix("/v1/data/")
        package, _, rule = path.rpartition("/")
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if package != "dp/access":
            answer: dict = {}
        else:
            answer = {"result": self.engine.evaluate(rule, body["input"])}
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def opa(policy, tmp_path):
    written = bundle(spec(policy), tmp_path / "bundle")
    data = json.loads((tmp_path / "bundle" / "data.json").read_text())
    assert {p.name for p in written} == {"access.rego", "data.json"}
    _FakeOpa.engine = RegoEngine(data["dp_policy"], policy_dir=tmp_path / "bundle")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpa)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_opa_server_decides_the_same(policy, opa):
    embedded, remote = DecisionPoint(spec(policy), opa_url=""), DecisionPoint(spec(policy), opa_url=opa)
    assert remote.engine.name == "opa" and embedded.engine.name == "regorus"
    for role in ("admin", "analyst", "agent", "intruder"):
        for table in ("bronze.orders", "silver.customers", "gold.revenue_daily"):
            assert remote.table(role, table) == embedded.table(role, table)
        assert remote.columns(role, "silver.customers", COLUMNS, CUSTOMERS) == \
            embedded.columns(role, "silver.customers", COLUMNS, CUSTOMERS)


def test_no_answer_means_no_access(policy, monkeypatch):
    unreachable = DecisionPoint(spec(policy), opa_url="http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(PolicyUnavailable, match="did not decide"):
        unreachable.table("admin", "gold.revenue_daily")
    monkeypatch.setenv("DP_OPA_URL", "http://127.0.0.1:9")
    through_mcp = Policy.load(MCP_DIR / "access.yaml", environ={})
    with pytest.raises(Unavailable, match="OPA at http://127.0.0.1:9 did not decide"):
        through_mcp.table("admin", "gold.revenue_daily")


def test_mcp_queries_apply_the_masks_the_policy_decides(tmp_path):
    from tests.workloads.mcp_support import KEYS, POLICY, make_lake, make_service

    lake = make_lake(tmp_path / "lake", "masks")
    lake.policy.write_text(POLICY.replace("masking: redact", "masking: redact\nmasks: {pii.email: partial}"))
    customers = lake.catalog.load_table("silver.customers")
    with customers.transaction() as tx:
        tx.set_properties({"dp.classifications": json.dumps({"email": "pii.email"})})
    service = make_service(lake, tmp_path / "audit.jsonl")
    analyst = service.auth.from_key(KEYS["analyst"])
    rows = service.query(analyst, "SELECT email FROM silver.customers ORDER BY customer_id LIMIT 2")
    assert [r[0] for r in rows.rows] == ["c***@example.com", "c***@example.com"]
    assert rows.masked_columns == ["silver.customers.email"]
    admin = service.auth.from_key(KEYS["admin"])
    assert service.query(admin, "SELECT email FROM silver.customers ORDER BY customer_id LIMIT 1").rows == [
        ["customer1@example.com"]]
    # a filter only ever sees the mask: no row leaks its address through a predicate
    leak = service.query(analyst, "SELECT count(*) FROM silver.customers WHERE email = 'customer1@example.com'")
    assert leak.rows == [[0]]
    service.close()


def test_bundle_and_explain_commands(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "workloads.governance", "policy", "bundle", "--out",
                           str(tmp_path / "opa")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "opa" / "data.json").read_text())
    assert set(data["dp_policy"]["roles"]) == {"admin", "analyst", "agent"}
    assert "keys" not in data["dp_policy"]
    explained = subprocess.run([sys.executable, "-m", "workloads.governance", "policy", "explain", "--role",
                                "agent", "--table", "silver.orders", "--json"], capture_output=True, text=True,
                               timeout=120)
    assert json.loads(explained.stdout) == {"table": "silver.orders", "allowed": False, "rule": "roles.agent.tables",
                                            "reason": "no table rule of role agent grants silver.orders"}


def test_policy_files_are_the_same_for_both_engines():
    assert sorted(p.name for p in (Path(__file__).parents[2] / "workloads/governance/policies").glob("*.rego")) == [
        "access.rego"]

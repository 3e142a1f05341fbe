"""What the MCP server refuses and hides: non-read-only SQL (checked on the parsed statement), unknown and
forbidden tables, denied columns, PII for roles without PII rights, bad credentials, callers over their rate
limit, bad configuration. Every refusal says why and is audited."""
from __future__ import annotations

import time

import jwt
import pytest

from tests.workloads.mcp_support import JWT_SECRET, KEYS, audit_lines, make_lake, make_service
from workloads.mcp_server.config import Settings
from workloads.mcp_server.errors import (
    ConfigError, Denied, QueryFailed, RateLimited, Refused, ServiceError, Unauthenticated,
)
from workloads.mcp_server.policy import Policy


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return make_lake(tmp_path_factory.mktemp("mcp-security"), "mcpsecurity")


@pytest.fixture
def service(tmp_path, lake):
    svc = make_service(lake, tmp_path / "audit.jsonl")
    yield svc
    svc.close()


def who(service, role: str):
    return service.auth.from_key(KEYS[role])


def run_query(service, role: str, sql: str, limit: int | None = None):
    principal = who(service, role)
    return service.call("query", principal, "test", {"sql": sql},
                        lambda: service.query(principal, sql, limit))


REFUSED = [
    ("CREATE TABLE gold.x AS SELECT 1", "got CREATE"),
    ("DROP TABLE silver.orders", "got DROP"),
    ("INSERT INTO silver.orders SELECT * FROM silver.orders", "got INSERT"),
    ("UPDATE silver.orders SET amount = 0", "got UPDATE"),
    ("DELETE FROM silver.orders", "got DELETE"),
    ("MERGE INTO silver.orders t USING silver.orders s ON t.order_id = s.order_id WHEN MATCHED THEN DELETE",
     "got MERGE"),
    ("SELECT 1; DROP TABLE x", "exactly one statement is allowed; got 2 (SELECT, DROP)"),
    ("SELECT 1 -- hidden\n; DROP TABLE silver.orders", "exactly one statement"),
    ("SELECT * FROM silver.orders /* ; DROP TABLE x */; SELECT 2", "exactly one statement"),
    ("COPY silver.orders TO '/tmp/out.csv'", "got COPY"),
    ("ATTACH '/tmp/other.db' AS other", "got ATTACH"),
    ("DETACH other", "got DETACH"),
    ("PRAGMA database_list", "got PRAGMA"),
    ("SET enable_external_access = true", "got SET"),
    ("INSTALL httpfs", "got INSTALL"),
    ("LOAD httpfs", "got LOAD"),
    ("CALL pragma_version()", "got CALL"),
    ("EXPLAIN SELECT * FROM silver.orders", "got EXPLAIN"),
    ("SELECT * INTO copy_of_orders FROM silver.orders", "contains SELECT ... INTO"),
    ("SELECT * FROM read_csv('/etc/passwd')", "table functions are not allowed"),
    ("SELECT * FROM read_parquet('/tmp/*.parquet')", "table functions are not allowed"),
    ("SELECT * FROM glob('/*')", "table functions are not allowed"),
    ("SELECT * FROM duckdb_settings()", "table functions are not allowed"),
    ("SELECT * FROM '/etc/passwd'", "unknown table '/etc/passwd'"),
    ("SELECT * FROM information_schema.tables", "unknown table 'information_schema.tables'"),
    ("SELECT * FROM pg_class", "unknown table 'pg_class'"),
    ("SELECT * FROM gold.no_such_table", "unknown table 'gold.no_such_table'"),
    ("SELECT * FROM platform.silver.orders", "three-part name"),
    ("SELECT * FROM silver.orders AT (VERSION => 1)", "use table_history"),
    ("SELECT 1", "reads no catalog table"),
    ("", "empty query"),
    ("SELECT FROM WHERE (", "could not parse"),
]


@pytest.mark.parametrize(("sql", "reason"), REFUSED)
def test_refused_queries_say_why_and_are_audited(service, sql, reason):
    with pytest.raises(Refused) as refused:
        run_query(service, "admin", sql)
    assert reason in refused.value.message
    last = audit_lines(service.audit.path)[-1]
    assert (last["tool"], last["outcome"], last["principal"]) == ("query", "refused", "admin")
    assert last["args"] == {"sql": sql} and reason in last["detail"]


def test_forbidden_tables_and_columns_name_the_rule(service):
    with pytest.raises(Denied) as table:
        run_query(service, "analyst", "SELECT o.* FROM silver.orders o JOIN bronze.orders_raw r ON true")
    assert table.value.decision == {"allowed": False, "rule": "roles.analyst.tables",
                                    "reason": "no table rule of role analyst grants bronze.orders_raw"}
    with pytest.raises(Denied) as column:
        run_query(service, "analyst", "SELECT count(DISTINCT national_id) FROM silver.customers")
    assert column.value.decision["rule"] == "roles.analyst.deny_columns 'silver.customers.national_id'"
    with pytest.raises(Denied):
        run_query(service, "analyst", "SELECT * FROM silver.customers a JOIN silver.customers b USING (national_id)")
    star = run_query(service, "analyst", "SELECT * FROM silver.customers LIMIT 1")
    assert "national_id" not in [c.name for c in star.columns]  # hidden, not leaked through *
    described = service.describe_table(who(service, "analyst"), "silver.customers")
    assert "national_id" not in [c.name for c in described.columns]
    outcomes = [line["outcome"] for line in audit_lines(service.audit.path)]
    assert outcomes.count("denied") == 3


def test_pii_is_masked_before_the_query_sees_it(service):
    analyst = run_query(service, "analyst", (
        "SELECT customer_id, name, email, phone, country FROM silver.customers ORDER BY customer_id LIMIT 3"))
    admin = run_query(service, "admin", (
        "SELECT customer_id, name, email, phone, country FROM silver.customers ORDER BY customer_id LIMIT 3"))
    assert [r[2] for r in analyst.rows] == ["***"] * 3  # email: pii_columns glob
    assert [r[1] for r in analyst.rows] == ["***"] * 3  # name: the table's dp.pii.columns property
    assert [r[4] for r in analyst.rows] == [r[4] for r in admin.rows]  # non-PII unchanged
    assert [r[2] for r in admin.rows] == ["customer1@example.com", "customer2@example.com", "customer3@example.com"]
    assert analyst.masked_columns == ["silver.customers.email", "silver.customers.name", "silver.customers.phone"]
    assert admin.masked_columns == []
    # Filters, joins and aggregates only ever see the mask: nothing can be inferred from the clear values.
    probe = "SELECT count(*) FROM silver.customers WHERE email = 'customer1@example.com'"
    assert run_query(service, "analyst", probe).rows == [[0]]
    assert run_query(service, "admin", probe).rows == [[1]]
    assert run_query(service, "analyst", "SELECT count(DISTINCT email) FROM silver.customers").rows == [[1]]
    sample = service.sample_rows(who(service, "analyst"), "silver.customers", 2)
    assert {row[[c.name for c in sample.columns].index("email")] for row in sample.rows} == {"***"}


def test_rich_read_only_sql_is_accepted_and_projected(service, lake):
    result = run_query(service, "analyst", """
        WITH per_customer AS (
            SELECT customer_id, sum(amount) AS spent, row_number() OVER (ORDER BY sum(amount) DESC) AS rank
            FROM silver.orders WHERE status <> 'refunded' GROUP BY customer_id)
        SELECT c.country, count(*) AS customers, max(p.spent) AS top
        FROM per_customer p JOIN customers c ON c.customer_id = p.customer_id
        WHERE p.customer_id IN (SELECT customer_id FROM silver.orders WHERE currency = 'EUR')
        GROUP BY c.country
        UNION ALL SELECT 'ALL', count(*), NULL FROM gold.daily_revenue
        ORDER BY 1""")
    assert [r[0] for r in result.rows] == ["ALL", "DE", "FR", "JP", "NL", "US"]
    assert result.rows[0][1] == lake.counts["gold.daily_revenue"]
    assert set(result.snapshot_ids) == {"silver.orders", "silver.customers", "gold.daily_revenue"}
    assert result.masked_columns == []  # only customer_id and country of customers were read


def test_row_and_time_limits(tmp_path, lake):
    service = make_service(lake, tmp_path / "audit.jsonl", row_limit=50, query_timeout=0.5)
    capped = run_query(service, "admin", "SELECT * FROM silver.orders", limit=10_000)
    assert (capped.row_count, capped.truncated) == (50, True)
    exact = run_query(service, "admin", "SELECT * FROM gold.daily_revenue LIMIT 7", limit=7)
    assert (exact.row_count, exact.truncated) == (7, False)
    started = time.monotonic()
    with pytest.raises(QueryFailed, match="time limit of 0.5 s"):
        run_query(service, "admin", "SELECT count(*) FROM silver.orders a, silver.orders b, silver.orders c, "
                                    "silver.orders d WHERE a.amount + b.amount > c.amount + d.amount")
    assert time.monotonic() - started < 5
    service.close()


def test_api_keys_and_jwts(service):
    assert who(service, "analyst").role == "analyst"
    with pytest.raises(Unauthenticated, match="unknown API key"):
        service.auth.from_key("guessed")
    with pytest.raises(Unauthenticated, match="no credentials"):
        service.auth.from_headers({})
    now = int(time.time())
    good = jwt.encode({"sub": "ada", "role": "analyst", "exp": now + 60}, JWT_SECRET, algorithm="HS256")
    principal = service.auth.from_headers({"authorization": f"Bearer {good}"})
    assert (principal.name, principal.role, principal.method) == ("jwt:ada", "analyst", "jwt")
    bad = [
        (jwt.encode({"sub": "ada", "role": "analyst", "exp": now - 60}, JWT_SECRET, algorithm="HS256"), "expired"),
        (jwt.encode({"sub": "ada", "role": "analyst", "exp": now + 60}, "x" * 40, algorithm="HS256"), "invalid"),
        (jwt.encode({"sub": "ada", "role": "root", "exp": now + 60}, JWT_SECRET, algorithm="HS256"), "names no"),
        (jwt.encode({"role": "admin", "exp": now + 60}, JWT_SECRET, algorithm="HS256"), "invalid"),
        (jwt.encode({"sub": "ada", "role": "admin", "exp": now + 60}, None, algorithm="none"), "invalid"),
    ]
    for token, reason in bad:
        with pytest.raises(Unauthenticated, match=reason):
            service.auth.from_headers({"authorization": f"Bearer {token}"})


def test_jwt_signed_with_a_private_key(tmp_path, lake):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    settings = Settings.from_env({}, policy_path=lake.policy, audit_log=tmp_path / "a.jsonl", jwt_public_key=public,
                                 jwt_audience="dataplatform", jwt_issuer="https://idp.example")
    from workloads.mcp_server.auth import Authenticator

    auth = Authenticator(settings, Policy.load(lake.policy))
    claims = {"sub": "svc", "role": "agent", "exp": int(time.time()) + 60, "aud": "dataplatform",
              "iss": "https://idp.example"}
    assert auth.from_token(jwt.encode(claims, key, algorithm="RS256")).role == "agent"
    with pytest.raises(Unauthenticated, match="invalid"):
        auth.from_token(jwt.encode({**claims, "aud": "elsewhere"}, key, algorithm="RS256"))


def test_rate_limit_per_key(service):
    limited = who(service, "limited")
    for _ in range(3):
        service.call("list_tables", limited, "test", {}, lambda: service.list_tables(limited))
    with pytest.raises(RateLimited, match="3 calls per minute exceeded for limited") as refused:
        service.call("list_tables", limited, "test", {}, lambda: service.list_tables(limited))
    assert 0 < refused.value.retry_after <= 20
    others = who(service, "agent")  # a different key has its own allowance
    service.call("list_tables", others, "test", {}, lambda: service.list_tables(others))
    assert audit_lines(service.audit.path)[-2]["outcome"] == "rate_limited"
    assert 'dp_mcp_denials_total{reason="rate_limited",tool="list_tables"} 1.0' in service.metrics.render().decode()


def test_unexpected_failures_are_logged_not_leaked(service):
    admin = who(service, "admin")
    with pytest.raises(ServiceError, match="internal error in boom") as failed:
        service.call("boom", admin, "test", {}, lambda: 1 / 0)
    assert failed.value.status == 500
    assert audit_lines(service.audit.path)[-1]["outcome"] == "error"


@pytest.mark.parametrize(("text", "reason"), [
    ("roles: [", "not valid YAML"),
    ("roles: {a: {tables: ['*']}}\nkeys: [{name: k, role: b, env: X}]", "unknown role 'b'"),
    ("roles: {a: {}}\nkeys: [{name: k, role: a, env: X, sha256: '" + "0" * 64 + "'}]", "exactly one of sha256 or env"),
    ("roles: {a: {tables: '*', surprise: 1}}", "roles.a.surprise: Extra inputs are not permitted"),
    ("roles: {}\nkeys: [{name: k, role: a, sha256: plain-text-key}]", "keys.0.sha256"),
])
def test_bad_policy_files_are_refused_clearly(tmp_path, text, reason):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as bad:
        Policy.load(path)
    assert reason in str(bad.value) and str(path) in str(bad.value)


def test_keys_from_environment_and_bad_configuration(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("roles: {ops: {tables: ['*']}}\nkeys: [{name: ops, role: ops, env: OPS_KEY}]")
    assert Policy.load(path, {"OPS_KEY": "s3cret"}).key("s3cret").name == "ops"
    assert Policy.load(path, {}).key("s3cret") is None  # unset variable: the key does not exist
    with pytest.raises(ConfigError, match="DP_MCP_QUERY_ROW_LIMIT"):
        Settings.from_env({"DP_MCP_QUERY_ROW_LIMIT": "lots"})
    with pytest.raises(ConfigError, match="DP_TRINO_URL"):
        Settings.from_env({"DP_QUERY_ENGINE": "trino"})
    with pytest.raises(ConfigError, match="DP_QUERY_ENGINE"):
        Settings.from_env({"DP_QUERY_ENGINE": "spark"})
    with pytest.raises(ConfigError) as secret:
        Settings.from_env({"DP_MCP_JWT_SECRET": "hunter2", "DP_MCP_JWT_PUBLIC_KEY": "pem"})
    assert "hunter2" not in str(secret.value)


def test_a_call_that_cannot_be_audited_fails_closed(tmp_path, lake):
    (tmp_path / "not-a-dir").write_text("")
    service = make_service(lake, tmp_path / "not-a-dir" / "audit.jsonl")
    assert not (tmp_path / "not-a-dir" / "audit.jsonl").exists()  # starting writes nothing
    admin = who(service, "admin")
    with pytest.raises(ServiceError, match="audit log .* cannot be written") as failed:
        service.call("list_tables", admin, "test", {}, lambda: service.list_tables(admin))
    assert failed.value.status == 503


def test_dns_rebinding_protection_follows_the_bind_address():
    from workloads.mcp_server.app import transport_security

    loopback = transport_security(Settings.from_env({}))
    assert loopback.enable_dns_rebinding_protection and "127.0.0.1:*" in loopback.allowed_hosts
    assert not transport_security(Settings.from_env({"DP_MCP_HOST": "0.0.0.0"})).enable_dns_rebinding_protection
    named = transport_security(Settings.from_env({"DP_MCP_HOST": "0.0.0.0",
                                                  "DP_MCP_ALLOWED_HOSTS": "mcp.example.com, mcp.internal:8765"}))
    assert named.enable_dns_rebinding_protection
    assert named.allowed_hosts == ["mcp.example.com", "mcp.internal:8765"]
    assert "https://mcp.example.com" in named.allowed_origins


def test_metadata_cache_serves_while_one_caller_rechecks():
    """A stale entry is re-checked by one caller; meanwhile the others get the cached entry at once."""
    import threading

    from workloads.mcp_server.catalog import CatalogCache

    class SlowCatalog:
        def __init__(self):
            self.loads, self.release = 0, threading.Event()

        def load_table(self, name):
            self.loads += 1
            if self.loads > 1:
                self.release.wait(10)
            return type("T", (), {"metadata_location": f"v{self.loads}"})()

    now = [0.0]
    catalog = SlowCatalog()
    cache = CatalogCache(catalog, ttl=1.0, clock=lambda: now[0])
    first = cache.get("gold.t")
    now[0] = 5.0  # stale
    refresher = threading.Thread(target=cache.get, args=("gold.t",))
    refresher.start()
    while catalog.loads < 2:
        time.sleep(0.001)
    assert [cache.get("gold.t") for _ in range(20)] == [first] * 20  # served while the re-check is pending
    catalog.release.set()
    refresher.join()
    assert catalog.loads == 2 and cache.get("gold.t").metadata_location == "v2"  # new metadata replaced it

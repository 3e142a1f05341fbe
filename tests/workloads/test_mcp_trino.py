"""The Trino engine without a Trino (none can run here): the SQL it would send is checked as SQL, and `run` is
driven through a fake DB-API connection that records what the real `trino` client would have been given.
What this cannot show: that a real coordinator accepts the SQL; that happens on a deployed stack."""
from __future__ import annotations

import pytest
import sqlglot
import trino
from sqlglot import exp

from workloads.mcp_server.config import Settings
from workloads.mcp_server.engine_trino import TrinoEngine, connection_kwargs
from workloads.mcp_server.errors import QueryFailed, Unavailable
from workloads.mcp_server.policy import ColumnAccess, Decision
from workloads.mcp_server.sql_guard import TableAccess, plan_query, table_read

SETTINGS = Settings.from_env({"DP_QUERY_ENGINE": "trino", "DP_TRINO_URL": "https://trino.internal:8443",
                              "DP_TRINO_USER": "mcp", "DP_TRINO_PASSWORD": "pw", "DP_TRINO_CATALOG": "lake",
                              "DP_MCP_QUERY_TIMEOUT_SECONDS": "20"})


def customers() -> TableAccess:
    return TableAccess("silver.customers", [
        ColumnAccess("customer_id", "clear", "r", False), ColumnAccess("email", "masked", "r", True),
        ColumnAccess("ssn", "denied", "r", True), ColumnAccess("signup", "masked", "r", True),
        ColumnAccess("country", "clear", "r", False)],
        {"customer_id": "long", "email": "string", "ssn": "string", "signup": "date", "country": "string"})


def plan(sql: str, limit: int = 100):
    names = {"customers": "silver.customers", "silver.customers": "silver.customers"}
    return plan_query(sql, "trino", lambda ns, t: names[f"{ns}.{t}" if ns else t],
                      lambda name: (Decision(True, "r", "ok"), customers()), limit)


def test_sql_reads_secured_subqueries_of_the_trino_catalog():
    sql = TrinoEngine(SETTINGS).sql(plan(
        "WITH eu AS (SELECT * FROM customers WHERE country IN ('DE', 'FR')) "
        "SELECT c.country, count(DISTINCT c.email) AS n FROM eu JOIN silver.customers c USING (customer_id) "
        "GROUP BY 1"))
    parsed = sqlglot.parse_one(sql, read="trino")
    sources = {t.sql("trino") for t in parsed.find_all(exp.Table)}
    assert sources == {'"lake"."silver"."customers"', "eu"}
    assert sql.count('"lake"."silver"."customers"') == 2
    assert "CASE WHEN \"email\" IS NULL THEN NULL ELSE '***' END AS \"email\"" in sql
    assert 'NULL AS "signup"' in sql  # masked non-string: NULL
    assert "ssn" not in sql  # denied: never selected
    assert 'AS "c"' in sql and 'AS "customers"' in sql  # references keep resolving through the aliases


def test_time_travel_and_samples_translate_to_version_and_limit():
    sql = TrinoEngine(SETTINGS).sql(table_read("silver.customers", customers(), 5, snapshot_id=42))
    assert 'FROM "lake"."silver"."customers" FOR VERSION AS OF 42 LIMIT 5' in sql
    assert sql.endswith("LIMIT 5")


def test_connection_arguments_from_settings():
    kwargs = connection_kwargs(SETTINGS)
    auth = kwargs.pop("auth")
    assert isinstance(auth, trino.auth.BasicAuthentication)
    assert kwargs == {"host": "trino.internal", "port": 8443, "http_scheme": "https", "user": "mcp",
                      "catalog": "lake", "source": "dp-mcp-server",
                      "session_properties": {"query_max_run_time": "20s"}, "request_timeout": 30.0}
    plain = connection_kwargs(Settings.from_env({"DP_QUERY_ENGINE": "trino", "DP_TRINO_URL": "http://trino"}))
    assert (plain["port"], plain["http_scheme"], "auth" in plain) == (8080, "http", False)
    with pytest.raises(Unavailable, match="http"):
        connection_kwargs(Settings.from_env({"DP_QUERY_ENGINE": "trino", "DP_TRINO_URL": "trino:8080"}))


class FakeCursor:
    def __init__(self, rows, error=None):
        self.rows, self.error = rows, error
        self.executed: list[str] = []
        self.cancelled = False
        self.description = [("country", "varchar"), ("n", "bigint")]

    def execute(self, sql):
        self.executed.append(sql)
        if self.error:
            raise self.error

    def fetchmany(self, size):
        return self.rows[:size]

    def cancel(self):
        self.cancelled = True


class FakeConnection:
    def __init__(self, cursor):
        self._cursor, self.closed = cursor, False

    def cursor(self):
        return self._cursor

    def close(self):
        self.closed = True


def engine_with(cursor):
    seen = {}

    def connect(**kwargs):
        seen.update(kwargs)
        seen["connection"] = FakeConnection(cursor)
        return seen["connection"]

    return TrinoEngine(SETTINGS, connect=connect), seen


def test_run_fetches_one_more_row_than_the_limit_and_cancels_the_rest():
    cursor = FakeCursor([["DE", 3], ["FR", 2], ["NL", 1]])
    engine, seen = engine_with(cursor)
    result = engine.run(plan("SELECT country, count(*) AS n FROM customers GROUP BY 1", limit=2))
    assert cursor.executed == [engine.sql(plan("SELECT country, count(*) AS n FROM customers GROUP BY 1", 2))]
    assert (result.rows, result.truncated, cursor.cancelled) == ([["DE", 3], ["FR", 2]], True, True)
    assert [c.name for c in result.columns] == ["country", "n"] and result.engine == "trino"
    assert result.masked_columns == []  # email was not read
    assert seen["session_properties"] == {"query_max_run_time": "20s"} and seen["connection"].closed


@pytest.mark.parametrize(("error", "expected"), [
    (trino.exceptions.TrinoUserError({"message": "Column 'x' cannot be resolved", "errorName": "COLUMN_NOT_FOUND",
                                      "errorType": "USER_ERROR"}, "q1"), "Column 'x' cannot be resolved"),
    (trino.exceptions.TrinoQueryError({"message": "Query exceeded maximum time limit",
                                       "errorName": "EXCEEDED_TIME_LIMIT", "errorType": "INSUFFICIENT_RESOURCES"},
                                      "q2"), "time limit of 20 s"),
])
def test_trino_errors_become_query_failures(error, expected):
    engine, seen = engine_with(FakeCursor([], error=error))
    with pytest.raises(QueryFailed, match=expected):
        engine.run(plan("SELECT country FROM customers"))
    assert seen["connection"].closed

"""The deployed query engine: Trino, through the `trino` DB-API client. The checked plan is translated to Trino
SQL with every table reference replaced by its secured subquery over `<DP_TRINO_CATALOG>.<namespace>.<table>`
(masked columns, `FOR VERSION AS OF` for time travel), so masking does not depend on Trino's own access
control being configured. Trino enforces the time limit (`query_max_run_time`); the row limit stops fetching
and cancels the rest. No Trino can run on the development machine: `sql()` is tested on its own and `run()`
against a fake DB-API connection; the first real run is on a deployed stack.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlglot import exp

from workloads.mcp_server.config import Settings
from workloads.mcp_server.errors import QueryFailed, Unavailable
from workloads.mcp_server.masking import secured_select
from workloads.mcp_server.models import ResultColumn, RowSet
from workloads.mcp_server.rows import jsonable
from workloads.mcp_server.sql_guard import QueryPlan


def connection_kwargs(settings: Settings) -> dict[str, Any]:
    """Arguments of `trino.dbapi.connect` for these settings (the password stays a secret until used)."""
    import trino

    url = urlsplit(settings.trino_url or "")
    if url.scheme not in ("http", "https") or not url.hostname:
        raise Unavailable(f"DP_TRINO_URL must be http(s)://host[:port], got scheme {url.scheme!r}")
    kwargs: dict[str, Any] = {
        "host": url.hostname,
        "port": url.port or (443 if url.scheme == "https" else 8080),
        "http_scheme": url.scheme,
        "user": settings.trino_user,
        "catalog": settings.trino_catalog,
        "source": "dp-mcp-server",
        "session_properties": {"query_max_run_time": f"{max(1, int(settings.query_timeout))}s"},
        "request_timeout": settings.query_timeout + 10,
    }
    if settings.trino_password is not None:
        kwargs["auth"] = trino.auth.BasicAuthentication(settings.trino_user,
                                                        settings.trino_password.get_secret_value())
    return kwargs


class TrinoEngine:
    name = "trino"
    dialect = "trino"

    def __init__(self, settings: Settings, masking: Literal["redact", "null"] = "redact",
                 connect: Callable[..., Any] | None = None):
        self.settings = settings
        self.masking = masking
        self._connect = connect

    def sql(self, plan: QueryPlan) -> str:
        """The Trino SQL that runs for `plan`: table references replaced by secured subqueries."""
        query = plan.expression.copy()
        for node in list(query.find_all(exp.Table)):
            name = f"{node.db}.{node.name}" if node.db else None
            access = plan.tables.get(name) if name else None
            if access is None:
                continue  # a CTE reference
            source = exp.table_(node.name, db=node.db, catalog=self.settings.trino_catalog, quoted=True)
            if access.snapshot_id is not None:
                source.set("version", exp.Version(this="VERSION", kind="AS OF",
                                                  expression=exp.Literal.number(access.snapshot_id)))
            secured = secured_select(access, source, self.masking)
            if access.scan_limit is not None:
                secured = secured.limit(access.scan_limit)
            node.replace(exp.Subquery(this=secured, alias=exp.TableAlias(
                this=exp.to_identifier(node.alias_or_name, quoted=True))))
        return query.sql(dialect=self.dialect)

    def _connection(self):
        if self._connect is not None:
            return self._connect(**connection_kwargs(self.settings))
        import trino

        return trino.dbapi.connect(**connection_kwargs(self.settings))

    def run(self, plan: QueryPlan) -> RowSet:
        import trino

        started = time.perf_counter()
        sql = self.sql(plan)
        try:
            conn = self._connection()
        except trino.exceptions.Error as exc:
            raise Unavailable(f"Trino unreachable: {exc}") from None
        try:
            cursor = conn.cursor()
            cursor.execute(sql)
            fetched = cursor.fetchmany(plan.row_limit + 1)
            truncated = len(fetched) > plan.row_limit
            if truncated:
                cursor.cancel()
            columns = [ResultColumn(name=d[0], type=str(d[1])) for d in cursor.description or []]
        except trino.exceptions.TrinoUserError as exc:
            raise QueryFailed(f"query failed: {exc.message}") from None
        except trino.exceptions.TrinoQueryError as exc:
            if exc.error_name == "EXCEEDED_TIME_LIMIT":
                raise QueryFailed(f"query exceeded the time limit of {self.settings.query_timeout:g} s") from None
            raise QueryFailed(f"query failed: {exc.message}") from None
        except trino.exceptions.Error as exc:
            raise Unavailable(f"Trino failed: {exc}") from None
        finally:
            conn.close()
        rows = [[jsonable(v) for v in row] for row in fetched[:plan.row_limit]]
        masked = sorted(f"{name}.{c}" for name, access in plan.tables.items() for c in access.masked)
        return RowSet(columns=columns, rows=rows, row_count=len(rows), truncated=truncated, masked_columns=masked,
                      engine=self.name, elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
                      snapshot_ids={name: access.snapshot_id for name, access in plan.tables.items()})

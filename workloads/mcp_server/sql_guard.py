"""Read-only SQL, checked on the parsed statement (sqlglot), never by pattern matching on text.

A query is accepted only if it parses to exactly one statement whose root is a SELECT (or WITH ... SELECT,
UNION ...), contains no statement nodes anywhere (DDL, DML, COPY, ATTACH, PRAGMA, SET, SELECT INTO ...),
reads no table functions (`read_csv(...)`, `glob(...)`), and every table it names resolves to a catalog table
the caller may read. References to columns the caller is denied are refused with the rule that denies them.
The result is a `QueryPlan`: the parsed query with table names qualified as the catalog spells them, and per
table the columns to scan (projection pushdown) and how each is shown (clear or masked). Engines run the plan
from the regenerated SQL, so what runs is exactly what was checked.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from workloads.mcp_server.errors import Denied, NotFound, Refused
from workloads.mcp_server.policy import ColumnAccess, Decision

MAX_SQL_CHARS = 100_000
# Statement kinds that must never appear anywhere in a query, even nested.
_FORBIDDEN = tuple(getattr(exp, name) for name in (
    "DDL", "DML", "Command", "Into", "Pragma", "Set", "Use", "Attach", "Detach", "Copy", "Install", "Transaction",
    "Commit", "Rollback", "Describe", "Show", "Analyze", "LoadData", "Kill", "Summarize", "Lock",
) if hasattr(exp, name))

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its "falling back to Command" warnings: we refuse those


@dataclass
class TableAccess:
    """One table as a query reads it."""
    name: str  # namespace.table as the catalog spells it
    columns: list[ColumnAccess]  # every column of the current schema, as this caller sees it
    column_types: dict[str, str]  # column -> iceberg type, e.g. "string"
    scan_columns: list[str] = field(default_factory=list)
    snapshot_id: int | None = None
    scan_limit: int | None = None

    @property
    def masked(self) -> list[str]:
        return [c.name for c in self.columns if c.access == "masked" and c.name in self.scan_columns]


@dataclass
class QueryPlan:
    expression: exp.Query
    tables: dict[str, TableAccess]
    row_limit: int


# (namespace or None, table) -> catalog name; raises NotFound
Resolver = Callable[[str | None, str], str]
# catalog name -> (decision, TableAccess without scan columns)
Authorizer = Callable[[str], tuple[Decision, TableAccess]]


def _statement_kind(node: exp.Expression) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return node.key.upper()


def parse_single_select(sql: str, dialect: str) -> exp.Query:
    if not sql or not sql.strip():
        raise Refused("empty query")
    if len(sql) > MAX_SQL_CHARS:
        raise Refused(f"query too long ({len(sql)} characters; at most {MAX_SQL_CHARS})")
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except (ParseError, TokenError) as exc:
        raise Refused(f"could not parse the query as {dialect} SQL: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        kinds = ", ".join(_statement_kind(s) for s in statements) or "none"
        raise Refused(f"exactly one statement is allowed; got {len(statements)} ({kinds})")
    root = statements[0]
    if not isinstance(root, exp.Query) or isinstance(root, _FORBIDDEN):
        raise Refused(f"only read-only SELECT / WITH queries are allowed; got {_statement_kind(root)}")
    for node in root.walk():
        if isinstance(node, _FORBIDDEN):
            what = "SELECT ... INTO" if isinstance(node, exp.Into) else _statement_kind(node)
            raise Refused(f"only read-only SELECT / WITH queries are allowed; the query contains {what}")
    return root


def _cte_names(root: exp.Expression) -> set[str]:
    return {cte.alias_or_name.lower() for cte in root.find_all(exp.CTE)}


def _check_table_node(table: exp.Table) -> None:
    if not isinstance(table.this, exp.Identifier):
        raise Refused(f"table functions are not allowed ({table.this.sql()}): query catalog tables by name")
    if table.args.get("version") or table.args.get("when"):
        raise Refused("time-travel clauses are not accepted in query: use table_history with a snapshot id "
                      "or timestamp")
    if table.catalog:
        raise Refused(f"three-part name {table.sql()!r}: name tables as namespace.table")


def plan_query(sql: str, dialect: str, resolve: Resolver, authorize: Authorizer, row_limit: int) -> QueryPlan:
    """Check `sql` and plan it; raises `Refused` / `Denied` with a message the caller can act on."""
    root = parse_single_select(sql, dialect)
    ctes = _cte_names(root)
    tables: dict[str, TableAccess] = {}
    aliases: set[str] = set()
    for node in list(root.find_all(exp.Table)):
        _check_table_node(node)
        if not node.db and node.name.lower() in ctes:
            continue
        try:
            name = resolve(node.db or None, node.name)
        except NotFound as exc:
            raise Refused(exc.message) from None
        if name not in tables:
            decision, access = authorize(name)
            if not decision.allowed:
                raise Denied(f"not allowed to read {name}: {decision.reason} (rule: {decision.rule})",
                             decision=decision.as_dict())
            tables[name] = access
        namespace, table = name.rsplit(".", 1)
        aliases.update({node.alias_or_name.lower(), table.lower()})
        node.set("db", exp.to_identifier(namespace, quoted=True))
        node.set("this", exp.to_identifier(table, quoted=True))
    if not tables:
        raise Refused("the query reads no catalog table: name at least one (list_tables shows them)")

    referenced = _referenced_names(root)
    _refuse_denied_columns(root, tables)
    star = any(isinstance(s, exp.Star) and not isinstance(s.parent, exp.Count) for s in root.find_all(exp.Star))
    star = star or any(True for _ in root.find_all(exp.Columns)) or any(  # `SELECT t FROM t`: the whole row
        not c.table and c.name.lower() in aliases for c in root.find_all(exp.Column))
    for access in tables.values():
        visible = [c.name for c in access.columns if c.access != "denied"]
        if not visible:
            raise Denied(f"every column of {access.name} is denied to this caller")
        access.scan_columns = visible if star else [c for c in visible if c.lower() in referenced] or visible[:1]
    return QueryPlan(root, tables, row_limit)


def _referenced_names(root: exp.Expression) -> set[str]:
    """Names that may denote columns: every identifier except table names, table aliases and column
    qualifiers (USING lists, struct fields and output aliases included: a superset is safe)."""
    names = set()
    for ident in root.find_all(exp.Identifier):
        parent = ident.parent
        if isinstance(parent, (exp.Table, exp.TableAlias)) or (isinstance(parent, exp.Column)
                                                               and ident.arg_key != "this"):
            continue
        names.add(ident.name.lower())
    return names


def _refuse_denied_columns(root: exp.Expression, tables: dict[str, TableAccess]) -> None:
    denied = {c.name.lower(): (t.name, c) for t in tables.values() for c in t.columns if c.access == "denied"}
    using = [i for join in root.find_all(exp.Join) for i in join.args.get("using") or []]
    for column in [*root.find_all(exp.Column), *using]:
        if column.name and column.name.lower() in denied:
            table, access = denied[column.name.lower()]
            decision = Decision(False, access.rule, f"column {table}.{access.name} is denied to this caller")
            raise Denied(f"not allowed to read column {table}.{access.name} (rule: {access.rule})",
                         decision=decision.as_dict())


def table_read(name: str, access: TableAccess, limit: int, snapshot_id: int | None = None) -> QueryPlan:
    """The plan of `SELECT * FROM name LIMIT n` (samples and time-travel reads), built, not parsed."""
    namespace, table = name.rsplit(".", 1)
    query = exp.select("*").from_(exp.table_(table, db=namespace, quoted=True)).limit(limit)
    visible = [c.name for c in access.columns if c.access != "denied"]
    if not visible:
        raise Denied(f"every column of {name} is denied to this caller")
    access.scan_columns, access.snapshot_id, access.scan_limit = visible, snapshot_id, limit
    return QueryPlan(query, {name: access}, limit)

"""Column lineage of the medallion jobs, read from the SQL they run (sqlglot's lineage), never written by hand:
when a transform changes, its lineage changes with it.

- silver.<entity> from bronze.<entity>: the typed projection of `silver.COLUMNS` (plus the Kafka position columns
  and evolved columns, carried as they are);
- gold.<name> from silver tables: `gold.MERGE_SQL`, whose inputs `new_<entity>` / `days_clickstream` are the silver
  tables and `current_gold` the gold table itself (a self-reference, left out).

A column computed without reading a column (`count(*)`) depends on the rows of its group: it gets the GROUP BY
keys as inputs, with subtype GROUP_BY. Transformation types follow OpenLineage's column lineage facet 1-2-0:
DIRECT with subtype IDENTITY, TRANSFORMATION or AGGREGATION, INDIRECT with GROUP_BY or FILTER.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sqlglot import exp, parse_one
from sqlglot.lineage import Node, lineage

from workloads.medallion.tables import ENTITIES, EVENT_FIELDS, GOLD_FIELDS, GOLD_SOURCES, SILVER_FIELDS, bronze, gold, silver

DIALECT = "duckdb"


@dataclass(frozen=True, order=True)
class InputField:
    table: str  # namespace.table
    column: str
    type: str  # DIRECT | INDIRECT
    subtype: str  # IDENTITY | TRANSFORMATION | AGGREGATION | GROUP_BY | FILTER


def _strength(kind: str) -> int:
    return ("GROUP_BY", "FILTER", "TRANSFORMATION", "AGGREGATION", "IDENTITY").index(kind)


def _subtype(path: list[Node]) -> str:
    expressions = [n.expression for n in path if not isinstance(n.expression, exp.Table)]
    if any(e.find(exp.AggFunc) for e in expressions):
        return "AGGREGATION"
    if all(isinstance(e.unalias() if isinstance(e, exp.Alias) else e, exp.Column) for e in expressions):
        return "IDENTITY"
    return "TRANSFORMATION"


def _group_columns(select: exp.Expression) -> list[exp.Column]:
    group = select.args.get("group") if isinstance(select, exp.Select) else None
    if not group:
        return []
    projections = select.expressions
    columns: list[exp.Column] = []
    for key in group.expressions:
        if isinstance(key, exp.Literal) and key.is_int:  # GROUP BY 1, 2
            key = projections[int(key.this) - 1]
        columns += list(key.find_all(exp.Column))
    return columns


def _trace(column: str, query: exp.Expression, schema: dict, depth: int = 0) -> dict[tuple[str, str], str]:
    """{(source table, column): subtype} that output `column` of `query` is computed from."""
    found: dict[tuple[str, str], str] = {}

    def keep(key: tuple[str, str], kind: str) -> None:
        if key not in found or _strength(kind) > _strength(found[key]):
            found[key] = kind

    def visit(node: Node, path: list[Node]) -> None:
        path = path + [node]
        if node.downstream:
            for child in node.downstream:
                visit(child, path)
        elif isinstance(node.expression, exp.Table):
            table, _, name = node.name.rpartition(".")
            keep((node.expression.name or table, name), _subtype(path))
        elif depth < 4:  # no column read (count(*), a literal): the group's keys decide the value
            with_ = query.args.get("with_")
            for key in _group_columns(node.source):
                probe = exp.select(exp.column(key.name, key.table).as_(key.name)).from_(key.table)
                if with_ is not None:
                    probe.set("with_", with_.copy())
                for source, kind in _trace(key.name, probe, schema, depth + 1).items():
                    keep(source, "GROUP_BY" if kind != "FILTER" else kind)

    visit(lineage(column, query, schema=schema, dialect=DIALECT), [])
    return found


def _schema(tables: dict[str, list[str]]) -> dict[str, dict[str, str]]:
    return {name: {c: "VARCHAR" for c in columns} for name, columns in tables.items()}


def _columns(sql_fragment: str) -> set[str]:
    return {c.name for c in parse_one(f"SELECT {sql_fragment}", read=DIALECT).find_all(exp.Column)}


@lru_cache(maxsize=None)
def silver_lineage(entity: str) -> dict[str, tuple[InputField, ...]]:
    """silver.<entity> column -> the bronze.<entity> fields it is computed from."""
    from workloads.medallion.silver import COLUMNS, LINEAGE, RULES, TIME_OK

    source = bronze(entity)
    query = parse_one(f"SELECT {COLUMNS[entity]}, {LINEAGE} FROM new_rows", read=DIALECT)
    bronze_columns = [f.name for f in EVENT_FIELDS[entity]] + LINEAGE.split(", ")
    schema = _schema({"new_rows": bronze_columns})
    filters = set().union(*(_columns(check) for check, _ in RULES[entity]), _columns(TIME_OK), {"event_id"})
    result = {}
    for f in SILVER_FIELDS[entity]:
        traced = _trace(f.name, query, schema)
        fields = {InputField(source, column, "DIRECT", kind) for (_, column), kind in traced.items()}
        result[f.name] = tuple(sorted(fields))
    result["*filter*"] = tuple(sorted(InputField(source, c, "INDIRECT", "FILTER") for c in filters
                                      if c in bronze_columns))
    return result


def _gold_inputs(name: str) -> dict[str, str]:
    """The relations MERGE_SQL reads for gold.<name>, mapped to silver tables (current_gold is left out)."""
    inputs = {f"new_{entity}": silver(entity) for entity in GOLD_SOURCES[name]}
    if name == "funnel_daily":
        inputs["days_clickstream"] = silver("clickstream")
    return inputs


@lru_cache(maxsize=None)
def gold_lineage(name: str) -> dict[str, tuple[InputField, ...]]:
    """gold.<name> column -> the silver fields it is computed from."""
    from workloads.medallion.gold import MERGE_SQL

    inputs = _gold_inputs(name)
    tables = {"current_gold": [f.name for f in GOLD_FIELDS[name]]}
    for relation, table in inputs.items():
        entity = table.split(".", 1)[1]
        tables[relation] = [f.name for f in SILVER_FIELDS[entity]]
    query = parse_one(MERGE_SQL[name], read=DIALECT)
    schema = _schema(tables)
    result = {}
    for f in GOLD_FIELDS[name]:
        traced = _trace(f.name, query, schema)
        result[f.name] = tuple(sorted({InputField(inputs[relation], column, _kind(subtype), subtype)
                                       for (relation, column), subtype in traced.items() if relation in inputs}))
    return result


def _kind(subtype: str) -> str:
    return "INDIRECT" if subtype in ("GROUP_BY", "FILTER") else "DIRECT"


def job_lineage(output: str) -> dict[str, tuple[InputField, ...]]:
    """Column lineage of the job writing `output` (silver.<entity> or gold.<name>)."""
    namespace, _, name = output.partition(".")
    if namespace == "silver" and name in ENTITIES:
        return silver_lineage(name)
    if namespace == "gold" and name in GOLD_FIELDS:
        return gold_lineage(name)
    raise KeyError(f"no column lineage known for {output}")


def job_inputs(output: str) -> list[str]:
    namespace, _, name = output.partition(".")
    if namespace == "silver":
        return [bronze(name)]
    return sorted({silver(e) for e in GOLD_SOURCES[name]})


def outputs() -> list[str]:
    return [silver(e) for e in ENTITIES] + [gold(n) for n in GOLD_FIELDS]

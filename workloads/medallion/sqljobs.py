"""The medallion transforms as SQL jobs for a cluster (`sql/flink/*.sql`, `sql/trino/*.sql`), and the checks that
keep them honest without a cluster: see sql/README.md for what is and is not checked.

Flink: the jobs are planned by PyFlink's own planner (parse, validate, optimise) against tables declared with
the real Iceberg schemas from `tables.py`, with the connectors swapped for the ones the PyFlink wheel ships:
bronze tables as `datagen` sources, silver tables as `filesystem` (JSON) tables, which only accept insert-only
streams (so a silver job that would emit updates fails the check), gold tables as `blackhole` sinks with the
identifier fields as primary key. PyFlink lives in its own virtualenv (`make flink-venv`).
"""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from workloads.medallion.tables import all_tables

SQL_DIR = Path(__file__).parent / "sql"
FLINK_VENV_PYTHON = Path(__file__).resolve().parents[2] / ".venv-flink" / "bin" / "python"


def jobs(engine: str) -> dict[str, str]:
    """{job name: SQL} for "flink" or "trino", one INSERT/MERGE statement per file."""
    return {path.stem: path.read_text().strip().rstrip(";") for path in sorted((SQL_DIR / engine).glob("*.sql"))}


def flink_type(iceberg_type: Any) -> str:
    from pyiceberg import types as t

    simple = {t.StringType: "STRING", t.LongType: "BIGINT", t.IntegerType: "INT", t.DoubleType: "DOUBLE",
              t.FloatType: "FLOAT", t.BooleanType: "BOOLEAN", t.DateType: "DATE", t.BinaryType: "BYTES",
              t.TimestamptzType: "TIMESTAMP_LTZ(6)", t.TimestampType: "TIMESTAMP(6)"}
    if isinstance(iceberg_type, t.DecimalType):
        return f"DECIMAL({iceberg_type.precision}, {iceberg_type.scale})"
    return simple[type(iceberg_type)]


def flink_ddl(workdir: Path) -> list[str]:
    """CREATE statements for every table, in databases named like the namespaces, with test connectors."""
    ddl = [f"CREATE DATABASE IF NOT EXISTS {ns}" for ns in ("bronze", "silver", "gold")]
    for spec in all_tables():
        schema = spec.schema
        columns = [f"`{f.name}` {flink_type(f.field_type)}{' NOT NULL' if f.required else ''}" for f in schema.fields]
        namespace, name = spec.identifier.split(".")
        if namespace == "bronze" and name != "quarantine":
            options = "'connector' = 'datagen', 'number-of-rows' = '100'"
        elif namespace == "gold":
            keys = ", ".join(f"`{schema.find_column_name(i)}`" for i in schema.identifier_field_ids)
            columns.append(f"PRIMARY KEY ({keys}) NOT ENFORCED")
            options = "'connector' = 'blackhole'"
        else:
            options = f"'connector' = 'filesystem', 'path' = '{(workdir / namespace / name).as_uri()}', " \
                      "'format' = 'json'"
        ddl.append(f"CREATE TABLE {spec.identifier} (\n  " + ",\n  ".join(columns) + f"\n) WITH ({options})")
    return ddl


def plan_flink(python: Path = FLINK_VENV_PYTHON, timeout: float = 300,
               extra_jobs: dict[str, str] | None = None) -> dict[str, Any]:
    """Plan every Flink job (and `extra_jobs`, kept out of the statement set) with PyFlink; returns the
    checker's JSON report (see sql/flink_plan.py)."""
    if not python.exists():
        raise FileNotFoundError(f"{python} not found: run `make flink-venv` first")
    with tempfile.TemporaryDirectory(prefix="dp-flink-plan-") as tmp:
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps({"ddl": flink_ddl(Path(tmp)), "jobs": jobs("flink"),
                                    "extra_jobs": extra_jobs or {}}))
        done = subprocess.run([str(python), str(SQL_DIR / "flink_plan.py"), str(spec)], capture_output=True,
                              text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"PyFlink planner failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def duckdb_type(iceberg_type: Any) -> str:
    from pyiceberg import types as t

    simple = {t.StringType: "VARCHAR", t.LongType: "BIGINT", t.IntegerType: "INTEGER", t.DoubleType: "DOUBLE",
              t.FloatType: "FLOAT", t.BooleanType: "BOOLEAN", t.DateType: "DATE", t.BinaryType: "BLOB",
              t.TimestamptzType: "TIMESTAMPTZ", t.TimestampType: "TIMESTAMP"}
    if isinstance(iceberg_type, t.DecimalType):
        return f"DECIMAL({iceberg_type.precision}, {iceberg_type.scale})"
    return simple[type(iceberg_type)]


def duckdb_tables(con: Any) -> None:
    """Empty tables in `con` shaped exactly like the Iceberg tables (schemas bronze, silver, gold)."""
    for namespace in ("bronze", "silver", "gold"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {namespace}")
    for spec in all_tables():
        columns = ", ".join(f'"{f.name}" {duckdb_type(f.field_type)}{" NOT NULL" if f.required else ""}'
                            for f in spec.schema.fields)
        con.execute(f"CREATE TABLE {spec.identifier} ({columns})")


def run_trino_jobs(con: Any) -> list[str]:
    """Run the Trino jobs, transpiled to DuckDB by sqlglot, in their documented order (per entity: quarantine,
    then silver; then gold) against the tables in `con`; returns the job names run."""
    import sqlglot
    from sqlglot import exp

    def octet_length(node: exp.Expression) -> exp.Expression:
        # Trino's length(varbinary) counts bytes; sqlglot keeps `length`, which DuckDB only has for text.
        if isinstance(node, exp.Length) and isinstance(node.this, exp.Encode):
            return exp.Anonymous(this="octet_length", expressions=[node.this])
        return node

    trino = jobs("trino")
    order = [name for name in trino if name.endswith("_quarantine")]
    order += [name for name in trino if name.startswith("silver_") and not name.endswith("_quarantine")]
    order += [name for name in trino if name.startswith("gold_")]
    for name in order:
        tree = sqlglot.parse_one(trino[name], read="trino").transform(octet_length)
        con.execute(tree.sql(dialect="duckdb", unsupported_level=sqlglot.ErrorLevel.RAISE))
    return order

"""The Flink job scripts of the job image: one `<job>.sql` per packaged job (components/flink `JOBS`), rendered from
the medallion statements (`workloads/medallion/sql/flink/<prefix>*.sql`) when the image is built.

Each script is the preamble sql/README.md describes, then every statement of the job as one statement set, so a
layer is one Flink job. Endpoints are `${VAR}` placeholders that the job image's SQL runner (docker/flink-jobs/
SqlRunner.java) fills from the pod's environment: `DP_CATALOG_URI`, `DP_CATALOG_WAREHOUSE` and
`DP_ICEBERG_OPTIONS` (further catalog options, e.g. the S3 endpoint or Glue's SigV4 signing; see `iceberg_options`).
S3 credentials are never in a script: Iceberg's S3FileIO takes them from the AWS default chain (the pod's
`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` from a Secret, or its IAM role).

The tables a job reads are switched to streaming reads (`ALTER TABLE ... SET ('streaming' = 'true')`: Iceberg's Flink
source takes read options from the table's properties), and the tables it writes in upsert mode (gold, keyed by
their identifier fields) get `write.upsert.enabled`.

Standard library only: the image build runs this file on its own (`python flink_scripts.py SQL_DIR OUT_DIR
name=prefix ...`, or the jobs in `FLINK_JOBS`).
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

CATALOG = "lake"
MONITOR_INTERVAL = "10s"
_TABLE = re.compile(r"\b(bronze|silver|gold)\.([A-Za-z_][A-Za-z0-9_]*)\b")
_TARGET = re.compile(r"^\s*INSERT\s+INTO\s+([A-Za-z_]+\.[A-Za-z_][A-Za-z0-9_]*)", re.I | re.M)
_STRING = re.compile(r"'(?:[^']|'')*'")
_COMMENT = re.compile(r"--[^\n]*")


def statements(sql_dir: Path, prefix: str) -> dict[str, str]:
    """{file stem: statement without its `;`} for the job's files, in name order."""
    found = {path.stem: path.read_text().strip().rstrip(";").strip()
             for path in sorted(Path(sql_dir).glob(f"{prefix}*.sql"))}
    if not found:
        raise ValueError(f"{sql_dir}: no {prefix}*.sql statements")
    return found


def tables(statement: str) -> tuple[str, set[str]]:
    """(the table an INSERT writes, the tables it reads), ignoring comments and string literals."""
    code = _STRING.sub("''", _COMMENT.sub("", statement))
    target = _TARGET.search(code)
    if target is None:
        raise ValueError(f"not an INSERT INTO statement: {statement[:80]!r}")
    written = target.group(1).lower()
    read = {f"{ns}.{name}".lower() for ns, name in _TABLE.findall(code)} - {written}
    return written, read


def render(sql_dir: Path, prefix: str) -> str:
    """The job's whole script: preamble, streaming and upsert table options, then one statement set."""
    job = statements(sql_dir, prefix)
    sources: set[str] = set()
    sinks: set[str] = set()
    for statement in job.values():
        written, read = tables(statement)
        sinks.add(written)
        sources |= read
    lines = [
        f"-- Rendered from {', '.join(f'{stem}.sql' for stem in job)} when the job image was built.",
        "SET 'table.local-time-zone' = 'UTC';",
        "SET 'table.dynamic-table-options.enabled' = 'true';",
        f"CREATE CATALOG {CATALOG} WITH (",
        "  'type' = 'iceberg',",
        "  'catalog-type' = 'rest',",
        "  'uri' = '${DP_CATALOG_URI}',",
        "  'warehouse' = '${DP_CATALOG_WAREHOUSE}',",
        "  'io-impl' = 'org.apache.iceberg.aws.s3.S3FileIO'${DP_ICEBERG_OPTIONS:-}",
        ");",
        f"USE CATALOG {CATALOG};",
    ]
    lines += [f"ALTER TABLE {table} SET ('streaming' = 'true', 'monitor-interval' = '{MONITOR_INTERVAL}');"
              for table in sorted(sources - sinks)]
    lines += [f"ALTER TABLE {table} SET ('write.upsert.enabled' = 'true');"
              for table in sorted(sinks) if table.startswith("gold.")]
    lines.append("EXECUTE STATEMENT SET BEGIN")
    lines += [f"{statement};" for statement in job.values()]
    lines.append("END;")
    return "\n".join(lines) + "\n"


def iceberg_options(properties: dict[str, str]) -> str:
    """`DP_ICEBERG_OPTIONS` from the catalog's pyiceberg properties: the options Iceberg's Java catalog needs beyond
    uri and warehouse (same names in both, except the region: `client.region`). Credentials are left out."""
    wanted = {"s3.endpoint": "s3.endpoint", "s3.path-style-access": "s3.path-style-access",
              "rest.sigv4-enabled": "rest.sigv4-enabled", "rest.signing-name": "rest.signing-name",
              "rest.signing-region": "rest.signing-region", "s3.region": "client.region"}
    options = [(wanted[key], str(value)) for key, value in properties.items() if key in wanted]
    return "".join(f",\n  '{key}' = '{value}'" for key, value in sorted(options))


def main(argv: list[str]) -> int:
    jobs = argv[2:] or os.environ.get("FLINK_JOBS", "").split()
    if len(argv) < 2 or not jobs or not all("=" in job for job in jobs):
        print("usage: flink_scripts.py SQL_DIR OUT_DIR name=prefix ... (or in $FLINK_JOBS)", file=sys.stderr)
        return 2
    sql_dir, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        name, prefix = job.split("=", 1)
        (out / f"{name}.sql").write_text(render(sql_dir, prefix))
        print(f"rendered {out / name}.sql")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Health probe of the workload containers that serve no HTTP (ingest, refine, vector-index): the compose healthcheck
and the Kubernetes readiness/liveness probe run it in the container (`python /opt/dataplatform/probe.py ...`).

A job is healthy when what it works on is reachable from where it runs: the Iceberg catalog answers and the tables
it reads exist (`--tables`), and Kafka answers a metadata request (`--kafka`). The container's main process is the
job itself, so a crashed job already restarts the container; the probe catches the job that runs but cannot work
(catalog or Kafka unreachable, tables never created), names the cause on stderr and exits 1. It reads the platform
from the same environment as the jobs (workloads.common.platform).
"""
from __future__ import annotations

import argparse
import sys

KAFKA_TIMEOUT_S = 5.0


def check_tables(identifiers: list[str]) -> None:
    from workloads.common.platform import load_catalog

    catalog = load_catalog()
    missing = [identifier for identifier in identifiers if not catalog.table_exists(identifier)]
    if missing:
        raise RuntimeError(f"tables missing in the catalog: {', '.join(missing)} (has `medallion init` run?)")


def check_kafka() -> None:
    from confluent_kafka.admin import AdminClient

    from workloads.common.platform import kafka_config

    metadata = AdminClient(kafka_config()).list_topics(timeout=KAFKA_TIMEOUT_S)
    if not metadata.brokers:
        raise RuntimeError("Kafka answered without brokers")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", default="", help="comma-separated table identifiers that must exist")
    parser.add_argument("--kafka", action="store_true", help="Kafka must answer a metadata request")
    options = parser.parse_args(argv)
    tables = [t.strip() for t in options.tables.split(",") if t.strip()]
    try:
        if tables:
            check_tables(tables)
        if options.kafka:
            check_kafka()
    except Exception as exc:  # any failure (connection, auth, config) makes the container unhealthy, with its reason
        print(f"unhealthy: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

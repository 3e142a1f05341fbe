"""What the workloads run, the same on every target (mirroring `local/services.py`), and the environment each
process gets: the slice of the platform it uses (`needs`), built from the components' endpoints. Values that are
credentials are kept apart (`Env.secret`) so every adapter can hand them over its target's secret channel.

| process | command (`python -m ...`) | kind | needs |
| --- | --- | --- | --- |
| `medallion-init` | `workloads.medallion init` | before the medallion jobs (idempotent) | catalog |
| `medallion-producer` | `workloads.medallion produce --events N` | once, when `demo_events` > 0 | Kafka |
| `medallion-ingest` | `workloads.medallion ingest --follow` | service | catalog, Kafka |
| `medallion-refine` | `workloads.medallion refine --follow` | service, unless Flink jobs refine | catalog |
| `medallion-maintain` | `workloads.medallion maintain` | on `maintenance_schedule` | catalog |
| `vector-index` | `workloads.vector index --follow` | service, when there is a vector server | catalog, vector |
| `mcp-server` | `workloads.mcp_server serve` | service (HTTP 8765) | catalog, vector, Trino |
| `governance` | `workloads.governance serve` | service (metrics on 9466) | catalog |

Processes with a `port` serve HTTP there: each adapter gives them a Service / published port, HTTP health checks
(`liveness`, `readiness`) and a Prometheus scrape target (`MetricsEndpoint` named after the process).

The vector indexer needs a vector server (Qdrant, else Milvus): the embedded engines hand a collection between
processes with file locks and process ids, which separate containers do not share. Without one, the MCP server
still serves tables and SQL; its search tools find no collections.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

import pulumi

from components.workloads import GOVERNANCE_PORT, MCP_PORT

CATALOG_NAME = "platform"  # DP_CATALOG: the pyiceberg catalog the variables below configure
CATALOG_PREFIX = f"PYICEBERG_CATALOG__{CATALOG_NAME.upper()}__"
CA_FILE = "/etc/dataplatform/trino-ca.pem"  # where the MCP server finds the CA that signed Trino's certificate
MCP_ROLES = ("admin", "analyst", "agent")  # keys named in workloads/mcp_server/access.yaml (DP_MCP_<ROLE>_KEY)
PROBE = ("python", "/opt/dataplatform/probe.py")
# pyiceberg properties each catalog flavour has (components/catalog adapters); a new one must be added here, so a
# workload never starts with half a catalog configuration
CATALOG_KEYS = {
    "rest": ("type", "uri", "warehouse", "s3.endpoint", "s3.region", "s3.path-style-access", "s3.access-key-id",
             "s3.secret-access-key"),
    "glue": ("type", "uri", "warehouse", "rest.sigv4-enabled", "rest.signing-name", "rest.signing-region",
             "s3.region"),
}
CREDENTIAL_KEYS = ("s3.access-key-id", "s3.secret-access-key")


# resources per process unless `services.workloads.<process>.resources` says otherwise
RESOURCES = {"medallion-init": ("250m", "1Gi"), "medallion-producer": ("250m", "512Mi"),
             "medallion-ingest": ("500m", "1Gi"), "medallion-refine": ("500m", "2Gi"),
             "medallion-maintain": ("250m", "1Gi"), "vector-index": ("500m", "1Gi"), "mcp-server": ("500m", "1Gi"),
             "governance": ("250m", "1Gi")}
# governance's files, in the image's DP_HOME (an emptyDir on Kubernetes): its own audit log, whose head it anchors in
# the catalog (what must outlive the container), and, without an OpenLineage receiver (OPENLINEAGE_URL unset), the
# lineage events as a JSON-lines file
GOVERNANCE_ENV = (("DP_AUDIT_DIR", "/var/lib/dataplatform/audit"),
                  ("DP_LINEAGE_FILE", "/var/lib/dataplatform/lineage/events.jsonl"))


@dataclass(frozen=True)
class Process:
    name: str
    command: tuple[str, ...]
    needs: tuple[str, ...]
    workload: object  # stacks.config.Workload (enabled, replicas, resources)
    kind: Literal["service", "scheduled", "once", "setup"] = "service"
    port: int | None = None  # HTTP: health checks on `liveness` / `readiness`, /metrics scraped by Prometheus
    liveness: str = "/healthz"
    readiness: str = "/readyz"
    publish: str | None = None  # compose: the `compose.ports` entry it is published on
    rolling: bool = False  # replaced pod by pod (stateless, scales out); else stopped before its successor starts
    probe: tuple[str, ...] = ()  # a command that exits 0 when the process can work (services without HTTP)
    env: tuple[tuple[str, str], ...] = ()  # its own literal settings

    @property
    def replicas(self) -> int:
        return self.workload.replicas

    @property
    def resources(self):
        from stacks.config import Resources

        cpu, memory = RESOURCES[self.name]
        return self.workload.resources or Resources(cpu=cpu, memory=memory)

    @property
    def medallion(self) -> bool:
        return self.name.startswith("medallion-")


@dataclass
class Env:
    plain: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    secret: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    hosts: set[str] = field(default_factory=set)  # the service hosts it talks to (compose start-up order)


def python(*args: str) -> tuple[str, ...]:
    return ("python", "-m", *args)


def tables(namespace: str | None = None) -> tuple[str, ...]:
    from workloads.medallion.tables import all_tables

    return tuple(spec.identifier for spec in all_tables()
                 if namespace is None or spec.identifier.startswith(f"{namespace}."))


def declare(settings, *, flink_refines: bool, vector: bool, kafka: bool, catalog: bool) -> list[Process]:
    """The processes for these `services.workloads` settings and the services the stack runs."""
    if not catalog:
        raise ValueError("services.catalog.enabled: the workloads read and write the platform's Iceberg tables; switch "
                         "the catalog on (or services.workloads off)")
    interval = f"{settings.interval_s:g}"
    found: list[Process] = []
    medallion = settings.ingest.enabled or settings.refine.enabled or settings.maintain.enabled
    if medallion:
        found.append(Process("medallion-init", python("workloads.medallion", "init"), ("catalog",),
                             settings.maintain, kind="setup"))
    if settings.ingest.enabled:
        if not kafka:
            raise ValueError("services.workloads.ingest: ingest reads the shop events from Kafka; switch "
                             "services.kafka on (or ingest off)")
        found.append(Process("medallion-ingest", python("workloads.medallion", "ingest", "--follow", "--interval",
                                                        interval), ("catalog", "kafka"), settings.ingest,
                             probe=(*PROBE, "--kafka", "--tables", ",".join(tables("bronze")))))
    if settings.demo_events and kafka:
        found.append(Process("medallion-producer", python("workloads.medallion", "produce", "--events",
                                                          str(settings.demo_events)), ("kafka",), settings.ingest,
                             kind="once"))
    if settings.refine.enabled and not flink_refines:
        found.append(Process("medallion-refine", python("workloads.medallion", "refine", "--follow", "--interval",
                                                        interval), ("catalog",), settings.refine,
                             probe=(*PROBE, "--tables", ",".join(tables("silver") + tables("gold")))))
    if settings.maintain.enabled:
        found.append(Process("medallion-maintain", python("workloads.medallion", "maintain", "--retain-hours",
                                                          f"{settings.retain_hours:g}"), ("catalog",),
                             settings.maintain, kind="scheduled"))
    if settings.vector_index.enabled and vector:
        found.append(Process("vector-index", python("workloads.vector", "index", "--follow", "--interval", "10"),
                             ("catalog", "vector"), settings.vector_index,
                             probe=(*PROBE, "--tables", ",".join(tables("gold")))))
    if settings.mcp_server.enabled:
        found.append(Process("mcp-server", python("workloads.mcp_server", "serve", "--host", "0.0.0.0", "--port",
                                                  str(MCP_PORT)), ("catalog", "vector", "query"),
                             settings.mcp_server, port=MCP_PORT, publish="mcp", rolling=True))
    if settings.governance.enabled:
        found.append(Process("governance", python("workloads.governance", "serve", "--host", "0.0.0.0", "--port",
                                                   str(GOVERNANCE_PORT)), ("catalog",), settings.governance,
                             port=GOVERNANCE_PORT, liveness="/metrics", readiness="/metrics", env=GOVERNANCE_ENV))
    return found


def plan(args) -> list[Process]:
    """The processes of a stack: its `services.workloads` settings and the services it runs."""
    check_schedule(args.settings.maintenance_schedule)
    return declare(args.settings, flink_refines=bool(args.flink and args.flink.jobs),
                   vector=bool(args.qdrant or args.milvus), kafka=args.kafka is not None,
                   catalog=args.catalog is not None)


def _host(address: str) -> str | None:
    address = str(address)
    return urlsplit(address if "://" in address else f"tcp://{address}").hostname


def catalog_keys(catalog, storage) -> tuple[str, ...]:
    """The properties the catalog of this stack has: no S3 endpoint on AWS S3, no keys where an IAM role signs."""
    keys = CATALOG_KEYS.get(catalog.type)
    if keys is None:
        raise ValueError(f"services.catalog: no workload configuration for a {catalog.type!r} catalog")
    if storage is None or storage.endpoint is None:
        keys = tuple(k for k in keys if k not in ("s3.endpoint", "s3.path-style-access"))
    if storage is None or storage.access_key_id is None:
        keys = tuple(k for k in keys if k not in CREDENTIAL_KEYS)
    return keys


def catalog_env(catalog, storage, env: Env) -> None:
    """The catalog's pyiceberg properties as pyiceberg's own variables (credentials as secrets)."""
    keys = catalog_keys(catalog, storage)
    properties = pulumi.Output.from_input(catalog.properties)

    def value(key: str):
        def pick(props: dict) -> str:
            unknown = set(props) - set(keys)
            if unknown:
                raise ValueError(f"services.catalog: the workloads do not pass the catalog properties "
                                 f"{sorted(unknown)} (components/workloads/processes.py CATALOG_KEYS)")
            return str(props.get(key, ""))
        return properties.apply(pick)

    env.plain["DP_CATALOG"] = CATALOG_NAME
    for key in keys:
        variable = CATALOG_PREFIX + key.replace(".", "__").replace("-", "_").upper()
        (env.secret if key in CREDENTIAL_KEYS else env.plain)[variable] = value(key)
    if isinstance(catalog.uri, str):
        env.hosts.add(_host(catalog.uri))


def environment(process: Process, args, mcp_keys: dict[str, pulumi.Input[str]] | None = None) -> Env:
    """The environment of one process: only what its `needs` name."""
    env = Env(plain=dict(process.env))
    if "catalog" in process.needs:
        catalog_env(args.catalog, args.storage, env)
    if "kafka" in process.needs and args.kafka is not None:
        env.plain.update(args.kafka.env())
        if isinstance(args.kafka.bootstrap_servers, str):
            env.hosts |= {_host(s) for s in args.kafka.bootstrap_servers.split(",")}
    if "vector" in process.needs:
        store = args.qdrant or args.milvus
        if store is not None:
            for key, value in store.env().items():
                (env.secret if key in ("DP_QDRANT_API_KEY", "DP_MILVUS_TOKEN") else env.plain)[key] = value
            url = getattr(store, "url", None) or getattr(store, "uri", None)
            if isinstance(url, str):
                env.hosts.add(_host(url))
    if "query" in process.needs and args.trino is not None:
        for key, value in args.trino.env().items():
            (env.secret if key == "DP_TRINO_PASSWORD" else env.plain)[key] = value
        env.plain["REQUESTS_CA_BUNDLE"] = CA_FILE  # the trino client (requests) trusts the platform's CA
        if isinstance(args.trino.url, str):
            env.hosts.add(_host(args.trino.url))
    if process.name == "mcp-server" and mcp_keys:
        env.secret.update({f"DP_MCP_{role.upper()}_KEY": key for role, key in mcp_keys.items()})
    env.hosts.discard(None)
    return env


def mcp_keys(name: str, parent: pulumi.Resource) -> dict[str, pulumi.Output[str]]:
    """One generated API key per role of the MCP server's policy (access.yaml reads them from DP_MCP_<ROLE>_KEY)."""
    from components.catalog.compose import generated_secret

    return {role: generated_secret(f"{name}-mcp-{role}-key", parent, length=40) for role in MCP_ROLES}


def scheduler_loop(process: Process) -> str:
    """The scheduled process where the target has no scheduler (compose, VMs): a POSIX sh loop that runs it at each
    minute `$SCHEDULE` (cron, UTC) matches, touching /tmp/heartbeat every minute and /tmp/failed after a failed run
    (the healthcheck reads both). SIGTERM ends it between runs, or once the run in hand finishes."""
    from components.backups.schedule import SHELL_MATCHER

    return "\n".join([
        "set -euf",
        SHELL_MATCHER.strip(),
        "trap 'exit 0' TERM INT",
        "while true; do",
        "  touch /tmp/heartbeat",
        "  # shellcheck disable=SC2046 # five numbers",
        "  if cron_matches \"$SCHEDULE\" $(date -u '+%-M %-H %-d %-m %w'); then",
        f"    if {' '.join(process.command)}; then rm -f /tmp/failed; else touch /tmp/failed; fi",
        "  fi",
        "  sleep $((60 - $(date +%-S))) &",
        "  wait $!",
        "done",
        "",
    ])


def check_schedule(expression: str) -> None:
    """Refuse a schedule every target cannot run the same way, naming this setting."""
    from components.backups.schedule import ScheduleError, parse

    try:
        parse(expression)
    except ScheduleError as exc:
        raise ValueError(str(exc).replace("services.backups.schedule", "services.workloads.maintenance_schedule")) \
            from None

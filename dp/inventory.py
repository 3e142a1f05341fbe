"""The smoke suite's inventory: which hosts to check and how to reach them (testinfra host specs), what runs and
listens on each, and the service endpoints the client checks use, as reached from the machine running the suite.

Two builders, one shape: `from_stack_outputs` (a deployed stack: `pulumi stack output --json --show-secrets`, whose
`smoke` output dp/smoke_export.py defines) and `from_local` (the embedded platform of `dp local`). A check the
inventory has no entry for is skipped with the reason in `skips` (e.g. no Prometheus on the embedded platform).
The inventory holds credentials (catalog S3 keys, API keys): `dp smoke` writes it 0600 and deletes it after.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field

ENV = "DP_SMOKE_INVENTORY"  # path of the inventory file the suite (tests/smoke) reads
FRESH_WITHIN = 900.0  # seconds: newest data commit of each layer at most this old
MCP_KEY_ENV = "DP_MCP_AGENT_KEY"  # the agent role sees the gold tables: the least a smoke call needs
MILVUS_HEALTH_PORT = 9091  # Milvus serves /healthz on its metrics port, not on the gRPC one


class InventoryError(ValueError):
    """Stack outputs or local state that no inventory can be built from; the message says what to do."""


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Unit(Model):
    """Something that must be running on a host. `supervisor`: a program of supervisord.conf `config`, via `ctl`;
    `systemd`: a unit; `container`: a Docker container; `pods`: the pods matching label selector `name` in
    namespace `config` (kube context `ctl`). A `one_shot` unit may also have finished with exit status 0."""
    kind: Literal["supervisor", "systemd", "container", "pods"]
    name: str
    one_shot: bool = False
    config: str | None = None
    ctl: str | None = None


class Host(Model):
    """A testinfra host (`local://`, `ssh://user@host:port?ssh_identity_file=...`, `docker://c`, `kubectl://pod`),
    the TCP ports something must listen on there, its units, and `discover`: a systemd unit glob whose every
    loaded unit must be running (hosts whose units are not known up front)."""
    name: str
    uri: str
    ports: tuple[int, ...] = ()
    units: tuple[Unit, ...] = ()
    discover: str | None = None


class Http(Model):
    """A health endpoint answering 2xx; `ca_pem` trusts a private CA (Trino's)."""
    name: str
    url: str
    ca_pem: str | None = None


class Kafka(Model):
    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    region: str | None = None  # MSK IAM (OAUTHBEARER) signs tokens for this region


class Catalog(Model):
    properties: dict[str, str]  # pyiceberg catalog properties (may hold S3 keys)
    name: str = "platform"  # a SQL catalog keys its rows by this name
    namespaces: tuple[str, ...] = ()


class Tables(Model):
    identifiers: tuple[str, ...]
    fresh_within: float = FRESH_WITHIN


class Mcp(Model):
    url: str  # base URL: /healthz, /mcp, /api/v1
    api_key_env: str = MCP_KEY_ENV
    expect_tables: tuple[str, ...] = ()


class Prometheus(Model):
    url: str
    sigv4_region: str | None = None  # Amazon Managed Prometheus


class Inventory(Model):
    stack: str
    target: str
    vantage: str = Field(description="where the client checks must run for the endpoints to resolve")
    hosts: tuple[Host, ...] = ()
    http: tuple[Http, ...] = ()
    kafka: Kafka | None = None
    catalog: Catalog | None = None
    tables: Tables | None = None
    mcp: Mcp | None = None
    prometheus: Prometheus | None = None
    skips: dict[str, str] = Field(default_factory=dict)  # check -> why it does not apply to this target

    def reason(self, check: str) -> str:
        return self.skips.get(check, f"no {check} in the inventory of {self.stack}")

    def write(self, path: Path) -> Path:
        """Write the inventory readable by its owner only (it may hold credentials)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(self.model_dump_json(indent=2))
        return path

    @classmethod
    def read(cls, path: str | Path) -> Inventory:
        return cls.model_validate_json(Path(path).read_text())


# --- a deployed stack -----------------------------------------------------------------------------------------
def from_stack_outputs(stack: str, outputs: dict[str, Any], *, ssh_key: str | None = None,
                       fresh_within: float = FRESH_WITHIN) -> Inventory:
    """The inventory of a deployed stack from its outputs (`pulumi stack output --json --show-secrets`)."""
    smoke, endpoints = outputs.get("smoke"), outputs.get("endpoints")
    if not isinstance(smoke, dict) or not isinstance(endpoints, dict):
        missing = " and ".join(k for k in ("smoke", "endpoints") if not isinstance(outputs.get(k), dict))
        raise InventoryError(f"stack {stack}: its outputs have no {missing}: deployed before this version exported "
                             "them? Run `pulumi up` again, then `dp smoke`.")
    if any(value == "[secret]" for value in _leaves(endpoints)):
        raise InventoryError(f"stack {stack}: secret outputs are masked: use "
                             "`pulumi stack output --json --show-secrets`")
    kind = smoke.get("kind")
    reach, hosts, vantage = _target(kind, smoke, endpoints, ssh_key)
    skips: dict[str, str] = {}
    kafka = catalog = tables = mcp = prometheus = None
    http: list[Http] = []

    def check_http(name: str, url: str | None, path: str, why_not: str = "no URL in the stack's endpoints",
                   ca_pem: str | None = None) -> None:
        if not url:
            skips[f"http {name}"] = why_not
            return
        reached = reach(url)
        if reached is None:
            skips[f"http {name}"] = f"{url} is not published on the Docker host (its container is checked)"
            return
        http.append(Http(name=name, url=_join(reached, path), ca_pem=ca_pem))

    if store := endpoints.get("object_storage"):
        check_http("object_storage", store.get("endpoint"), "/status",
                   "managed by AWS (S3): reached through the catalog checks")
    if cat := endpoints.get("catalog"):
        rest = cat.get("type") == "rest"
        check_http("catalog", _root(cat["uri"]) if rest else None, "/health",
                   "managed by AWS (Glue Data Catalog): reached by the tables check")
        properties = {k: str(v) for k, v in (cat.get("properties") or {}).items()}
        for key in ("uri", "s3.endpoint"):
            if key in properties and kind != "aws":
                properties[key] = reach(properties[key]) or properties[key]
        catalog = Catalog(properties=properties, namespaces=tuple(cat.get("namespaces") or ()))
    else:
        skips["catalog"] = "no Iceberg catalog in this stack (services.catalog.enabled: false)"
    if brokers := endpoints.get("kafka"):
        bootstrap = smoke.get("kafka_bootstrap") or ",".join(
            reach(server) or server for server in brokers["bootstrap_servers"].split(","))
        kafka = Kafka(bootstrap_servers=bootstrap, security_protocol=brokers.get("security_protocol") or "PLAINTEXT",
                      sasl_mechanism=brokers.get("sasl_mechanism"), region=smoke.get("region"))
    else:
        skips["kafka"] = "no Kafka in this stack (services.kafka.enabled: false)"
    if flink := endpoints.get("flink"):
        check_http("flink", flink.get("rest_url"), "/overview",
                   "application mode: one cluster per job, checked through its pods")
    if trino := endpoints.get("trino"):
        check_http("trino", trino.get("url"), "/v1/info", ca_pem=trino.get("ca_certificate"))
    if qdrant := endpoints.get("qdrant"):
        check_http("qdrant", qdrant.get("url"), "/readyz")
    if milvus := endpoints.get("milvus"):
        check_http("milvus", _with_port(milvus.get("uri"), MILVUS_HEALTH_PORT), "/healthz")
    if registry := endpoints.get("schema_registry"):
        check_http("schema_registry", registry.get("api_url") and _root(registry["api_url"]), "/health/ready",
                   "managed by AWS (Glue Schema Registry)")
    if observability := endpoints.get("observability"):
        managed = kind == "aws" and "aps-workspaces" in (observability.get("prometheus_url") or "")
        check_http("prometheus", None if managed else observability.get("prometheus_url"), "/-/ready",
                   "Amazon Managed Prometheus: checked by the targets query")
        check_http("grafana", observability.get("grafana_url"), "/api/health")
        url = observability.get("prometheus_url")
        prometheus = Prometheus(url=(url if managed else reach(url)) or url,
                                sigv4_region=smoke.get("region") if managed else None)
    else:
        skips["prometheus"] = "no observability in this stack (services.observability.enabled: false)"
    if medallion := endpoints.get("medallion"):
        tables = Tables(identifiers=tuple(medallion.get("tables") or _medallion_tables()), fresh_within=fresh_within)
    else:
        skips["tables"] = "the medallion jobs are not deployed by this stack (no `medallion` in its endpoints)"
    if server := endpoints.get("mcp"):
        base = reach(server["url"]) or server["url"]
        check_http("mcp", base, "/healthz")
        mcp = Mcp(url=base, api_key_env=server.get("api_key_env") or MCP_KEY_ENV,
                  expect_tables=_gold(tables.identifiers) if tables else ())
    else:
        skips["mcp"] = "the MCP server is not deployed by this stack (no `mcp` in its endpoints)"
    return Inventory(stack=stack, target=outputs.get("target", kind), vantage=vantage, hosts=tuple(hosts),
                     http=tuple(http), kafka=kafka, catalog=catalog, tables=tables, mcp=mcp, prometheus=prometheus,
                     skips=skips)


def _target(kind: str | None, smoke: dict, endpoints: dict, ssh_key: str | None):
    """(rewrite of an endpoint to how this machine reaches it, hosts, vantage) for the target."""
    if kind == "compose":
        published = smoke["published"]

        def reach(url: str) -> str | None:
            """A compose service's address -> its published host port (None: not published); others as they are."""
            parts = _split(url)
            if parts is None or parts.hostname not in smoke["containers"]:
                return url
            found = published.get(f"{parts.hostname}:{parts.port}")
            return _replace_netloc(url, found) if found else None

        units = [Unit(kind="container", name=c["name"], one_shot=c["one_shot"]) for c in smoke["containers"].values()]
        ports = sorted({p for c in smoke["containers"].values() for p in c["ports"]})
        host = Host(name="docker-host", uri=smoke.get("docker_host") or "local://", ports=tuple(ports),
                    units=tuple(units))
        return reach, [host], "the Docker host (published ports)"
    if kind == "vm":
        addresses = _host_ports(endpoints)
        hosts = [Host(name=h["name"], uri=ssh_uri(h["user"], h["address"], h["port"], ssh_key),
                      ports=tuple(sorted(addresses.get(h["address"], ()))), discover=smoke["units"])
                 for h in smoke["hosts"]]
        return (lambda url: url), hosts, "a machine on the hosts' network"
    if kind in ("kubernetes", "aws"):
        unit = Unit(kind="pods", name=smoke["selector"], config=smoke["namespace"], ctl=smoke.get("context"))
        where = "inside the cluster (service DNS names)" if kind == "kubernetes" else \
            "inside the VPC with the workloads' IAM role (kubectl: aws eks update-kubeconfig --name " \
            f"{smoke.get('cluster')} --region {smoke.get('region')})"
        return (lambda url: url), [Host(name="kubectl", uri="local://", units=(unit,))], where
    raise InventoryError(f"unknown target in the smoke output: {kind!r}")


def ssh_uri(user: str, address: str, port: int, key: str | None = None) -> str:
    """A testinfra `ssh://` host spec (IPv6 in brackets, the key file as a query parameter)."""
    host = f"[{address}]" if ":" in address else address
    return f"ssh://{user}@{host}:{port}" + (f"?ssh_identity_file={quote(key, safe='/~')}" if key else "")


def _host_ports(endpoints: dict) -> dict[str, set[int]]:
    """address -> ports, from every `host:port` or URL in the endpoints (VM services listen on host addresses)."""
    found: dict[str, set[int]] = {}
    for value in _leaves(endpoints):
        if not isinstance(value, str):
            continue
        for item in value.split(","):
            parts = _split(item.strip())
            if parts is not None and parts.hostname and parts.port:
                found.setdefault(parts.hostname, set()).add(parts.port)
    return found


def _split(value: str):
    value = value if "://" in value else f"tcp://{value}"
    try:
        parts = urlsplit(value)
        parts.port  # raises on a bad port
    except ValueError:
        return None
    return parts


def _replace_netloc(url: str, netloc: str) -> str:
    if "://" not in url:
        return netloc
    return urlunsplit(urlsplit(url)._replace(netloc=netloc))


def _root(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + path


def _with_port(url: str | None, port: int) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    return urlunsplit((parts.scheme, f"{host}:{port}", "", "", ""))


def _leaves(value: Any):
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _gold(identifiers: tuple[str, ...]) -> tuple[str, ...]:
    """What the agent role (whose key the MCP check uses) may list: the gold tables."""
    return tuple(t for t in identifiers if t.startswith("gold."))


def _medallion_tables() -> list[str]:
    from workloads.medallion.tables import all_tables

    return [spec.identifier for spec in all_tables()]


# --- the embedded platform ------------------------------------------------------------------------------------
def from_local(settings: Any, *, fresh_within: float = FRESH_WITHIN, host_uri: str = "local://") -> Inventory:
    """The inventory of the embedded platform (`dp local`) for these settings: one host (this machine, or
    `host_uri` reaching it another way), its supervisord programs and ports, Kafka, the SQL catalog and the MCP
    server. It has no Prometheus, Grafana or object store: those checks are skipped, saying so."""
    from local.services import declare

    services = declare(settings)
    ctl = str(Path(sys.executable).parent / "supervisorctl")
    units = tuple(Unit(kind="supervisor", name=s.name, one_shot=s.exits, config=str(settings.supervisor_conf),
                       ctl=ctl) for s in services)
    ports = tuple(sorted({port for s in services for port in s.ports.values()}))
    host = Host(name="local", uri=host_uri, ports=ports, units=units)
    mcp = next((s for s in services if s.name == "mcp-server"), None)
    tables = Tables(identifiers=tuple(_medallion_tables()), fresh_within=fresh_within)
    kafka = Kafka(bootstrap_servers=settings.bootstrap_servers,
                  security_protocol=os.environ.get("DP_KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT",
                  sasl_mechanism=os.environ.get("DP_KAFKA_SASL_MECHANISM") or None)
    http, server = [], None
    if mcp is not None:
        base = f"http://127.0.0.1:{mcp.ports['mcp']}"
        http = [Http(name="mcp", url=f"{base}/healthz"), Http(name="mcp readiness", url=f"{base}/readyz"),
                Http(name="mcp metrics", url=f"{base}/metrics")]
        server = Mcp(url=base, expect_tables=_gold(tables.identifiers))
    from local.tables import LAYERS

    return Inventory(
        stack="local", target="local", vantage="this machine", hosts=(host,), http=tuple(http), kafka=kafka,
        catalog=Catalog(properties=settings.catalog_properties(), namespaces=LAYERS), tables=tables, mcp=server,
        skips={"prometheus": "the embedded platform runs no Prometheus (its services' /metrics are checked "
                             "over HTTP instead)",
               "http object_storage": "the embedded platform keeps the warehouse in local files (no object store)"})


def outputs_from_json(text: str, source: str) -> dict[str, Any]:
    """Parse `pulumi stack output --json` text, with a clear error when it isn't that."""
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InventoryError(f"{source}: not JSON ({exc}); expected `pulumi stack output --json --show-secrets`")
    if not isinstance(outputs, dict):
        raise InventoryError(f"{source}: expected a JSON object of stack outputs")
    return outputs


def masked(inventory: Inventory) -> dict[str, Any]:
    """The inventory for display: catalog properties that look like credentials, and CA bodies, elided."""
    data = inventory.model_dump(mode="json")
    if data.get("catalog"):
        data["catalog"]["properties"] = {k: ("***" if re.search(r"secret|password|key|token|credential", k) else
                                             re.sub(r"//([^:/@]+):[^@]+@", r"//\1:***@", v))
                                         for k, v in data["catalog"]["properties"].items()}
    for check in data.get("http", []):
        if check.get("ca_pem"):
            check["ca_pem"] = "(CA certificate)"
    return data

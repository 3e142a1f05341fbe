"""The workloads on compose: one service per process in the platform's compose project, from the image the stack built
into the local engine. `medallion-init` runs once before the medallion jobs (`service_completed_successfully`); each
process starts after the services it talks to are healthy and their one-shot set-up jobs finished. Services without
HTTP are checked by the probe (catalog, tables, Kafka), the scheduler by its heartbeat, the HTTP ones (MCP server,
governance) on their readiness path; the MCP server is published on `compose.ports.mcp`. Credentials (S3 keys, API
keys, Trino password) are project `${VARS}` (Pulumi secrets), never in the file.
"""
from __future__ import annotations

import pulumi

from components.base import MetricsEndpoint
from components.workloads import WorkloadEndpoints, WorkloadsArgs, processes
from components.workloads.processes import CA_FILE, Process

HEARTBEAT = "test -n \"$$(find /tmp/heartbeat -mmin -3)\" && test ! -e /tmp/failed"
VARIABLE_PREFIX = "WORKLOADS_"


def ready(process: Process) -> str:
    url = f"http://127.0.0.1:{process.port}{process.readiness}"
    return f"import urllib.request; urllib.request.urlopen('{url}', timeout=4)"


def healthcheck(process: Process) -> dict | None:
    timing = {"interval": "30s", "timeout": "15s", "retries": 3, "start_period": "60s"}
    if process.port:
        return {"test": ["CMD", "python", "-c", ready(process)], **timing}
    if process.kind == "scheduled":
        return {"test": ["CMD-SHELL", HEARTBEAT], **timing}
    if process.probe:
        return {"test": ["CMD", *process.probe], **timing}
    return None


def waits(project, hosts: set[str]) -> dict[str, dict[str, str]]:
    """`depends_on` for the compose services behind `hosts`: healthy, and their set-up jobs completed."""
    found: dict[str, dict[str, str]] = {}
    for host in sorted(hosts):
        if host not in project.services:
            continue
        found[host] = {"condition": "service_healthy" if "healthcheck" in project.services[host]
                       else "service_started"}
        for step in (f"{host}-init", f"{host}-bootstrap"):
            if step in project.services:
                found[step] = {"condition": "service_completed_successfully"}
    return found


def deploy(name: str, args: WorkloadsArgs, parent: pulumi.Resource) -> WorkloadEndpoints:
    project = args.substrate
    settings = args.settings
    declared = processes.plan(args)
    image = args.images.images["workloads"]
    # the apply command waits for the build, and the containers record the reference they were created from
    project.secret_env[f"{VARIABLE_PREFIX}IMAGE_REF"] = image.ref
    keys = processes.mcp_keys(name, parent) if any(p.name == "mcp-server" for p in declared) else None
    if args.trino is not None and keys is not None:
        project.add_config(f"{name}-trino-ca", project.secret(f"{VARIABLE_PREFIX}TRINO_CA", args.trino.ca_certificate))
    init = next((p.name for p in declared if p.kind == "setup"), None)
    for process in declared:
        env = processes.environment(process, args, keys)
        environment = {key: value if isinstance(value, str) else project.secret(VARIABLE_PREFIX + key, value)
                       for key, value in env.plain.items()}
        environment |= {key: project.secret(VARIABLE_PREFIX + key, value) for key, value in env.secret.items()}
        depends = waits(project, env.hosts)
        if process.medallion and init and process.name != init:
            depends[init] = {"condition": "service_completed_successfully"}
        definition = {
            "image": image.name, "pull_policy": "never",  # built into this engine: never a registry's namesake
            "restart": "no" if process.kind in ("once", "setup") else "unless-stopped",
            "labels": {"dataplatform.io/image-ref": "${" + VARIABLE_PREFIX + "IMAGE_REF:?set by pulumi}",
                       "dataplatform.io/process": process.name},
            "command": list(process.command), "environment": environment,
            "deploy": project.deploy(process.resources),
        }
        if process.kind == "scheduled":
            environment["SCHEDULE"] = settings.maintenance_schedule
            definition["command"] = ["/bin/sh", "-c", processes.scheduler_loop(process).replace("$", "$$")]
        if depends:
            definition["depends_on"] = depends
        if (check := healthcheck(process)) is not None and process.kind not in ("once", "setup"):
            definition["healthcheck"] = check
        if process.publish:
            definition["ports"] = [project.port(getattr(project.settings.ports, process.publish), process.port)]
        if "query" in process.needs and args.trino is not None:
            definition["configs"] = [{"source": f"{name}-trino-ca", "target": CA_FILE}]
        project.add_service(process.name, definition)
    served = [p for p in declared if p.port]
    mcp = next((p for p in served if p.name == "mcp-server"), None)
    refs = {key: pushed.ref for key, pushed in args.images.images.items()}
    return WorkloadEndpoints(
        mcp_url=f"http://{mcp.name}:{mcp.port}" if mcp else None, mcp_keys=keys,
        tables=processes.tables(), processes=tuple(p.name for p in declared), images=refs,
        refine="flink" if args.flink and args.flink.jobs else "python",
        metrics=tuple(MetricsEndpoint(p.name, (f"{p.name}:{p.port}",)) for p in served))


"""The workloads on VMs: systemd units (`dataplatform-<process>`, `docker run --network host`) on the hosts with the
role `workloads`, pulling the images from `services.workloads.registry` (each host logs in once, the password on
stdin into root's Docker credentials). The medallion jobs, the scheduler and the vector indexer run on the first
such host, `medallion init` before each of the medallion units starts; one MCP server runs on each of the first
`mcp_server.replicas` hosts. HTTP processes (MCP server, governance) are waited for on their port. Credentials reach
the hosts only in root-only env files; the Trino CA as a file.
"""
from __future__ import annotations

import hashlib
import shlex

import pulumi
import pulumi_command as command

from components.base import MetricsEndpoint
from components.targets.vm import Container, ServiceFile, VmFleet, host_port
from components.workloads import WorkloadEndpoints, WorkloadsArgs, processes
from components.workloads.images import registry_host
from components.workloads.processes import CA_FILE, Process

SCHEDULER = "/etc/dataplatform/schedule.sh"  # inside the container
PASSWORD_FILE = "/etc/dataplatform/workloads/registry-password"  # on the host, root only


def split(env: processes.Env) -> tuple[dict[str, str], dict[str, pulumi.Input[str]]]:
    """(literal values for the env file, everything else for the root-only secret env file)."""
    plain = {k: v for k, v in env.plain.items() if isinstance(v, str)}
    return plain, {**{k: v for k, v in env.plain.items() if not isinstance(v, str)}, **env.secret}


def login(name: str, fleet: VmFleet, host, registry, parent: pulumi.Resource) -> list[pulumi.Resource]:
    """`docker login` on the host as root, whose Docker credentials the units pull with: the password goes to a
    root-only file (over stdin, like every secret file) that the login reads; nothing when the registry takes no
    credentials. A new password logs in again."""
    if registry is None or registry.username is None:
        return []
    sudo = fleet.sudo(host)
    server = registry_host(registry.server)
    password = pulumi.Output.secret(registry.password.value or "offline-plan")
    stored = fleet.put_file(f"{name}-{host.name}-registry-password", host, PASSWORD_FILE, password, parent=parent,
                            mode="0600")
    script = f"docker login --username {shlex.quote(registry.username)} --password-stdin {shlex.quote(server)} " \
             f"< {PASSWORD_FILE}"
    changed = pulumi.Output.secret(password.apply(lambda value: hashlib.sha256(value.encode()).hexdigest()))
    return [command.remote.Command(
        f"{name}-{host.name}-registry-login", connection=fleet.connections[host.name],
        create=f"{sudo}sh -c {shlex.quote(script)}", delete=f"{sudo}docker logout {shlex.quote(server)}",
        triggers=[changed], opts=pulumi.ResourceOptions(parent=parent, depends_on=[stored]))]


def job_script(process: Process, env: dict[str, str]) -> str:
    """A one-shot run (`fleet.run_job`): the literal environment exported, then the process."""
    exports = [f"export {key}={shlex.quote(value)}" for key, value in sorted(env.items())]
    return "\n".join(["set -eu", *exports, "exec " + shlex.join(process.command), ""])


def deploy(name: str, args: WorkloadsArgs, parent: pulumi.Resource) -> WorkloadEndpoints:
    fleet: VmFleet = args.substrate
    settings = args.settings
    declared = processes.plan(args)
    hosts = fleet.hosts_with_role("workloads")
    image = args.images.images["workloads"]
    logins = {host.name: login(name, fleet, host, settings.registry, parent) for host in hosts}
    built = args.images.resources
    keys = processes.mcp_keys(name, parent) if any(p.name == "mcp-server" for p in declared) else None
    init = next((p for p in declared if p.kind == "setup"), None)
    first = hosts[0]
    units: list[pulumi.Resource] = []
    served: dict[str, list] = {}  # HTTP process -> the hosts it runs on
    for process in declared:
        if process.kind == "setup":
            continue  # runs before each medallion unit starts (Container.init)
        env = processes.environment(process, args, keys)
        plain, secret = split(env)
        if process.kind == "once":
            units.append(fleet.run_job(f"{name}-{process.name}-{first.name}", first, image.name,
                                       job_script(process, plain), parent=parent,
                                       depends_on=[*built, *logins[first.name], *units]))
            continue
        container_args = process.command
        files: tuple[ServiceFile, ...] = ()
        if process.kind == "scheduled":  # the loop as a file: a unit's ExecStart is one line
            plain["SCHEDULE"] = settings.maintenance_schedule
            files = (ServiceFile("schedule.sh", SCHEDULER, processes.scheduler_loop(process)),)
            container_args = ("/bin/sh", SCHEDULER)
        if "query" in process.needs and args.trino is not None:
            files = (ServiceFile("trino-ca.pem", CA_FILE, args.trino.ca_certificate),)
        targets = hosts[:process.replicas] if process.port else (first,)
        if process.port and len(hosts) < process.replicas:
            setting = process.name.replace("-", "_")
            raise ValueError(f"services.workloads.{setting}.replicas: {process.replicas} replicas need as many "
                             f"hosts with the role 'workloads', but vm.hosts has {len(hosts)}")
        for host in targets:
            units.append(fleet.run_service(process.name, host, Container(
                image=image.name, args=container_args, env=plain, secret_env=secret, files=files,
                memory=process.resources.memory, ready_port=process.port,
                init=(init.command,) if init is not None and process.medallion else ()),
                parent=parent, depends_on=[*built, *logins[host.name]]))
            if process.port:
                served.setdefault(process.name, []).append(host_port(host.address, process.port))
    mcp = served.get("mcp-server")
    return WorkloadEndpoints(
        mcp_url=f"http://{mcp[0]}" if mcp else None, mcp_keys=keys, tables=processes.tables(),
        processes=tuple(p.name for p in declared), images={k: v.ref for k, v in args.images.images.items()},
        refine="flink" if args.flink and args.flink.jobs else "python",
        metrics=tuple(MetricsEndpoint(process, tuple(targets)) for process, targets in served.items()))

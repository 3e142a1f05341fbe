"""Schema registry on VMs: Apicurio Registry on the first `replicas` hosts with the role `schema-registry` (each
reads the same KafkaSQL journal, so any of them serves every request), then a one-shot job on the first of them
that registers the event schemas from files written next to it."""
from __future__ import annotations

import pulumi

from components.base import MetricsEndpoint
from components.schema_registry import SchemaRegistryArgs, SchemaRegistryEndpoints
from components.schema_registry.apicurio import (API_PATH, CCOMPAT_PATH, METRICS_PATH, PORT, SCHEMA_DIR,
                                                 register_script, schema_files, server_env, subjects)
from components.schema_registry.schemas import COMPATIBILITY
from components.targets.vm import CONFIG_DIR, Container, VmFleet, host_port


def deploy(name: str, args: SchemaRegistryArgs, parent: pulumi.Resource) -> SchemaRegistryEndpoints:
    fleet: VmFleet = args.substrate
    settings = args.settings
    hosts = fleet.place("schema-registry", settings.replicas, "services.schema_registry.replicas",
                        f"{settings.replicas} replicas")
    env = server_env(args)
    servers = []
    for host in hosts:
        servers.append(fleet.run_service(name, host, Container(
            image=args.versions.image("apicurio-registry"), env=env, memory=settings.resources.memory,
            ready_port=PORT), parent=parent, depends_on=servers[-1:]))  # one after the other: rolling restarts
    first = hosts[0]
    directory = f"{CONFIG_DIR}/{name}-register"
    files = schema_files(args)
    written = [fleet.put_file(f"{name}-register-{first.name}-{file}", first, f"{directory}/{file}", body,
                              parent=parent) for file, body in files.items()]
    fleet.run_job(f"{name}-register", first, args.versions.image("curl"),
                  register_script(f"http://127.0.0.1:{PORT}", files), parent=parent,
                  mounts={directory: SCHEMA_DIR}, depends_on=[*servers, *written])
    base = f"http://{host_port(first.address, PORT)}"
    return SchemaRegistryEndpoints(
        type="apicurio", url=f"{base}{CCOMPAT_PATH}", api_url=f"{base}{API_PATH}", registry=None,
        subjects=subjects(files), compatibility=COMPATIBILITY,
        metrics=(MetricsEndpoint("schema-registry", tuple(host_port(h.address, PORT)
                                                          for h in hosts), path=METRICS_PATH),))

"""Schema registry on compose: Apicurio Registry on the project's Kafka (it starts once the brokers are healthy),
and a one-shot `<name>-register` that registers the event schemas, mounted as compose configs."""
from __future__ import annotations

import pulumi

from components.base import MetricsEndpoint
from components.schema_registry import SchemaRegistryArgs, SchemaRegistryEndpoints
from components.schema_registry.apicurio import (API_PATH, CCOMPAT_PATH, METRICS_PATH, PORT, SCHEMA_DIR,
                                                 register_script, schema_files, server_env, subjects)
from components.schema_registry.schemas import COMPATIBILITY


def tcp_check(port: int) -> dict:
    return {"test": ["CMD", "bash", "-c", f"</dev/tcp/127.0.0.1/{port}"], "interval": "10s", "timeout": "5s",
            "retries": 18, "start_period": "20s"}


def deploy(name: str, args: SchemaRegistryArgs, parent: pulumi.Resource) -> SchemaRegistryEndpoints:
    project = args.substrate
    env = server_env(args)
    brokers = [address.rsplit(":", 1)[0] for address in env["APICURIO_KAFKASQL_BOOTSTRAP_SERVERS"].split(",")]
    project.add_service(name, {
        "image": args.versions.image("apicurio-registry"), "restart": "unless-stopped", "hostname": name,
        "environment": env, "healthcheck": tcp_check(PORT),
        "depends_on": {broker: {"condition": "service_healthy"} for broker in brokers},
        "deploy": project.deploy(args.settings.resources),
    })
    files = schema_files(args)
    for file, body in files.items():  # a `$` in a schema would otherwise be read as a compose variable
        project.add_config(f"{name}-{file}", body.replace("$", "$$"))
    base = f"http://{name}:{PORT}"
    project.add_service(f"{name}-register", {
        "image": args.versions.image("curl"), "restart": "no", "entrypoint": ["/bin/sh", "-ec"],
        "command": [register_script(base, files).replace("$", "$$")],
        "configs": [{"source": f"{name}-{file}", "target": f"{SCHEMA_DIR}/{file}"} for file in files],
        "depends_on": {name: {"condition": "service_healthy"}},
    })
    return SchemaRegistryEndpoints(type="apicurio", url=f"{base}{CCOMPAT_PATH}", api_url=f"{base}{API_PATH}",
                                   registry=None, subjects=subjects(files), compatibility=COMPATIBILITY,
                                   metrics=(MetricsEndpoint("schema-registry", (f"{name}:{PORT}",),
                                                            path=METRICS_PATH),))

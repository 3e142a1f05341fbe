"""Docker Compose substrate: the whole platform as one compose project on one Docker host.

Why a rendered compose file applied by `docker compose up --wait` (through pulumi-command) rather than one docker
provider resource per container: the file is an artifact a person can read, diff and run by hand
(`docker compose -f <data_dir>/compose.yaml up`), compose orders start-up by health checks and one-shot init jobs
(`service_completed_successfully`), and `--wait` fails the deployment when a service never becomes healthy.
Secrets never enter the file: it references `${VARS}` that the apply command receives as Pulumi secrets.
"""
from __future__ import annotations

import hashlib
from typing import Any

import pulumi
import pulumi_command as command
import yaml

from stacks.config import Compose, PlatformConfig


class ComposeProject(pulumi.ComponentResource):
    """Collects the services each component contributes, then renders and applies one compose project."""

    kind = "compose"

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("dataplatform:target:Compose", name, None, opts)
        self.name = name
        self.settings: Compose = config.compose or Compose()
        self.services: dict[str, dict[str, Any]] = {}
        self.volumes: list[str] = []
        self.configs: dict[str, dict[str, str]] = {}
        self.secret_env: dict[str, pulumi.Input[str]] = {}
        self.apply: command.local.Command | None = None

    def add_service(self, name: str, definition: dict[str, Any], volumes: tuple[str, ...] = ()) -> None:
        if name in self.services:
            raise ValueError(f"compose service {name!r} defined twice")
        self.services[name] = definition
        self.volumes += [v for v in volumes if v not in self.volumes]

    def add_config(self, name: str, content: str) -> None:
        """An inline config file (compose `configs.<name>.content`); `${VAR}` references are interpolated."""
        self.configs[name] = {"content": content}

    def secret(self, variable: str, value: pulumi.Input[str]) -> str:
        """Pass a secret to the project as an environment variable; returns the `${VAR}` reference to use."""
        self.secret_env[variable] = pulumi.Output.secret(value)
        return "${" + variable + ":?set by pulumi}"

    @staticmethod
    def deploy(resources) -> dict[str, Any]:
        """Kubernetes-style resources (`500m`, `2Gi`) as a compose `deploy` section (`cpus`, `2g`)."""
        memory = resources.memory
        for suffix, unit in (("Ki", "k"), ("Mi", "m"), ("Gi", "g"), ("Ti", "t")):
            memory = memory.replace(suffix, unit)
        cpu = resources.cpu
        cpus = float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
        return {"resources": {"limits": {"memory": memory}, "reservations": {"cpus": f"{cpus:g}"}}}

    def port(self, host_port: int, container_port: int) -> str:
        return f"{self.settings.bind_address}:{host_port}:{container_port}"

    def render(self) -> str:
        document = {"name": self.settings.project_name, "services": self.services,
                    "volumes": {v: {} for v in self.volumes}}
        if self.configs:
            document["configs"] = self.configs
        return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=120)

    def finalize(self) -> None:
        """Render the file and apply it; call once, after every component has added its services."""
        content = self.render()
        path = f"{self.settings.data_dir.rstrip('/')}/compose.yaml"
        project = f"docker compose -p {self.settings.project_name} -f {path}"
        self.apply = command.local.Command(
            f"{self.name}-up",
            create=f"set -eu; mkdir -p {self.settings.data_dir}; cat > {path}; {project} up --detach --wait "
                   f"--remove-orphans",
            update=f"set -eu; cat > {path}; {project} up --detach --wait --remove-orphans",
            delete=f"{project} down --remove-orphans",
            stdin=content,
            environment=self.secret_env,
            triggers=[hashlib.sha256(content.encode()).hexdigest()],
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stdout", "stderr"]),
        )
        self.register_outputs({"compose_file": path})

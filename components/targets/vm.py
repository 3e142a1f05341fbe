"""VM substrate: plain hosts reached over SSH, each running its services as systemd units around pinned containers.

Why systemd units around `docker run --network host` rather than a docker provider or compose per host: the unit
is what an operator on the box already knows (`systemctl status dataplatform-kafka`, `journalctl -u ...`: the
containers log to the journal), it restarts the service after a crash or a reboot without Pulumi, and host
networking lets each service advertise the host's own address. Everything reaches a host through pulumi-command
over SSH: `dpctl` (vm_files/dpctl.sh) and the base provisioning (vm_files/provision.sh) are real shell scripts sent
on stdin; every later step calls `dpctl`, so each one is idempotent and re-runs only when its input changes.
Secrets never appear in a command line or a unit: they travel on stdin into root-only (0600) env files and
config files that the containers read.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import pulumi
import pulumi_command as command

from stacks.config import PlatformConfig, Vm, VmHost

FILES = Path(__file__).resolve().parent / "vm_files"
TOOLS_DIR = "/usr/local/lib/dataplatform"
DPCTL = f"{TOOLS_DIR}/dpctl"
CONFIG_DIR = "/etc/dataplatform"
UNIT_PREFIX = "dataplatform-"
OFFLINE_KEY = "offline-plan: the stack's secrets provider decrypts the real key under `pulumi up`"
_SAFE_ARG = re.compile(r"^[A-Za-z0-9_@+=:,./-]+$")


def script(name: str) -> str:
    """A shell script shipped with the vm target (checked by shellcheck in tests/infra/test_vm.py)."""
    return (FILES / name).read_text()


def host_port(address: str, port: int) -> str:
    """`address:port`, with an IPv6 address in brackets."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def docker_memory(quantity: str) -> str:
    """A Kubernetes memory quantity (`512Mi`, `2Gi`) as docker's `--memory` value (`512m`, `2g`)."""
    for suffix, unit in (("Ki", "k"), ("Mi", "m"), ("Gi", "g"), ("Ti", "t")):
        if quantity.endswith(suffix):
            return quantity[:-2] + unit
    return quantity


def mebibytes(quantity: str) -> int:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(float(quantity[:-2]) * factor)
    return int(float(quantity) / 2**20)


def env_file(values: Mapping[str, str]) -> str:
    """Docker `--env-file` content: one `KEY=value` a line, taken literally (no quoting, so no newlines)."""
    for key, value in values.items():
        if "\n" in str(value) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            raise ValueError(f"environment variable {key!r}: names are identifiers and values are one line")
    return "".join(f"{key}={value}\n" for key, value in sorted(values.items()))


def systemd_exec(argv: Sequence[str]) -> str:
    """A command line for `ExecStart=`: systemd's quoting, with `%` and `$` escaped (no specifiers or variables)."""
    words = []
    for arg in argv:
        arg = arg.replace("%", "%%").replace("$", "$$")
        if not _SAFE_ARG.match(arg):
            arg = '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
        words.append(arg)
    return " ".join(words)


@dataclass(frozen=True)
class ServiceFile:
    """A file a container reads: kept as /etc/dataplatform/<service>/<name>, mounted read-only at `mount`.
    A secret file (its content a Pulumi secret) is written 0600, root only."""
    name: str
    mount: str
    content: pulumi.Input[str]
    secret: bool = False


@dataclass(frozen=True)
class Container:
    """What one service runs on a host: a pinned image under systemd, on the host's network.

    `volumes` maps a directory under the host's data dir to a container path (created owned by `data_owner`,
    the image's user); `init` are one-shot runs of the same image, env and files before each start (migrations);
    `ready_port` is checked on 127.0.0.1 before the deployment moves on."""
    image: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    files: tuple[ServiceFile, ...] = ()
    volumes: Mapping[str, str] = field(default_factory=dict)
    data_owner: str = "0:0"
    memory: str | None = None
    init: tuple[tuple[str, ...], ...] = ()
    ready_port: int | None = None
    ready_timeout: int = 300


class VmFleet(pulumi.ComponentResource):
    """The hosts of `dataplatform:vm`: SSH connections, base provisioning, and helpers the service adapters call
    to run containers (`run_service`) and one-shot jobs (`run_job`) on them."""

    kind = "vm"

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("dataplatform:target:Vm", name, None, opts)
        self.name = name
        self.settings: Vm = config.vm
        self.connections: dict[str, command.remote.ConnectionArgs] = {}
        self.provisioned: dict[str, list[pulumi.Resource]] = {}
        for host in self.settings.hosts:
            self.connections[host.name] = command.remote.ConnectionArgs(
                host=host.address, port=host.port, user=host.user,
                private_key=pulumi.Output.secret(host.private_key.value or OFFLINE_KEY))
            self.provisioned[host.name] = self._provision(host)

    def hosts_with_role(self, role: str) -> tuple[VmHost, ...]:
        return self.settings.with_role(role)

    def place(self, role: str, count: int, key: str, needs: str) -> tuple[VmHost, ...]:
        """The first `count` hosts with `role`, or a config error at `key` (`needs`: what wants them, e.g.
        "3 nodes") naming the hosts there are."""
        hosts = self.hosts_with_role(role)
        if len(hosts) < count:
            raise ValueError(f"{key}: {needs} need {count} hosts with the role {role!r}, but vm.hosts has "
                             f"{len(hosts)} ({', '.join(h.name for h in hosts)})")
        return hosts[:count]

    def sudo(self, host: VmHost) -> str:
        """Commands run as root: through non-interactive sudo unless the SSH user is root."""
        return "" if host.user == "root" else "sudo -n "

    def data_path(self, *parts: str) -> str:
        return "/".join([self.settings.data_dir.rstrip("/"), *parts])

    def _command(self, name: str, host: VmHost, create: str, *, parent: pulumi.Resource, stdin=None,
                 delete: str | None = None, depends_on: Sequence[pulumi.Resource] = (),
                 base: bool = True) -> command.remote.Command:
        depends = [*(self.provisioned[host.name] if base else []), *depends_on]
        return command.remote.Command(
            name, connection=self.connections[host.name], create=create, delete=delete, stdin=stdin,
            opts=pulumi.ResourceOptions(parent=parent, depends_on=depends, delete_before_replace=True))

    def _provision(self, host: VmHost) -> list[pulumi.Resource]:
        sudo = self.sudo(host)
        tools = self._command(
            f"{self.name}-{host.name}-tools", host, parent=self, base=False, stdin=script("dpctl.sh"),
            create=f"{sudo}install -d -m 0755 {TOOLS_DIR} && {sudo}tee {DPCTL} >/dev/null && {sudo}chmod 0755 {DPCTL}",
            delete=f"{sudo}rm -f {DPCTL}")
        base = self._command(
            f"{self.name}-{host.name}-provision", host, parent=self, base=False, stdin=script("provision.sh"),
            create=f"{sudo}bash -s -- {shlex.quote(self.settings.data_dir)}")
        return [tools, base]

    def put_file(self, name: str, host: VmHost, path: str, content: pulumi.Input[str], *, parent: pulumi.Resource,
                 mode: str = "0644", restart: str | None = None,
                 depends_on: Sequence[pulumi.Resource] = ()) -> command.remote.Command:
        """Write `content` to `path` on the host (through stdin: a secret stays out of the command line); when it
        changed, restart the unit `restart` if it runs."""
        sudo = self.sudo(host)
        args = [path, mode, "root:root", *([f"{restart}.service"] if restart else [])]
        return self._command(name, host, f"{sudo}{DPCTL} put-file {shlex.join(args)}", parent=parent, stdin=content,
                             delete=f"{sudo}rm -f {shlex.quote(path)}", depends_on=depends_on)

    def run_service(self, service: str, host: VmHost, container: Container, *, parent: pulumi.Resource,
                    depends_on: Sequence[pulumi.Resource] = ()) -> command.remote.Command:
        """Run `container` on `host` as the systemd unit `dataplatform-<service>`; returns the command that
        applied the unit (depend on it to start after the service is up)."""
        unit = UNIT_PREFIX + service
        config_dir = f"{CONFIG_DIR}/{service}"
        prefix = f"{service}-{host.name}"
        files: list[command.remote.Command] = []
        docker_args = ["--network", "host", "--log-driver", "journald"]
        if container.memory:
            docker_args += ["--memory", docker_memory(container.memory)]
        if container.env:
            files.append(self.put_file(f"{prefix}-env", host, f"{config_dir}/env", env_file(container.env),
                                       parent=parent, restart=unit))
            docker_args += ["--env-file", f"{config_dir}/env"]
        if container.secret_env:
            content = pulumi.Output.secret(pulumi.Output.all(**container.secret_env).apply(env_file))
            files.append(self.put_file(f"{prefix}-secret-env", host, f"{config_dir}/secret.env", content,
                                       parent=parent, mode="0600", restart=unit))
            docker_args += ["--env-file", f"{config_dir}/secret.env"]
        for file in container.files:
            content = pulumi.Output.secret(file.content) if file.secret else file.content
            files.append(self.put_file(f"{prefix}-file-{file.name}", host, f"{config_dir}/{file.name}", content,
                                       parent=parent, mode="0600" if file.secret else "0644", restart=unit))
            docker_args += ["--volume", f"{config_dir}/{file.name}:{file.mount}:ro"]
        data_dirs = []
        for directory, mount in container.volumes.items():
            data_dirs.append(self.data_path(directory))
            docker_args += ["--volume", f"{self.data_path(directory)}:{mount}"]
        unit_text = self.unit(service, container, docker_args, data_dirs)
        sudo = self.sudo(host)
        ready = [str(container.ready_port), str(container.ready_timeout)] if container.ready_port else []
        return self._command(f"{prefix}-unit", host, f"{sudo}{DPCTL} unit-apply {shlex.join([unit, *ready])}",
                             parent=parent, stdin=unit_text, delete=f"{sudo}{DPCTL} unit-remove {unit}",
                             depends_on=[*files, *depends_on])

    def unit(self, service: str, container: Container, docker_args: list[str], data_dirs: list[str]) -> str:
        """The systemd unit: pull if missing, (re)create the container on every start, restart it forever."""
        name = f"dp-{service}"
        owner, _, group = container.data_owner.partition(":")
        pre = ["ExecStartPre=" + systemd_exec([DPCTL, "pull", container.image])]
        pre += ["ExecStartPre=-" + systemd_exec(["/usr/bin/docker", "rm", "--force", leftover])  # after a crash
                for leftover in ([name, f"{name}-init"] if container.init else [name])]
        pre += ["ExecStartPre=" + systemd_exec(["/usr/bin/install", "-d", "-m", "0750", "-o", owner, "-g",
                                                group or owner, d]) for d in data_dirs]
        pre += ["ExecStartPre=" + systemd_exec(["/usr/bin/docker", "run", "--rm", "--name", f"{name}-init",
                                                *docker_args, container.image, *init]) for init in container.init]
        start = systemd_exec(["/usr/bin/docker", "run", "--rm", "--name", name, *docker_args, container.image,
                              *container.args])
        return "\n".join([
            "# Managed by Pulumi (dataplatform vm target): edits are overwritten on the next `pulumi up`.",
            "[Unit]",
            f"Description=dataplatform {service} ({container.image})",
            "Requires=docker.service",
            "After=docker.service network-online.target",
            "Wants=network-online.target",
            "StartLimitIntervalSec=0",
            "",
            "[Service]",
            "Type=exec",
            *pre,
            f"ExecStart={start}",
            f"ExecStop=/usr/bin/docker stop --time 60 {name}",
            "Restart=always",
            "RestartSec=5",
            "TimeoutStartSec=900",
            "TimeoutStopSec=90",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ])

    def run_job(self, name: str, host: VmHost, image: str, job_script: str, *, parent: pulumi.Resource,
                shell: str = "/bin/sh", mounts: Mapping[str, str] | None = None, as_root: bool = False,
                depends_on: Sequence[pulumi.Resource] = ()) -> command.remote.Command:
        """Run `job_script` once in a throwaway `image` container on the host's network (read from stdin, so it
        may be long); it runs again whenever the script or the image changes, so it must be idempotent."""
        sudo = self.sudo(host)
        args = ["docker", "run", "--rm", "-i", "--network", "host", *(["--user", "0:0"] if as_root else [])]
        for source, target in (mounts or {}).items():
            args += ["--volume", f"{source}:{target}:ro"]
        args += ["--entrypoint", shell, image, "-s"]
        return self._command(name, host, f"{sudo}{shlex.join(args)}", parent=parent, stdin=job_script,
                             depends_on=depends_on)

    def finalize(self) -> None:
        self.register_outputs({"hosts": {h.name: h.address for h in self.settings.hosts}})

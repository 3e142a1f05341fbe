"""Qdrant on VMs: one node on each of the first `replicas` hosts with the role `qdrant` (host networking), in
distributed mode when there are several (the first host starts the Raft cluster, the others join it on port 6335).
The API key reaches the hosts only in a root-only env file.

Snapshots: a systemd timer on the first host (`OnCalendar=` from `snapshot_schedule`, `Persistent=true`) runs
`snapshot.sh`: the curl image snapshots every collection on every node into a spool directory, then the rclone image
uploads the run to the backups bucket and expires old copies. `journalctl -u dataplatform-qdrant-snapshots` shows it.
"""
from __future__ import annotations

import pulumi
import pulumi_command as command

from components.backups.schedule import on_calendar
from components.base import MetricsEndpoint
from components.qdrant import (GRPC_PORT, HTTP_PORT, P2P_PORT, STORAGE, STORE, QdrantArgs, QdrantEndpoints, api_key,
                               cluster_env, snapshots)
from components.targets.vm import CONFIG_DIR, Container, VmFleet, env_file, host_port

UNIT = "dataplatform-qdrant-snapshots"
DIRECTORY = f"{CONFIG_DIR}/qdrant-snapshots"


def node_args(host, first) -> tuple[str, ...]:
    uri = f"http://{host_port(host.address, P2P_PORT)}"
    if host == first:
        return ("./entrypoint.sh", "--uri", uri)
    return ("./entrypoint.sh", "--bootstrap", f"http://{host_port(first.address, P2P_PORT)}", "--uri", uri)


def snapshot_job(nodes: dict[str, str], spool: str, curl_image: str, rclone_image: str, bucket: str,
                 retention_days: int) -> str:
    """The timer's script (bash on the host): both steps in throwaway containers on the host's network."""
    take = snapshots.snapshot_script(nodes, "/spool/$stamp").replace("'", "'\\''")
    upload = "\n".join(snapshots.upload_commands(bucket, "/spool/$stamp", retention_days)).replace("'", "'\\''")
    return "\n".join([
        "#!/usr/bin/env bash",
        "# Run by dataplatform-qdrant-snapshots.service (its timer); managed by Pulumi.",
        "set -euo pipefail",
        snapshots.stamp_command(),
        f'spool="{spool}"',
        'mkdir -p "$spool"',
        "trap 'rm -rf \"$spool/$stamp\"' EXIT",
        f'docker run --rm --network host --user 0:0 --env-file {DIRECTORY}/qdrant.env --env "stamp=$stamp" '
        f'--volume "$spool:/spool" --entrypoint /bin/sh {curl_image} -c \'{take}\'',
        f'docker run --rm --network host --env-file {DIRECTORY}/rclone.env --env "stamp=$stamp" '
        f'--volume "$spool:/spool:ro" --entrypoint /bin/sh {rclone_image} -ec \'{upload}\'',
        "",
    ])


def units(schedule: str) -> tuple[str, str]:
    service = "\n".join([
        "# Managed by Pulumi (dataplatform vm target): edits are overwritten on the next `pulumi up`.",
        "[Unit]",
        "Description=dataplatform Qdrant snapshots to the backups bucket",
        "Requires=docker.service",
        "After=docker.service network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        f"ExecStart=/bin/bash {DIRECTORY}/snapshot.sh",
        "TimeoutStartSec=3h",
        "",
    ])
    timer = "\n".join([
        "# Managed by Pulumi (dataplatform vm target): edits are overwritten on the next `pulumi up`.",
        "[Unit]",
        f"Description=dataplatform Qdrant snapshots on schedule {schedule} (UTC)",
        "",
        "[Timer]",
        *(f"OnCalendar={line}" for line in on_calendar(schedule)),
        "Persistent=true",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ])
    return service, timer


def install_script(service: str, timer: str) -> str:
    return "\n".join([
        "set -euo pipefail",
        f"cat > /etc/systemd/system/{UNIT}.service <<'UNIT'",
        service.rstrip("\n"),
        "UNIT",
        f"cat > /etc/systemd/system/{UNIT}.timer <<'UNIT'",
        timer.rstrip("\n"),
        "UNIT",
        "systemctl daemon-reload",
        f"systemctl enable --quiet {UNIT}.timer",
        f"systemctl restart {UNIT}.timer",
        "",
    ])


def deploy(name: str, args: QdrantArgs, parent: pulumi.Resource) -> QdrantEndpoints:
    fleet: VmFleet = args.substrate
    settings = args.settings
    snapshots.check_schedule(settings.snapshot_schedule)
    hosts = fleet.hosts_with_role("qdrant")
    if len(hosts) < settings.replicas:
        raise ValueError(f"services.qdrant.replicas: {settings.replicas} nodes need {settings.replicas} hosts with "
                         f"the role 'qdrant', but vm.hosts has {len(hosts)} ({', '.join(h.name for h in hosts)})")
    hosts = hosts[:settings.replicas]
    key = api_key(name, args, parent)
    env = {**cluster_env(len(hosts)), "QDRANT__STORAGE__STORAGE_PATH": STORAGE,
           "QDRANT__STORAGE__SNAPSHOTS_PATH": f"{STORAGE}/snapshots"}
    servers = []
    for host in hosts:
        servers.append(fleet.run_service(name, host, Container(
            image=args.versions.image("qdrant"), args=node_args(host, hosts[0]), env=env,
            secret_env={"QDRANT__SERVICE__API_KEY": key}, volumes={name: STORAGE},
            memory=settings.resources.memory, ready_port=HTTP_PORT), parent=parent,
            depends_on=servers[:1]))  # the first node starts the cluster the others join
    urls = {h.name: f"http://{host_port(h.address, HTTP_PORT)}" for h in hosts}
    bucket = snapshots.bucket(args.storage)
    if bucket is not None:
        timer(name, args, parent, hosts[0], urls, bucket, key, servers)
    first = hosts[0].address
    return QdrantEndpoints(
        url=f"http://{host_port(first, HTTP_PORT)}", grpc_url=f"http://{host_port(first, GRPC_PORT)}", api_key=key,
        nodes=len(hosts), snapshot_schedule=settings.snapshot_schedule,
        snapshots=f"s3://{bucket}/{STORE}/" if bucket is not None else None,
        metrics=(MetricsEndpoint("qdrant", tuple(u.removeprefix("http://") for u in urls.values())),))


def timer(name: str, args: QdrantArgs, parent: pulumi.Resource, host, urls: dict[str, str], bucket: str,
          key: pulumi.Output[str], servers: list) -> None:
    fleet: VmFleet = args.substrate
    plain, secret = snapshots.uploader_env(args.storage)
    files = [
        fleet.put_file(f"{name}-{host.name}-snapshots-rclone-env", host, f"{DIRECTORY}/rclone.env",
                       pulumi.Output.secret(pulumi.Output.all(**secret).apply(lambda keys: env_file({**plain,
                                                                                                    **keys}))),
                       mode="0600", parent=parent),
        fleet.put_file(f"{name}-{host.name}-snapshots-qdrant-env", host, f"{DIRECTORY}/qdrant.env",
                       pulumi.Output.secret(key.apply(lambda k: env_file({"QDRANT_API_KEY": k}))), mode="0600",
                       parent=parent),
        fleet.put_file(f"{name}-{host.name}-snapshots-script", host, f"{DIRECTORY}/snapshot.sh", snapshot_job(
            urls, fleet.data_path("qdrant-snapshots", "spool"), args.versions.image("curl"),
            args.versions.image("rclone"), bucket, args.retention_days), mode="0750", parent=parent)]
    sudo = fleet.sudo(host)
    command.remote.Command(
        f"{name}-{host.name}-snapshots-timer", connection=fleet.connections[host.name], create=f"{sudo}bash -s",
        stdin=install_script(*units(args.settings.snapshot_schedule)),
        delete=f"{sudo}systemctl disable --now {UNIT}.timer && {sudo}rm -f /etc/systemd/system/{UNIT}.timer "
               f"/etc/systemd/system/{UNIT}.service && {sudo}systemctl daemon-reload",
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[*fleet.provisioned[host.name], *files, *servers],
                                    delete_before_replace=True))

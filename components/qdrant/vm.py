"""Qdrant on VMs: one node on each of the first `replicas` hosts with the role `qdrant` (host networking), in
distributed mode when there are several (the first host starts the Raft cluster, the others join it on port 6335).
The API key reaches the hosts only in a root-only env file.

Snapshots: a systemd timer on the first host (`scheduled.py`): the curl image snapshots every collection on every
node into a spool directory, then the rclone image uploads the run to the backups bucket and expires old copies;
`journalctl -u dataplatform-qdrant-copies` shows each run.
"""
from __future__ import annotations

import pulumi

from components.base import MetricsEndpoint
from components.qdrant import (GRPC_PORT, HTTP_PORT, P2P_PORT, STORAGE, STORE, QdrantArgs, QdrantEndpoints, api_key,
                               cluster_env, scheduled, snapshots)
from components.targets.vm import Container, VmFleet, host_port

def node_args(host, first) -> tuple[str, ...]:
    uri = f"http://{host_port(host.address, P2P_PORT)}"
    if host == first:
        return ("./entrypoint.sh", "--uri", uri)
    return ("./entrypoint.sh", "--bootstrap", f"http://{host_port(first.address, P2P_PORT)}", "--uri", uri)


def deploy(name: str, args: QdrantArgs, parent: pulumi.Resource) -> QdrantEndpoints:
    fleet: VmFleet = args.substrate
    settings = args.settings
    snapshots.check_schedule(settings.snapshot_schedule)
    hosts = fleet.place("qdrant", settings.replicas, "services.qdrant.replicas", f"{settings.replicas} nodes")
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
    copy = snapshots.copy(settings, args.storage, args.retention_days, urls, covers=(name,))
    if copy is not None:
        scheduled.vm_timer(fleet, hosts[0], f"{name}-snapshots", copy, args.versions.image("curl"),
                           args.versions.image("rclone"), {"QDRANT_API_KEY": key}, parent, servers)
    first = hosts[0].address
    return QdrantEndpoints(
        url=f"http://{host_port(first, HTTP_PORT)}", grpc_url=f"http://{host_port(first, GRPC_PORT)}", api_key=key,
        nodes=len(hosts), snapshot_schedule=settings.snapshot_schedule,
        snapshots=f"s3://{copy.bucket}/{STORE}/" if copy is not None else None,
        metrics=(MetricsEndpoint("qdrant", tuple(u.removeprefix("http://") for u in urls.values())),))

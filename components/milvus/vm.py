"""Milvus on VMs: etcd (listening on 127.0.0.1 only) and Milvus standalone on the first host with the role `milvus`,
host networking; the S3 keys and the root password reach the host only in a root-only env file. etcd is snapshotted
to the backups bucket by a systemd timer on the same host (`components/qdrant/scheduled.py`)."""
from __future__ import annotations

import pulumi

from components.base import MetricsEndpoint
from components.milvus import (DATA_DIR, ETCD_PORT, ETCD_STORE, METRICS_PORT, PORT, MilvusArgs, MilvusEndpoints,
                               etcd_copy, require_storage, root_password, settings_env, token)
from components.milvus.compose import ETCD_ENV
from components.qdrant import scheduled
from components.targets.vm import Container, VmFleet, host_port


def deploy(name: str, args: MilvusArgs, parent: pulumi.Resource) -> MilvusEndpoints:
    require_storage(args)
    fleet: VmFleet = args.substrate
    settings = args.settings
    host = fleet.hosts_with_role("milvus")[0]
    etcd_url = f"http://127.0.0.1:{ETCD_PORT}"
    etcd = fleet.run_service(f"{name}-etcd", host, Container(
        image=args.versions.image("etcd"), env=ETCD_ENV,
        args=("etcd", f"--advertise-client-urls={etcd_url}", f"--listen-client-urls={etcd_url}",
              "--listen-peer-urls=http://127.0.0.1:2380", "--data-dir=/etcd"),
        volumes={f"{name}-etcd": "/etcd"}, ready_port=ETCD_PORT), parent=parent)
    plain, secret = settings_env(f"127.0.0.1:{ETCD_PORT}", args.storage)
    password = root_password(name, parent)
    server = fleet.run_service(name, host, Container(
        image=args.versions.image("milvus"), args=("milvus", "run", "standalone"), env=plain,
        secret_env={**secret, "COMMON_SECURITY_DEFAULTROOTPASSWORD": password}, volumes={name: DATA_DIR},
        memory=settings.resources.memory, ready_port=PORT), parent=parent, depends_on=[etcd])
    copy = etcd_copy(args, etcd_url, covers=(f"{name}-etcd", name))
    if copy is not None:
        scheduled.vm_timer(fleet, host, f"{name}-etcd-backup", copy, args.versions.image("curl"),
                           args.versions.image("rclone"), {}, parent, [etcd, server])
    return MilvusEndpoints(uri=f"http://{host_port(host.address, PORT)}", token=token(password),
                           bucket=args.storage.buckets["warehouse"],
                           etcd_snapshots=f"s3://{copy.bucket}/{ETCD_STORE}/" if copy is not None else None,
                           metrics=(MetricsEndpoint("milvus", (host_port(host.address, METRICS_PORT),)),))

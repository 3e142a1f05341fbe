"""Milvus on compose: `milvus-etcd` (metadata, on a named volume), `milvus` (standalone, gRPC/REST on 19530 published
on the bind address; data in the warehouse bucket through the storage's S3 API) and the scheduled copy of etcd's
snapshots to the backups bucket (`milvus-etcd-backup`, `milvus-etcd-backup-upload`). The S3 keys and the root
password are project `${VARS}` (Pulumi secrets)."""
from __future__ import annotations

import pulumi

from components.base import MetricsEndpoint
from components.milvus import (DATA_DIR, ETCD_PORT, ETCD_STORE, METRICS_PORT, PORT, MilvusArgs, MilvusEndpoints,
                               etcd_copy, require_storage, root_password, settings_env, token)
from components.qdrant import scheduled

S3_VARIABLES = {"MINIO_ACCESS_KEY_ID": "S3_ACCESS_KEY_ID", "MINIO_SECRET_ACCESS_KEY": "S3_SECRET_ACCESS_KEY"}
ETCD_ENV = {"ETCD_AUTO_COMPACTION_MODE": "revision", "ETCD_AUTO_COMPACTION_RETENTION": "1000",
            "ETCD_QUOTA_BACKEND_BYTES": "4294967296", "ETCD_SNAPSHOT_COUNT": "50000"}


def etcd_args(advertise: str, data_dir: str) -> list[str]:
    return ["etcd", f"--advertise-client-urls={advertise}", f"--listen-client-urls=http://0.0.0.0:{ETCD_PORT}",
            f"--data-dir={data_dir}"]


def deploy(name: str, args: MilvusArgs, parent: pulumi.Resource) -> MilvusEndpoints:
    require_storage(args)
    project = args.substrate
    settings = args.settings
    etcd = f"{name}-etcd"
    plain, secret = settings_env(f"{etcd}:{ETCD_PORT}", args.storage)
    password = root_password(name, parent)
    environment = {**plain, **{k: project.secret(S3_VARIABLES[k], v) for k, v in secret.items()},
                   "COMMON_SECURITY_DEFAULTROOTPASSWORD": project.secret("MILVUS_ROOT_PASSWORD", password)}
    project.add_service(etcd, {
        "image": args.versions.image("etcd"), "restart": "unless-stopped", "hostname": etcd,
        "command": etcd_args(f"http://{etcd}:{ETCD_PORT}", "/etcd"), "environment": ETCD_ENV,
        "volumes": [f"{etcd}-data:/etcd"],
        "healthcheck": {"test": ["CMD", "etcdctl", "endpoint", "health"], "interval": "10s", "timeout": "5s",
                        "retries": 12},
    }, volumes=(f"{etcd}-data",))
    project.add_service(name, {
        "image": args.versions.image("milvus"), "restart": "unless-stopped", "hostname": name,
        "command": ["milvus", "run", "standalone"], "environment": environment,
        "volumes": [f"{name}-data:{DATA_DIR}"], "ports": [project.port(PORT, PORT)],
        "healthcheck": {"test": ["CMD", "curl", "-fsS", f"http://localhost:{METRICS_PORT}/healthz"],
                        "interval": "15s", "timeout": "10s", "retries": 8, "start_period": "90s"},
        "depends_on": {etcd: {"condition": "service_healthy"}},
        "deploy": project.deploy(settings.resources),
    }, volumes=(f"{name}-data",))
    copy = etcd_copy(args, f"http://{etcd}:{ETCD_PORT}", covers=(etcd, f"{etcd}-data", name, f"{name}-data"))
    if copy is not None:
        scheduled.compose_services(project, f"{etcd}-backup", copy, args.versions.image("curl"),
                                   args.versions.image("rclone"), {}, depends_on=etcd)
    return MilvusEndpoints(uri=f"http://{name}:{PORT}", token=token(password), bucket=args.storage.buckets["warehouse"],
                           etcd_snapshots=f"s3://{copy.bucket}/{ETCD_STORE}/" if copy is not None else None,
                           metrics=(MetricsEndpoint("milvus", (f"{name}:{METRICS_PORT}",)),))

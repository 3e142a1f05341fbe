"""Qdrant on compose: one node (`qdrant`, REST and gRPC published on the bind address) on a named volume, and the
scheduled snapshot copy (`qdrant-snapshots` takes them on `snapshot_schedule`, `qdrant-snapshots-upload` ships them
to the backups bucket; see `scheduled.py`). The API key and the S3 keys are project `${VARS}` (Pulumi secrets).
"""
from __future__ import annotations

import pulumi

from components.base import MetricsEndpoint
from components.qdrant import (GRPC_PORT, HTTP_PORT, STORAGE, STORE, QdrantArgs, QdrantEndpoints, api_key,
                               cluster_env, scheduled, snapshots)

# the image has bash (and curl only in its root variant): probe /readyz (no API key needed) over bash's /dev/tcp
READY = ("exec 3<>/dev/tcp/127.0.0.1/6333 && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3 && "
         "grep -q '200 OK' <&3")


def deploy(name: str, args: QdrantArgs, parent: pulumi.Resource) -> QdrantEndpoints:
    project = args.substrate
    settings = args.settings
    snapshots.check_schedule(settings.snapshot_schedule)
    if settings.replicas > 1:  # e.g. from a size preset: say so, do not fail
        pulumi.log.warn(f"services.qdrant.replicas: compose runs one Qdrant node, not {settings.replicas} (use the vm "
                        "or kubernetes target for distributed mode)")
    key = api_key(name, args, parent)
    data = f"{name}-data"
    project.add_service(name, {
        "image": args.versions.image("qdrant"), "restart": "unless-stopped", "hostname": name,
        "environment": {**cluster_env(1), "QDRANT__SERVICE__API_KEY": project.secret("QDRANT_API_KEY", key),
                        "QDRANT__STORAGE__SNAPSHOTS_PATH": f"{STORAGE}/snapshots"},
        "volumes": [f"{data}:{STORAGE}"],
        "ports": [project.port(HTTP_PORT, HTTP_PORT), project.port(GRPC_PORT, GRPC_PORT)],
        "healthcheck": {"test": ["CMD", "bash", "-c", READY], "interval": "5s", "timeout": "5s", "retries": 24},
        "deploy": project.deploy(settings.resources),
    }, volumes=(data,))
    copy = snapshots.copy(settings, args.storage, args.retention_days, {name: f"http://{name}:{HTTP_PORT}"},
                          covers=(name, data))
    if copy is not None:
        scheduled.compose_services(project, f"{name}-snapshots", copy, args.versions.image("curl"),
                                   args.versions.image("rclone"), {"QDRANT_API_KEY": key}, depends_on=name)
    return QdrantEndpoints(
        url=f"http://{name}:{HTTP_PORT}", grpc_url=f"http://{name}:{GRPC_PORT}", api_key=key, nodes=1,
        snapshot_schedule=settings.snapshot_schedule,
        snapshots=f"s3://{copy.bucket}/{STORE}/" if copy is not None else None,
        metrics=(MetricsEndpoint("qdrant", (f"{name}:{HTTP_PORT}",)),))

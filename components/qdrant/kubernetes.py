"""Qdrant on Kubernetes: a StatefulSet of `replicas` nodes, each with its own volume.

With more than one node Qdrant runs in distributed mode: pod 0 starts the Raft cluster and the others join it
through pod 0's stable name on the headless Service (peer port 6335); collections then choose their shard and
replication factors. Pods run as a non-root user on a read-only root filesystem (storage on the volume, snapshots
and the init marker on emptyDirs). The API key comes from a Secret built from a Pulumi secret.

Snapshots: a CronJob on `snapshot_schedule` (`scheduled.py`) whose init container snapshots every collection on
every node into an emptyDir, then rclone uploads them to the backups bucket and expires old copies. `qdrant()` is
what the aws target reuses (rclone with the pod's IAM role instead of keys).
"""
from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.base import MetricsEndpoint
from components.qdrant import (GRPC_PORT, HTTP_PORT, P2P_PORT, STORAGE, STORE, QdrantArgs, QdrantEndpoints,
                               api_key, cluster_env, scheduled, snapshots)
from components.targets.kubernetes import PART_OF

UID = 1000
SNAPSHOTS = "/qdrant/snapshots"


def start_script(name: str, host: str) -> str:
    """Pod 0 starts the cluster, the others join it (the peer URI is the pod's stable DNS name)."""
    return "\n".join([
        "set -eu",
        f'self="http://${{HOSTNAME}}.{host}:{P2P_PORT}"',
        'if [ "${HOSTNAME##*-}" = "0" ]; then',
        '  exec ./entrypoint.sh --uri "$self"',
        "fi",
        f'exec ./entrypoint.sh --bootstrap "http://{name}-0.{host}:{P2P_PORT}" --uri "$self"',
    ])


def deploy(name: str, args: QdrantArgs, parent: pulumi.Resource) -> QdrantEndpoints:
    return qdrant(name, args, parent)


def qdrant(name: str, args: QdrantArgs, parent: pulumi.Resource, *,
           service_account_annotations: dict[str, pulumi.Input[str]] | None = None) -> QdrantEndpoints:
    cluster = args.substrate
    settings = args.settings
    snapshots.check_schedule(settings.snapshot_schedule)
    key = api_key(name, args, parent)
    secret = k8s.core.v1.Secret(f"{name}-api-key-secret", metadata=cluster.metadata(f"{name}-api-key", name, "server"),
                                type="Opaque", string_data={"api-key": key},
                                opts=cluster.opts(parent))
    headless = f"{name}-headless"
    selector = cluster.selector(name, "server")
    ports = {"http": HTTP_PORT, "grpc": GRPC_PORT, "p2p": P2P_PORT}
    k8s.core.v1.Service(f"{name}-headless", metadata=cluster.metadata(headless, name, "server"), spec={
        "clusterIP": "None", "publishNotReadyAddresses": True, "selector": selector,
        "ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports.items()]}, opts=cluster.opts(parent))
    k8s.core.v1.Service(f"{name}-service", metadata=cluster.metadata(name, name, "server"), spec={
        "selector": selector, "ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports.items()
                                        if n != "p2p"]}, opts=cluster.opts(parent))
    nodes = settings.replicas
    env = {**cluster_env(nodes), "QDRANT__STORAGE__STORAGE_PATH": STORAGE,
           "QDRANT__STORAGE__SNAPSHOTS_PATH": SNAPSHOTS, "QDRANT_INIT_FILE_PATH": "/qdrant/init/.qdrant-initialized"}
    command = ["/bin/bash", "-c", start_script(name, cluster.host(headless))] if nodes > 1 else None
    container = cluster.container(
        "qdrant", args.versions.image("qdrant"), settings.resources, command=command,
        env=[{"name": k, "value": v} for k, v in env.items()] + [{"name": "QDRANT__SERVICE__API_KEY", "valueFrom": {
            "secretKeyRef": {"name": f"{name}-api-key", "key": "api-key"}}}],
        ports=[{"name": n, "containerPort": p} for n, p in ports.items()],
        mounts=[{"name": "storage", "mountPath": STORAGE}, {"name": "snapshots", "mountPath": SNAPSHOTS},
                {"name": "init", "mountPath": "/qdrant/init"}],
        startupProbe=cluster.http_probe("/readyz", HTTP_PORT, period=5, failures=60),
        readinessProbe=cluster.http_probe("/readyz", HTTP_PORT, period=5),
        livenessProbe=cluster.http_probe("/livez", HTTP_PORT, period=15, failures=4))
    statefulset = k8s.apps.v1.StatefulSet(name, metadata=cluster.metadata(name, name, "server"), spec={
        "serviceName": headless, "replicas": nodes, "podManagementPolicy": "OrderedReady",
        "selector": {"matchLabels": selector},
        "template": {"metadata": {"labels": cluster.labels(name, "server")},
                     "spec": cluster.pod_spec([container], UID, volumes=[
                         {"name": "snapshots", "emptyDir": {"sizeLimit": f"{settings.storage_gb}Gi"}},
                         {"name": "init", "emptyDir": {"sizeLimit": "1Mi"}}],
                         topologySpreadConstraints=cluster.spread(selector), terminationGracePeriodSeconds=60)},
        "volumeClaimTemplates": [cluster.volume_claim("storage", settings.storage_gb)]},
        opts=cluster.opts(parent, depends_on=[secret]))
    if nodes > 1:
        cluster.disruption_budget(name, name, "server", parent)
    cluster.expose(name, selector, (HTTP_PORT, GRPC_PORT), parent)

    urls = {f"{name}-{i}": f"http://{name}-{i}.{cluster.host(headless)}:{HTTP_PORT}" for i in range(nodes)}
    copy = snapshots.copy(settings, args.storage, args.retention_days, urls, covers=(name,))
    if copy is not None:
        scheduled.cronjob(cluster, f"{name}-snapshots", name, copy, args.versions.image("curl"),
                          args.versions.image("rclone"), parent, size_gb=settings.storage_gb,
                          take_env=[{"name": "QDRANT_API_KEY", "valueFrom": {"secretKeyRef": {
                              "name": f"{name}-api-key", "key": "api-key"}}}],
                          depends_on=[secret, statefulset], service_account_annotations=service_account_annotations)
    return QdrantEndpoints(
        url=f"http://{cluster.host(name)}:{HTTP_PORT}", grpc_url=f"http://{cluster.host(name)}:{GRPC_PORT}",
        api_key=key, nodes=nodes, snapshot_schedule=settings.snapshot_schedule,
        snapshots=pulumi.Output.concat("s3://", copy.bucket, f"/{STORE}/") if copy is not None else None,
        metrics=(MetricsEndpoint("qdrant", tuple(u.removeprefix("http://") for u in urls.values()),
                                 selector={"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": PART_OF},
                                 port="http"),))

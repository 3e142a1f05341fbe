"""Object storage on Kubernetes: SeaweedFS from plain manifests (validated strictly by the tests, which a chart's
rendered objects would not be).

Layout: masters hold the cluster topology (one, or a three-node Raft quorum once `replicas` >= 3); `replicas`
volume servers hold the data (every object stored twice, on two servers, once there are two or more); one filer
keeps the bucket and object metadata on its own volume and serves the S3 API with static identities read from a
Secret built from Pulumi-generated credentials. Several filers would need a shared filer store, so the S3 gateway
stays one replica; losing it interrupts the API, never the data. A Job creates the buckets (idempotent).
"""
from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.base import MetricsEndpoint
from components.object_storage import ObjectStorageArgs, StorageEndpoints
from components.object_storage.compose import METRICS_PORT, credentials, identities_json

UID = 1000  # the image runs as root by default; any non-root uid works (the data dirs are volumes, group-owned)
MASTER_PORT, VOLUME_PORT, FILER_PORT, S3_PORT = 9333, 8080, 8888, 8333
GRPC_OFFSET = 10000  # SeaweedFS serves gRPC on the HTTP port + 10000
IDENTITIES_DIR = "/etc/seaweedfs/s3"


def volume_size_limit_mb(storage_gb: int) -> int:
    """Size of one SeaweedFS volume: ~100 volumes per server (each bucket needs several writable ones), 1-30 GB."""
    return min(30_000, max(1_000, storage_gb * 1024 // 100))


def bucket_script(master: str, filer: str, buckets: tuple[str, ...]) -> str:
    """Create the buckets that are missing; safe to run again."""
    shell = f"weed shell -master={master} -filer={filer}"
    return "\n".join([
        "set -eu",
        f"until echo 's3.bucket.list' | {shell} > /tmp/buckets; do echo 'waiting for the filer'; sleep 3; done",
        f"for bucket in {' '.join(buckets)}; do",
        '  if awk \'{print $1}\' /tmp/buckets | grep -qxF "${bucket}"; then',
        '    echo "bucket ${bucket} exists"',
        "  else",
        f'    echo "s3.bucket.create -name ${{bucket}}" | {shell}',
        '    echo "bucket ${bucket} created"',
        "  fi",
        "done",
    ])


def _server(name: str, component: str, args: ObjectStorageArgs, parent: pulumi.Resource, *, replicas: int,
            script: str, ports: dict[str, int], probes: dict, data_gb: int, mounts: tuple = (), volumes: tuple = (),
            depends_on: tuple = ()) -> k8s.apps.v1.StatefulSet:
    """One SeaweedFS role as a StatefulSet behind a headless Service (stable pod DNS names for -ip and -peers)."""
    cluster = args.substrate
    service = f"{name}-{component}"
    selector = cluster.selector(name, component)
    headless = k8s.core.v1.Service(f"{service}-service", metadata=cluster.metadata(service, name, component), spec={
        "clusterIP": "None", "publishNotReadyAddresses": True, "selector": selector,
        "ports": [{"name": port_name, "port": port, "targetPort": port} for port_name, port in ports.items()]},
        opts=cluster.opts(parent))
    container = cluster.container(
        "seaweedfs", args.versions.image("seaweedfs"), args.settings.resources,
        command=["/bin/sh", "-ec", script],
        env=[{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
             {"name": "HOME", "value": "/tmp"}],
        ports=[{"name": port_name, "containerPort": port} for port_name, port in ports.items()],
        mounts=[{"name": "data", "mountPath": "/data"}, *mounts], **probes)
    statefulset = k8s.apps.v1.StatefulSet(service, metadata=cluster.metadata(service, name, component), spec={
        "serviceName": service, "replicas": replicas, "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": selector},
        "template": {"metadata": {"labels": cluster.labels(name, component)},
                     "spec": cluster.pod_spec([container], UID, volumes=volumes,
                                              topologySpreadConstraints=cluster.spread(selector),
                                              terminationGracePeriodSeconds=60)},
        "volumeClaimTemplates": [cluster.volume_claim("data", data_gb)]},
        opts=cluster.opts(parent, depends_on=[headless, *depends_on]))
    if replicas > 1:
        cluster.disruption_budget(service, name, component, parent)
    return statefulset


def deploy(name: str, args: ObjectStorageArgs, parent: pulumi.Resource) -> StorageEndpoints:
    cluster = args.substrate
    settings = args.settings
    access_key, secret_key = credentials(name, parent)
    identities = k8s.core.v1.Secret(
        f"{name}-s3-identities", metadata=cluster.metadata(f"{name}-s3-identities", name, "filer"), type="Opaque",
        string_data={"s3.json": pulumi.Output.all(access_key, secret_key).apply(lambda keys: identities_json(*keys))},
        opts=cluster.opts(parent))

    masters = 3 if settings.replicas >= 3 else 1
    peers = ",".join(f"{name}-master-{i}.{cluster.host(f'{name}-master')}:{MASTER_PORT}" for i in range(masters))
    replication = "001" if settings.replicas >= 2 else "000"  # 001: one extra copy on another server

    def own_address(component: str) -> str:
        return (f"-ip=${{POD_NAME}}.{cluster.host(f'{name}-{component}')} -ip.bind=0.0.0.0 "
                f"-metricsPort={METRICS_PORT}")

    def pods(component: str, count: int) -> list[str]:
        return [f"{name}-{component}-{i}.{cluster.host(f'{name}-{component}')}:{METRICS_PORT}" for i in range(count)]

    master = _server(name, "master", args, parent, replicas=masters, data_gb=2, ports={
        "http": MASTER_PORT, "grpc": MASTER_PORT + GRPC_OFFSET, "metrics": METRICS_PORT},
        script=f"exec /usr/bin/weed -logtostderr=true master -port={MASTER_PORT} -mdir=/data {own_address('master')} "
               f"-peers={peers} -defaultReplication={replication} "
               f"-volumeSizeLimitMB={volume_size_limit_mb(settings.storage_gb)}",
        probes={"readinessProbe": cluster.http_probe("/cluster/status", MASTER_PORT),
                "livenessProbe": cluster.http_probe("/cluster/status", MASTER_PORT, period=30, failures=4,
                                                    initial_delay=20)})
    volume = _server(name, "volume", args, parent, replicas=settings.replicas, data_gb=settings.storage_gb, ports={
        "http": VOLUME_PORT, "grpc": VOLUME_PORT + GRPC_OFFSET, "metrics": METRICS_PORT},
        script=f"exec /usr/bin/weed -logtostderr=true volume -port={VOLUME_PORT} -dir=/data -max=0 "
               f"{own_address('volume')} -master={peers} -minFreeSpacePercent=1",
        probes={"readinessProbe": cluster.http_probe("/healthz", VOLUME_PORT, period=15),
                "livenessProbe": cluster.http_probe("/healthz", VOLUME_PORT, period=60, failures=4,
                                                    initial_delay=20)})
    filer = _server(name, "filer", args, parent, replicas=1, data_gb=max(5, settings.storage_gb // 20), ports={
        "http": FILER_PORT, "grpc": FILER_PORT + GRPC_OFFSET, "s3": S3_PORT, "metrics": METRICS_PORT},
        script=f"mkdir -p /data/filerldb2\nexec /usr/bin/weed -logtostderr=true filer -port={FILER_PORT} "
               f"{own_address('filer')} -master={peers} -defaultReplicaPlacement={replication} "
               f"-s3 -s3.port={S3_PORT} -s3.config={IDENTITIES_DIR}/s3.json",
        probes={"readinessProbe": cluster.http_probe("/status", S3_PORT),
                "livenessProbe": cluster.http_probe("/", FILER_PORT, period=30, failures=5, initial_delay=20)},
        mounts=({"name": "identities", "mountPath": IDENTITIES_DIR, "readOnly": True},),
        volumes=({"name": "identities", "secret": {"secretName": f"{name}-s3-identities"}},),
        depends_on=(identities,))
    filer_selector = cluster.selector(name, "filer")
    s3 = k8s.core.v1.Service(f"{name}-s3", metadata=cluster.metadata(name, name, "s3"), spec={
        "selector": filer_selector, "ports": [{"name": "s3", "port": S3_PORT, "targetPort": S3_PORT}]},
        opts=cluster.opts(parent))
    cluster.expose(name, filer_selector, (S3_PORT,), parent)

    job = cluster.container(
        "buckets", args.versions.image("seaweedfs"), settings.resources, env=[{"name": "HOME", "value": "/tmp"}],
        command=["/bin/sh", "-ec", bucket_script(f"{cluster.host(f'{name}-master')}:{MASTER_PORT}",
                                                 f"{cluster.host(f'{name}-filer')}:{FILER_PORT}", settings.buckets)])
    k8s.batch.v1.Job(f"{name}-buckets", metadata=cluster.metadata(f"{name}-buckets", name, "buckets"), spec={
        "backoffLimit": 6, "activeDeadlineSeconds": 900,
        "template": {"metadata": {"labels": cluster.labels(name, "buckets")},
                     "spec": cluster.pod_spec([job], UID, restartPolicy="OnFailure")}},
        opts=cluster.opts(parent, depends_on=[master, volume, filer, s3], delete_before_replace=True))

    return StorageEndpoints(endpoint=f"http://{cluster.host(name)}:{S3_PORT}", region="us-east-1",
                            buckets={b: b for b in settings.buckets}, access_key_id=access_key,
                            secret_access_key=secret_key, path_style=True,
                            metrics=(MetricsEndpoint(
                                "object-storage", tuple(pods("master", masters) + pods("volume", settings.replicas)
                                                        + pods("filer", 1)),
                                selector={"app.kubernetes.io/name": name,
                                          "app.kubernetes.io/part-of": "dataplatform"}, port="metrics"),),
                            stateful=tuple(f"{name}-{component}" for component in ("master", "volume", "filer")))

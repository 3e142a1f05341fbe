"""Iceberg catalog on Kubernetes: PostgreSQL (the official image, one StatefulSet replica on its own volume, dumped
daily into the `backups` bucket by a CronJob), then Lakekeeper in the same order as on compose: a `migrate` Job, the
`serve` Deployment (probes on /health), and a bootstrap Job that accepts the first-run bootstrap and creates the
warehouse (idempotent: 4xx on a bootstrapped server, 409 for an existing warehouse).

`lakekeeper()` is the part the aws target reuses (`aws_flavor: rest`) with RDS instead of the StatefulSet and the
pod's IAM role (IRSA) instead of S3 keys. Credentials reach the pods only through Secrets built from Pulumi
secrets; the warehouse request, which carries the S3 keys, is a Secret file the bootstrap Job posts.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import quote

import pulumi
import pulumi_kubernetes as k8s

from components.base import MetricsEndpoint
from components.catalog import CatalogArgs, CatalogEndpoints
from components.catalog import compose
from components.catalog.compose import METRICS_PORT, generated_secret
from stacks.config import Resources

PORT = 8181
DB_PORT = 5432
DB_NAME = DB_USER = "lakekeeper"
LAKEKEEPER_UID = 65532  # distroless `nonroot`
POSTGRES_UID = 999  # `postgres` in the official Debian-based image
CURL_UID = 100  # `curl_user` in curlimages/curl
JOB_RESOURCES = Resources(cpu="100m", memory="128Mi")
BOOTSTRAP_DIR = "/etc/catalog-bootstrap"


@dataclass(frozen=True)
class Database:
    """Where Lakekeeper keeps its metadata: a PostgreSQL URL (secret) and what must be ready before `migrate`."""
    url: pulumi.Output[str]
    ready: list[pulumi.Resource] = field(default_factory=list)


def database_url(host: pulumi.Input[str], port: pulumi.Input[int], password: pulumi.Input[str],
                 sslmode: str) -> pulumi.Output[str]:
    return pulumi.Output.secret(pulumi.Output.all(host, port, password).apply(
        lambda v: f"postgresql://{DB_USER}:{quote(str(v[2]), safe='')}@{v[0]}:{v[1]}/{DB_NAME}?sslmode={sslmode}"))


def db_password(name: str, args: CatalogArgs, parent: pulumi.Resource) -> pulumi.Output[str]:
    secret = args.settings.db_password
    if secret is not None and secret.value:
        return pulumi.Output.secret(secret.value)
    return generated_secret(f"{name}-db-password", parent)


def bootstrap_script(base: str) -> str:
    """Wait for the server, then compose's idempotent bootstrap with the request from the mounted Secret file."""
    return "\n".join([
        "set -eu",
        f"until curl -fsS -o /dev/null {base}/health; do echo 'waiting for the catalog'; sleep 3; done",
        compose.bootstrap_script(base, f"@{BOOTSTRAP_DIR}/warehouse.json", dollar="$"),
    ])


def postgres(name: str, args: CatalogArgs, parent: pulumi.Resource, password: pulumi.Output[str]) -> Database:
    """The official postgres image as a one-replica StatefulSet (PGDATA in a subdirectory of its volume)."""
    cluster = args.substrate
    db = f"{name}-db"
    secret = k8s.core.v1.Secret(f"{db}-credentials", metadata=cluster.metadata(f"{db}-credentials", name, "db"),
                                type="Opaque", string_data={"POSTGRES_PASSWORD": password},
                                opts=cluster.opts(parent))
    selector = cluster.selector(name, "db")
    service = k8s.core.v1.Service(f"{db}-service", metadata=cluster.metadata(db, name, "db"), spec={
        "selector": selector, "ports": [{"name": "postgres", "port": DB_PORT, "targetPort": DB_PORT}]},
        opts=cluster.opts(parent))
    ready = ["pg_isready", "-h", "127.0.0.1", "-U", DB_USER, "-d", DB_NAME]
    container = cluster.container(
        "postgres", args.versions.image("postgres"), args.settings.resources,
        env=[{"name": "POSTGRES_USER", "value": DB_USER}, {"name": "POSTGRES_DB", "value": DB_NAME},
             {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"}],
        envFrom=[{"secretRef": {"name": f"{db}-credentials"}}],
        ports=[{"name": "postgres", "containerPort": DB_PORT}],
        readinessProbe=cluster.exec_probe(ready, period=5), livenessProbe=cluster.exec_probe(ready, period=15,
                                                                                             failures=6),
        mounts=[{"name": "data", "mountPath": "/var/lib/postgresql/data"},
                {"name": "run", "mountPath": "/var/run/postgresql"}])
    statefulset = k8s.apps.v1.StatefulSet(db, metadata=cluster.metadata(db, name, "db"), spec={
        "serviceName": db, "replicas": 1, "selector": {"matchLabels": selector},
        "template": {"metadata": {"labels": cluster.labels(name, "db")},
                     "spec": cluster.pod_spec([container], POSTGRES_UID, volumes=[
                         {"name": "run", "emptyDir": {"sizeLimit": "16Mi"}}], terminationGracePeriodSeconds=60)},
        "volumeClaimTemplates": [cluster.volume_claim("data", args.settings.db_storage_gb)]},
        opts=cluster.opts(parent, depends_on=[secret, service]))
    return Database(url=database_url(cluster.host(db), DB_PORT, password, "disable"), ready=[statefulset])


def lakekeeper(name: str, args: CatalogArgs, parent: pulumi.Resource, database: Database,
               warehouse: pulumi.Input[dict], *, env: dict[str, str] | None = None,
               service_account_annotations: dict[str, pulumi.Input[str]] | None = None) -> str:
    """migrate -> serve -> bootstrap on `database`; returns the catalog's base URL inside the cluster (its
    metrics: `metrics_endpoint()`)."""
    cluster = args.substrate
    settings = args.settings
    image = args.versions.image("lakekeeper")
    encryption_key = generated_secret(f"{name}-encryption-key", parent, length=48)
    config = k8s.core.v1.Secret(f"{name}-config", metadata=cluster.metadata(f"{name}-config", name, "server"),
                                type="Opaque", string_data={
                                    "LAKEKEEPER__PG_DATABASE_URL_WRITE": database.url,
                                    "LAKEKEEPER__PG_DATABASE_URL_READ": database.url,
                                    "LAKEKEEPER__PG_ENCRYPTION_KEY": encryption_key},
                                opts=cluster.opts(parent))
    service_account = None
    if service_account_annotations:
        service_account = name
        k8s.core.v1.ServiceAccount(f"{name}-service-account", metadata=cluster.metadata(
            name, name, "server", service_account_annotations), automount_service_account_token=False,
            opts=cluster.opts(parent))
    plain_env = [{"name": key, "value": value} for key, value in (env or {}).items()]
    env_from = [{"secretRef": {"name": f"{name}-config"}}]

    migrate = cluster.container("migrate", image, JOB_RESOURCES, args=["migrate"], env=plain_env or None,
                                envFrom=env_from)
    migrate_job = k8s.batch.v1.Job(f"{name}-migrate", metadata=cluster.metadata(f"{name}-migrate", name, "migrate"),
                                   spec={"backoffLimit": 10, "activeDeadlineSeconds": 900, "template": {
                                       "metadata": {"labels": cluster.labels(name, "migrate")},
                                       "spec": cluster.pod_spec([migrate], LAKEKEEPER_UID, restartPolicy="OnFailure",
                                                                service_account=service_account)}},
                                   opts=cluster.opts(parent, depends_on=[config, *database.ready],
                                                     delete_before_replace=True))

    selector = cluster.selector(name, "server")
    server = cluster.container(
        "lakekeeper", image, settings.resources, args=["serve"], env=plain_env or None, envFrom=env_from,
        ports=[{"name": "http", "containerPort": PORT}, {"name": "metrics", "containerPort": METRICS_PORT}],
        readinessProbe=cluster.http_probe("/health", PORT, period=5),
        livenessProbe=cluster.http_probe("/health", PORT, period=15, failures=4, initial_delay=10))
    deployment = k8s.apps.v1.Deployment(f"{name}-server", metadata=cluster.metadata(name, name, "server"), spec={
        "replicas": settings.replicas, "selector": {"matchLabels": selector},
        "template": {"metadata": {"labels": cluster.labels(name, "server")},
                     "spec": cluster.pod_spec([server], LAKEKEEPER_UID, service_account=service_account,
                                              topologySpreadConstraints=cluster.spread(selector))}},
        opts=cluster.opts(parent, depends_on=[migrate_job]))
    k8s.core.v1.Service(f"{name}-service", metadata=cluster.metadata(name, name, "server"), spec={
        "selector": selector, "ports": [{"name": "http", "port": PORT, "targetPort": PORT},
                                        {"name": "metrics", "port": METRICS_PORT, "targetPort": METRICS_PORT}]},
        opts=cluster.opts(parent))
    if settings.replicas > 1:
        cluster.disruption_budget(name, name, "server", parent)
    cluster.expose(name, selector, (PORT,), parent)

    base = f"http://{cluster.host(name)}:{PORT}"
    request = k8s.core.v1.Secret(
        f"{name}-bootstrap", metadata=cluster.metadata(f"{name}-bootstrap", name, "bootstrap"), type="Opaque",
        string_data={"warehouse.json": pulumi.Output.secret(pulumi.Output.from_input(warehouse).apply(json.dumps))},
        opts=cluster.opts(parent))
    bootstrap = cluster.container("bootstrap", args.versions.image("curl"), JOB_RESOURCES,
                                  command=["/bin/sh", "-ec", bootstrap_script(base)],
                                  mounts=[{"name": "request", "mountPath": BOOTSTRAP_DIR, "readOnly": True}])
    k8s.batch.v1.Job(f"{name}-bootstrap", metadata=cluster.metadata(f"{name}-bootstrap", name, "bootstrap"), spec={
        "backoffLimit": 6, "activeDeadlineSeconds": 900, "template": {
            "metadata": {"labels": cluster.labels(name, "bootstrap")},
            "spec": cluster.pod_spec([bootstrap], CURL_UID, restartPolicy="OnFailure", volumes=[
                {"name": "request", "secret": {"secretName": f"{name}-bootstrap"}}])}},
        opts=cluster.opts(parent, depends_on=[deployment, request], delete_before_replace=True))
    return base


def metrics_endpoint(name: str, cluster) -> MetricsEndpoint:
    """Lakekeeper's Prometheus endpoint, through the catalog Service's `metrics` port."""
    return MetricsEndpoint("catalog", (f"{cluster.host(name)}:{METRICS_PORT}",),
                           selector=cluster.selector(name, "server"), port="metrics")


def s3_compat_warehouse(args: CatalogArgs) -> pulumi.Output[dict]:
    """The management API body for a warehouse on the platform's S3-compatible storage (static keys)."""
    storage = args.storage
    return pulumi.Output.all(storage.access_key_id, storage.secret_access_key).apply(lambda keys: {
        "warehouse-name": args.settings.warehouse,
        "storage-profile": {"type": "s3", "bucket": storage.buckets["warehouse"],
                            "key-prefix": args.settings.warehouse, "endpoint": storage.endpoint,
                            "region": storage.region, "path-style-access": True, "flavor": "s3-compat",
                            "sts-enabled": False},
        "storage-credential": {"type": "s3", "credential-type": "access-key", "aws-access-key-id": keys[0],
                               "aws-secret-access-key": keys[1]},
    })


def deploy(name: str, args: CatalogArgs, parent: pulumi.Resource) -> CatalogEndpoints:
    settings = args.settings
    storage = args.storage
    database = postgres(name, args, parent, db_password(name, args, parent))
    base = lakekeeper(name, args, parent, database, s3_compat_warehouse(args))
    uri = f"{base}/catalog"
    properties = pulumi.Output.all(storage.access_key_id, storage.secret_access_key).apply(
        lambda keys: {"type": "rest", "uri": uri, "warehouse": settings.warehouse,
                      "s3.endpoint": storage.endpoint, "s3.region": storage.region,
                      "s3.path-style-access": "true", "s3.access-key-id": keys[0], "s3.secret-access-key": keys[1]})
    return CatalogEndpoints(type="rest", uri=uri, warehouse=settings.warehouse, properties=properties,
                            namespaces=settings.namespaces, metrics=(metrics_endpoint(name, args.substrate),))

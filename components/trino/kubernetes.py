"""Trino on Kubernetes: a coordinator Deployment (one replica) and a worker Deployment (`workers` replicas) from
plain manifests, so every object is validated strictly and checked by the policy pack (a chart's rendered objects
would be neither).

/etc/trino is a projected volume: the plain files from a ConfigMap, the password hashes and the TLS keystore from a
Secret; the S3 keys and the shared secret of node-to-node traffic come from a Secret as environment variables that
the files reference as `${ENV:...}`. Pods restart when a file changes (a checksum annotation). The coordinator's
Service exposes HTTPS (8443, clients) and HTTP (8080, internal); `kubernetes.allowed_ingress_cidrs` may reach HTTPS
only. `trino()` is what the aws target reuses with the Glue catalog and an IAM role instead of keys.
"""
from __future__ import annotations

import hashlib
import json

import pulumi
import pulumi_kubernetes as k8s

from components.base import MetricsEndpoint
from components.catalog.compose import generated_secret
from components.targets.kubernetes import PART_OF
from components.trino import HTTP_PORT, HTTPS_PORT, TrinoArgs, TrinoEndpoints, access, conf, require, tls

UID = 1000  # `trino` in the trinodb/trino image
AUTHENTICATOR = "password-authenticator.properties"


def _key(path: str) -> str:
    """A ConfigMap/Secret key for a file path (keys cannot hold `/`)."""
    return path.replace("/", "_")


def _checksum(files: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]


def catalog_properties(args: TrinoArgs) -> str:
    catalog, storage = args.catalog, args.storage
    return conf.rest_catalog(catalog.uri, catalog.warehouse, s3_endpoint=storage.endpoint, region=storage.region,
                             path_style=storage.path_style, static_keys=storage.access_key_id is not None)


def deploy(name: str, args: TrinoArgs, parent: pulumi.Resource) -> TrinoEndpoints:
    require(args)
    storage = args.storage
    secret_env = {}
    if storage.access_key_id is not None:
        secret_env = {conf.S3_KEY_ENV: storage.access_key_id, conf.S3_SECRET_ENV: storage.secret_access_key}
    return trino(name, args, parent, catalog_properties(args), secret_env=secret_env)


def trino(name: str, args: TrinoArgs, parent: pulumi.Resource, catalog: str, *,
          secret_env: dict[str, pulumi.Input[str]], env: dict[str, str] | None = None,
          service_account_annotations: dict[str, pulumi.Input[str]] | None = None) -> TrinoEndpoints:
    cluster = args.substrate
    settings = args.settings
    policy = access.load_policy(args.access_policy)
    host = cluster.host(name)
    coordinator_files, worker_files = conf.files(settings, args.environment, f"http://{host}:{conf.HTTP_PORT}",
                                                 catalog, policy)
    generated = access.passwords(name, policy, parent)
    server = tls.server_tls(name, [host, name, f"{name}.{cluster.namespace}", f"{host}.cluster.local"], parent)

    def config_map(role: str, files: dict[str, str]) -> k8s.core.v1.ConfigMap:
        return k8s.core.v1.ConfigMap(f"{name}-{role}-config", metadata=cluster.metadata(
            f"{name}-{role}", name, role), data={_key(p): c for p, c in files.items()}, opts=cluster.opts(parent))

    # the authenticator's settings go with the password hashes, in the Secret
    secret_files = {"password.db": access.password_db(generated), "tls/server.pem": server.pem,
                    AUTHENTICATOR: coordinator_files.pop(AUTHENTICATOR)}
    maps = [config_map("coordinator", coordinator_files), config_map("worker", worker_files)]
    keystore = k8s.core.v1.Secret(f"{name}-keystore", metadata=cluster.metadata(f"{name}-keystore", name,
                                                                                "coordinator"),
                                  type="Opaque", string_data={_key(p): c for p, c in secret_files.items()},
                                  opts=cluster.opts(parent))
    environment = k8s.core.v1.Secret(f"{name}-env", metadata=cluster.metadata(f"{name}-env", name, "server"),
                                     type="Opaque", string_data={
                                         conf.SHARED_SECRET_ENV: generated_secret(f"{name}-shared-secret", parent,
                                                                                  length=48), **secret_env},
                                     opts=cluster.opts(parent))
    service_account = None
    if service_account_annotations:
        service_account = name
        k8s.core.v1.ServiceAccount(f"{name}-service-account", metadata=cluster.metadata(
            name, name, "server", service_account_annotations), automount_service_account_token=False,
            opts=cluster.opts(parent))

    def deployment(role: str, replicas: int, resources, files: dict[str, str], coordinator: bool):
        sources = [{"configMap": {"name": f"{name}-{role}",
                                  "items": [{"key": _key(p), "path": p} for p in sorted(files)]}}]
        if coordinator:
            sources.append({"secret": {"name": f"{name}-keystore",
                                       "items": [{"key": _key(p), "path": p} for p in sorted(secret_files)]}})
        ports = [{"name": "http", "containerPort": HTTP_PORT}]
        if coordinator:
            ports.append({"name": "https", "containerPort": HTTPS_PORT})
        container = cluster.container(
            "trino", args.versions.image("trino"), resources,
            env=[{"name": k, "value": v} for k, v in (env or {}).items()] or None,
            envFrom=[{"secretRef": {"name": f"{name}-env"}}], ports=ports,
            mounts=[{"name": "etc", "mountPath": conf.ETC, "readOnly": True},
                    {"name": "data", "mountPath": conf.DATA_DIR}],
            startupProbe=cluster.http_probe("/v1/info", HTTP_PORT, period=10, failures=30, initial_delay=10),
            readinessProbe=cluster.http_probe("/v1/info", HTTP_PORT, period=10),
            livenessProbe=cluster.http_probe("/v1/info", HTTP_PORT, period=20, failures=4))
        selector = cluster.selector(name, role)
        return k8s.apps.v1.Deployment(f"{name}-{role}", metadata=cluster.metadata(
            f"{name}-{role}", name, role), spec={
            "replicas": replicas, "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": cluster.labels(name, role),
                                      "annotations": {"checksum/config": _checksum(files)}},
                         "spec": cluster.pod_spec([container], UID, service_account=service_account, volumes=[
                             {"name": "etc", "projected": {"sources": sources}},
                             {"name": "data", "emptyDir": {"sizeLimit": "10Gi"}}],
                             terminationGracePeriodSeconds=120,
                             topologySpreadConstraints=cluster.spread(selector) if replicas > 1 else None)}},
            opts=cluster.opts(parent, depends_on=[*maps, keystore, environment]))

    deployment("coordinator", 1, settings.resources, coordinator_files, True)
    k8s.core.v1.Service(f"{name}-service", metadata=cluster.metadata(name, name, "coordinator"), spec={
        "selector": cluster.selector(name, "coordinator"),
        "ports": [{"name": "https", "port": HTTPS_PORT, "targetPort": HTTPS_PORT},
                  {"name": "http", "port": HTTP_PORT, "targetPort": HTTP_PORT}]}, opts=cluster.opts(parent))
    if settings.workers:
        deployment("worker", settings.workers, settings.worker_resources, worker_files, False)
        k8s.core.v1.Service(f"{name}-workers", metadata=cluster.metadata(f"{name}-workers", name, "worker"), spec={
            "clusterIP": "None", "selector": cluster.selector(name, "worker"),
            "ports": [{"name": "http", "port": HTTP_PORT, "targetPort": HTTP_PORT}]}, opts=cluster.opts(parent))
        if settings.workers > 1:
            cluster.disruption_budget(f"{name}-worker", name, "worker", parent)
    cluster.expose(name, cluster.selector(name, "coordinator"), (HTTPS_PORT,), parent)

    return TrinoEndpoints(
        url=f"https://{host}:{HTTPS_PORT}", passwords=access.password_map(generated), users=tuple(generated),
        ca_certificate=server.ca_certificate,
        metrics=(MetricsEndpoint("trino", (f"{host}:{HTTP_PORT}",),
                                 selector={"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": PART_OF},
                                 port="http"),))

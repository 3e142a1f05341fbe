"""Schema registry on Kubernetes: Apicurio Registry as a Deployment of `replicas` stateless pods (their data is the
KafkaSQL journal on the Strimzi cluster) behind a Service, and a Job that registers the event schemas from a
ConfigMap. The Job's spec carries the schemas' fingerprint, so a changed schema replaces (re-runs) it."""
from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.base import MetricsEndpoint
from components.schema_registry import SchemaRegistryArgs, SchemaRegistryEndpoints
from components.schema_registry.apicurio import (API_PATH, CCOMPAT_PATH, METRICS_PATH, PORT, SCHEMA_DIR, UID,
                                                 register_script, schema_files, server_env, subjects)
from components.schema_registry.schemas import COMPATIBILITY
from stacks.config import Resources

CURL_UID = 100  # `curl_user` in curlimages/curl
JOB_RESOURCES = Resources(cpu="100m", memory="128Mi")


def deploy(name: str, args: SchemaRegistryArgs, parent: pulumi.Resource) -> SchemaRegistryEndpoints:
    cluster = args.substrate
    settings = args.settings
    env = server_env(args)
    selector = cluster.selector(name, "server")
    server = cluster.container(
        "apicurio-registry", args.versions.image("apicurio-registry"), settings.resources,
        env=[{"name": key, "value": value} for key, value in env.items()],
        ports=[{"name": "http", "containerPort": PORT}],
        readinessProbe=cluster.http_probe("/health/ready", PORT, period=10, initial_delay=10),
        livenessProbe=cluster.http_probe("/health/live", PORT, period=20, failures=6, initial_delay=30))
    deployment = k8s.apps.v1.Deployment(f"{name}-server", metadata=cluster.metadata(name, name, "server"), spec={
        "replicas": settings.replicas, "selector": {"matchLabels": selector},
        "template": {"metadata": {"labels": cluster.labels(name, "server")},
                     "spec": cluster.pod_spec([server], UID, topologySpreadConstraints=cluster.spread(selector))}},
        opts=cluster.opts(parent))
    k8s.core.v1.Service(f"{name}-service", metadata=cluster.metadata(name, name, "server"), spec={
        "selector": selector, "ports": [{"name": "http", "port": PORT, "targetPort": PORT}]},
        opts=cluster.opts(parent))
    if settings.replicas > 1:
        cluster.disruption_budget(name, name, "server", parent)
    cluster.expose(name, selector, (PORT,), parent)

    base = f"http://{cluster.host(name)}:{PORT}"
    files = schema_files(args)
    schemas = k8s.core.v1.ConfigMap(f"{name}-schemas", metadata=cluster.metadata(f"{name}-schemas", name,
                                                                                 "register"),
                                    data=files, opts=cluster.opts(parent))
    job = cluster.container("register", args.versions.image("curl"), JOB_RESOURCES,
                            command=["/bin/sh", "-ec", register_script(base, files)],
                            mounts=[{"name": "schemas", "mountPath": SCHEMA_DIR, "readOnly": True}])
    k8s.batch.v1.Job(f"{name}-register", metadata=cluster.metadata(f"{name}-register", name, "register"), spec={
        "backoffLimit": 6, "activeDeadlineSeconds": 900,
        "template": {"metadata": {"labels": cluster.labels(name, "register")},
                     "spec": cluster.pod_spec([job], CURL_UID, restartPolicy="OnFailure", volumes=[
                         {"name": "schemas", "configMap": {"name": f"{name}-schemas"}}])}},
        opts=cluster.opts(parent, depends_on=[deployment, schemas], delete_before_replace=True))
    return SchemaRegistryEndpoints(
        type="apicurio", url=f"{base}{CCOMPAT_PATH}", api_url=f"{base}{API_PATH}", registry=None,
        subjects=subjects(files), compatibility=COMPATIBILITY,
        metrics=(MetricsEndpoint("schema-registry", (f"{cluster.host(name)}:{PORT}",), path=METRICS_PATH,
                                 selector=selector, port="http"),))

"""Flink on Kubernetes: the Flink Kubernetes Operator (Helm chart pinned in versions.yaml, watching only the platform
namespace) and one `FlinkDeployment` per packaged job (`JOBS`) in application mode:

- `upgradeMode: savepoint`: a change (image, config, parallelism) stops the job with a savepoint and resumes from it;
  the operator also takes a periodic savepoint and keeps a bounded history;
- Kubernetes HA (leader election and job metadata in ConfigMaps, `high-availability.storageDir` on S3), with a
  standby jobmanager in prod, so a lost jobmanager resumes from the latest checkpoint;
- checkpoints and savepoints per job under `s3://<checkpoints bucket>/flink/<job>/`.

Pods pass the namespace's `restricted` Pod Security Standard (uid 9999, no privilege escalation, no capabilities,
RuntimeDefault seccomp); the root filesystem stays writable because the image's entrypoint installs the S3 plugin
(`ENABLE_BUILT_IN_PLUGINS`) and the operator's configuration into it. The admission webhook is off (it needs
cert-manager); the operator validates each resource when it reconciles it and reports errors in its status.
S3 keys reach the pods from a Secret (IRSA on EKS: `on_cluster` is what the aws adapter reuses).
"""
from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.base import MetricsEndpoint
from components.flink import JOB_IMAGE, JOBS, SQL_RUNNER_JAR, FlinkArgs, FlinkEndpoints, job_args, packaged_jobs
from components.flink.conf import (FLINK_UID, JOBMANAGER_METRICS_PORT, checkpoints_bucket, common_options, memory,
                                   operator_flink_version, plugin_jar, s3_options, state_uri)
from components.workloads.flink_scripts import iceberg_options
from stacks.config import Resources

API_VERSION = "flink.apache.org/v1beta1"
JOB_SERVICE_ACCOUNT = "flink"  # created by the chart with the Role native mode needs (pods, ConfigMaps for HA)
OPERATOR_NAME = "flink-kubernetes-operator"  # the chart's `app.kubernetes.io/name` on the operator pod
OPERATOR_RESOURCES = Resources(cpu="200m", memory="512Mi")
MAIN_CONTAINER = "flink-main-container"  # the container name the operator merges the pod template into


def cpu(quantity: str) -> float:
    """A Kubernetes CPU quantity as the FlinkDeployment's number of cores (`500m` -> 0.5)."""
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def flink_configuration(options: dict[str, object]) -> dict[str, pulumi.Input[str]]:
    """FlinkDeployment `flinkConfiguration` values are strings (booleans in Flink's lower case)."""
    return {key: str(value).lower() if isinstance(value, bool) else value if isinstance(value, pulumi.Output)
            else str(value) for key, value in options.items()}


def job_options(args: FlinkArgs, bucket: pulumi.Input[str], job: str, region: str | None) -> dict[str, object]:
    settings = args.settings
    return {
        **common_options(settings, state_uri(bucket, job, "checkpoints"), state_uri(bucket, job, "savepoints")),
        **s3_options(args.storage, region),
        "high-availability.type": "kubernetes",
        "high-availability.storageDir": state_uri(bucket, job, "ha"),
        "metrics.reporter.prom.port": JOBMANAGER_METRICS_PORT,
        "kubernetes.operator.periodic.savepoint.interval": "6h",
        "kubernetes.operator.savepoint.history.max.count": 10,
        "kubernetes.operator.savepoint.history.max.age": "7d",
    }


def operator(name: str, args: FlinkArgs, parent: pulumi.Resource, cluster,
             service_account_annotations: dict[str, pulumi.Input[str]] | None = None) -> k8s.helm.v3.Release:
    release = cluster.helm_release(f"{name}-operator", args.versions.charts["flink-kubernetes-operator"], {
        "watchNamespaces": [cluster.namespace],
        "webhook": {"create": False},
        "operatorPod": {"resources": cluster.resources(OPERATOR_RESOURCES)},
        "podSecurityContext": {"runAsNonRoot": True, "runAsUser": FLINK_UID, "runAsGroup": FLINK_UID,
                               "seccompProfile": {"type": "RuntimeDefault"}},
        "operatorSecurityContext": cluster.container_security(read_only_root=False),
        "jobServiceAccount": {"create": True, "name": JOB_SERVICE_ACCOUNT,
                              "annotations": service_account_annotations or {}},
    }, parent)
    cluster.allow_kube_api(f"{name}-operator", {"app.kubernetes.io/name": OPERATOR_NAME}, parent)
    return release


def on_cluster(name: str, args: FlinkArgs, parent: pulumi.Resource, cluster, *, env: list[dict],
               region: str | None = None, service_account_annotations: dict | None = None,
               depends_on: list[pulumi.Resource] = ()) -> FlinkEndpoints:
    """The operator and the jobs on `cluster`; `env` carries the S3 credentials (or the region, with IRSA)."""
    settings = args.settings
    bucket = checkpoints_bucket(args.storage)
    flink_image = args.versions.image(JOB_IMAGE)  # the Flink version the job image is built on
    image = args.job_image or flink_image
    release = operator(name, args, parent, cluster, service_account_annotations)
    pod_labels = cluster.labels(name, "job")
    selector = cluster.selector(name, "job")
    cluster.allow_kube_api(f"{name}-jobs", selector, parent)  # native mode: the jobmanager creates its taskmanagers
    platform_env = [{"name": key, "value": value} for key, value in (args.kafka.env() if args.kafka else {}).items()]
    if args.catalog is not None:
        platform_env += [{"name": "DP_CATALOG_URI", "value": args.catalog.uri},
                         {"name": "DP_CATALOG_WAREHOUSE", "value": args.catalog.warehouse},
                         # catalog options without the credentials (S3FileIO takes those from the environment)
                         {"name": "DP_ICEBERG_OPTIONS", "value": pulumi.Output.unsecret(pulumi.Output.from_input(
                             args.catalog.properties).apply(iceberg_options))}]
    container = {"name": MAIN_CONTAINER, "securityContext": cluster.container_security(read_only_root=False),
                 "env": [{"name": "ENABLE_BUILT_IN_PLUGINS", "value": plugin_jar(flink_image)}, *env,
                         *platform_env]}
    for job in packaged_jobs():
        labels = {**pod_labels, "dataplatform.io/flink-job": job.name}
        k8s.apiextensions.CustomResource(
            f"{name}-{job.name}", api_version=API_VERSION, kind="FlinkDeployment",
            metadata=cluster.metadata(job.name, name, "job", {"dataplatform.io/description": job.description,
                                                              "dataplatform.io/statements": ",".join(job.statements)}),
            spec={
                "image": image, "imagePullPolicy": "IfNotPresent", "flinkVersion": operator_flink_version(flink_image),
                "serviceAccount": JOB_SERVICE_ACCOUNT, "mode": "native",
                "flinkConfiguration": flink_configuration(job_options(args, bucket, job.name, region)),
                "podTemplate": {"metadata": {"labels": labels},
                                "spec": {"securityContext": cluster.pod_security(FLINK_UID),
                                         "containers": [container]}},
                "jobManager": {"replicas": 2 if cluster.prod else 1,
                               "resource": {"cpu": cpu(settings.resources.cpu),
                                            "memory": memory(settings.resources.memory)}},
                "taskManager": {"resource": {"cpu": cpu(settings.taskmanager_resources.cpu),
                                             "memory": memory(settings.taskmanager_resources.memory)}},
                "job": {"jarURI": f"local://{SQL_RUNNER_JAR}", "args": job_args(job),
                        "parallelism": settings.taskmanagers * settings.task_slots, "upgradeMode": "savepoint",
                        "state": "running"},
            },
            opts=cluster.opts(parent, depends_on=[release, *depends_on]))
    metrics = f"{name}-metrics"
    k8s.core.v1.Service(f"{name}-metrics", metadata=cluster.metadata(metrics, name, "metrics"), spec={
        "clusterIP": "None", "selector": selector,
        "ports": [{"name": "metrics", "port": JOBMANAGER_METRICS_PORT, "targetPort": JOBMANAGER_METRICS_PORT}]},
        opts=cluster.opts(parent))
    return FlinkEndpoints(
        mode="application", rest_url=None, checkpoints=state_uri(bucket, "{job}", "checkpoints"),
        savepoints=state_uri(bucket, "{job}", "savepoints"), jobs=tuple(job.name for job in JOBS),
        metrics=(MetricsEndpoint("flink", (f"{cluster.host(metrics)}:{JOBMANAGER_METRICS_PORT}",), selector=selector,
                                 port="metrics"),))


def deploy(name: str, args: FlinkArgs, parent: pulumi.Resource) -> FlinkEndpoints:
    cluster = args.substrate
    storage = args.storage
    checkpoints_bucket(storage)  # refuse a stack without the bucket before creating anything
    secret_name = f"{name}-s3"
    secret = k8s.core.v1.Secret(secret_name, metadata=cluster.metadata(secret_name, name, "credentials"),
                                type="Opaque", string_data={"AWS_ACCESS_KEY_ID": storage.access_key_id,
                                                            "AWS_SECRET_ACCESS_KEY": storage.secret_access_key},
                                opts=cluster.opts(parent))
    env = [{"name": key, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}
           for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")]
    return on_cluster(name, args, parent, cluster, env=env, depends_on=[secret])

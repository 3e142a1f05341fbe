"""The workloads on Kubernetes: one Deployment per long-running process (the jobs with `Recreate`, so a table never has
two writers during a roll-out; `medallion init` as their init container), each HTTP process (the MCP server,
governance) behind a ClusterIP Service with HTTP liveness and readiness probes, maintenance as a CronJob
(`maintenance_schedule`, UTC, never two at once), the demo producer as a Job.

Every pod passes the namespace's `restricted` Pod Security Standard: uid 10001, read-only root filesystem (DP_HOME
and /tmp are emptyDirs), no privilege escalation, no capabilities, no Kubernetes API token (its service account
`dataplatform-workloads` has no role). Credentials reach each pod from its own Secret (only what that process
needs); the images are pulled with `services.workloads.registry`'s credentials (a dockerconfigjson Secret) when it
has some. The AWS adapter runs this on EKS with the workloads' IAM role instead of S3 keys.
"""
from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.base import MetricsEndpoint
from components.targets.kubernetes import KubernetesCluster
from components.workloads import WorkloadEndpoints, WorkloadsArgs, processes
from components.workloads.images import docker_config_json
from components.workloads.processes import CA_FILE

APP = "workloads"
UID = 10001
SERVICE_ACCOUNT = "dataplatform-workloads"  # the aws target's IRSA service account has the same name
DATA = "/var/lib/dataplatform"  # DP_HOME in the image
PULL_SECRET = "workloads-registry"


def http_probes(process: processes.Process) -> dict:
    return {"livenessProbe": KubernetesCluster.http_probe(process.liveness, process.port, period=15, initial_delay=10),
            "readinessProbe": KubernetesCluster.http_probe(process.readiness, process.port, period=10,
                                                           initial_delay=5)}


def exec_probes(command: tuple[str, ...]) -> dict:
    """The probe script: readiness every 30 s; liveness tolerates 10 minutes of failures before a restart (a
    restart does not bring an unreachable catalog back)."""
    probe = KubernetesCluster.exec_probe
    return {"readinessProbe": {**probe(list(command), period=30, initial_delay=20), "timeoutSeconds": 20},
            "livenessProbe": {**probe(list(command), period=60, failures=10, initial_delay=60), "timeoutSeconds": 20}}


def on_cluster(name: str, args: WorkloadsArgs, parent: pulumi.Resource, cluster, *, service_account: str,
               create_service_account: bool, extra_env: dict[str, str] | None = None) -> WorkloadEndpoints:
    """The workloads on `cluster`, as `service_account` (created here unless the target brings its own)."""
    settings = args.settings
    declared = processes.plan(args)
    image = args.images.images["workloads"]
    keys = processes.mcp_keys(name, parent) if any(p.name == "mcp-server" for p in declared) else None
    if create_service_account:
        k8s.core.v1.ServiceAccount(f"{name}-service-account", metadata=cluster.metadata(
            service_account, APP, "identity"), automount_service_account_token=False, opts=cluster.opts(parent))
    pull_secrets = None
    registry = settings.registry
    if registry is not None and registry.username is not None:
        k8s.core.v1.Secret(f"{name}-registry", metadata=cluster.metadata(PULL_SECRET, APP, "registry"),
                           type="kubernetes.io/dockerconfigjson",
                           string_data={".dockerconfigjson": docker_config_json(
                               registry.server, registry.username, registry.password.value or "offline-plan")},
                           opts=cluster.opts(parent))
        pull_secrets = [{"name": PULL_SECRET}]
    ca_config = None
    if args.trino is not None and keys is not None:
        ca_config = f"{name}-trino-ca"
        k8s.core.v1.ConfigMap(ca_config, metadata=cluster.metadata(ca_config, APP, "trino-ca"),
                              data={"trino-ca.pem": args.trino.ca_certificate}, opts=cluster.opts(parent))
    init = next((p for p in declared if p.kind == "setup"), None)
    metrics, mcp_url = [], None
    for process in declared:
        if process.kind == "setup":
            continue
        env = processes.environment(process, args, keys)
        secret_name = f"{name}-{process.name}"
        secret_values = {**{k: v for k, v in env.plain.items() if not isinstance(v, str)}, **env.secret}
        literal = {**{k: v for k, v in env.plain.items() if isinstance(v, str)}, **(extra_env or {})}
        environment: dict = {"env": [{"name": k, "value": v} for k, v in sorted(literal.items())]}
        if secret_values:
            k8s.core.v1.Secret(secret_name, metadata=cluster.metadata(secret_name, APP, process.name),
                               type="Opaque", string_data=secret_values, opts=cluster.opts(parent))
            environment["envFrom"] = [{"secretRef": {"name": secret_name}}]
        labels = cluster.labels(APP, process.name)
        selector = cluster.selector(APP, process.name)
        mounts = [{"name": "data", "mountPath": DATA}]
        volumes = [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}]
        if "query" in process.needs and ca_config:
            mounts.append({"name": "trino-ca", "mountPath": CA_FILE, "subPath": "trino-ca.pem", "readOnly": True})
            volumes.append({"name": "trino-ca", "configMap": {"name": ca_config}})
        probes = http_probes(process) if process.port else exec_probes(process.probe) if process.probe else {}
        ports = [{"name": "http", "containerPort": process.port}] if process.port else None
        main = cluster.container(process.name, image.ref, process.resources, mounts=mounts,
                                 command=list(process.command), ports=ports, **environment, **probes)
        init_containers = None
        if init is not None and process.medallion:
            init_containers = [cluster.container("medallion-init", image.ref, init.resources, mounts=mounts,
                                                 command=list(init.command), **environment)]
        opts = cluster.opts(parent, depends_on=args.images.resources)
        if process.kind == "scheduled":
            pod = cluster.pod_spec([main], UID, volumes=volumes, service_account=service_account,
                                   restartPolicy="OnFailure", initContainers=init_containers,
                                   imagePullSecrets=pull_secrets)
            k8s.batch.v1.CronJob(f"{name}-{process.name}", metadata=cluster.metadata(process.name, APP, process.name),
                                 spec={"schedule": settings.maintenance_schedule, "timeZone": "Etc/UTC",
                                       "concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 600,
                                       "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
                                       "jobTemplate": {"spec": {"backoffLimit": 2, "template": {
                                           "metadata": {"labels": labels}, "spec": pod}}}}, opts=opts)
        elif process.kind == "once":
            pod = cluster.pod_spec([main], UID, volumes=volumes, service_account=service_account,
                                   restartPolicy="OnFailure", imagePullSecrets=pull_secrets)
            k8s.batch.v1.Job(f"{name}-{process.name}", metadata=cluster.metadata(process.name, APP, process.name),
                             spec={"backoffLimit": 4, "template": {"metadata": {"labels": labels}, "spec": pod}},
                             opts=opts)
        else:
            replicas = process.replicas
            pod = cluster.pod_spec([main], UID, volumes=volumes, service_account=service_account,
                                   initContainers=init_containers, imagePullSecrets=pull_secrets,
                                   terminationGracePeriodSeconds=120,
                                   topologySpreadConstraints=cluster.spread(selector) if replicas > 1 else None)
            k8s.apps.v1.Deployment(f"{name}-{process.name}", metadata=cluster.metadata(
                process.name, APP, process.name), spec={
                    "replicas": replicas, "selector": {"matchLabels": selector},
                    "strategy": {"type": "RollingUpdate"} if process.rolling else {"type": "Recreate"},
                    "template": {"metadata": {"labels": labels}, "spec": pod}}, opts=opts)
        if process.port:
            k8s.core.v1.Service(f"{name}-{process.name}", metadata=cluster.metadata(process.name, APP, process.name),
                                spec={"type": "ClusterIP", "selector": selector, "ports": [
                                    {"name": "http", "port": process.port, "targetPort": "http"}]},
                                opts=cluster.opts(parent))
            cluster.expose(f"{name}-{process.name}", selector, (process.port,), parent)
            if process.replicas > 1:
                cluster.disruption_budget(f"{name}-{process.name}", APP, process.name, parent)
            if process.name == "mcp-server":
                mcp_url = f"http://{cluster.host(process.name)}:{process.port}"
            metrics.append(MetricsEndpoint(process.name, (f"{cluster.host(process.name)}:{process.port}",),
                                           selector=selector, port="http"))
    return WorkloadEndpoints(
        mcp_url=mcp_url, mcp_keys=keys, tables=processes.tables(), processes=tuple(p.name for p in declared),
        images={k: v.ref for k, v in args.images.images.items()},
        refine="flink" if args.flink and args.flink.jobs else "python", metrics=tuple(metrics))


def deploy(name: str, args: WorkloadsArgs, parent: pulumi.Resource) -> WorkloadEndpoints:
    return on_cluster(name, args, parent, args.substrate, service_account=SERVICE_ACCOUNT,
                      create_service_account=True)

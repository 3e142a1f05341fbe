"""Milvus on Kubernetes: the zilliztech milvus chart (standalone) through `helm.v3.Release`, in its own namespace.

Why a namespace of its own: the chart's pods set no container security context (no dropped capabilities, no
`allowPrivilegeEscalation: false`) and its start script writes the merged config into the image, so they cannot run
under the platform namespace's `restricted` Pod Security level; `<namespace>-milvus` enforces `baseline` (and warns
at `restricted`). Its network policies mirror the platform namespace's: default deny, same namespace, DNS, clients
and Prometheus from the platform namespace on 19530/9091, and egress only to the S3 API (AWS: HTTPS). The platform
namespace in turn admits the Milvus namespace on the S3 port only and may reach Milvus on 19530/9091.

etcd is ours (plain manifests, restricted, a StatefulSet on its own volume), not the chart's Bitnami-based subchart;
its snapshots go to the backups bucket through a CronJob (`components/qdrant/scheduled.py`). Credentials reach
Milvus as environment variables from a Secret (they win over the chart's config file, which holds none).
"""
from __future__ import annotations

from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s

from components.base import MetricsEndpoint
from components.milvus import (DATA_DIR, ETCD_PORT, ETCD_STORE, METRICS_PORT, PORT, ROOT_PATH, MilvusArgs,
                               MilvusEndpoints, etcd_copy, require_storage, root_password, settings_env, token)
from components.milvus.compose import ETCD_ENV
from components.qdrant import scheduled
from stacks.config import Resources

ETCD_UID = 1000
ETCD_RESOURCES = Resources(cpu="250m", memory="512Mi")
ETCD_STORAGE_GB = 10
CHART_ENV = ("COMMON_SECURITY_AUTHORIZATIONENABLED", "MQ_TYPE", "WOODPECKER_STORAGE_TYPE", "LOG_FORMAT")


def namespace_of(cluster) -> str:
    return f"{cluster.namespace}-milvus"[:63]


def _meta(cluster, namespace: str, name: str, app: str, component: str, annotations: dict | None = None) -> dict:
    return {**cluster.metadata(name, app, component, annotations), "namespace": namespace}


def _policy(cluster, parent, namespace: str, name: str, spec: dict, depends_on: list) -> None:
    k8s.networking.v1.NetworkPolicy(f"{name}-policy", metadata=_meta(cluster, namespace, name, "milvus",
                                                                     "network-policy"),
                                    spec=spec, opts=cluster.opts(parent, depends_on=depends_on))


def network_policies(name: str, cluster, parent, namespace: str, egress: list[dict], s3_port: int | None,
                     depends_on: list) -> None:
    """Default deny in the Milvus namespace and only the traffic Milvus needs, in both namespaces."""
    platform = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": cluster.namespace}}}
    own = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}
    served = [{"protocol": "TCP", "port": p} for p in (PORT, METRICS_PORT)]
    both = ["Ingress", "Egress"]
    rules = {
        f"{name}-default-deny": (namespace, {"podSelector": {}, "policyTypes": both}),
        f"{name}-allow-same-namespace": (namespace, {"podSelector": {}, "policyTypes": both,
                                                     "ingress": [{"from": [{"podSelector": {}}]}],
                                                     "egress": [{"to": [{"podSelector": {}}]}]}),
        f"{name}-allow-dns": (namespace, {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]}),
        f"{name}-allow-platform": (namespace, {"podSelector": {}, "policyTypes": ["Ingress"],
                                               "ingress": [{"from": [platform], "ports": served}]}),
        f"{name}-egress": (namespace, {"podSelector": {}, "policyTypes": ["Egress"], "egress": egress}),
        f"{name}-platform-to-milvus": (cluster.namespace, {"podSelector": {}, "policyTypes": ["Egress"],
                                                           "egress": [{"to": [own], "ports": served}]}),
    }
    if s3_port is not None:
        rules[f"{name}-milvus-to-s3"] = (cluster.namespace, {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [
            {"from": [own], "ports": [{"protocol": "TCP", "port": s3_port}]}]})
    if cluster.settings.allowed_ingress_cidrs:
        rules[f"{name}-allow-clients"] = (namespace, {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{
            "from": [{"ipBlock": {"cidr": c}} for c in cluster.settings.allowed_ingress_cidrs],
            "ports": [{"protocol": "TCP", "port": PORT}]}]})
    for policy_name, (policy_namespace, spec) in rules.items():
        _policy(cluster, parent, policy_namespace, policy_name, spec, depends_on)


def etcd(name: str, args: MilvusArgs, parent, namespace: str, depends_on: list) -> k8s.apps.v1.StatefulSet:
    """One etcd member on its own volume (Milvus standalone needs no quorum), probes on /health."""
    cluster = args.substrate
    service = f"{name}-etcd"
    host = f"{service}.{namespace}.svc"
    selector = cluster.selector(name, "etcd")
    k8s.core.v1.Service(f"{service}-service", metadata=_meta(cluster, namespace, service, name, "etcd"), spec={
        "selector": selector, "ports": [{"name": "client", "port": ETCD_PORT, "targetPort": ETCD_PORT}]},
        opts=cluster.opts(parent, depends_on=depends_on))
    container = cluster.container(
        "etcd", args.versions.image("etcd"), ETCD_RESOURCES,
        command=["etcd", f"--advertise-client-urls=http://{host}:{ETCD_PORT}",
                 f"--listen-client-urls=http://0.0.0.0:{ETCD_PORT}", "--listen-peer-urls=http://127.0.0.1:2380",
                 "--data-dir=/var/lib/etcd/data"],
        env=[{"name": k, "value": v} for k, v in ETCD_ENV.items()],
        ports=[{"name": "client", "containerPort": ETCD_PORT}],
        mounts=[{"name": "data", "mountPath": "/var/lib/etcd"}],
        readinessProbe=cluster.http_probe("/health", ETCD_PORT, period=10),
        livenessProbe=cluster.http_probe("/health", ETCD_PORT, period=20, failures=4, initial_delay=15))
    return k8s.apps.v1.StatefulSet(service, metadata=_meta(cluster, namespace, service, name, "etcd"), spec={
        "serviceName": service, "replicas": 1, "selector": {"matchLabels": selector},
        "template": {"metadata": {"labels": cluster.labels(name, "etcd")},
                     "spec": cluster.pod_spec([container], ETCD_UID, terminationGracePeriodSeconds=30)},
        "volumeClaimTemplates": [cluster.volume_claim("data", ETCD_STORAGE_GB)]},
        opts=cluster.opts(parent, depends_on=depends_on))


def chart_values(name: str, args: MilvusArgs, cluster, etcd_endpoint: str, s3: dict, env: list[dict],
                 service_account_annotations: dict | None) -> dict:
    settings = args.settings
    repository, tag = args.versions.image("milvus").rsplit(":", 1)
    tools_repository, tools_tag = args.versions.image("milvus-config-tool").rsplit(":", 1)
    claim = {"size": f"{settings.storage_gb}Gi"}
    if cluster.storage_class_name:
        claim["storageClass"] = cluster.storage_class_name
    off = {"enabled": False}
    return {
        "cluster": off, "etcd": off, "minio": off, "pulsar": off, "pulsarv3": off, "kafka": off, "woodpecker": off,
        "attu": off,
        "image": {"all": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
                  "tools": {"repository": tools_repository, "tag": tools_tag, "pullPolicy": "IfNotPresent"}},
        "externalEtcd": {"enabled": True, "endpoints": [etcd_endpoint]},
        "externalS3": {"enabled": True, "bucketName": args.storage.buckets["warehouse"], "rootPath": ROOT_PATH,
                       "accessKey": "", "secretKey": "", **s3},
        "standalone": {"messageQueue": "woodpecker", "extraEnv": env,
                       "resources": cluster.resources(settings.resources),
                       "persistence": {"mountPath": DATA_DIR, "persistentVolumeClaim": claim}},
        "metrics": {"enabled": True, "serviceMonitor": off},
        "serviceAccount": {"create": bool(service_account_annotations), "name": name if service_account_annotations
                           else None, "annotations": service_account_annotations or {}},
    }


def deploy(name: str, args: MilvusArgs, parent: pulumi.Resource) -> MilvusEndpoints:
    require_storage(args)
    endpoint = urlsplit(args.storage.endpoint)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    s3 = {"host": endpoint.hostname, "port": str(port), "useSSL": endpoint.scheme == "https", "useIAM": False,
          "cloudProvider": "minio", "region": args.storage.region}
    egress = [{"to": [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": args.substrate.namespace}}}], "ports": [{"protocol": "TCP", "port": port}]}]
    return milvus(name, args, parent, s3=s3, egress=egress, s3_port=port)


def milvus(name: str, args: MilvusArgs, parent: pulumi.Resource, *, s3: dict, egress: list[dict],
           s3_port: int | None, service_account_annotations: dict | None = None,
           backup_service_account_annotations: dict | None = None) -> MilvusEndpoints:
    cluster = args.substrate
    namespace = namespace_of(cluster)
    ns = k8s.core.v1.Namespace(f"{name}-namespace", metadata={"name": namespace, "labels": {
        **cluster.labels(name, "namespace"), "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/enforce-version": "latest", "pod-security.kubernetes.io/warn": "restricted"}},
        opts=cluster.opts(parent))
    network_policies(name, cluster, parent, namespace, egress, s3_port, [ns])
    store = etcd(name, args, parent, namespace, [ns])
    etcd_endpoint = f"{name}-etcd.{namespace}.svc:{ETCD_PORT}"
    plain, secret = settings_env(etcd_endpoint, args.storage)
    password = root_password(name, parent)
    credentials = k8s.core.v1.Secret(f"{name}-credentials", metadata=_meta(
        cluster, namespace, f"{name}-credentials", name, "server"), type="Opaque",
        string_data={**secret, "COMMON_SECURITY_DEFAULTROOTPASSWORD": password}, opts=cluster.opts(parent,
                                                                                                  depends_on=[ns]))
    env = [{"name": k, "value": plain[k]} for k in CHART_ENV] + [
        {"name": k, "valueFrom": {"secretKeyRef": {"name": f"{name}-credentials", "key": k}}}
        for k in (*secret, "COMMON_SECURITY_DEFAULTROOTPASSWORD")]
    chart = args.versions.charts["milvus"]
    k8s.helm.v3.Release(
        name, name=name, namespace=namespace, chart=chart.chart, version=chart.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
        values=chart_values(name, args, cluster, etcd_endpoint, s3, env, service_account_annotations),
        atomic=True, cleanup_on_fail=True, timeout=900,
        opts=cluster.opts(parent, depends_on=[ns, store, credentials]))
    copy = etcd_copy(args, f"http://{etcd_endpoint}", covers=(f"{name}-etcd", name))
    if copy is not None:
        scheduled.cronjob(cluster, f"{name}-etcd-backup", name, copy, args.versions.image("curl"),
                          args.versions.image("rclone"), parent, take_env=[], size_gb=ETCD_STORAGE_GB,
                          depends_on=[ns, store], namespace=namespace,
                          service_account_annotations=backup_service_account_annotations)
    host = f"{name}.{namespace}.svc"
    return MilvusEndpoints(
        uri=f"http://{host}:{PORT}", token=token(password), bucket=args.storage.buckets["warehouse"],
        etcd_snapshots=pulumi.Output.concat("s3://", copy.bucket, f"/{ETCD_STORE}/") if copy is not None else None,
        metrics=(MetricsEndpoint("milvus", (f"{host}:{METRICS_PORT}",)),))

"""Observability on Kubernetes: kube-prometheus-stack (Helm, pinned in versions.yaml) in the platform's namespace,
ServiceMonitors for every service that names its Service (`MetricsEndpoint.selector`/`port`), static scrape jobs
for the rest, the platform's rules as a PrometheusRule, the repository's dashboards as ConfigMaps the Grafana
sidecar loads, and, from plain manifests (validated strictly by the tests), the OpenTelemetry collector and the
Kafka exporter.

Shaped for the namespace's `restricted` Pod Security and default-deny network policies: node-exporter (host
network, host PID) is off, and so are the scrapes of control-plane parts a managed cluster hides (etcd, scheduler,
controller manager, kube-proxy); the operator's admission webhook is off (the API server could not reach it);
policies let the operator, Prometheus, Grafana's sidecars and kube-state-metrics reach the API server, and
Prometheus the kubelets. Grafana keeps no state: its admin comes from a Secret, its datasource (uid `prometheus`)
and dashboards are provisioned on every start.
"""
from __future__ import annotations

import hashlib
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.base import MetricsEndpoint
from components.observability import ObservabilityArgs, ObservabilityEndpoints, assets, collector, grafana
from components.observability.kafka_exporter import JOB as EXPORTER_JOB, PORT as EXPORTER_PORT, exporter_args
from components.observability.scrape import OTLP_JOB, SCRAPE_INTERVAL, platform_facts, scrape_configs
from components.targets.kubernetes import KUBE_API_PORTS, KubernetesCluster
from stacks.config import Resources

MONITORING = "monitoring.coreos.com/v1"
PROMETHEUS_PORT = 9090
KUBELET_PORT = 10250
COLLECTOR_UID = 10001  # otel/opentelemetry-collector-contrib's user
EXPORTER_UID = 65534
SMALL = Resources(cpu="100m", memory="128Mi")
GRAFANA_RESOURCES = Resources(cpu="100m", memory="512Mi")
# Pods of the chart that talk to the Kubernetes API (labels the chart and the operator put on them).
API_CLIENTS = ({"app": "kube-prometheus-stack-operator"}, {"app.kubernetes.io/name": "prometheus"},
               {"app.kubernetes.io/name": "grafana"}, {"app.kubernetes.io/name": "kube-state-metrics"})


def helm_values(name: str, args: ObservabilityArgs, cluster: KubernetesCluster,
                static_jobs: list[dict[str, Any]]) -> dict[str, Any]:
    settings = args.settings
    claim = cluster.volume_claim("prometheus", settings.storage_gb)
    return {
        "fullnameOverride": name,
        "crds": {"enabled": True},
        "nodeExporter": {"enabled": False},
        "kubeEtcd": {"enabled": False}, "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False}, "kubeProxy": {"enabled": False},
        "defaultRules": {"create": True, "rules": {
            "etcd": False, "kubeControllerManager": False, "kubeSchedulerAlerting": False,
            "kubeSchedulerRecording": False, "kubeProxy": False, "node": False, "nodeExporterAlerting": False,
            "nodeExporterRecording": False, "windows": False}},
        "prometheusOperator": {"admissionWebhooks": {"enabled": False}, "tls": {"enabled": False}},
        "prometheus": {"prometheusSpec": {
            "retention": f"{settings.retention_days}d",
            "retentionSize": f"{max(1, int(settings.storage_gb * 0.85))}GB",
            "scrapeInterval": SCRAPE_INTERVAL, "evaluationInterval": SCRAPE_INTERVAL,
            "externalLabels": {"platform": pulumi.get_project(), "environment": args.environment},
            "resources": cluster.resources(settings.resources),
            "storageSpec": {"volumeClaimTemplate": {"spec": claim["spec"]}},
            # Select every ServiceMonitor and PrometheusRule, not only those labelled for this release.
            "serviceMonitorSelectorNilUsesHelmValues": False, "podMonitorSelectorNilUsesHelmValues": False,
            "ruleSelectorNilUsesHelmValues": False, "probeSelectorNilUsesHelmValues": False,
            "additionalScrapeConfigs": static_jobs,
        }},
        "grafana": {
            "admin": {"existingSecret": f"{name}-grafana-admin", "userKey": "admin-user",
                      "passwordKey": "admin-password"},
            "defaultDashboardsTimezone": "utc",
            "resources": cluster.resources(GRAFANA_RESOURCES),
            "grafana.ini": {"analytics": {"reporting_enabled": False, "check_for_updates": False},
                            "users": {"allow_sign_up": False}, "auth.anonymous": {"enabled": False}},
            "sidecar": {"dashboards": {"enabled": True, "label": "grafana_dashboard", "labelValue": "1",
                                       "searchNamespace": cluster.namespace},
                        "datasources": {"enabled": True, "uid": assets.DATASOURCE_UID, "isDefaultDatasource": True}},
        },
    }


def service_monitor(name: str, endpoint: MetricsEndpoint, cluster: KubernetesCluster, parent: pulumi.Resource,
                    release: pulumi.Resource, honor_labels: bool = False) -> None:
    """A ServiceMonitor for one job; every series gets `job=<endpoint.job>` whatever the Service is called."""
    scrape = {"port": endpoint.port, "path": endpoint.path, "interval": SCRAPE_INTERVAL,
              "relabelings": [{"action": "replace", "targetLabel": "job", "replacement": endpoint.job}]}
    if honor_labels:
        scrape["honorLabels"] = True
    k8s.apiextensions.CustomResource(
        f"{name}-monitor-{endpoint.job}", api_version=MONITORING, kind="ServiceMonitor",
        metadata=cluster.metadata(f"{name}-{endpoint.job}", name, "service-monitor"),
        spec={"selector": {"matchLabels": dict(endpoint.selector)},
              "namespaceSelector": {"matchNames": [cluster.namespace]}, "endpoints": [scrape]},
        opts=cluster.opts(parent, depends_on=[release]))


def network_policies(name: str, cluster: KubernetesCluster, parent: pulumi.Resource,
                     tracing_port: int | None) -> None:
    """Egress the namespace's default-deny would block: API server for the chart's controllers and Prometheus's
    discovery, kubelets for Prometheus, the tracing backend for the collector."""
    anywhere = [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
    rules = [(f"{name}-kube-api-{i}", selector, KUBE_API_PORTS) for i, selector in enumerate(API_CLIENTS)]
    rules.append((f"{name}-kubelets", {"app.kubernetes.io/name": "prometheus"}, (KUBELET_PORT,)))
    if tracing_port:
        rules.append((f"{name}-tracing", cluster.selector(name, "collector"), (tracing_port,)))
    for policy, selector, ports in rules:
        k8s.networking.v1.NetworkPolicy(policy, metadata=cluster.metadata(policy, name, "network-policy"), spec={
            "podSelector": {"matchLabels": selector}, "policyTypes": ["Egress"],
            "egress": [{"to": anywhere, "ports": [{"protocol": "TCP", "port": port} for port in ports]}]},
            opts=cluster.opts(parent))


def deploy_collector(name: str, args: ObservabilityArgs, cluster: KubernetesCluster, parent: pulumi.Resource, *,
                     config: dict[str, Any] | pulumi.Output, service_account: str | None = None) -> str:
    """The OpenTelemetry collector (Deployment, Service, ConfigMap); returns its Service name."""
    service = f"{name}-collector"
    rendered = pulumi.Output.from_input(config).apply(lambda c: yaml.safe_dump(c, sort_keys=False))
    config_map = k8s.core.v1.ConfigMap(f"{service}-config", metadata=cluster.metadata(
        f"{service}-config", name, "collector"), data={"config.yaml": rendered}, opts=cluster.opts(parent))
    ports = {"otlp-grpc": collector.OTLP_GRPC_PORT, "otlp-http": collector.OTLP_HTTP_PORT,
             "telemetry": collector.TELEMETRY_PORT, "export": collector.PROMETHEUS_EXPORT_PORT}
    container = cluster.container(
        "collector", args.versions.image("otel-collector"), collector.RESOURCES,
        args=["--config=/etc/otelcol/config.yaml"],
        mounts=[{"name": "config", "mountPath": "/etc/otelcol", "readOnly": True}],
        ports=[{"name": port_name, "containerPort": port} for port_name, port in ports.items()],
        readinessProbe=cluster.http_probe("/", collector.HEALTH_PORT, period=10),
        livenessProbe=cluster.http_probe("/", collector.HEALTH_PORT, period=30, failures=4, initial_delay=10))
    selector = cluster.selector(name, "collector")
    # Restart the pods when the configuration changes (the collector reads it once).
    checksum = rendered.apply(lambda text: hashlib.sha256(text.encode()).hexdigest()[:16])
    k8s.apps.v1.Deployment(service, metadata=cluster.metadata(service, name, "collector"), spec={
        "replicas": 1, "selector": {"matchLabels": selector},
        "template": {"metadata": {"labels": cluster.labels(name, "collector"),
                                  "annotations": {"dataplatform/config-checksum": checksum}},
                     "spec": cluster.pod_spec([container], COLLECTOR_UID, service_account=service_account, volumes=[
                         {"name": "config", "configMap": {"name": f"{service}-config"}}])}},
        opts=cluster.opts(parent, depends_on=[config_map]))
    k8s.core.v1.Service(f"{service}-service", metadata=cluster.metadata(service, name, "collector"), spec={
        "selector": selector, "ports": [{"name": port_name, "port": port, "targetPort": port}
                                        for port_name, port in ports.items()]}, opts=cluster.opts(parent))
    cluster.expose(service, selector, (collector.OTLP_GRPC_PORT, collector.OTLP_HTTP_PORT), parent)
    return service


def deploy_exporter(name: str, args: ObservabilityArgs, cluster: KubernetesCluster, parent: pulumi.Resource, *,
                    exporter_command: pulumi.Input[list[str]], service_account: str | None = None) -> str:
    """The Kafka exporter (Deployment, Service); returns its Service name."""
    service = f"{name}-kafka-exporter"
    container = cluster.container(
        "kafka-exporter", args.versions.image("kafka-exporter"), SMALL, args=exporter_command,
        ports=[{"name": "metrics", "containerPort": EXPORTER_PORT}],
        readinessProbe=cluster.http_probe("/", EXPORTER_PORT, period=15),
        livenessProbe=cluster.http_probe("/", EXPORTER_PORT, period=30, failures=4, initial_delay=30))
    selector = cluster.selector(name, "kafka-exporter")
    k8s.apps.v1.Deployment(service, metadata=cluster.metadata(service, name, "kafka-exporter"), spec={
        "replicas": 1, "selector": {"matchLabels": selector},
        "template": {"metadata": {"labels": cluster.labels(name, "kafka-exporter")},
                     "spec": cluster.pod_spec([container], EXPORTER_UID, service_account=service_account)}},
        opts=cluster.opts(parent))
    k8s.core.v1.Service(f"{service}-service", metadata=cluster.metadata(service, name, "kafka-exporter"), spec={
        "selector": selector, "ports": [{"name": "metrics", "port": EXPORTER_PORT, "targetPort": EXPORTER_PORT}]},
        opts=cluster.opts(parent))
    return service


def install(name: str, args: ObservabilityArgs, cluster: KubernetesCluster, parent: pulumi.Resource, *,
            exporter_command: pulumi.Input[list[str]] | None = None,
            exporter_account: str | None = None) -> ObservabilityEndpoints:
    """The whole stack on `cluster` (the kubernetes target, or EKS with `aws_mode: eks`)."""
    settings = args.settings
    password = grafana.admin_password(name, settings, parent)
    admin = k8s.core.v1.Secret(f"{name}-grafana-admin", metadata=cluster.metadata(
        f"{name}-grafana-admin", name, "grafana"), type="Opaque",
        string_data={"admin-user": grafana.ADMIN_USER, "admin-password": password}, opts=cluster.opts(parent))
    dashboards = [k8s.core.v1.ConfigMap(
        f"{name}-dashboard-{dashboard}",
        metadata={**cluster.metadata(f"{name}-dashboard-{dashboard}", name, "dashboard"),
                  "labels": {**cluster.labels(name, "dashboard"), "grafana_dashboard": "1"}},
        data={f"{dashboard}.json": content}, opts=cluster.opts(parent))
        for dashboard, content in assets.dashboards().items()]

    collector_service = deploy_collector(name, args, cluster, parent, config=collector.collector_config(
        tracing_endpoint=settings.tracing_endpoint, memory=collector.RESOURCES.memory))
    monitored = [(MetricsEndpoint("otel-collector", (), selector=cluster.selector(name, "collector"),
                                  port="telemetry"), False),
                 (MetricsEndpoint(OTLP_JOB, (), selector=cluster.selector(name, "collector"), port="export"), True)]
    if args.kafka is not None:
        command = exporter_command if exporter_command is not None else exporter_args(
            args.kafka.bootstrap_servers, args.kafka.security_protocol, args.kafka.sasl_mechanism)
        deploy_exporter(name, args, cluster, parent, exporter_command=command, service_account=exporter_account)
        monitored.append((MetricsEndpoint(EXPORTER_JOB, (), selector=cluster.selector(name, "kafka-exporter"),
                                          port="metrics"), False))
    followed = [e for e in args.targets if e.selector and e.port]
    static_jobs = scrape_configs(e for e in args.targets if not (e.selector and e.port))

    chart = args.versions.charts["kube-prometheus-stack"]
    release = cluster.helm_release(f"{name}-stack", chart, helm_values(name, args, cluster, static_jobs), parent,
                                   depends_on=[admin, *dashboards])
    for endpoint, honor in [*monitored, *((e, False) for e in followed)]:
        service_monitor(name, endpoint, cluster, parent, release, honor_labels=honor)
    facts = platform_facts(args.kafka_brokers)["groups"]
    k8s.apiextensions.CustomResource(
        f"{name}-rules", api_version=MONITORING, kind="PrometheusRule",
        metadata=cluster.metadata(f"{name}-platform", name, "rules"),
        spec={"groups": assets.alert_rules()["groups"] + facts}, opts=cluster.opts(parent, depends_on=[release]))
    network_policies(name, cluster, parent,
                     collector.tracing_port(settings.tracing_endpoint) if settings.tracing_endpoint else None)
    grafana_selector = {"app.kubernetes.io/name": "grafana"}
    cluster.expose(f"{name}-grafana", grafana_selector, (grafana.PORT,), parent)

    return ObservabilityEndpoints(prometheus_url=f"http://{cluster.host(f'{name}-prometheus')}:{PROMETHEUS_PORT}",
                                  grafana_url=f"http://{cluster.host(f'{name}-grafana')}",
                                  otlp_endpoint=f"http://{cluster.host(collector_service)}:{collector.OTLP_HTTP_PORT}",
                                  grafana_admin_password=password)


def deploy(name: str, args: ObservabilityArgs, parent: pulumi.Resource) -> ObservabilityEndpoints:
    return install(name, args, args.substrate, parent)

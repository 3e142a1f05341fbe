"""Observability on compose: Prometheus, Grafana, the OpenTelemetry collector and (with Kafka) the Kafka exporter,
configured by inline compose configs: the generated `prometheus.yml` and platform facts, the repository's alert
rules and dashboards, Grafana's datasource and dashboard provisioning. Config contents are escaped (`$$`) so compose
passes `$labels` and `$__rate_interval` through untouched; the Grafana admin password is the only secret and
reaches the container as a secret variable."""
from __future__ import annotations

import pulumi
import yaml

from components.base import MetricsEndpoint
from components.observability import ObservabilityArgs, ObservabilityEndpoints, assets, collector, grafana
from components.observability.kafka_exporter import JOB as EXPORTER_JOB, PORT as EXPORTER_PORT, exporter_args
from components.observability.scrape import OTLP_JOB, platform_facts, prometheus_config

PROMETHEUS_PORT = 9090
RULES_DIR = "/etc/prometheus/rules"
COLLECTOR_CONFIG = "/etc/otelcol-contrib/config.yaml"


def retention_flags(settings) -> list[str]:
    """Keep `retention_days`, and never more than ~85% of `storage_gb` (the rest is head block and WAL)."""
    return [f"--storage.tsdb.retention.time={settings.retention_days}d",
            f"--storage.tsdb.retention.size={max(1, int(settings.storage_gb * 0.85))}GB"]


def own_endpoints(prometheus: str, grafana_host: str, collector_host: str, exporter: str | None) -> list[
        MetricsEndpoint]:
    """The observability services' own metrics (the exporter's are Kafka's), plus what the workloads sent by OTLP."""
    endpoints = [MetricsEndpoint("prometheus", (prometheus,)),
                 MetricsEndpoint("grafana", (grafana_host,)),
                 MetricsEndpoint("otel-collector", (f"{collector_host}:{collector.TELEMETRY_PORT}",)),
                 MetricsEndpoint(OTLP_JOB, (f"{collector_host}:{collector.PROMETHEUS_EXPORT_PORT}",))]
    if exporter:
        endpoints.append(MetricsEndpoint(EXPORTER_JOB, (exporter,)))
    return endpoints


def deploy(name: str, args: ObservabilityArgs, parent: pulumi.Resource) -> ObservabilityEndpoints:
    project = args.substrate
    settings = args.settings
    ports = project.settings.ports
    prometheus, grafana_service, collector_service = f"{name}-prometheus", f"{name}-grafana", f"{name}-collector"
    exporter = f"{name}-kafka-exporter" if args.kafka is not None else None

    endpoints = [*args.targets, *own_endpoints(f"{prometheus}:{PROMETHEUS_PORT}", f"{grafana_service}:{grafana.PORT}",
                                               collector_service, exporter and f"{exporter}:{EXPORTER_PORT}")]
    config = prometheus_config(endpoints, rules_dir=RULES_DIR,
                               external_labels={"platform": project.settings.project_name,
                                                "environment": args.environment})
    files = {
        f"{name}-prometheus-config": ("/etc/prometheus/prometheus.yml", yaml.safe_dump(config, sort_keys=False)),
        f"{name}-alert-rules": (f"{RULES_DIR}/platform-alerts.yaml", assets.alert_rules_text()),
        f"{name}-platform-facts": (f"{RULES_DIR}/platform-facts.yaml",
                                   yaml.safe_dump(platform_facts(args.kafka_brokers), sort_keys=False)),
    }
    for config_name, (_, content) in files.items():
        project.add_config(config_name, assets.compose_literal(content))
    project.add_service(prometheus, {
        "image": args.versions.image("prometheus"), "restart": "unless-stopped", "hostname": prometheus,
        "command": ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
                    *retention_flags(settings)],
        "configs": [{"source": source, "target": target} for source, (target, _) in files.items()],
        "volumes": [f"{prometheus}-data:/prometheus"],
        "ports": [project.port(ports.prometheus, PROMETHEUS_PORT)],
        "healthcheck": {"test": ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{PROMETHEUS_PORT}/-/ready"],
                        "interval": "10s", "timeout": "5s", "retries": 12, "start_period": "10s"},
        "deploy": project.deploy(settings.resources),
    }, volumes=(f"{prometheus}-data",))

    password = grafana.admin_password(name, settings, parent)
    grafana_configs = {
        f"{name}-grafana-datasources": (f"{grafana.PROVISIONING_DIR}/datasources/platform.yaml",
                                        assets.datasource_provisioning(f"http://{prometheus}:{PROMETHEUS_PORT}")),
        f"{name}-grafana-dashboards": (f"{grafana.PROVISIONING_DIR}/dashboards/platform.yaml",
                                       assets.dashboard_provisioning(grafana.DASHBOARDS_DIR)),
        **{f"{name}-dashboard-{dashboard}": (f"{grafana.DASHBOARDS_DIR}/{dashboard}.json", content)
           for dashboard, content in assets.dashboards().items()},
    }
    for config_name, (_, content) in grafana_configs.items():
        project.add_config(config_name, assets.compose_literal(content))
    project.add_service(grafana_service, {
        "image": args.versions.image("grafana"), "restart": "unless-stopped", "hostname": grafana_service,
        "environment": {**grafana.HARDENING,
                        "GF_SECURITY_ADMIN_PASSWORD": project.secret("GRAFANA_ADMIN_PASSWORD", password)},
        "configs": [{"source": source, "target": target} for source, (target, _) in grafana_configs.items()],
        "volumes": [f"{grafana_service}-data:/var/lib/grafana"],
        "ports": [project.port(ports.grafana, grafana.PORT)],
        "healthcheck": {"test": ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{grafana.PORT}/api/health"],
                        "interval": "10s", "timeout": "5s", "retries": 12, "start_period": "20s"},
        "depends_on": {prometheus: {"condition": "service_healthy"}},
    }, volumes=(f"{grafana_service}-data",))

    collector_settings = collector.collector_config(tracing_endpoint=settings.tracing_endpoint,
                                                    memory=collector.RESOURCES.memory)
    project.add_config(f"{name}-collector-config",
                       assets.compose_literal(yaml.safe_dump(collector_settings, sort_keys=False)))
    project.add_service(collector_service, {
        "image": args.versions.image("otel-collector"), "restart": "unless-stopped", "hostname": collector_service,
        "command": [f"--config={COLLECTOR_CONFIG}"],
        "configs": [{"source": f"{name}-collector-config", "target": COLLECTOR_CONFIG}],
        "ports": [project.port(ports.otlp_grpc, collector.OTLP_GRPC_PORT),
                  project.port(ports.otlp_http, collector.OTLP_HTTP_PORT)],
        # The image is distroless (no shell, no wget): nothing inside can probe it. Prometheus scrapes it
        # (`up{job="otel-collector"}`, alert ScrapeTargetDown) and compose restarts it if it exits.
        "healthcheck": {"disable": True},
        "deploy": project.deploy(collector.RESOURCES),
    })

    if exporter:
        kafka = args.kafka
        hosts = {server.rsplit(":", 1)[0] for server in kafka.bootstrap_servers.split(",")}
        project.add_service(exporter, {
            "image": args.versions.image("kafka-exporter"), "restart": "unless-stopped", "hostname": exporter,
            "command": exporter_args(kafka.bootstrap_servers, kafka.security_protocol, kafka.sasl_mechanism),
            "healthcheck": {"test": ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{EXPORTER_PORT}/"],
                            "interval": "15s", "timeout": "5s", "retries": 8, "start_period": "20s"},
            "depends_on": {host: {"condition": "service_healthy"} for host in sorted(hosts)
                           if host in project.services},
        })

    published = "127.0.0.1" if project.settings.bind_address in ("0.0.0.0", "::") else project.settings.bind_address
    return ObservabilityEndpoints(prometheus_url=f"http://{prometheus}:{PROMETHEUS_PORT}",
                                  grafana_url=f"http://{published}:{ports.grafana}",
                                  otlp_endpoint=f"http://{collector_service}:{collector.OTLP_HTTP_PORT}",
                                  grafana_admin_password=password)

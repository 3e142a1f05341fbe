"""Observability on VMs: Prometheus, Grafana, the OpenTelemetry collector and (with Kafka) the Kafka exporter on the
first host with the role `observability`, each a systemd unit around its pinned image on the host's network.

The same generated files as on compose (prometheus.yml from the services' `MetricsEndpoint`s, platform facts,
the repository's rules, Grafana provisioning and dashboards) land in /etc/dataplatform/<service>/ and are
mounted read-only; a change rewrites the file and restarts the unit. Prometheus and Grafana keep their data
under the fleet's data dir, owned by the images' users (nobody, grafana).
"""
from __future__ import annotations

import pulumi
import yaml

from components.observability import ObservabilityArgs, ObservabilityEndpoints, assets, collector, grafana
from components.observability.compose import PROMETHEUS_PORT, RULES_DIR, own_endpoints, retention_flags
from components.observability.kafka_exporter import PORT as EXPORTER_PORT, exporter_args
from components.observability.scrape import platform_facts, prometheus_config
from components.targets.vm import Container, ServiceFile, VmFleet, host_port

PROMETHEUS_UID = "65534:65534"  # nobody, in prom/prometheus
GRAFANA_UID = "472:0"  # grafana, in grafana/grafana
COLLECTOR_CONFIG = "/etc/otelcol-contrib/config.yaml"


def deploy(name: str, args: ObservabilityArgs, parent: pulumi.Resource) -> ObservabilityEndpoints:
    fleet: VmFleet = args.substrate
    settings = args.settings
    host = fleet.hosts_with_role("observability")[0]
    address = host.address

    endpoints = [*args.targets, *own_endpoints(host_port(address, PROMETHEUS_PORT), host_port(address, grafana.PORT),
                                               address if ":" not in address else f"[{address}]",
                                               host_port(address, EXPORTER_PORT) if args.kafka is not None else None)]
    config = prometheus_config(endpoints, rules_dir=RULES_DIR,
                               external_labels={"platform": pulumi.get_project(), "environment": args.environment})
    prometheus = fleet.run_service(f"{name}-prometheus", host, Container(
        image=args.versions.image("prometheus"),
        args=("--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
              f"--web.listen-address=:{PROMETHEUS_PORT}", *retention_flags(settings)),
        files=(ServiceFile("prometheus.yml", "/etc/prometheus/prometheus.yml", yaml.safe_dump(config, sort_keys=False)),
               ServiceFile("platform-alerts.yaml", f"{RULES_DIR}/platform-alerts.yaml", assets.alert_rules_text()),
               ServiceFile("platform-facts.yaml", f"{RULES_DIR}/platform-facts.yaml",
                           yaml.safe_dump(platform_facts(args.kafka_brokers), sort_keys=False))),
        volumes={f"{name}-prometheus": "/prometheus"}, data_owner=PROMETHEUS_UID,
        memory=settings.resources.memory, ready_port=PROMETHEUS_PORT), parent=parent)

    password = grafana.admin_password(name, settings, parent)
    dashboards = tuple(ServiceFile(f"dashboard-{dashboard}.json", f"{grafana.DASHBOARDS_DIR}/{dashboard}.json", content)
                       for dashboard, content in assets.dashboards().items())
    fleet.run_service(f"{name}-grafana", host, Container(
        image=args.versions.image("grafana"),
        env={**grafana.HARDENING, "GF_SERVER_HTTP_PORT": str(grafana.PORT)},
        secret_env={"GF_SECURITY_ADMIN_PASSWORD": password},
        files=(ServiceFile("datasources.yaml", f"{grafana.PROVISIONING_DIR}/datasources/platform.yaml",
                           assets.datasource_provisioning(f"http://127.0.0.1:{PROMETHEUS_PORT}")),
               ServiceFile("dashboards.yaml", f"{grafana.PROVISIONING_DIR}/dashboards/platform.yaml",
                           assets.dashboard_provisioning(grafana.DASHBOARDS_DIR)),
               *dashboards),
        volumes={f"{name}-grafana": "/var/lib/grafana"}, data_owner=GRAFANA_UID, ready_port=grafana.PORT),
        parent=parent, depends_on=[prometheus])

    collector_settings = collector.collector_config(tracing_endpoint=settings.tracing_endpoint,
                                                    memory=collector.RESOURCES.memory)
    fleet.run_service(f"{name}-collector", host, Container(
        image=args.versions.image("otel-collector"), args=(f"--config={COLLECTOR_CONFIG}",),
        files=(ServiceFile("config.yaml", COLLECTOR_CONFIG, yaml.safe_dump(collector_settings, sort_keys=False)),),
        memory=collector.RESOURCES.memory, ready_port=collector.HEALTH_PORT), parent=parent)

    if args.kafka is not None:
        kafka = args.kafka
        # No readiness wait: the exporter exits until Kafka answers and systemd restarts it (`up` shows it).
        fleet.run_service(f"{name}-kafka-exporter", host, Container(
            image=args.versions.image("kafka-exporter"),
            args=tuple(exporter_args(kafka.bootstrap_servers, kafka.security_protocol, kafka.sasl_mechanism)),
            memory="256Mi"), parent=parent)

    return ObservabilityEndpoints(prometheus_url=f"http://{host_port(address, PROMETHEUS_PORT)}",
                                  grafana_url=f"http://{host_port(address, grafana.PORT)}",
                                  otlp_endpoint=f"http://{host_port(address, collector.OTLP_HTTP_PORT)}",
                                  grafana_admin_password=password)

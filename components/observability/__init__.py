"""Observability: Prometheus scraping every service, the platform's alert rules, Grafana with a provisioned
datasource and the repository's dashboards, and an OpenTelemetry collector receiving the workloads' OTLP traces
and metrics.

- compose, VMs: prom/prometheus, grafana/grafana, otel/opentelemetry-collector-contrib and danielqsj/kafka-exporter
  (consumer lag, under-replicated partitions, live brokers), all pinned in versions.yaml, configured by generated
  files (scrape config from the services' `MetricsEndpoint`s, rules and dashboards from this package).
- Kubernetes: kube-prometheus-stack (Helm, pinned) with ServiceMonitors for the services, the rules as a
  PrometheusRule, dashboards as ConfigMaps the Grafana sidecar loads, plus the collector and the Kafka exporter.
- AWS (`services.observability.aws_mode`): `managed` (default) is Amazon Managed Prometheus (workspace, the same
  rules, alerts to SNS) and Amazon Managed Grafana (datasource and dashboards through its API), fed by the
  collector on EKS (OTLP, plus scraping the exporter and the workloads, remote-writing with SigV4). Why managed:
  no Prometheus disks to size, retain and back up, high availability and long retention included, and Grafana
  with IAM Identity Center logins instead of a shared admin password. `eks` runs the Kubernetes stack on EKS
  instead (no per-sample cost; one more thing to operate).

Contract: `ObservabilityEndpoints`; `env()` is what a workload sets to send OTLP to the collector.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.base import MetricsEndpoint, Service, ServiceArgs


@dataclass(frozen=True)
class ObservabilityEndpoints:
    prometheus_url: pulumi.Input[str]  # Prometheus query API (AWS managed: the AMP workspace endpoint, SigV4)
    grafana_url: pulumi.Input[str]
    otlp_endpoint: pulumi.Input[str]  # the collector's OTLP/HTTP endpoint, inside the target
    grafana_admin_password: pulumi.Input[str] | None = None  # secret; None with Managed Grafana (SSO logins)

    def env(self) -> dict[str, pulumi.Input[str]]:
        """OpenTelemetry SDK settings for a workload (the SDKs read these variables themselves)."""
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}

    def outputs(self) -> dict:
        password = self.grafana_admin_password
        return {"prometheus_url": self.prometheus_url, "grafana_url": self.grafana_url,
                "otlp_endpoint": self.otlp_endpoint,
                "grafana_admin_password": pulumi.Output.secret(password) if password is not None else None}


@dataclass(frozen=True)
class ObservabilityArgs(ServiceArgs):
    targets: tuple[MetricsEndpoint, ...] = ()  # every service's metrics endpoints (their contracts' `metrics`)
    kafka: Any = None  # KafkaEndpoints: the exporter reads lag, replication and live brokers through them
    kafka_brokers: int = 0  # configured broker count (the KafkaBrokerDown threshold)


class Observability(Service):
    type_token = "dataplatform:observability:Observability"
    endpoints: ObservabilityEndpoints


def observed(*components: Any) -> tuple[MetricsEndpoint, ...]:
    """The metrics endpoints of the given service components (None for a service that is switched off)."""
    return tuple(endpoint for component in components if component is not None
                 for endpoint in getattr(component.endpoints, "metrics", ()))

"""The OpenTelemetry collector's configuration: OTLP in from the workloads, metrics out to Prometheus, traces out
to a tracing backend when `tracing_endpoint` is set.

Two ways out for metrics: `prometheus` (compose, VMs, Kubernetes) re-exports them on :8889 for Prometheus to scrape
(honouring each workload's own `job`), `remote_write` (AWS managed) pushes them, and the platform's scrape jobs the
collector runs itself, to Amazon Managed Prometheus signed with SigV4 (the pod's IAM role).
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from stacks.config import Resources

OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
PROMETHEUS_EXPORT_PORT = 8889  # the workloads' metrics, re-exported
TELEMETRY_PORT = 8888  # the collector's own metrics
HEALTH_PORT = 13133
RESOURCES = Resources(cpu="250m", memory="512Mi")  # a collector batches and forwards; it keeps no data


def tracing_exporter(endpoint: str) -> tuple[str, dict[str, Any]]:
    """`otlp` (gRPC) for an endpoint on port 4317 or without a scheme (`tempo:4317`), `otlphttp` otherwise
    (`https://otlp.example.com`, `http://jaeger:4318`). Plain `http://` turns TLS off."""
    parsed = urlparse(endpoint if "://" in endpoint else f"grpc://{endpoint}")
    if not parsed.hostname:
        raise ValueError(f"services.observability.tracing_endpoint: {endpoint!r} names no host")
    insecure = parsed.scheme in ("http", "grpc")
    if parsed.scheme == "grpc" or parsed.port == OTLP_GRPC_PORT:
        return "otlp/tracing", {"endpoint": f"{parsed.hostname}:{parsed.port or OTLP_GRPC_PORT}",
                                "tls": {"insecure": insecure}}
    if parsed.scheme not in ("http", "https"):
        raise ValueError(f"services.observability.tracing_endpoint: {endpoint!r}: use host:port (gRPC) or an "
                         "http(s):// URL (OTLP/HTTP)")
    return "otlphttp/tracing", {"endpoint": endpoint.rstrip("/"), "tls": {"insecure": insecure}}


def tracing_port(endpoint: str) -> int:
    """The TCP port the collector dials to reach the tracing backend (for egress rules)."""
    name, settings = tracing_exporter(endpoint)
    parsed = urlparse(settings["endpoint"] if "://" in settings["endpoint"] else f"grpc://{settings['endpoint']}")
    return parsed.port or {"https": 443, "http": 80}.get(parsed.scheme, OTLP_GRPC_PORT)


def mebibytes(quantity: str) -> int:
    """A Kubernetes memory quantity (`512Mi`, `2Gi`) in MiB."""
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(float(quantity[:-2]) * factor)
    return int(float(quantity) / 2**20)


def collector_config(*, tracing_endpoint: str | None, memory: str, remote_write: dict[str, Any] | None = None,
                     scrape_configs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The collector's config. `remote_write` = {"endpoint": AMP remote-write URL, "region": ...} switches the
    metrics pipeline from the Prometheus exporter to SigV4-signed remote write; `scrape_configs` adds a
    Prometheus receiver that scrapes those jobs (used where no Prometheus server scrapes them)."""
    receivers: dict[str, Any] = {"otlp": {"protocols": {
        "grpc": {"endpoint": f"0.0.0.0:{OTLP_GRPC_PORT}"}, "http": {"endpoint": f"0.0.0.0:{OTLP_HTTP_PORT}"}}}}
    if scrape_configs:
        receivers["prometheus"] = {"config": {"scrape_configs": scrape_configs}}
    memory_mib = mebibytes(memory)
    processors = {
        # Refuse data before the container's memory limit is reached, rather than being OOM-killed.
        "memory_limiter": {"check_interval": "1s", "limit_mib": max(64, int(memory_mib * 0.8)),
                           "spike_limit_mib": max(16, int(memory_mib * 0.2))},
        "batch": {"send_batch_size": 8192, "timeout": "5s"},
    }
    extensions: dict[str, Any] = {"health_check": {"endpoint": f"0.0.0.0:{HEALTH_PORT}"}}
    exporters: dict[str, Any] = {}
    if remote_write:
        extensions["sigv4auth"] = {"region": remote_write["region"], "service": "aps"}
        exporters["prometheusremotewrite"] = {"endpoint": remote_write["endpoint"],
                                              "auth": {"authenticator": "sigv4auth"}}
        metrics_out = "prometheusremotewrite"
    else:
        exporters["prometheus"] = {"endpoint": f"0.0.0.0:{PROMETHEUS_EXPORT_PORT}",
                                   "send_timestamps": False, "metric_expiration": "10m"}
        metrics_out = "prometheus"
    pipelines: dict[str, Any] = {"metrics": {"receivers": sorted(receivers), "processors": ["memory_limiter", "batch"],
                                             "exporters": [metrics_out]}}
    if tracing_endpoint:
        name, settings = tracing_exporter(tracing_endpoint)
        exporters[name] = settings
        pipelines["traces"] = {"receivers": ["otlp"], "processors": ["memory_limiter", "batch"], "exporters": [name]}
    return {
        "extensions": extensions,
        "receivers": receivers,
        "processors": processors,
        "exporters": exporters,
        "service": {
            "extensions": sorted(extensions),
            "pipelines": pipelines,
            "telemetry": {"metrics": {"level": "normal", "readers": [
                {"pull": {"exporter": {"prometheus": {"host": "0.0.0.0", "port": TELEMETRY_PORT}}}}]}},
        },
    }

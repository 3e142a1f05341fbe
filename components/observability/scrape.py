"""The Prometheus configuration, generated from what the services say they expose (`MetricsEndpoint`s).

One generator for every target: compose and VMs load its output as `prometheus.yml`, the collector on AWS embeds
its `scrape_configs` in its Prometheus receiver. Jobs keep the service's logical name (`catalog`, `kafka-exporter`)
whatever the host names, so alert rules and dashboards select on the same `job` everywhere.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from components.base import MetricsEndpoint

SCRAPE_INTERVAL = "30s"
RULE_FILES = ("platform-alerts.yaml", "platform-facts.yaml")
OTLP_JOB = "workloads-otlp"  # what the workloads pushed to the collector, re-exported for Prometheus
_JOB = re.compile(r"^[a-z][a-z0-9_-]*$")
_TARGET = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$")


def scrape_configs(endpoints: Iterable[MetricsEndpoint], interval: str = SCRAPE_INTERVAL) -> list[dict[str, Any]]:
    """One scrape job per job name (endpoints of one job, e.g. several catalog replicas, are merged); refuses a bad
    job name or target, and one job scraped on two different paths."""
    jobs: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        if not _JOB.match(endpoint.job):
            raise ValueError(f"metrics job {endpoint.job!r}: use lowercase letters, digits, '-' and '_'")
        for target in endpoint.targets:
            if not _TARGET.match(target):
                raise ValueError(f"metrics job {endpoint.job!r}: target {target!r} is not host:port")
        job = jobs.setdefault(endpoint.job, {"job_name": endpoint.job, "scrape_interval": interval,
                                             "metrics_path": endpoint.path, "static_configs": [{"targets": []}]})
        if job["metrics_path"] != endpoint.path:
            raise ValueError(f"metrics job {endpoint.job!r} is scraped on both {job['metrics_path']} and "
                             f"{endpoint.path}; give them different job names")
        targets = job["static_configs"][0]["targets"]
        targets += [t for t in endpoint.targets if t not in targets]
    return [job for job in jobs.values() if job["static_configs"][0]["targets"]]


def prometheus_config(endpoints: Iterable[MetricsEndpoint], *, external_labels: dict[str, str],
                      rules_dir: str, honor_labels_jobs: tuple[str, ...] = (OTLP_JOB,)) -> dict[str, Any]:
    """A complete `prometheus.yml`: global settings, the platform's rule files, one job per service.

    `honor_labels_jobs`: jobs whose series carry their own `job`/`instance` (the collector re-exports what the
    workloads pushed over OTLP, labelled with each workload's service name)."""
    configs = scrape_configs(endpoints)
    for job in configs:
        if job["job_name"] in honor_labels_jobs:
            job["honor_labels"] = True
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL,
                   "external_labels": dict(external_labels)},
        "rule_files": [f"{rules_dir.rstrip('/')}/{name}" for name in RULE_FILES],
        "scrape_configs": configs,
    }


def platform_facts(kafka_brokers: int) -> dict[str, Any]:
    """Recording rules that state what the stack is configured to run, so alerts compare what is seen with what
    should be (`KafkaBrokerDown` fires below the configured broker count, not below a guess)."""
    rules = []
    if kafka_brokers:
        rules.append({"record": "dp_kafka_expected_brokers", "expr": f"vector({int(kafka_brokers)})"})
    return {"groups": [{"name": "dp-platform-facts", "rules": rules}]} if rules else {"groups": []}

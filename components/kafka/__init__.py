"""Kafka: KRaft-mode Apache Kafka 4 (compose, VMs), Strimzi (Kubernetes), MSK with IAM auth (AWS).

Contract: `KafkaEndpoints`, what producers and consumers need; `env()` is the shape workloads read
(workloads/common/platform.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from components.base import MetricsEndpoint, Service, ServiceArgs


@dataclass(frozen=True)
class KafkaEndpoints:
    bootstrap_servers: pulumi.Input[str]
    security_protocol: str = "PLAINTEXT"  # SASL_SSL on MSK
    sasl_mechanism: str | None = None  # OAUTHBEARER (MSK IAM) on AWS
    aws_region: str | None = None  # MSK: clients sign IAM auth tokens for this region
    topics: tuple[str, ...] = field(default=())
    metrics: tuple[MetricsEndpoint, ...] = ()  # what Prometheus scrapes (components/observability)

    def env(self) -> dict[str, pulumi.Input[str]]:
        env = {"DP_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers, "DP_KAFKA_SECURITY_PROTOCOL": self.security_protocol}
        if self.sasl_mechanism:
            env["DP_KAFKA_SASL_MECHANISM"] = self.sasl_mechanism
        if self.aws_region:
            env["DP_KAFKA_AWS_REGION"] = self.aws_region
        return env

    def outputs(self) -> dict:
        return {"bootstrap_servers": self.bootstrap_servers, "security_protocol": self.security_protocol,
                "sasl_mechanism": self.sasl_mechanism, "topics": list(self.topics)}


def topic_config(topic, replication: int, min_isr: int) -> dict[str, str]:
    """Kafka topic configs (shared by every adapter so a topic means the same thing on every target)."""
    return {"retention.ms": str(topic.retention_hours * 3_600_000), "cleanup.policy": topic.cleanup_policy,
            "min.insync.replicas": str(min(min_isr, topic.replication or replication))}


class Kafka(Service):
    type_token = "dataplatform:kafka:Kafka"
    endpoints: KafkaEndpoints


KafkaArgs = ServiceArgs

"""Kafka on compose: apache/kafka in KRaft mode. One combined broker+controller node when the stack has one
broker and one controller (dev); otherwise dedicated controllers and brokers. A one-shot `kafka-init` service
creates the declared topics once the brokers are healthy (idempotent: `--if-not-exists`, then `--alter`)."""
from __future__ import annotations

import base64
import uuid

import pulumi

from components.kafka import KafkaArgs, KafkaEndpoints, topic_config

KAFKA_BIN = "/opt/kafka/bin"


def cluster_id(seed: str) -> str:
    """KRaft cluster id: 16 bytes, base64url without padding, stable for a given project and stack."""
    return base64.urlsafe_b64encode(uuid.uuid5(uuid.NAMESPACE_URL, seed).bytes).decode().rstrip("=")


def topics_script(args: KafkaArgs, bootstrap: str) -> str:
    kafka = args.settings
    lines = []
    for topic in kafka.topics:
        replication = topic.replication or kafka.replication
        configs = " ".join(f"--config {k}={v}" for k, v in topic_config(topic, kafka.replication, kafka.min_isr).items())
        lines.append(f"{KAFKA_BIN}/kafka-topics.sh --bootstrap-server {bootstrap} --create --if-not-exists "
                     f"--topic {topic.name} --partitions {topic.partitions} --replication-factor {replication} "
                     f"{configs}")
        alter = ",".join(f"{k}={v}" for k, v in topic_config(topic, kafka.replication, kafka.min_isr).items())
        lines.append(f"{KAFKA_BIN}/kafka-configs.sh --bootstrap-server {bootstrap} --alter --entity-type topics "
                     f"--entity-name {topic.name} --add-config {alter}")
    return "\n".join(lines) or "true"


def deploy(name: str, args: KafkaArgs, parent: pulumi.Resource) -> KafkaEndpoints:
    project = args.substrate
    kafka = args.settings
    image = args.versions.image("kafka")
    combined = kafka.brokers == 1 and kafka.controllers == 1
    controllers = [f"{name}"] if combined else [f"{name}-controller-{i}" for i in range(kafka.controllers)]
    brokers = [f"{name}"] if combined else [f"{name}-broker-{i}" for i in range(kafka.brokers)]
    voters = ",".join(f"{i + 1}@{host}:9093" for i, host in enumerate(controllers))
    common = {
        "CLUSTER_ID": cluster_id(f"{project.settings.project_name}/{pulumi.get_stack()}/{name}"),
        "KAFKA_CONTROLLER_QUORUM_VOTERS": voters,
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "INTERNAL",
        "KAFKA_LOG_DIRS": "/var/lib/kafka/data",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
        "KAFKA_DEFAULT_REPLICATION_FACTOR": str(kafka.replication),
        "KAFKA_MIN_INSYNC_REPLICAS": str(kafka.min_isr),
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": str(kafka.replication),
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": str(kafka.replication),
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": str(kafka.min_isr),
        "KAFKA_HEAP_OPTS": "-Xms512m -Xmx1g",
    }
    ports = project.settings.ports

    if not combined:
        for i, host in enumerate(controllers):
            project.add_service(host, {
                "image": image, "restart": "unless-stopped", "hostname": host,
                "environment": {**common, "KAFKA_NODE_ID": str(i + 1), "KAFKA_PROCESS_ROLES": "controller",
                                "KAFKA_LISTENERS": "CONTROLLER://:9093"},
                "volumes": [f"{host}-data:/var/lib/kafka/data"],
                "healthcheck": {"test": ["CMD-SHELL", "bash -c '</dev/tcp/localhost/9093'"], "interval": "10s",
                                "timeout": "5s", "retries": 12, "start_period": "20s"},
                "deploy": project.deploy(kafka.resources),
            }, volumes=(f"{host}-data",))

    for i, host in enumerate(brokers):
        node_id = (1 if combined else len(controllers) + i + 1)
        external = ports.kafka + i
        roles = "broker,controller" if combined else "broker"
        listeners = "INTERNAL://:9092,EXTERNAL://:29092" + (",CONTROLLER://:9093" if combined else "")
        project.add_service(host, {
            "image": image, "restart": "unless-stopped", "hostname": host,
            "ports": [project.port(external, 29092)],
            "environment": {**common, "KAFKA_NODE_ID": str(node_id), "KAFKA_PROCESS_ROLES": roles,
                            "KAFKA_LISTENERS": listeners,
                            "KAFKA_ADVERTISED_LISTENERS": f"INTERNAL://{host}:9092,EXTERNAL://localhost:{external}"},
            "volumes": [f"{host}-data:/var/lib/kafka/data"],
            "healthcheck": {"test": ["CMD-SHELL", f"{KAFKA_BIN}/kafka-broker-api-versions.sh --bootstrap-server "
                                                  "localhost:9092 >/dev/null"],
                            "interval": "10s", "timeout": "10s", "retries": 12, "start_period": "30s"},
            "depends_on": {c: {"condition": "service_healthy"} for c in controllers if c != host},
            "deploy": project.deploy(kafka.resources),
        }, volumes=(f"{host}-data",))

    bootstrap = ",".join(f"{b}:9092" for b in brokers)
    project.add_service(f"{name}-init", {
        "image": image, "restart": "no",
        "entrypoint": ["/bin/bash", "-ec"], "command": [topics_script(args, bootstrap)],
        "depends_on": {b: {"condition": "service_healthy"} for b in brokers},
    })
    return KafkaEndpoints(bootstrap_servers=bootstrap, topics=tuple(t.name for t in kafka.topics))

"""Kafka on Kubernetes: the Strimzi operator (Helm chart pinned in versions.yaml, watching only the platform
namespace) and a KRaft cluster declared with Strimzi's `kafka.strimzi.io/v1` resources: one `Kafka`, its
`KafkaNodePool`s (a single dual-role pool when the stack has one broker and one controller; otherwise dedicated
controller and broker pools, with node ids pinned per pool so pod names are stable) and one `KafkaTopic` per
configured topic, managed by the Topic Operator. Every Kafka pod exports JMX metrics for Prometheus (port 9404).

The operator runs with Strimzi's `restricted` pod security provider, so every pod it creates passes the namespace's
`restricted` Pod Security Standard; the Kafka and Topic Operator containers also get a read-only root filesystem
(Strimzi mounts an emptyDir on /tmp for them). Listener network policies admit only pods of the namespace and the
configured client CIDRs. The Kafka version is the platform's (`images.kafka` tag in versions.yaml); it must be one
the pinned Strimzi release supports, or the operator reports it in the `Kafka` status.
"""
from __future__ import annotations

import re

import pulumi
import pulumi_kubernetes as k8s

from components.base import MetricsEndpoint
from components.kafka import KafkaArgs, KafkaEndpoints, topic_config
from components.targets.kubernetes import PART_OF
from stacks.config import Resources

API_VERSION = "kafka.strimzi.io/v1"
PLAIN_PORT, TLS_PORT = 9092, 9093
METRICS_PORT = 9404  # Strimzi's Prometheus JMX exporter port on every Kafka pod
NODE_IDS = {"dual-role": (0, 99), "controller": (0, 99), "broker": (100, 199)}  # stable pod names: <pool>-<id>
JMX_RULES = """\
lowercaseOutputName: true
rules:
  - pattern: kafka.(\\w+)<type=(.+), name=(.+), topic=(.+), partition=(.*)><>Value
    name: kafka_$1_$2_$3
    type: GAUGE
    labels: {topic: "$4", partition: "$5"}
  - pattern: kafka.(\\w+)<type=(.+), name=(.+)PerSec\\w*, topic=(.+)><>Count
    name: kafka_$1_$2_$3_total
    type: COUNTER
    labels: {topic: "$4"}
  - pattern: kafka.(\\w+)<type=(.+), name=(.+)PerSec\\w*><>Count
    name: kafka_$1_$2_$3_total
    type: COUNTER
  - pattern: kafka.network<type=RequestMetrics, name=(.+), request=(.+)><>(Count|Value)
    name: kafka_network_requestmetrics_$1
    labels: {request: "$2"}
  - pattern: kafka.(\\w+)<type=(.+), name=(.+)><>(Count|Value)
    name: kafka_$1_$2_$3
  - pattern: kafka.server<type=raft-metrics><>([a-z-]+)
    name: kafka_server_raftmetrics_$1
    type: GAUGE
"""
OPERATOR_RESOURCES = Resources(cpu="200m", memory="384Mi")  # the chart's own defaults, made explicit
TOPIC_OPERATOR_RESOURCES = Resources(cpu="100m", memory="512Mi")
CONTROLLER_RESOURCES = Resources(cpu="250m", memory="1Gi")  # dedicated controllers only keep the metadata log
CONTROLLER_STORAGE_GB = 20


def metrics_targets(name: str, cluster, pools: list[dict]) -> tuple[str, ...]:
    """Every Kafka pod's exporter, by the stable DNS name Strimzi gives it (`<cluster>-<pool>-<node id>`)."""
    return tuple(f"{name}-{pool['name']}-{NODE_IDS[pool['name']][0] + i}.{cluster.host(f'{name}-kafka-brokers')}"
                 f":{METRICS_PORT}" for pool in pools for i in range(pool["replicas"]))


def kafka_version(image: str) -> str:
    return image.rsplit(":", 1)[1]


def node_pools(kafka) -> list[dict]:
    """The KRaft node pools: one dual-role pool (dev), or dedicated controllers plus brokers."""
    if kafka.brokers == 1 and kafka.controllers == 1:
        return [{"name": "dual-role", "roles": ["controller", "broker"], "replicas": 1,
                 "storage_gb": kafka.storage_gb, "resources": kafka.resources}]
    return [{"name": "controller", "roles": ["controller"], "replicas": kafka.controllers,
             "storage_gb": min(kafka.storage_gb, CONTROLLER_STORAGE_GB), "resources": CONTROLLER_RESOURCES},
            {"name": "broker", "roles": ["broker"], "replicas": kafka.brokers,
             "storage_gb": kafka.storage_gb, "resources": kafka.resources}]


def topic_resource_name(topic: str) -> str:
    """Kafka allows `_` and capitals in topic names, Kubernetes object names do not (the real name is in
    `spec.topicName`)."""
    return re.sub(r"[^a-z0-9.-]", "-", topic.lower()).strip(".-")


def topic_resource_names(topics) -> dict[str, str]:
    """Kubernetes name -> topic name, refusing two topics that would share a Kubernetes name."""
    names: dict[str, str] = {}
    for topic in topics:
        resource = topic_resource_name(topic.name)
        if resource in names:
            raise ValueError(f"services.kafka.topics: {topic.name!r} and {names[resource]!r} map to the same "
                             f"Kubernetes name {resource!r}; rename one of them")
        names[resource] = topic.name
    return names


def typed(config: dict[str, str]) -> dict[str, object]:
    """Topic configs as the KafkaTopic schema expects them: numbers as numbers."""
    return {key: int(value) if value.lstrip("-").isdigit() else value for key, value in config.items()}


def _container_security(cluster) -> dict:
    return {"securityContext": cluster.container_security(read_only_root=True)}


def deploy(name: str, args: KafkaArgs, parent: pulumi.Resource) -> KafkaEndpoints:
    cluster = args.substrate
    kafka = args.settings
    topic_names = topic_resource_names(kafka.topics)  # before anything is created

    operator = cluster.helm_release(f"{name}-operator", args.versions.charts["strimzi"], {
        "watchAnyNamespace": False, "watchNamespaces": [],  # the release namespace only
        "replicas": 2 if cluster.prod else 1, "leaderElection": {"enable": True},
        "resources": cluster.resources(OPERATOR_RESOURCES),
        "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "securityContext": cluster.container_security(read_only_root=True),
        "extraEnvs": [{"name": "STRIMZI_POD_SECURITY_PROVIDER_CLASS", "value": "restricted"}],
        "generateNetworkPolicy": True,
        "labels": {"app.kubernetes.io/part-of": PART_OF},
    }, parent)
    cluster.allow_kube_api(f"{name}-operator", {"strimzi.io/kind": "cluster-operator"}, parent)
    cluster.allow_kube_api(f"{name}-entity-operator", {"strimzi.io/name": f"{name}-entity-operator"}, parent)
    after_operator = cluster.opts(parent, depends_on=[operator])

    def metadata(resource: str, component: str, annotations: dict | None = None) -> dict:
        meta = cluster.metadata(resource, name, component, annotations)
        meta["labels"] = {**meta["labels"], "strimzi.io/cluster": name}
        return meta

    metrics = k8s.core.v1.ConfigMap(f"{name}-metrics", metadata=metadata(f"{name}-metrics", "metrics"),
                                    data={"metrics-config.yml": JMX_RULES}, opts=cluster.opts(parent))
    pools = []
    for pool in node_pools(kafka):
        volume = {"id": 0, "type": "persistent-claim", "size": f"{pool['storage_gb']}Gi", "deleteClaim": False,
                  "kraftMetadata": "shared"}
        if cluster.storage_class_name:
            volume["class"] = cluster.storage_class_name
        pools.append(k8s.apiextensions.CustomResource(
            f"{name}-{pool['name']}", api_version=API_VERSION, kind="KafkaNodePool",
            metadata=metadata(pool["name"], pool["name"],
                              {"strimzi.io/next-node-ids": "[{}-{}]".format(*NODE_IDS[pool["name"]])}),
            spec={"replicas": pool["replicas"], "roles": pool["roles"],
                  "storage": {"type": "jbod", "volumes": [volume]},
                  "resources": cluster.resources(pool["resources"]),
                  "template": {"kafkaContainer": _container_security(cluster)}},
            opts=after_operator))

    peers = [{"podSelector": {}}] + [{"ipBlock": {"cidr": cidr}} for cidr in cluster.settings.allowed_ingress_cidrs]
    replication, min_isr = kafka.replication, kafka.min_isr
    cluster_cr = k8s.apiextensions.CustomResource(
        f"{name}-cluster", api_version=API_VERSION, kind="Kafka",
        metadata=metadata(name, "kafka", {"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": "enabled",
                                          "pulumi.com/waitFor": "condition=Ready",
                                          "pulumi.com/timeoutSeconds": "1800"}),
        spec={
            "kafka": {
                "version": kafka_version(args.versions.image("kafka")),
                "listeners": [
                    {"name": "plain", "port": PLAIN_PORT, "type": "internal", "tls": False,
                     "networkPolicyPeers": peers},
                    {"name": "tls", "port": TLS_PORT, "type": "internal", "tls": True, "networkPolicyPeers": peers},
                ],
                "config": {
                    "default.replication.factor": replication, "min.insync.replicas": min_isr,
                    "offsets.topic.replication.factor": replication,
                    "transaction.state.log.replication.factor": replication,
                    "transaction.state.log.min.isr": min_isr,
                    "auto.create.topics.enable": False,
                },
                "metricsConfig": {"type": "jmxPrometheusExporter", "valueFrom": {"configMapKeyRef": {
                    "name": f"{name}-metrics", "key": "metrics-config.yml"}}},
                "template": {"kafkaContainer": _container_security(cluster)},
            },
            "entityOperator": {
                "topicOperator": {"resources": cluster.resources(TOPIC_OPERATOR_RESOURCES)},
                "template": {"topicOperatorContainer": _container_security(cluster)},
            },
        },
        opts=cluster.opts(parent, depends_on=[operator, metrics, *pools]))

    for resource, topic in zip(topic_names, kafka.topics):
        k8s.apiextensions.CustomResource(
            f"{name}-topic-{resource}", api_version=API_VERSION, kind="KafkaTopic",
            metadata=metadata(resource, "topic", {"pulumi.com/waitFor": "condition=Ready"}),
            spec={"topicName": topic.name, "partitions": topic.partitions,
                  "replicas": topic.replication or replication,
                  "config": typed(topic_config(topic, replication, min_isr))},
            opts=cluster.opts(parent, depends_on=[cluster_cr]))

    return KafkaEndpoints(bootstrap_servers=f"{cluster.host(f'{name}-kafka-bootstrap')}:{PLAIN_PORT}",
                          topics=tuple(t.name for t in kafka.topics),
                          metrics=(MetricsEndpoint("kafka", metrics_targets(name, cluster, node_pools(kafka))),))

"""Kafka on VMs: apache/kafka in KRaft mode, one node per host, advertised on the host's address.

Placement (`layout`): brokers on the first `brokers` hosts with the role `kafka`. Controllers on the first
`controllers` hosts with the role `kafka-controller` when any host has it; otherwise the first `controllers` brokers
also act as controllers (combined `broker,controller` nodes, the dev shape). Node ids come from the host's position
in `vm.hosts` (broker: position + 1, dedicated controller: 1000 + position + 1), so a host keeps its id when hosts
are appended; never reorder or remove a host from the middle of the list (its successors' ids would change, and
Kafka refuses to start on a log dir formatted for another node id). Nodes are applied one after the other (a
rolling restart when their configuration or image changes). A one-shot job creates the topics once every broker
has registered (idempotent: `--if-not-exists`, then `--alter`).
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.kafka import KafkaArgs, KafkaEndpoints
from components.kafka.compose import KAFKA_BIN, cluster_id, topics_script
from components.targets.vm import Container, VmFleet, host_port, mebibytes
from stacks.config import Kafka, Vm, VmHost

BROKER_PORT = 9092
CONTROLLER_PORT = 9093
CONTROLLER_ID_OFFSET = 1000
KAFKA_UID = "1000:1000"  # appuser in the apache/kafka image
WAIT_ATTEMPTS = 60


@dataclass(frozen=True)
class KafkaNode:
    host: VmHost
    node_id: int
    roles: str  # "broker", "controller" or "broker,controller"

    @property
    def service(self) -> str:
        return "kafka-controller" if self.roles == "controller" else "kafka"

    @property
    def is_controller(self) -> bool:
        return "controller" in self.roles


def layout(vm: Vm, kafka: Kafka) -> list[KafkaNode]:
    """Which host runs which node (config validation guarantees enough hosts with each role)."""
    position = {host.name: i + 1 for i, host in enumerate(vm.hosts)}
    brokers = vm.with_role("kafka")[:kafka.brokers]
    dedicated = vm.with_role("kafka-controller")[:kafka.controllers]
    if len(brokers) < kafka.brokers or (dedicated and len(dedicated) < kafka.controllers) or (
            not dedicated and kafka.controllers > kafka.brokers):
        raise ValueError("not enough hosts for the kafka brokers and controllers (see dataplatform:vm.hosts)")
    combined = set() if dedicated else {h.name for h in brokers[:kafka.controllers]}
    nodes = [KafkaNode(h, CONTROLLER_ID_OFFSET + position[h.name], "controller") for h in dedicated]
    nodes += [KafkaNode(h, position[h.name], "broker,controller" if h.name in combined else "broker") for h in brokers]
    return nodes


def ready_port(node: KafkaNode) -> int:
    """The port that says a node is up. Nodes start one after the other, so a change (an image bump) rolls through
    the cluster a node at a time. A controller listens before its quorum forms; a broker serves clients only once
    the quorum runs, so a combined node is ready when its controller listens (its broker needs the next nodes)."""
    return CONTROLLER_PORT if node.is_controller else BROKER_PORT


def heap(memory: str) -> str:
    """Half the container's memory for the JVM heap; the rest is page cache and off-heap buffers."""
    size = max(256, mebibytes(memory) // 2)
    return f"-Xms{size}m -Xmx{size}m"


def node_env(node: KafkaNode, nodes: list[KafkaNode], kafka: Kafka, seed: str) -> dict[str, str]:
    voters = ",".join(f"{n.node_id}@{host_port(n.host.address, CONTROLLER_PORT)}" for n in nodes if n.is_controller)
    listeners = []
    if "broker" in node.roles:
        listeners.append(f"PLAINTEXT://:{BROKER_PORT}")
    if node.is_controller:
        listeners.append(f"CONTROLLER://:{CONTROLLER_PORT}")
    env = {
        "CLUSTER_ID": cluster_id(seed),
        "KAFKA_NODE_ID": str(node.node_id),
        "KAFKA_PROCESS_ROLES": node.roles,
        "KAFKA_CONTROLLER_QUORUM_VOTERS": voters,
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENERS": ",".join(listeners),
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
        "KAFKA_LOG_DIRS": "/var/lib/kafka/data",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
        "KAFKA_DEFAULT_REPLICATION_FACTOR": str(kafka.replication),
        "KAFKA_MIN_INSYNC_REPLICAS": str(kafka.min_isr),
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": str(kafka.replication),
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": str(kafka.replication),
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": str(kafka.min_isr),
        "KAFKA_HEAP_OPTS": heap(kafka.resources.memory),
    }
    if "broker" in node.roles:
        env["KAFKA_ADVERTISED_LISTENERS"] = f"PLAINTEXT://{host_port(node.host.address, BROKER_PORT)}"
    return env


def topics_job(args: KafkaArgs, bootstrap: str) -> str:
    """Wait until every broker has registered (a topic's replicas need them), then create/alter the topics."""
    brokers = args.settings.brokers
    return "\n".join([
        "set -euo pipefail",
        f"for attempt in $(seq 1 {WAIT_ATTEMPTS}); do",
        f"  registered=$({KAFKA_BIN}/kafka-broker-api-versions.sh --bootstrap-server {bootstrap} 2>/dev/null "
        "| grep -c '(id: ' || true)",
        f'  if [ "$registered" -ge {brokers} ]; then break; fi',
        f'  if [ "$attempt" -eq {WAIT_ATTEMPTS} ]; then',
        f'    echo "only $registered of {brokers} brokers registered" >&2; exit 1',
        "  fi",
        "  sleep 5",
        "done",
        topics_script(args, bootstrap),
        "",
    ])


def deploy(name: str, args: KafkaArgs, parent: pulumi.Resource) -> KafkaEndpoints:
    fleet: VmFleet = args.substrate
    kafka = args.settings
    image = args.versions.image("kafka")
    nodes = layout(fleet.settings, kafka)
    seed = f"vm/{pulumi.get_project()}/{pulumi.get_stack()}/{name}"
    units = []
    for node in nodes:  # dedicated controllers first, then brokers
        units.append(fleet.run_service(node.service, node.host, Container(
            image=image, env=node_env(node, nodes, kafka, seed), volumes={node.service: "/var/lib/kafka/data"},
            data_owner=KAFKA_UID, memory=kafka.resources.memory, ready_port=ready_port(node)),
            parent=parent, depends_on=units[-1:]))
    broker_hosts = [n.host for n in nodes if "broker" in n.roles]
    bootstrap = ",".join(host_port(h.address, BROKER_PORT) for h in broker_hosts)
    fleet.run_job(f"{name}-topics", broker_hosts[0], image, topics_job(args, bootstrap), shell="/bin/bash",
                  parent=parent, depends_on=units)
    return KafkaEndpoints(bootstrap_servers=bootstrap, topics=tuple(t.name for t in kafka.topics))

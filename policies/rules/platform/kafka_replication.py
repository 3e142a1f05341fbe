"""In prod, Kafka survives the loss of a broker without losing acknowledged writes: replication factor >= 3 and
min.insync.replicas >= 2, for the cluster defaults and for every topic. Applies to compose and VM brokers,
Strimzi on Kubernetes and MSK; the environment is the stack's `environment` output (or its resources' tag)."""
from policies.facts import kafka
from policies.rule import Severity, stack_rule


def check(stack, config):
    if stack.environment not in config["environments"]:
        return
    least_replication, least_isr = config["minReplication"], config["minInsyncReplicas"]
    for cluster in kafka.clusters(stack):
        if (cluster.replication or 1) < least_replication:
            yield (f"{cluster.label}: default replication factor is {cluster.replication or 'unset (1)'}, "
                   f"below {least_replication}", cluster.resource.urn)
        if (cluster.min_isr or 1) < least_isr:
            yield (f"{cluster.label}: min.insync.replicas is {cluster.min_isr or 'unset (1)'}, below {least_isr}",
                   cluster.resource.urn)
    for topic in kafka.topics(stack):
        if topic.replication is not None and topic.replication < least_replication:
            yield (f"topic {topic.name}: replication factor {topic.replication} < {least_replication}",
                   topic.resource.urn)
        isr = topic.config.get("min.insync.replicas")
        if isr is not None and int(isr) < least_isr:
            yield f"topic {topic.name}: min.insync.replicas {isr} < {least_isr}", topic.resource.urn


policy = stack_rule(
    name="kafka-replication", domain="platform", severity=Severity.HIGH, check=check,
    description="In prod, Kafka replicates every partition 3 times and requires 2 in-sync replicas per write.",
    remediation="In the stack file set services.kafka.brokers >= 3, default_replication: 3 and "
                "min_insync_replicas: 2, and remove topic-level `replication` overrides below 3.",
    config={"environments": {"type": "array", "items": {"type": "string"}, "default": ["prod"]},
            "minReplication": {"type": "integer", "default": 3},
            "minInsyncReplicas": {"type": "integer", "default": 2}})

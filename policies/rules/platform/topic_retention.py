"""Every Kafka topic the platform creates states its retention (time or size), so disk use is bounded by a
decision rather than by the broker default; compacted topics are bounded by their key space instead."""
from policies.facts import kafka
from policies.rule import Severity, stack_rule


def check(stack, config):
    for topic in kafka.topics(stack):
        if topic.config.get("cleanup.policy", "delete") == "compact":
            continue
        retention = {k: topic.config.get(k) for k in ("retention.ms", "retention.bytes") if topic.config.get(k)}
        if not retention:
            yield f"topic {topic.name} sets no retention.ms or retention.bytes", topic.resource.urn
        elif all(str(v).strip() == "-1" for v in retention.values()):
            yield f"topic {topic.name} keeps data forever (retention -1)", topic.resource.urn


policy = stack_rule(
    name="kafka-topic-retention", domain="platform", severity=Severity.MEDIUM, check=check,
    description="Kafka topics (other than compacted ones) set a bounded retention.ms or retention.bytes.",
    remediation="Declare the topic in the stack file with retention_hours (the platform passes it as retention.ms "
                "on every target), or use cleanup_policy: compact for changelog topics.")

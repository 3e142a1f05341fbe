"""Container images are pinned (an explicit version tag or a digest), so a deploy is repeatable and a rollout
changes only what versions.yaml changed."""
from policies.facts.images import FLOATING_TAGS, unpinned_reason
from policies.facts.kubernetes import WORKLOAD_TYPES, containers
from policies.rule import Severity, resource_rule


def check(workload, config):
    for label, container in containers(workload):
        if (reason := unpinned_reason(container.get("image"), config["floatingTags"])) is not None:
            yield f"{label} image {container.get('image')!r}: {reason}"


policy = resource_rule(
    name="k8s-pinned-images", domain="kubernetes", severity=Severity.MEDIUM, check=check, applies=WORKLOAD_TYPES,
    description="Kubernetes container images are pinned to a version tag or digest (no :latest).",
    remediation="Pin the image in versions.yaml (e.g. apache/kafka:4.1.1) and take it from there.",
    config={"floatingTags": {"type": "array", "items": {"type": "string"}, "default": list(FLOATING_TAGS)}})

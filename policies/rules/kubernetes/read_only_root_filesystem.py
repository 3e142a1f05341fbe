"""Containers cannot write to their image's filesystem: state goes to volumes, scratch to an emptyDir."""
from policies.facts.kubernetes import WORKLOAD_TYPES, containers
from policies.rule import Severity, resource_rule


def check(workload, config):
    for label, container in containers(workload):
        if (container.get("securityContext") or {}).get("readOnlyRootFilesystem") is not True:
            yield f"{label} has a writable root filesystem"


policy = resource_rule(
    name="k8s-read-only-root-filesystem", domain="kubernetes", severity=Severity.MEDIUM, check=check,
    applies=WORKLOAD_TYPES,
    description="Kubernetes containers use a read-only root filesystem.",
    remediation="Set securityContext.readOnlyRootFilesystem=True and mount an emptyDir at the paths the process "
                "writes to (/tmp, caches).")

"""Containers run as a non-root user, so a container escape does not start as root on the node."""
from policies.facts.kubernetes import WORKLOAD_TYPES, containers, pod_spec
from policies.rule import Severity, resource_rule


def _non_root(context: dict) -> bool | None:
    """True/False when the security context decides, None when it says nothing."""
    if context.get("runAsUser") == 0 or context.get("runAsNonRoot") is False:
        return False
    if context.get("runAsNonRoot") is True or (context.get("runAsUser") or 0) > 0:
        return True
    return None


def check(workload, config):
    pod = _non_root(pod_spec(workload).get("securityContext") or {})
    for label, container in containers(workload):
        decided = _non_root(container.get("securityContext") or {})
        if (decided if decided is not None else pod) is not True:
            yield f"{label} may run as root (set runAsNonRoot: true or a non-zero runAsUser)"


policy = resource_rule(
    name="k8s-non-root", domain="kubernetes", severity=Severity.HIGH, check=check, applies=WORKLOAD_TYPES,
    description="Kubernetes containers run as a non-root user.",
    remediation="Set securityContext.runAsNonRoot=True and runAsUser/runAsGroup (e.g. 1000) on the pod or the "
                "container; use an image that does not need root.")

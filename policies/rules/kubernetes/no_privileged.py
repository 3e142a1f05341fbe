"""No container runs privileged or with the capabilities that amount to it."""
from policies.facts.kubernetes import WORKLOAD_TYPES, containers
from policies.rule import Severity, resource_rule

ROOT_EQUIVALENT = {"ALL", "SYS_ADMIN", "CAP_SYS_ADMIN"}


def check(workload, config):
    for label, container in containers(workload):
        context = container.get("securityContext") or {}
        if context.get("privileged") is True:
            yield f"{label} is privileged"
        added = {str(c).upper() for c in (context.get("capabilities") or {}).get("add") or []}
        if added & ROOT_EQUIVALENT:
            yield f"{label} adds capabilities {sorted(added & ROOT_EQUIVALENT)}"
        if context.get("allowPrivilegeEscalation") is True:
            yield f"{label} allows privilege escalation"


policy = resource_rule(
    name="k8s-no-privileged", domain="kubernetes", severity=Severity.CRITICAL, check=check, applies=WORKLOAD_TYPES,
    description="Kubernetes containers are not privileged, add no SYS_ADMIN/ALL capabilities and do not allow "
                "privilege escalation.",
    remediation="Remove privileged/allowPrivilegeEscalation, drop ALL capabilities and add back only the ones the "
                "process needs (e.g. NET_BIND_SERVICE).")

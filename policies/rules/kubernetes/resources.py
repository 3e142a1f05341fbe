"""Every container states what it needs (CPU and memory requests) and a memory limit, so the scheduler can place
it and one runaway process cannot starve its node. A CPU limit is optional (throttling hurts more than it helps)."""
from policies.facts.kubernetes import WORKLOAD_TYPES, containers
from policies.rule import Severity, resource_rule


def check(workload, config):
    for label, container in containers(workload):
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        missing = [f"requests.{k}" for k in ("cpu", "memory") if k not in requests]
        limited = ("memory", "cpu") if config["requireCpuLimit"] else ("memory",)
        missing += [f"limits.{k}" for k in limited if k not in limits]
        if missing:
            yield f"{label} has no {', '.join(missing)}"


policy = resource_rule(
    name="k8s-resources", domain="kubernetes", severity=Severity.MEDIUM, check=check, applies=WORKLOAD_TYPES,
    description="Kubernetes containers set CPU and memory requests and a memory limit.",
    remediation="Set resources.requests.cpu/memory and resources.limits.memory on every container (the platform "
                "takes them from services.<name>.resources in the stack file).",
    config={"requireCpuLimit": {"type": "boolean", "default": False}})

"""Long-running containers have readiness and liveness probes: traffic waits until they are ready, and a hung
process is restarted."""
from policies.facts.kubernetes import LONG_RUNNING_TYPES, containers
from policies.rule import Severity, resource_rule


def check(workload, config):
    for label, container in containers(workload, init=False):
        missing = [p for p in config["probes"] if not container.get(p)]
        if missing:
            yield f"{label} has no {', '.join(missing)}"


policy = resource_rule(
    name="k8s-probes", domain="kubernetes", severity=Severity.MEDIUM, check=check, applies=LONG_RUNNING_TYPES,
    description="Containers of Deployments, StatefulSets and DaemonSets have readiness and liveness probes.",
    remediation="Add readinessProbe and livenessProbe (httpGet on the health endpoint, or tcpSocket on the service "
                "port); add a startupProbe for slow starters such as Kafka or the JVM engines.",
    config={"probes": {"type": "array", "items": {"type": "string"},
                       "default": ["readinessProbe", "livenessProbe"]}})

"""Long-running compose services have a healthcheck: `docker compose up --wait` and `depends_on:
service_healthy` rely on it, and without one a broken service counts as started."""
from policies.facts.compose import COMMAND_TYPES, is_one_shot, project_of
from policies.rule import Severity, resource_rule


def check(command, config):
    if (project := project_of(command)) is None:
        return
    for name, spec in project.services.items():
        if is_one_shot(spec):
            continue
        healthcheck = spec.get("healthcheck") or {}
        if not healthcheck.get("test") or healthcheck.get("disable") is True or healthcheck.get("test") == ["NONE"]:
            yield f"service {name} has no healthcheck"


policy = resource_rule(
    name="compose-healthchecks", domain="compose", severity=Severity.MEDIUM, check=check, applies=COMMAND_TYPES,
    description="Long-running compose services define a healthcheck.",
    remediation="Add healthcheck: {test: [...], interval, timeout, retries, start_period} probing the service's "
                "own health endpoint or port; one-shot jobs set restart: 'no' instead.")

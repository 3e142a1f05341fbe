"""Every compose service says what happens when it stops: long-running services come back after a crash or a
host reboot, one-shot jobs do not loop."""
from policies.facts.compose import COMMAND_TYPES, project_of, restart_of
from policies.rule import Severity, resource_rule

VALID = ("no", "always", "unless-stopped", "on-failure")


def check(command, config):
    if (project := project_of(command)) is None:
        return
    for name, spec in project.services.items():
        restart = restart_of(spec)
        if restart is None:
            yield f"service {name} has no restart policy (the default `no` leaves it down after a crash or reboot)"
        elif not restart.startswith(VALID):
            yield f"service {name} has an invalid restart policy {restart!r}"


policy = resource_rule(
    name="compose-restart-policy", domain="compose", severity=Severity.MEDIUM, check=check, applies=COMMAND_TYPES,
    description="Compose services declare a restart policy (unless-stopped for services, no for one-shot jobs).",
    remediation="Set restart: unless-stopped on long-running services and restart: 'no' on init jobs.")

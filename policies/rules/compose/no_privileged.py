"""No compose service runs privileged or with root-equivalent capabilities, the host's PID namespace or the Docker
socket: each of those hands the host to the container."""
from policies.facts.compose import COMMAND_TYPES, project_of, volume_mounts
from policies.rule import Severity, resource_rule

ROOT_EQUIVALENT = {"ALL", "SYS_ADMIN", "CAP_SYS_ADMIN"}


def check(command, config):
    if (project := project_of(command)) is None:
        return
    for name, spec in project.services.items():
        if spec.get("privileged") is True:
            yield f"service {name} is privileged"
        added = {str(c).upper() for c in spec.get("cap_add") or []}
        if added & ROOT_EQUIVALENT:
            yield f"service {name} adds capabilities {sorted(added & ROOT_EQUIVALENT)}"
        if spec.get("pid") == "host":
            yield f"service {name} shares the host's PID namespace"
        if any(source.endswith("docker.sock") for _, source, _ in volume_mounts(spec)):
            yield f"service {name} mounts the Docker socket"


policy = resource_rule(
    name="compose-no-privileged", domain="compose", severity=Severity.CRITICAL, check=check, applies=COMMAND_TYPES,
    description="Compose services are not privileged, add no SYS_ADMIN/ALL capabilities, do not share the host "
                "PID namespace and do not mount the Docker socket.",
    remediation="Remove privileged/cap_add/pid: host and the docker.sock mount; add only the specific capability "
                "the process needs.")

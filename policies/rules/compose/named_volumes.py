"""Compose services keep state in named volumes declared by the project, not in host directories: named volumes
survive `docker compose down`, are listed by `docker volume ls`, and do not depend on the host's paths or uid."""
from policies.facts.compose import COMMAND_TYPES, is_one_shot, project_of, volume_mounts
from policies.rule import Severity, resource_rule


def check(command, config):
    if (project := project_of(command)) is None:
        return
    for name, spec in project.services.items():
        for kind, source, target in volume_mounts(spec):
            if kind == "bind" and not source.endswith("docker.sock") and not is_one_shot(spec):
                yield f"service {name} keeps {target} in host directory {source}"
            elif kind == "volume" and not source:
                yield f"service {name} keeps {target} in an anonymous volume (lost on `docker compose down -v`/rm)"
            elif kind == "volume" and source not in project.named_volumes:
                yield f"service {name} mounts volume {source}, which the project does not declare"


policy = resource_rule(
    name="compose-named-volumes", domain="compose", severity=Severity.MEDIUM, check=check, applies=COMMAND_TYPES,
    description="Long-running compose services keep state in named volumes declared in the project.",
    remediation="Mount `<service>-data:/path` and declare it under the top-level `volumes:` (ComposeProject."
                "add_service(..., volumes=(...)) does both); pass files through `configs:` instead of bind mounts.")

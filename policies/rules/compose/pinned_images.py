"""Compose services use pinned images, so `docker compose up` on another day starts the same versions."""
from policies.facts.compose import COMMAND_TYPES, project_of
from policies.facts.images import FLOATING_TAGS, unpinned_reason
from policies.rule import Severity, resource_rule


def check(command, config):
    if (project := project_of(command)) is None:
        return
    for name, spec in project.services.items():
        if "image" not in spec and "build" in spec:
            yield f"service {name} builds its image at deploy time instead of using a pinned one"
        elif (reason := unpinned_reason(spec.get("image"), config["floatingTags"])) is not None:
            yield f"service {name} image {spec.get('image')!r}: {reason}"


policy = resource_rule(
    name="compose-pinned-images", domain="compose", severity=Severity.MEDIUM, check=check, applies=COMMAND_TYPES,
    description="Compose services use images pinned to a version tag or digest (no :latest, no build at deploy).",
    remediation="Pin the image in versions.yaml and take it from `versions.image(...)` in the adapter.",
    config={"floatingTags": {"type": "array", "items": {"type": "string"}, "default": list(FLOATING_TAGS)}})

"""Compose projects: the compose target applies ONE rendered compose file through a command's stdin; the VM target
may apply one per host the same way. This module finds and parses them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from policies.rule import ResourceView

COMMAND_TYPES = ("command:local:Command", "command:remote:Command")
ONE_SHOT_RESTARTS = ("no", "on-failure")


@dataclass
class ComposeProject:
    resource: ResourceView
    document: dict[str, Any]

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        return {name: spec or {} for name, spec in (self.document.get("services") or {}).items()}

    @property
    def named_volumes(self) -> set[str]:
        return set((self.document.get("volumes") or {}).keys())


def project_of(resource: ResourceView) -> ComposeProject | None:
    """The compose project a command applies (its stdin is a compose document), or None."""
    if resource.type not in COMMAND_TYPES:
        return None
    stdin = resource.props.get("stdin")
    if not isinstance(stdin, str) or "services:" not in stdin:
        return None
    try:
        document = yaml.safe_load(stdin)
    except yaml.YAMLError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
        return None
    return ComposeProject(resource, document)


def restart_of(spec: dict[str, Any]) -> str | None:
    restart = spec.get("restart")
    if restart is False:  # YAML 1.1 reads an unquoted `no` as false
        return "no"
    return restart if isinstance(restart, str) else None


def is_one_shot(spec: dict[str, Any]) -> bool:
    """Init jobs (bucket creation, migrations, topic creation) run once and exit; everything else stays up."""
    restart = restart_of(spec)
    return restart is not None and restart.startswith(ONE_SHOT_RESTARTS)


def volume_mounts(spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(type, source, target) per mount: type is `volume` (named), `bind` (host path) or `tmpfs`."""
    mounts = []
    for entry in spec.get("volumes") or []:
        if isinstance(entry, dict):
            kind = entry.get("type", "volume")
            mounts.append((kind, str(entry.get("source", "")), str(entry.get("target", ""))))
            continue
        parts = str(entry).split(":")
        if len(parts) == 1:
            mounts.append(("volume", "", parts[0]))  # anonymous volume
            continue
        source, target = parts[0], parts[1]
        kind = "bind" if source.startswith(("/", ".", "~", "$")) else "volume"
        mounts.append((kind, source, target))
    return mounts

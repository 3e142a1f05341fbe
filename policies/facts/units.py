"""Services on VMs: the vm target applies one systemd unit per service (`dpctl unit-apply`, the unit text on the
command's stdin) around `docker run --network host`; this module reads them back."""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from policies.rule import ResourceView

_DESCRIPTION = re.compile(r"^Description=dataplatform (\S+) \((\S+)\)", re.MULTILINE)
_EXEC_START = re.compile(r"^ExecStart=(.*)$", re.MULTILINE)
CONFIG_DIR = "/etc/"


@dataclass
class Unit:
    resource: ResourceView
    service: str
    image: str
    host: str | None
    data_paths: list[str]


def unit_of(resource: ResourceView) -> Unit | None:
    if resource.type != "command:remote:Command":
        return None
    text = resource.props.get("stdin")
    if not isinstance(text, str) or "[Service]" not in text or not (match := _DESCRIPTION.search(text)):
        return None
    data = []
    if start := _EXEC_START.search(text):
        try:
            words = shlex.split(start.group(1).replace("$$", "$").replace("%%", "%"))
        except ValueError:
            words = []
        for flag, value in zip(words, words[1:]):
            if flag in ("--volume", "-v") and not value.startswith(CONFIG_DIR) and value.startswith("/"):
                data.append(value.split(":", 1)[0])
    return Unit(resource, match.group(1), match.group(2), resource.get("connection.host"), data)

"""Secrets never appear in command strings: a command line is visible in `ps`, shell history, audit logs and
Pulumi's diff. Generated secrets travel to hosts via the command's `environment` or `stdin` as Pulumi secrets.
Covers remote commands (VMs over SSH) and local ones (the compose apply)."""
import re

from policies.rule import Severity, resource_rule

COMMAND_TYPES = ("command:remote:Command", "command:local:Command")
FIELDS = ("create", "update", "delete", "read")
# A reference ($VAR, ${VAR}) is how a secret should be passed; a path (/run/secrets/x) points at one.
_NOT_A_VALUE = r"(?![$'\"]?[$/])"
LITERALS = [
    re.compile(r"(?i)\b[\w-]*(password|passwd|secret|token|api[_-]?key)[\w-]*\s*=\s*" + _NOT_A_VALUE +
               r"['\"]?[^\s'\"$;&|]{4,}"),
    re.compile(r"(?i)--(password|passwd|secret|token|api-key)[= ]" + _NOT_A_VALUE + r"['\"]?[^\s'\"$;&|]{4,}"),
    re.compile(r"://[^/\s:@$]+:" + _NOT_A_VALUE + r"[^@\s$]{4,}@"),  # credentials in a URL
]


def check(command, config):
    for field in FIELDS:
        text = command.props.get(field)
        if not isinstance(text, str):
            continue
        if command.is_secret(field):
            yield f"the {field} command contains a Pulumi secret (it was interpolated into the command line)"
        elif any(pattern.search(text) for pattern in LITERALS):
            yield f"the {field} command contains what looks like a literal credential"


policy = resource_rule(
    name="vm-no-secrets-in-commands", domain="vm", severity=Severity.CRITICAL, check=check, applies=COMMAND_TYPES,
    description="Command strings (create/update/delete) contain no secrets, interpolated or literal.",
    remediation="Pass the secret through the command's `environment` (e.g. environment={'DB_PASSWORD': secret}) and "
                "reference it as \"$DB_PASSWORD\" in the script, or write it to the host via `stdin`.")

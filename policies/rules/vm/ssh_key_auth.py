"""Hosts are reached over SSH with a key (or an agent holding one), never a password."""
from policies.rule import Severity, resource_rule

REMOTE_TYPES = ("command:remote:Command", "command:remote:CopyToRemote", "command:remote:CopyFile")


def _problems(connection: dict, where: str):
    if connection.get("password"):
        yield f"{where} authenticates with a password"
    if not connection.get("privateKey") and not connection.get("agentSocketPath"):
        yield f"{where} has no private key (connection.private_key)"


def check(command, config):
    connection = command.props.get("connection") or {}
    yield from _problems(connection, "the SSH connection")
    if isinstance(connection.get("proxy"), dict):
        yield from _problems(connection["proxy"], "the SSH proxy (bastion) connection")


policy = resource_rule(
    name="vm-ssh-key-auth", domain="vm", severity=Severity.HIGH, check=check, applies=REMOTE_TYPES,
    description="Remote commands connect over SSH with a private key and no password.",
    remediation="Set connection.private_key from the host's `private_key` (a Pulumi secret in the stack file: "
                "`pulumi config set --secret`) and remove connection.password; disable PasswordAuthentication on the "
                "hosts.")

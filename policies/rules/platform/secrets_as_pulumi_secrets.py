"""Credentials exist only as Pulumi secrets: encrypted in the state, masked in every diff and log. A value under a
credential-like name (password, secret, token, private key, kubeconfig ...) that is plain text in a resource's
properties, in a rendered compose file, in a container's env or in a stack output is a violation."""
import re

from policies.facts import compose
from policies.facts.kubernetes import WORKLOAD_TYPES, containers
from policies.rule import Severity, stack_rule

CREDENTIAL = re.compile(r"(?i)(password|passwd|secret|token|private_?key|api_?key|access_?key|credential|"
                        r"kubeconfig|encryption_?key)")
NOT_A_VALUE = re.compile(r"(?i)(name|ref|refs|arn|path|file|id|ids|provider|type|enabled|length|"
                         r"version|rotation\w*|days|seconds)$")
SKIP_TYPES = ("kubernetes:core/v1:Secret", "random:")  # Secret data is always a secret; random's inputs are sizes
REFERENCE = re.compile(r"^\$\{?[A-Za-z_][A-Za-z0-9_]*(:[?-][^}]*)?\}?$")
URL_PASSWORD = re.compile(r"://[^/\s:@]+:([^@\s]+)@")


def _credential_value(key: str, value) -> bool:
    """A credential-named key with a literal value, or any value that is a URL with a literal password."""
    if not isinstance(value, str) or not value.strip() or value.strip().lower() in ("true", "false") or \
            value.strip().isdigit():
        return False
    if (url := URL_PASSWORD.search(value)) and REFERENCE.match(url.group(1)) is None:
        return True
    return (CREDENTIAL.search(key) is not None and NOT_A_VALUE.search(key) is None
            and REFERENCE.match(value.strip()) is None)


def _walk(value, path=""):
    if isinstance(value, dict):
        for key, child in value.items():
            sub = f"{path}.{key}" if path else str(key)
            yield sub, str(key), child
            yield from _walk(child, sub)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _walk(child, f"{path}[{i}]")


def check(stack, config):
    for resource in stack.resources:
        if resource.type.startswith(SKIP_TYPES):
            continue
        where = "stack output" if resource.type == "pulumi:pulumi:Stack" else resource.label
        for path, key, value in _walk(resource.props):
            if _credential_value(key, value) and not resource.is_secret(path):
                yield f"{where}: {path} is plain text", resource.urn
        if resource.type in WORKLOAD_TYPES:
            for label, container in containers(resource):
                for env in container.get("env") or []:
                    if _credential_value(env.get("name", ""), env.get("value")):
                        yield (f"{resource.label}: {label} env {env['name']} is a literal value, not a Secret "
                               "reference", resource.urn)
        if (project := compose.project_of(resource)) is not None:
            for name, spec in project.services.items():
                env = spec.get("environment") or {}
                pairs = env.items() if isinstance(env, dict) else (str(e).partition("=")[::2] for e in env)
                for key, value in pairs:
                    if _credential_value(str(key), value if isinstance(value, str) else None):
                        yield (f"{resource.label}: compose service {name} sets {key} in plain text in the "
                               "compose file", resource.urn)


policy = stack_rule(
    name="secrets-as-pulumi-secrets", domain="platform", severity=Severity.CRITICAL, check=check,
    description="Credentials appear only as Pulumi secrets: in resource properties, rendered compose files, "
                "container env and stack outputs.",
    remediation="Wrap the value with pulumi.Output.secret(...) (or generate it with pulumi-random), pass it to "
                "containers through a Kubernetes Secret (env valueFrom.secretKeyRef) or to compose as an "
                "environment variable of the apply command (`ComposeProject.secret`), and export credentials only "
                "as secret outputs.")

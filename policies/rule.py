"""How a policy is written: a `check` over plain views of the resources, wrapped as a pulumi-policy policy.

A rule module (`rules/<domain>/<name>.py`) defines `check` and `policy = resource_rule(...)` or `stack_rule(...)`.
`check` yields violation messages (resource rules) or `(message, urn)` pairs (stack rules); it never touches the
SDK's proxies. Every policy carries a description, a severity, a remediation hint and its domain; its enforcement
level comes from the policy config (see `levels`), never from the rule.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from pulumi_policy import (PolicyConfigSchema, ResourceValidationArgs, ResourceValidationPolicy, Severity,
                           StackValidationArgs, StackValidationPolicy)
from pulumi_policy.proxy import UnknownValueError, _is_unknown

from policies.wire import plain

__all__ = ["Severity", "ResourceView", "StackView", "resource_rule", "stack_rule"]

DOMAINS = ("aws", "kubernetes", "compose", "vm", "platform")
_PATH = re.compile(r"[^.\[\]]+|\[\d+\]")


@dataclass
class ResourceView:
    """One resource as a rule reads it: plain props (inputs for resource rules, outputs for stack rules)."""
    type: str
    name: str
    urn: str
    props: dict[str, Any]
    secrets: set[str] = field(default_factory=set)
    parent_urn: str | None = None
    dependencies: list[str] = field(default_factory=list)  # URNs
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    provider_props: dict[str, Any] = field(default_factory=dict)

    def get(self, path: str, default: Any = None) -> Any:
        """`spec.template.spec` or `ingress[0].cidrBlocks`; an unknown value (preview) raises UnknownValueError,
        which the SDK reports as "can't run policy during preview" rather than as a violation."""
        value: Any = self.props
        for part in _PATH.findall(path):
            if part.startswith("["):
                index = int(part[1:-1])
                if not isinstance(value, list) or index >= len(value):
                    return default
                value = value[index]
            elif isinstance(value, dict) and part in value:
                value = value[part]
            else:
                return default
            if _is_unknown(value):
                raise UnknownValueError(value, path.split("."))
        return value

    def is_secret(self, path: str) -> bool:
        """Whether the value at `path` is (inside) a Pulumi secret (the secret path "" is the whole value)."""
        return any(not s or path == s or path.startswith((s + ".", s + "[")) for s in self.secrets)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.type})"


@dataclass
class StackView:
    """Every resource of the stack (the root `pulumi:pulumi:Stack` one carries the stack outputs)."""
    resources: list[ResourceView]

    def __post_init__(self) -> None:
        self._by_urn = {r.urn: r for r in self.resources}

    def of_type(self, *types: str) -> list[ResourceView]:
        return [r for r in self.resources if r.type in types]

    def by_urn(self, urn: str | None) -> ResourceView | None:
        return self._by_urn.get(urn) if urn else None

    @property
    def outputs(self) -> ResourceView | None:
        stacks = self.of_type("pulumi:pulumi:Stack")
        return stacks[0] if stacks else None

    @property
    def environment(self) -> str | None:
        """The stack's environment: its `environment` output (the stack program exports it), else the
        `environment` tag its AWS resources carry."""
        if self.outputs and isinstance(self.outputs.props.get("environment"), str):
            return self.outputs.props["environment"]
        for resource in self.resources:
            tags = resource.props.get("tags")
            if isinstance(tags, dict) and isinstance(tags.get("environment"), str):
                return tags["environment"]
        return None


def view_of_args(args: ResourceValidationArgs) -> ResourceView:
    props, secrets = plain(args.props)
    provider = plain(args.provider.props)[0] if args.provider is not None else {}
    return ResourceView(type=args.resource_type, name=args.name, urn=args.urn, props=props, secrets=secrets,
                        parent_urn=args.opts.parent if args.opts else None, provider_props=provider)


def view_of_stack(args: StackValidationArgs) -> StackView:
    views = []
    for resource in args.resources:
        props, secrets = plain(resource.props)
        provider = plain(resource.provider.props)[0] if resource.provider is not None else {}
        views.append(ResourceView(
            type=resource.resource_type, name=resource.name, urn=resource.urn, props=props, secrets=secrets,
            parent_urn=resource.parent.urn if resource.parent is not None else None,
            dependencies=[d.urn for d in resource.dependencies],
            property_dependencies={k: [d.urn for d in v] for k, v in resource.property_dependencies.items()},
            provider_props=provider))
    return StackView(views)


def _settings(schema: dict[str, dict] | None, given: Any) -> dict[str, Any]:
    settings = {key: spec["default"] for key, spec in (schema or {}).items() if "default" in spec}
    settings.update(plain(given)[0] if given else {})
    return settings


def _common(name: str, description: str, severity: Severity, remediation: str, domain: str,
            config: dict[str, dict] | None) -> dict[str, Any]:
    if domain not in DOMAINS:
        raise ValueError(f"policy {name}: unknown domain {domain!r}")
    if not remediation.strip():
        raise ValueError(f"policy {name}: a remediation hint is required")
    return {"name": name, "description": description, "severity": severity, "remediation_steps": remediation,
            "tags": [domain], "config_schema": PolicyConfigSchema(config) if config else None}


def resource_rule(*, name: str, description: str, severity: Severity, remediation: str, domain: str,
                  applies: Callable[[str], bool] | Iterable[str], check: Callable[[ResourceView, dict], Iterator[str]],
                  config: dict[str, dict] | None = None) -> ResourceValidationPolicy:
    """A per-resource policy; `applies` is a set of type tokens or a predicate on the type token."""
    wanted = applies if callable(applies) else frozenset(applies).__contains__

    def validate(args: ResourceValidationArgs, report) -> None:
        if not wanted(args.resource_type):
            return
        for message in check(view_of_args(args), _settings(config, args.get_config())):
            report(message, None)

    return ResourceValidationPolicy(validate=validate, **_common(name, description, severity, remediation, domain,
                                                                  config))


def stack_rule(*, name: str, description: str, severity: Severity, remediation: str, domain: str,
               check: Callable[[StackView, dict], Iterator[tuple[str, str | None]]],
               config: dict[str, dict] | None = None) -> StackValidationPolicy:
    """A policy over the whole stack (resources with their props, parents and dependencies)."""

    def validate(args: StackValidationArgs, report) -> None:
        for message, urn in check(view_of_stack(args), _settings(config, args.get_config())):
            report(message, urn)

    return StackValidationPolicy(validate=validate, **_common(name, description, severity, remediation, domain,
                                                               config))

"""The policy pack, offline: every policy over a captured graph (`stacks.offline.capture`), without the CLI.

Resource policies get each resource's inputs, stack policies every resource plus the root `pulumi:pulumi:Stack`
carrying the stack outputs, both decoded from the same wire format and with the same secret markers as in the
served pack (`policies.wire`). Levels and settings come from the environment's config file (`policies.levels`),
merged as the engine merges them. `dp plan` prints the report; exit 1 when a mandatory policy is violated.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pulumi_policy import (EnforcementLevel, PolicyCustomTimeouts, PolicyProviderResource, PolicyResource,
                           PolicyResourceOptions, ResourceValidationArgs, ResourceValidationPolicy, Secret,
                           StackValidationArgs, StackValidationPolicy)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from policies import catalog, levels
from policies.wire import from_wire

STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class Violation:
    policy: str
    resource: str  # resource name, or "(stack)" for a stack-wide violation
    level: str  # "mandatory" | "advisory"
    message: str
    severity: str
    remediation: str
    urn: str | None = None

    def to_json(self) -> dict[str, str]:
        """The `dp plan --json` shape (exact keys)."""
        return {"policy": self.policy, "resource": self.resource, "level": self.level, "message": self.message}


@dataclass
class Report:
    environment: str | None
    config_file: Path
    policies_evaluated: int
    violations: list[Violation] = field(default_factory=list)

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    def of(self, policy: str) -> list[Violation]:
        return [v for v in self.violations if v.policy == policy]


def evaluate(graph, environment: str | None = None, config_file: str | Path | None = None) -> Report:
    """Run every enabled policy over `graph`; levels from `config_file` or the environment's file."""
    policies = catalog.all_policies()
    path = Path(config_file) if config_file else levels.config_file(environment)
    settings = levels.reconcile(policies, levels.load(path, policies))
    enabled = [p for p in policies if settings[p.name].level != EnforcementLevel.DISABLED]
    report = Report(environment, path, policies_evaluated=len(enabled))
    stack_resource, resources = _policy_resources(graph)
    names = {r.urn: r.name for r in resources}
    for policy in enabled:
        setting = settings[policy.name]
        level = "advisory" if setting.level == EnforcementLevel.ADVISORY else "mandatory"

        def reporter(default_urn: str | None) -> Callable[..., None]:
            def report_violation(message: str, urn: str | None = None) -> None:
                target = urn or default_urn
                report.violations.append(Violation(
                    policy.name, names.get(target, "(stack)") if target else "(stack)", level, message,
                    policy.severity.value if policy.severity else "", policy.remediation_steps or "", target))
            return report_violation

        if isinstance(policy, ResourceValidationPolicy):
            for resource in resources:
                args = ResourceValidationArgs(resource.resource_type, resource.props, resource.urn, resource.name,
                                              resource.opts, resource.provider, dict(setting.properties), {})
                _run(policy, args, reporter(resource.urn))
        elif isinstance(policy, StackValidationPolicy):
            args = StackValidationArgs([stack_resource, *resources], dict(setting.properties), {})
            _run(policy, args, reporter(None))
    return report


def _run(policy, args, report_violation) -> None:
    try:
        policy.validate(args, report_violation)
    except (UnknownValueError, _NotApplicableError):
        pass  # as the SDK does: not a violation (unknown values only occur in a real preview)
    except Exception as error:
        name = getattr(args, "name", "the stack")
        raise RuntimeError(f"policy {policy.name} failed on {name}: {error!r}") from error


def _policy_resources(graph) -> tuple[PolicyResource, list[PolicyResource]]:
    """The graph as the engine would hand it to the pack: props in wire format, parents and dependencies linked."""
    project = graph.resources[0].urn.split("::")[1] if graph.resources else "dataplatform"
    stack = PolicyResource(STACK_TYPE, unknown_checking_proxy(_outputs(graph)),
                           f"urn:pulumi:{graph.stack}::{project}::{STACK_TYPE}::{project}-{graph.stack}",
                           f"{project}-{graph.stack}", _options(None), None, None, [], {})
    by_urn = {r.urn: r for r in graph.resources}
    providers = {}
    for r in graph.resources:
        if r.type.startswith("pulumi:providers:"):
            providers[r.urn] = PolicyProviderResource(r.type, unknown_checking_proxy(from_wire(r.wire)), r.urn, r.name)
    converted = {}
    for r in graph.resources:
        provider = providers.get((r.provider or "").rsplit("::", 1)[0])
        converted[r.urn] = PolicyResource(r.type, unknown_checking_proxy(from_wire(r.wire)), r.urn, r.name,
                                          _options(r.parent_urn), provider, None, [], {})
    by_name: dict[str, list[str]] = {}
    for r in graph.resources:
        by_name.setdefault(r.name, []).append(r.urn)
    for r in graph.resources:
        resource = converted[r.urn]
        resource.parent = converted[r.parent_urn] if r.parent_urn in by_urn else stack
        resource.dependencies = [converted[u] for name in r.dependencies for u in by_name.get(name, [])]
    return stack, list(converted.values())


def _outputs(graph) -> dict[str, Any]:
    return {key: Secret(value) if key in graph.secret_outputs else value for key, value in graph.outputs.items()}


def _options(parent: str | None) -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], parent)

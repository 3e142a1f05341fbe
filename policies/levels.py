"""Enforcement per environment: advisory in dev, mandatory in prod, chosen by policy config files.

`config.dev.json` / `config.prod.json` are ordinary Pulumi policy-pack config files (`"all"` sets every policy's
level, a policy's own entry wins, extra keys are the policy's settings). The Pulumi CLI reads one with
`--policy-pack-config`; the pack's entry point also picks one from the stack's `dataplatform:environment` as its
initial config, so a prod stack is enforced even when the flag is forgotten. `reconcile` merges them the way the
engine does (schema defaults, initial config, then the given file), for the offline evaluator.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from pulumi_policy import EnforcementLevel, Policy

PACK_DIR = Path(__file__).resolve().parent
CONFIG_FILES = {"dev": "config.dev.json", "test": "config.dev.json", "staging": "config.prod.json",
                "prod": "config.prod.json"}


class Setting(NamedTuple):
    level: EnforcementLevel
    properties: dict[str, Any]


def config_file(environment: str | None) -> Path:
    """The config file for an environment (unknown or missing environment: dev's, advisory)."""
    return PACK_DIR / CONFIG_FILES.get(environment or "dev", CONFIG_FILES["dev"])


def load(path: str | Path, policies: Iterable[Policy]) -> dict[str, dict[str, Any]]:
    """A policy-pack config file, normalised to `{policy: {"enforcementLevel": ..., setting: value}}`. Unknown
    policy names and levels are errors (a typo would otherwise silently leave a policy advisory)."""
    names = {p.name for p in policies} | {"all"}
    raw = json.loads(Path(path).read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object of policy names")
    config = {}
    for name, value in raw.items():
        if name not in names:
            raise ValueError(f"{path}: unknown policy {name!r}")
        entry = {"enforcementLevel": value} if isinstance(value, str) else dict(value)
        if "enforcementLevel" in entry:
            entry["enforcementLevel"] = EnforcementLevel(entry["enforcementLevel"])  # ValueError names a bad level
        config[name] = entry
    return config


def reconcile(policies: Iterable[Policy], *configs: dict[str, dict[str, Any]],
              default: EnforcementLevel = EnforcementLevel.ADVISORY) -> dict[str, Setting]:
    """Each policy's level and settings after applying `configs` in order, as the engine's
    ReconcilePolicyPackConfig does: schema defaults first, then per config `all` and the policy's own entry."""
    policies = list(policies)
    result = {}
    for policy in policies:
        schema = policy.config_schema.properties if policy.config_schema else {}
        result[policy.name] = Setting(policy.enforcement_level or default,
                                      {k: v["default"] for k, v in schema.items() if "default" in v})
    for config in configs:
        if "all" in config and "enforcementLevel" in config["all"]:
            result = {name: Setting(config["all"]["enforcementLevel"], s.properties) for name, s in result.items()}
        for name, entry in config.items():
            if name in result:
                level = entry.get("enforcementLevel", result[name].level)
                properties = {**result[name].properties,
                              **{k: v for k, v in entry.items() if k != "enforcementLevel"}}
                result[name] = Setting(level, properties)
    return result


def stack_environment() -> str | None:
    """Inside the pack process: the stack's `dataplatform:environment` (the CLI passes the stack config)."""
    from pulumi.runtime import get_config_env

    value = get_config_env().get("dataplatform:environment")
    return value if isinstance(value, str) else None

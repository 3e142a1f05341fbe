"""Every policy of the pack: the `policy` of each module under `rules/` (one policy per module)."""
from __future__ import annotations

import functools
import importlib
import pkgutil

from pulumi_policy import Policy


@functools.lru_cache(maxsize=1)
def all_policies() -> tuple[Policy, ...]:
    from policies import rules

    found: dict[str, Policy] = {}
    for info in pkgutil.walk_packages(rules.__path__, f"{rules.__name__}."):
        if info.ispkg:
            continue
        policy = getattr(importlib.import_module(info.name), "policy", None)
        if not isinstance(policy, Policy):
            raise TypeError(f"{info.name} defines no `policy` (one policy per module under policies/rules/)")
        if policy.name in found:
            raise ValueError(f"policy name {policy.name!r} is used twice")
        found[policy.name] = policy
    return tuple(found[name] for name in sorted(found))

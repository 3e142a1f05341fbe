"""Helpers for the policy tests: capture a small program of real Pulumi resources (or a shipped stack) under
mocks, then run the whole pack over it offline, as `dp plan` does."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pulumi

from policies.evaluate import Report, evaluate
from stacks.loader import parse
from stacks.offline import capture

REPO = Path(__file__).resolve().parents[2]


def run(program: Callable[[], None], environment: str = "prod") -> Report:
    """Capture `program` (which creates real pulumi_aws / pulumi_kubernetes / pulumi_command resources) in a stack
    whose `environment` output is `environment`, and evaluate the pack with that environment's levels."""
    def body(_config) -> None:
        program()
        pulumi.export("environment", environment)

    graph = capture(parse({"target": "compose", "environment": "dev"}), f"policy-{environment}", program=body)
    return evaluate(graph, environment)


def messages(report: Report, policy: str) -> list[str]:
    return [f"{v.resource}: {v.message}" for v in report.of(policy)]

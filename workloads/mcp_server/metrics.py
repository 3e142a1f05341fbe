"""Prometheus metrics of the server, in a registry of its own (several apps can live in one process, e.g. tests):
calls, latency, errors and denials per tool and transport."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter("dp_mcp_calls", "Tool calls by tool, transport and outcome",
                             ["tool", "transport", "outcome"], registry=self.registry)
        self.latency = Histogram("dp_mcp_call_seconds", "Tool call latency", ["tool", "transport"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.errors = Counter("dp_mcp_errors", "Calls that failed (bad input or server fault)",
                              ["tool", "kind"], registry=self.registry)
        self.denials = Counter("dp_mcp_denials", "Calls refused by authentication, policy or rate limit",
                               ["tool", "reason"], registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)

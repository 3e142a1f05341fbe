"""The shape every service component shares: one contract, one adapter per target.

A service package (`components/kafka/`, ...) holds its whole story: `__init__.py` defines the contract (the
endpoints and credentials workloads consume), the Args and the component; `compose.py`, `vm.py`,
`kubernetes.py` and `aws.py` each hold one adapter, a function `deploy(name, args, parent) -> Endpoints` that
creates the children (parented to the component, named `f"{name}-..."`) on that target's substrate.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, ClassVar

import pulumi

from stacks.versions import Versions


@dataclass(frozen=True)
class MetricsEndpoint:
    """Where Prometheus scrapes a service. `job` is the `job` label of every series it yields (alert rules and
    dashboards select on it); `targets` are `host:port` as reached from inside the target (compose service names,
    VM addresses, cluster DNS names). On Kubernetes, `selector` (Service labels) and `port` (the Service's port
    name) let a ServiceMonitor follow the pods behind the Service instead of one static address."""
    job: str
    targets: tuple[str, ...]
    path: str = "/metrics"
    selector: dict[str, str] | None = None
    port: str | None = None


@dataclass(frozen=True)
class ServiceArgs:
    """What every adapter receives: its settings section, the target substrate and the pinned versions."""
    settings: Any
    substrate: Any  # components.targets.Substrate
    versions: Versions
    environment: str
    tags: dict[str, str]


class Service(pulumi.ComponentResource):
    """Base of the service components: picks the adapter for the substrate's target and registers its outputs."""

    type_token: ClassVar[str]

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.type_token, name, None, opts)
        adapter = importlib.import_module(f"{type(self).__module__}.{args.substrate.kind}")
        self.endpoints = adapter.deploy(name, args, self)
        self.register_outputs(self.endpoints.outputs())

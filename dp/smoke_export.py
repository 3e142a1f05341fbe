"""The `smoke` stack output: how the smoke suite reaches this target's hosts, read from the substrate after every
service was added (stacks/program.py exports it; `dp smoke STACK` reads it back with the `endpoints` output).

It holds only addresses, names and ports, never a credential. Shapes, per `kind`:
- compose: `{"kind", "docker_host", "project", "containers": {service: {"name", "one_shot", "ports"}},
  "published": {"service:container_port": "address:host_port"}, "kafka_bootstrap"}`: the containers on the Docker
  host and the host ports through which this machine reaches them (endpoints name compose services instead);
- vm: `{"kind", "hosts": [{"name", "address", "user", "port"}], "units": "dataplatform-*"}`: SSH to every host,
  where every platform systemd unit must be running;
- kubernetes: `{"kind", "namespace", "context", "selector"}`: the platform's pods (by label) must be ready;
- aws: the kubernetes fields for the EKS cluster plus `"cluster"` and `"region"` (MSK IAM auth, SigV4).
"""
from __future__ import annotations

from typing import Any

PART_OF = "app.kubernetes.io/part-of=dataplatform"
VM_UNITS = "dataplatform-*"
KAFKA_EXTERNAL_PORT = 29092  # the compose Kafka adapter's EXTERNAL listener, advertised as localhost:<host port>


def smoke_output(substrate: Any) -> dict[str, Any]:
    """The `smoke` output for the stack's target (call after `substrate.finalize()`)."""
    kind = substrate.kind
    if kind == "compose":
        return _compose(substrate)
    if kind == "vm":
        return {"kind": "vm", "units": VM_UNITS, "hosts": [
            {"name": h.name, "address": h.address, "user": h.user, "port": h.port} for h in substrate.settings.hosts]}
    if kind == "kubernetes":
        return {"kind": "kubernetes", "namespace": substrate.namespace, "context": substrate.settings.context,
                "selector": PART_OF}
    if kind == "aws":
        return {"kind": "aws", "namespace": substrate.kubernetes.namespace, "context": None, "selector": PART_OF,
                "cluster": substrate.cluster.name, "region": substrate.region}
    raise ValueError(f"no smoke inventory for target {kind!r}")


def _compose(project: Any) -> dict[str, Any]:
    name = project.settings.project_name
    containers, published, kafka = {}, {}, []
    for service, definition in project.services.items():
        ports = []
        for mapping in definition.get("ports", []):
            address, host_port, container_port = str(mapping).rsplit(":", 2)
            ports.append(int(host_port))
            published[f"{service}:{container_port}"] = f"{address}:{host_port}"
            if int(container_port) == KAFKA_EXTERNAL_PORT:
                kafka.append(f"localhost:{host_port}")
        containers[service] = {"name": f"{name}-{service}-1", "one_shot": definition.get("restart") == "no",
                               "ports": ports}
    return {"kind": "compose", "docker_host": "local://", "project": name, "containers": containers,
            "published": published, "kafka_bootstrap": ",".join(kafka) or None}

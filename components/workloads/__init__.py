"""The platform's own workloads, packaged and deployed on every target: the medallion jobs (Kafka -> bronze -> silver
-> gold), the MCP server, the vector indexer and the governance service, the processes `local/services.py` runs on
one machine.

- Images (`images.py`, built by the stack with pulumi-docker-build): one Python image with the `workloads` package
  (docker/workloads) and, for the Flink Kubernetes Operator, a Flink job image with the connector jars and the
  medallion SQL (docker/flink-jobs). Pushed to ECR on AWS, to `services.workloads.registry` on Kubernetes and VMs,
  loaded into the local engine for compose.
- Processes (`processes.py`): what runs, with which slice of the platform's environment (catalog, Kafka, vector
  store, Trino): the same list on every target.
- Adapters: compose services; systemd units on the hosts with the role `workloads`; Kubernetes Deployments (MCP
  Service, probes; governance's metrics Service), a CronJob for maintenance; on AWS the same on EKS with the
  workloads' IAM role (IRSA).

Contract: `WorkloadEndpoints` (the MCP server's URL, the medallion tables, the images), exported as the `mcp` and
`medallion` entries of the stack's `endpoints` output (the shape `dp smoke` reads).
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.base import MetricsEndpoint, Service, ServiceArgs

MCP_PORT = 8765
GOVERNANCE_PORT = 9466  # the governance service's /metrics
AGENT_KEY_ENV = "DP_MCP_AGENT_KEY"  # the key the smoke suite calls the MCP server with (agent role: gold tables)


@dataclass(frozen=True)
class WorkloadEndpoints:
    mcp_url: pulumi.Input[str] | None  # REST /api/v1, MCP /mcp, /healthz, /readyz, /metrics; inside the target
    mcp_keys: pulumi.Input[dict] | None  # role -> API key (secret)
    tables: tuple[str, ...]  # the medallion tables the jobs keep up to date
    processes: tuple[str, ...]  # what was deployed (names as on the target)
    images: dict[str, pulumi.Input[str]]  # image -> reference deployed
    refine: str  # "python" (the refine job) or "flink" (the FlinkDeployments)
    metrics: tuple[MetricsEndpoint, ...] = ()

    def mcp(self) -> dict | None:
        if self.mcp_url is None:
            return None
        return {"url": self.mcp_url, "api_key_env": AGENT_KEY_ENV,
                "api_keys": pulumi.Output.secret(self.mcp_keys) if self.mcp_keys is not None else None}

    def medallion(self) -> dict:
        return {"tables": list(self.tables), "refine": self.refine}

    def outputs(self) -> dict:
        return {"mcp": self.mcp(), "medallion": self.medallion(), "processes": list(self.processes),
                "images": self.images}


@dataclass(frozen=True)
class WorkloadsArgs(ServiceArgs):
    images: object = None  # images.WorkloadImages
    storage: object = None  # StorageEndpoints
    catalog: object = None  # CatalogEndpoints
    kafka: object = None  # KafkaEndpoints
    flink: object = None  # FlinkEndpoints: packaged jobs there refine instead of the Python job
    trino: object = None  # TrinoEndpoints: the MCP server queries through Trino when there is one
    qdrant: object = None  # QdrantEndpoints: the vector store (else Milvus)
    milvus: object = None  # MilvusEndpoints


class Workloads(Service):
    type_token = "dataplatform:workloads:Workloads"
    endpoints: WorkloadEndpoints

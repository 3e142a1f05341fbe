"""Iceberg catalog: Lakekeeper (Iceberg REST catalog) on PostgreSQL with the warehouse on object storage
(compose, VMs, Kubernetes); on AWS the Glue Data Catalog by default (`services.catalog.aws_flavor: glue`).

Why Glue on AWS: it is managed (no database or catalog server to run, patch and back up), it serves the Iceberg
REST API itself (`https://glue.<region>.amazonaws.com/iceberg`, SigV4 + IAM), and Athena, EMR, Managed Flink and
Trino read it natively. `aws_flavor: rest` runs Lakekeeper on EKS with RDS instead, for teams that need the
same catalog semantics (and credential vending) on every target.
Contract: `CatalogEndpoints.properties` are pyiceberg `load_catalog` properties, so workloads run unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.base import MetricsEndpoint, Service, ServiceArgs
from components.object_storage import StorageEndpoints


@dataclass(frozen=True)
class CatalogEndpoints:
    type: str  # "rest" or "glue"
    uri: pulumi.Input[str]
    warehouse: pulumi.Input[str]
    properties: pulumi.Input[dict]  # pyiceberg load_catalog properties (a secret when it holds credentials)
    namespaces: tuple[str, ...] = ()
    metrics: tuple[MetricsEndpoint, ...] = ()  # what Prometheus scrapes (components/observability)

    def outputs(self) -> dict:
        return {"type": self.type, "uri": self.uri, "warehouse": self.warehouse,
                "properties": pulumi.Output.secret(self.properties), "namespaces": list(self.namespaces)}


@dataclass(frozen=True)
class CatalogArgs(ServiceArgs):
    storage: StorageEndpoints | None = None


class Catalog(Service):
    type_token = "dataplatform:catalog:Catalog"
    endpoints: CatalogEndpoints

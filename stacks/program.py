"""The stack program: config -> substrate -> services -> endpoints -> exports.

`stacks/__main__.py` runs it under `pulumi up`; `stacks.offline.capture` runs it under mocks for `dp plan` and
the tests. The `endpoints` output is the one shape workloads and the smoke tests read.
"""
from __future__ import annotations

import pulumi

from components import targets
from components.backups import BackupArgs, Backups
from components.base import ServiceArgs
from components.catalog import Catalog, CatalogArgs
from components.flink import Flink, FlinkArgs
from components.kafka import Kafka
from components.milvus import Milvus, MilvusArgs
from components.object_storage import ObjectStorage
from components.observability import Observability, ObservabilityArgs, observed
from components.qdrant import Qdrant, QdrantArgs
from components.schema_registry import SchemaRegistry, SchemaRegistryArgs
from components.trino import Trino, TrinoArgs
from components.workloads import Workloads, WorkloadsArgs
from components.workloads.images import WorkloadImages
from dp.smoke_export import smoke_output
from stacks.config import PlatformConfig
from stacks.versions import resolve


def run(config: PlatformConfig) -> dict:
    versions = resolve(config.versions)
    services = config.services
    substrate = targets.build("platform", config)

    def args(settings, cls=ServiceArgs, **extra):
        return cls(settings=settings, substrate=substrate, versions=versions, environment=config.environment,
                   tags=config.tags, **extra)

    endpoints: dict[str, object] = {}
    storage = catalog = kafka = flink = registry = trino = qdrant = milvus = None
    images = None
    if services.workloads.enabled:  # built first: the Flink jobs run from the job image
        images = WorkloadImages("workload-images", config, substrate, versions, flink_jobs=services.flink.enabled and (
            substrate.kind == "kubernetes" or substrate.kind == "aws" and services.flink.aws_mode == "eks"))
    if services.object_storage.enabled:
        storage = ObjectStorage("storage", args(services.object_storage))
        endpoints["object_storage"] = storage.endpoints.outputs()
    if services.catalog.enabled:
        catalog = Catalog("catalog", args(services.catalog, CatalogArgs, storage=storage.endpoints))
        endpoints["catalog"] = catalog.endpoints.outputs()
    if services.kafka.enabled:
        kafka = Kafka("kafka", args(services.kafka))
        endpoints["kafka"] = kafka.endpoints.outputs()
    if services.flink.enabled:
        flink = Flink("flink", args(services.flink, FlinkArgs, storage=storage and storage.endpoints,
                                    kafka=kafka and kafka.endpoints, catalog=catalog and catalog.endpoints,
                                    job_image=images and images.ref("flink-jobs")))
        endpoints["flink"] = flink.endpoints.outputs()
    if services.trino.enabled:
        trino = Trino("trino", args(services.trino, TrinoArgs, storage=storage and storage.endpoints,
                                    catalog=catalog and catalog.endpoints))
        endpoints["trino"] = trino.endpoints.outputs()
    if services.qdrant.enabled:
        qdrant = Qdrant("qdrant", args(services.qdrant, QdrantArgs, storage=storage and storage.endpoints,
                                       retention_days=services.backups.retention_days))
        endpoints["qdrant"] = qdrant.endpoints.outputs()
    if services.milvus.enabled:
        milvus = Milvus("milvus", args(services.milvus, MilvusArgs, storage=storage and storage.endpoints,
                                       backup_schedule=services.backups.schedule,
                                       retention_days=services.backups.retention_days))
        endpoints["milvus"] = milvus.endpoints.outputs()
    if services.schema_registry.enabled:
        registry = SchemaRegistry("schema-registry", args(
            services.schema_registry, SchemaRegistryArgs, kafka=kafka and kafka.endpoints,
            topics=tuple(t.name for t in services.kafka.topics)))
        endpoints["schema_registry"] = registry.endpoints.outputs()
    if services.backups.enabled:
        backups = Backups("backups", args(services.backups, BackupArgs, storage=storage and storage.endpoints,
                                          catalog=catalog and catalog.endpoints,
                                          kafka=services.kafka if kafka else None))
        endpoints["backups"] = backups.endpoints.outputs()
    workloads = None
    if services.workloads.enabled:
        workloads = Workloads("workloads", args(
            services.workloads, WorkloadsArgs, images=images, storage=storage and storage.endpoints,
            catalog=catalog and catalog.endpoints, kafka=kafka and kafka.endpoints, flink=flink and flink.endpoints,
            trino=trino and trino.endpoints, qdrant=qdrant and qdrant.endpoints, milvus=milvus and milvus.endpoints))
        endpoints["medallion"] = workloads.endpoints.medallion()
        if (mcp := workloads.endpoints.mcp()) is not None:
            endpoints["mcp"] = mcp
    if services.observability.enabled:  # last: it scrapes what the services above expose
        observability = Observability("observability", args(
            services.observability, ObservabilityArgs,
            targets=observed(storage, catalog, kafka, flink, registry, trino, qdrant, milvus, workloads),
            kafka=kafka.endpoints if kafka else None, kafka_brokers=services.kafka.brokers if kafka else 0))
        endpoints["observability"] = observability.endpoints.outputs()
    substrate.finalize()

    pulumi.export("target", config.target)
    pulumi.export("environment", config.environment)
    pulumi.export("endpoints", endpoints)
    pulumi.export("smoke", smoke_output(substrate))  # hosts for `dp smoke STACK` (no credentials)
    return endpoints

"""Schema registry for the Kafka topics' event schemas, with the medallion event schemas registered by the stack.

- compose, VMs, Kubernetes: Apicurio Registry 3 (Apache 2.0), storing its data in Kafka itself (KafkaSQL: a journal
  topic it creates, replicated like any topic), so there is no database to run or back up, and any replica serves
  reads. Clients use its Confluent-compatible API (`url`), which every Kafka serde speaks (confluent-kafka's
  `SchemaRegistryClient` included), or its native API (`api_url`). A one-shot job (a compose service, a job on the
  first VM, a Kubernetes Job) sets BACKWARD compatibility and registers each schema; registering an unchanged
  schema is a no-op, an incompatible change fails the job naming the subject.
- AWS: the AWS Glue Schema Registry (managed, IAM-authorised, used by the AWS Glue serdes and Managed Flink): one
  registry and one schema per topic, with BACKWARD compatibility.

The schemas are JSON Schema exported from the medallion event model (`schemas.py`). Contract:
`SchemaRegistryEndpoints`.
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.base import MetricsEndpoint, Service, ServiceArgs


@dataclass(frozen=True)
class SchemaRegistryEndpoints:
    type: str  # "apicurio" or "glue"
    url: pulumi.Input[str] | None  # Confluent-compatible API (Apicurio `ccompat/v7`); None on Glue (AWS API + IAM)
    api_url: pulumi.Input[str] | None  # Apicurio's native REST API; None on Glue
    registry: pulumi.Input[str] | None  # the Glue registry's name; None on Apicurio (one default group)
    subjects: tuple[str, ...]  # `<topic>-value` (Glue: the topic names)
    compatibility: str
    metrics: tuple[MetricsEndpoint, ...] = ()

    def outputs(self) -> dict:
        return {"type": self.type, "url": self.url, "api_url": self.api_url, "registry": self.registry,
                "subjects": list(self.subjects), "compatibility": self.compatibility}


@dataclass(frozen=True)
class SchemaRegistryArgs(ServiceArgs):
    kafka: object = None  # KafkaEndpoints: Apicurio's storage (None when Kafka is off)
    topics: tuple[str, ...] = ()  # the configured topics: each one the event model describes gets its schema


class SchemaRegistry(Service):
    type_token = "dataplatform:schema-registry:SchemaRegistry"
    endpoints: SchemaRegistryEndpoints

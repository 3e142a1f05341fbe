"""Schema registry on AWS: the AWS Glue Schema Registry. One registry per stack and one JSON schema per topic the
event model describes (named after the topic, as the AWS Glue serdes look it up), BACKWARD compatible; Glue keeps
every version. The workloads' IAM role may read the schemas; only the stack registers them."""
from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.schema_registry import SchemaRegistryArgs, SchemaRegistryEndpoints
from components.schema_registry.schemas import COMPATIBILITY, canonical, event_schemas


def deploy(name: str, args: SchemaRegistryArgs, parent: pulumi.Resource) -> SchemaRegistryEndpoints:
    foundation = args.substrate
    registry_name = f"{foundation.prefix}-events"
    registry = aws.glue.Registry(f"{name}-registry", registry_name=registry_name,
                                 description="Event schemas of the platform's Kafka topics",
                                 tags=foundation.tagged(registry_name), opts=foundation.opts(parent))
    schemas = event_schemas(args.topics)
    arns = []
    for topic, schema in schemas.items():
        resource = aws.glue.Schema(f"{name}-{topic}", registry_arn=registry.arn, schema_name=topic,
                                   data_format="JSON", compatibility=COMPATIBILITY,
                                   schema_definition=canonical(schema), description=schema["description"],
                                   tags=foundation.tagged(), opts=foundation.opts(parent))
        arns.append(resource.arn)
    foundation.grant([
        {"Sid": "SchemaRegistryRead", "Effect": "Allow",
         "Action": ["glue:GetRegistry", "glue:GetSchema", "glue:GetSchemaByDefinition", "glue:ListSchemas",
                    "glue:ListSchemaVersions", "glue:QuerySchemaVersionMetadata"],
         "Resource": [registry.arn, *arns]},
        # deserializers look a version up by its id alone, which IAM cannot tie to a schema ARN
        {"Sid": "SchemaVersionsById", "Effect": "Allow", "Action": ["glue:GetSchemaVersion"], "Resource": "*"}])
    return SchemaRegistryEndpoints(type="glue", url=None, api_url=None, registry=registry.registry_name,
                                   subjects=tuple(schemas), compatibility=COMPATIBILITY)

"""The event schemas the stack registers, exported as JSON Schema from the medallion event model
(`workloads.medallion.tables.EVENT_FIELDS`: the one definition bronze validates records against), so the registry and
the jobs can never disagree about what a `shop.orders` event is.

One subject per topic, named `<topic>-value` (the topic-name strategy every Kafka serde defaults to). Events are
JSON objects: required fields must be present and not null, optional ones may be null or absent, and fields the
model does not know are allowed (`additionalProperties`), because producers may add flat fields that bronze evolves
into columns; with the registry's BACKWARD compatibility, a new version may add optional fields but not drop or
retype a required one.
"""
from __future__ import annotations

import json

JSON_SCHEMA_DRAFT = "http://json-schema.org/draft-07/schema#"
COMPATIBILITY = "BACKWARD"
SUBJECT_SUFFIX = "-value"


def _json_type(iceberg_type) -> dict:
    """The JSON Schema of one event field's Iceberg type (as producers send it: JSON, timestamps as ISO-8601)."""
    from pyiceberg import types

    if isinstance(iceberg_type, types.StringType):
        return {"type": "string"}
    if isinstance(iceberg_type, (types.IntegerType, types.LongType)):
        return {"type": "integer"}
    if isinstance(iceberg_type, (types.FloatType, types.DoubleType, types.DecimalType)):
        return {"type": "number"}
    if isinstance(iceberg_type, types.BooleanType):
        return {"type": "boolean"}
    if isinstance(iceberg_type, (types.TimestamptzType, types.TimestampType)):
        return {"type": "string", "format": "date-time"}
    if isinstance(iceberg_type, types.DateType):
        return {"type": "string", "format": "date"}
    raise TypeError(f"no JSON Schema mapping for the event field type {iceberg_type}")


def json_schema(topic: str, fields) -> dict:
    """A draft-07 JSON Schema of one topic's events."""
    properties = {}
    for field in fields:
        schema = _json_type(field.type)
        if not field.required:
            schema = {**schema, "type": [schema["type"], "null"]}
        properties[field.name] = {**schema, **({"description": field.doc} if field.doc else {})}
    return {"$schema": JSON_SCHEMA_DRAFT, "title": topic, "description": f"An event of the Kafka topic {topic}",
            "type": "object", "properties": properties,
            "required": [field.name for field in fields if field.required], "additionalProperties": True}


def event_schemas(topics: tuple[str, ...]) -> dict[str, dict]:
    """topic -> JSON Schema, for the configured topics the event model describes (others carry no schema yet)."""
    from workloads.medallion.tables import EVENT_FIELDS, TOPICS

    modelled = {topic: EVENT_FIELDS[entity] for entity, topic in TOPICS.items()}
    return {topic: json_schema(topic, modelled[topic]) for topic in topics if topic in modelled}


def subject(topic: str) -> str:
    return f"{topic}{SUBJECT_SUFFIX}"


def canonical(schema: dict) -> str:
    """The schema text as registered: compact and key-sorted, so an unchanged model registers no new version."""
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def registration_body(schema: dict) -> str:
    """The body of `POST /subjects/<subject>/versions` (Confluent-compatible API)."""
    return json.dumps({"schemaType": "JSON", "schema": canonical(schema)})

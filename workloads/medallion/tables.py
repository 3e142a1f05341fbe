"""Every topic, table identifier and schema of the medallion workload, in one place.

Other workloads import this module (the MCP server lists and describes these tables), so it has no side effects
and imports only pyiceberg's type system.

Layers:
- bronze: one table per topic, the event's fields as sent (JSON types, validated) plus audit columns
  (`_ingested_at`, `_topic`, `_partition`, `_offset`, `_payload_hash`, `_offset_epoch`); `bronze.quarantine` holds
  every record that could not be read, with the reason.
- silver: typed (decimals, normalised codes, dates), validated against business rules, deduplicated by
  `event_id`; `silver.quarantine` holds the rows that broke a rule.
- gold: business aggregates (revenue per day and category, customer lifetime value, the clickstream funnel).
"""
from __future__ import annotations

from dataclasses import dataclass

from pyiceberg.schema import Schema
from pyiceberg.types import (
    BinaryType,
    DateType,
    DecimalType,
    DoubleType,
    IcebergType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

NAMESPACES = ("bronze", "silver", "gold")
ENTITIES = ("customers", "orders", "order_lines", "clickstream")
# Kafka topics, one per entity. Records are keyed by the entity's natural key so related events keep their order.
TOPICS = {entity: f"shop.{entity}" for entity in ENTITIES}
TOPIC_KEYS = {"customers": "customer_id", "orders": "order_id", "order_lines": "order_id",
              "clickstream": "session_id"}
TOPIC_PARTITIONS = 3
ENTITY_BY_TOPIC = {topic: entity for entity, topic in TOPICS.items()}

# Snapshot-summary keys that carry a consumer's progress atomically with the data it wrote.
KAFKA_OFFSETS_PROPERTY = "dp.kafka.offsets"  # {"topic": {"partition": next offset}}
KAFKA_EPOCHS_PROPERTY = "dp.kafka.epochs"  # {"topic": {"epoch": n, "id": topic id}}: which topic the offsets count in
SOURCE_SNAPSHOTS_PROPERTY = "dp.source.snapshots"  # {"bronze.orders": last processed snapshot id}

# Written by one process each and fenced by optimistic commits: a conflict must come back to our code (which
# re-reads the watermark and filters what is already there) instead of being retried blindly by pyiceberg.
TABLE_PROPERTIES = {
    "commit.retry.num-retries": "0",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
}


@dataclass(frozen=True)
class Field:
    name: str
    type: IcebergType
    required: bool = False
    doc: str = ""


def _schema(fields: list[Field], key: tuple[str, ...] = ()) -> Schema:
    """An Iceberg schema; `key` becomes its identifier fields (the upsert key engines like Flink use)."""
    ids = {f.name: i for i, f in enumerate(fields, start=1)}
    return Schema(*(NestedField(ids[f.name], f.name, f.type, required=f.required, doc=f.doc or None) for f in fields),
                  identifier_field_ids=[ids[name] for name in key])


_ID = [Field("event_id", StringType(), True, "unique per event; replays carry the same id"),
       Field("event_time", TimestamptzType(), True, "when it happened at the source")]

# The events as producers send them (JSON objects); `required` fields must be present and not null.
EVENT_FIELDS: dict[str, list[Field]] = {
    "customers": _ID + [
        Field("event_type", StringType(), True, "created | updated"),
        Field("customer_id", StringType(), True),
        Field("email", StringType(), True),
        Field("full_name", StringType()),
        Field("country", StringType(), True, "ISO 3166 alpha-2"),
        Field("segment", StringType(), False, "consumer | business"),
    ],
    "orders": _ID + [
        Field("order_id", StringType(), True),
        Field("customer_id", StringType(), True),
        Field("status", StringType(), True, "placed | paid | shipped | cancelled"),
        Field("currency", StringType(), True, "ISO 4217"),
        Field("total_amount", DoubleType(), True),
        Field("item_count", LongType()),
        Field("payment_method", StringType()),
    ],
    "order_lines": _ID + [
        Field("order_id", StringType(), True),
        Field("line_number", LongType(), True),
        Field("product_id", StringType(), True),
        Field("category", StringType(), True),
        Field("quantity", LongType(), True),
        Field("unit_price", DoubleType(), True),
        Field("discount", DoubleType(), False, "fraction of the line price, 0 <= discount < 1"),
    ],
    "clickstream": _ID + [
        Field("session_id", StringType(), True),
        Field("customer_id", StringType(), False, "null for anonymous visitors"),
        Field("action", StringType(), True, "page_view | product_view | add_to_cart | checkout | purchase"),
        Field("page", StringType(), True),
        Field("product_id", StringType()),
        Field("device", StringType()),
    ],
}

AUDIT_FIELDS = [
    Field("_ingested_at", TimestamptzType(), True, "when the micro-batch was written"),
    Field("_topic", StringType(), True),
    Field("_partition", IntegerType(), True),
    Field("_offset", LongType(), True),
    Field("_payload_hash", StringType(), True, "xxh3-128 of the raw Kafka value, hex"),
    Field("_offset_epoch", IntegerType(), False, "which incarnation of the topic `_offset` counts in: 0, then +1 "
          "each time the topic was found deleted and created again (e.g. an in-memory broker restarted)"),
]
AUDIT_COLUMNS = tuple(f.name for f in AUDIT_FIELDS)

QUARANTINE_FIELDS = [
    Field("quarantined_at", TimestamptzType(), True),
    Field("source", StringType(), True, "Kafka topic (bronze) or bronze table (silver)"),
    Field("partition", IntegerType()),
    Field("offset", LongType()),
    Field("event_id", StringType(), False, "when it could be read"),
    Field("reason_code", StringType(), True,
          "oversized | empty | malformed_json | not_an_object | duplicate_field | wrong_type | missing_field | "
          "unsupported_field | invalid_value"),
    Field("reason", StringType(), True, "what was wrong, for a person"),
    Field("payload", BinaryType(), False, "the raw record (truncated to the size limit when oversized)"),
    Field("payload_bytes", LongType(), True),
    Field("payload_hash", StringType(), False, "xxh3-128 of the full raw record, hex"),
]

_LINEAGE = [Field("_ingested_at", TimestamptzType(), True), Field("_partition", IntegerType(), True),
            Field("_offset", LongType(), True)]
_MONEY = DecimalType(12, 2)
_TOTAL = DecimalType(18, 2)

SILVER_FIELDS: dict[str, list[Field]] = {
    "customers": _ID + [
        Field("event_date", DateType(), True),
        Field("event_type", StringType(), True),
        Field("customer_id", StringType(), True),
        Field("email", StringType(), True, "lower case"),
        Field("full_name", StringType()),
        Field("country", StringType(), True, "upper case alpha-2"),
        Field("segment", StringType()),
    ] + _LINEAGE,
    "orders": _ID + [
        Field("event_date", DateType(), True),
        Field("order_id", StringType(), True),
        Field("customer_id", StringType(), True),
        Field("status", StringType(), True),
        Field("currency", StringType(), True),
        Field("total_amount", _MONEY, True),
        Field("item_count", LongType()),
        Field("payment_method", StringType()),
    ] + _LINEAGE,
    "order_lines": _ID + [
        Field("event_date", DateType(), True),
        Field("order_id", StringType(), True),
        Field("line_number", LongType(), True),
        Field("product_id", StringType(), True),
        Field("category", StringType(), True),
        Field("quantity", LongType(), True),
        Field("unit_price", _MONEY, True),
        Field("discount", DecimalType(4, 3), True, "0 when absent"),
        Field("line_amount", _MONEY, True, "quantity * unit_price * (1 - discount), rounded to cents"),
    ] + _LINEAGE,
    "clickstream": _ID + [
        Field("event_date", DateType(), True),
        Field("session_id", StringType(), True),
        Field("customer_id", StringType()),
        Field("action", StringType(), True),
        Field("page", StringType(), True),
        Field("product_id", StringType()),
        Field("device", StringType()),
    ] + _LINEAGE,
}

GOLD_FIELDS: dict[str, list[Field]] = {
    "revenue_daily": [
        Field("day", DateType(), True),
        Field("category", StringType(), True),
        Field("revenue", _TOTAL, True, "gross booked revenue of the order lines"),
        Field("units", LongType(), True),
        Field("lines", LongType(), True),
    ],
    "customer_ltv": [
        Field("customer_id", StringType(), True),
        Field("country", StringType()),
        Field("segment", StringType()),
        Field("profile_updated_at", TimestamptzType(), False, "event time of the profile shown"),
        Field("orders", LongType(), True, "orders placed"),
        Field("revenue", _TOTAL, True, "sum of placed orders' totals"),
        Field("first_order_at", TimestamptzType()),
        Field("last_order_at", TimestamptzType()),
    ],
    "funnel_daily": [
        Field("day", DateType(), True),
        Field("sessions", LongType(), True),
        Field("product_views", LongType(), True, "sessions that viewed a product"),
        Field("add_to_carts", LongType(), True, "sessions that added to the cart"),
        Field("checkouts", LongType(), True),
        Field("purchases", LongType(), True),
        Field("conversion_rate", DoubleType(), True, "purchases / sessions"),
    ],
}

# The key of each silver and gold row (Iceberg identifier fields).
SILVER_KEY = ("event_id",)
GOLD_KEYS = {"revenue_daily": ("day", "category"), "customer_ltv": ("customer_id",), "funnel_daily": ("day",)}

# Which silver tables each gold table is computed from.
GOLD_SOURCES = {"revenue_daily": ("order_lines",), "customer_ltv": ("orders", "customers"),
                "funnel_daily": ("clickstream",)}


def bronze(entity: str) -> str:
    return f"bronze.{entity}"


def silver(entity: str) -> str:
    return f"silver.{entity}"


def gold(name: str) -> str:
    return f"gold.{name}"


BRONZE_QUARANTINE = "bronze.quarantine"
SILVER_QUARANTINE = "silver.quarantine"


def bronze_schema(entity: str) -> Schema:
    return _schema(EVENT_FIELDS[entity] + AUDIT_FIELDS)


def silver_schema(entity: str) -> Schema:
    return _schema(SILVER_FIELDS[entity], SILVER_KEY)


def gold_schema(name: str) -> Schema:
    return _schema(GOLD_FIELDS[name], GOLD_KEYS[name])


def quarantine_schema() -> Schema:
    return _schema(QUARANTINE_FIELDS)


@dataclass(frozen=True)
class TableSpec:
    identifier: str
    layer: str
    description: str
    schema: Schema


def all_tables() -> list[TableSpec]:
    """Every table of the workload, bronze to gold, with a one-line description (what `init` creates)."""
    specs = [TableSpec(bronze(e), "bronze", f"raw `{TOPICS[e]}` events with Kafka audit columns",
                       bronze_schema(e)) for e in ENTITIES]
    specs.append(TableSpec(BRONZE_QUARANTINE, "bronze", "records that could not be read, with the reason",
                           quarantine_schema()))
    specs += [TableSpec(silver(e), "silver", f"typed, validated, deduplicated {e.replace('_', ' ')}",
                        silver_schema(e)) for e in ENTITIES]
    specs.append(TableSpec(SILVER_QUARANTINE, "silver", "bronze rows that broke a business rule, with the reason",
                           quarantine_schema()))
    descriptions = {"revenue_daily": "revenue, units and lines per day and product category",
                    "customer_ltv": "customer lifetime value: orders, revenue, first and last order",
                    "funnel_daily": "sessions per day reaching each funnel stage, and the conversion rate"}
    specs += [TableSpec(gold(n), "gold", descriptions[n], gold_schema(n)) for n in GOLD_FIELDS]
    return specs

"""How a workload finds the platform. The same code runs everywhere; only the environment differs.

- Iceberg catalog: `pyiceberg.catalog.load_catalog(DP_CATALOG)` with pyiceberg's own configuration
  (`PYICEBERG_CATALOG__<NAME>__<PROPERTY>` variables or `.pyiceberg.yaml`): a SQL catalog on the embedded
  platform, the REST catalog (Lakekeeper) or Glue when deployed.
- Kafka: `DP_KAFKA_BOOTSTRAP_SERVERS` plus optional `DP_KAFKA_SECURITY_PROTOCOL` and `DP_KAFKA_SASL_MECHANISM`
  (MSK uses SASL_SSL + OAUTHBEARER/IAM), merged into every confluent-kafka client config.
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

CATALOG_ENV = "DP_CATALOG"
DEFAULT_CATALOG = "platform"


def catalog_name() -> str:
    return os.environ.get(CATALOG_ENV, DEFAULT_CATALOG)


@lru_cache(maxsize=None)
def load_catalog(name: str | None = None):
    """The platform's Iceberg catalog, configured by pyiceberg's own environment variables or config file."""
    from pyiceberg.catalog import load_catalog as _load

    return _load(name or catalog_name())


def kafka_config(**overrides: Any) -> dict[str, Any]:
    """Base confluent-kafka client configuration from the environment, plus per-client overrides."""
    conf: dict[str, Any] = {"bootstrap.servers": os.environ.get("DP_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")}
    if protocol := os.environ.get("DP_KAFKA_SECURITY_PROTOCOL"):
        conf["security.protocol"] = protocol
    if mechanism := os.environ.get("DP_KAFKA_SASL_MECHANISM"):
        conf["sasl.mechanism"] = mechanism
    conf.update(overrides)
    return conf

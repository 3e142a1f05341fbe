"""How a workload finds the platform. The same code runs everywhere; only the environment differs.

- Iceberg catalog: named by `DP_CATALOG` (default `platform`), configured the way pyiceberg is: the
  `PYICEBERG_CATALOG__<NAME>__<PROPERTY>` variables over the catalog's section of `.pyiceberg.yaml`. A SQL catalog
  on the embedded platform, the REST catalog (Lakekeeper) or Glue when deployed.
- Kafka: `DP_KAFKA_BOOTSTRAP_SERVERS` plus optional `DP_KAFKA_SECURITY_PROTOCOL`, `DP_KAFKA_SASL_MECHANISM` and,
  for MSK IAM auth, `DP_KAFKA_AWS_REGION`
  (MSK uses SASL_SSL + OAUTHBEARER/IAM), merged into every confluent-kafka client config.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any

CATALOG_ENV = "DP_CATALOG"
DEFAULT_CATALOG = "platform"


def catalog_name() -> str:
    return os.environ.get(CATALOG_ENV, DEFAULT_CATALOG)


def catalog_properties(name: str) -> dict[str, Any]:
    """The catalog's properties from the environment as it is now, the way pyiceberg reads them
    (`PYICEBERG_CATALOG__<NAME>__<PROP>` variables over the catalog's section of `.pyiceberg.yaml`).

    pyiceberg itself reads them once, at import, so variables set later in the process (a benchmark's private
    catalog, a test's) would be ignored by `pyiceberg.catalog.load_catalog(name)` alone."""
    from pyiceberg.utils.config import Config

    return dict(Config().get_catalog_config(name) or {})


def load_catalog(name: str | None = None):
    """The platform's Iceberg catalog: one instance per (name, properties), so a changed environment gives a new
    one and an unchanged one reuses its connections."""
    name = name or catalog_name()
    return _catalog(name, json.dumps(catalog_properties(name), sort_keys=True))


@lru_cache(maxsize=16)
def _catalog(name: str, properties: str):
    from pyiceberg.catalog import load_catalog as _load

    return _load(name, **json.loads(properties))


def kafka_config(**overrides: Any) -> dict[str, Any]:
    """Base confluent-kafka client configuration from the environment, plus per-client overrides."""
    conf: dict[str, Any] = {"bootstrap.servers": os.environ.get("DP_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")}
    if protocol := os.environ.get("DP_KAFKA_SECURITY_PROTOCOL"):
        conf["security.protocol"] = protocol
    if mechanism := os.environ.get("DP_KAFKA_SASL_MECHANISM"):
        conf["sasl.mechanism"] = mechanism
    if mechanism == "OAUTHBEARER" and (region := os.environ.get("DP_KAFKA_AWS_REGION")):
        conf["oauth_cb"] = msk_iam_token(region)
    conf.update(overrides)
    return conf


def msk_iam_token(region: str):
    """MSK IAM auth for confluent-kafka: an OAUTHBEARER callback that signs a token with the pod's AWS
    credentials (IRSA on EKS) via aws-msk-iam-sasl-signer-python; librdkafka calls it again before expiry."""
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

    def callback(_config: str) -> tuple[str, float]:
        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
        return token, expiry_ms / 1000

    return callback

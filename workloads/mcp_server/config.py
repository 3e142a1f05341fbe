"""Configuration of the MCP server, read from environment variables only, so one image runs on every target.

| variable | default | meaning |
| --- | --- | --- |
| `DP_CATALOG` | `platform` | Iceberg catalog name, configured by pyiceberg's own variables (workloads/common/platform.py) |
| `DP_MCP_HOST`, `DP_MCP_PORT` | `127.0.0.1`, `8765` | where `serve` listens (its `--host`/`--port` override them) |
| `DP_MCP_ALLOWED_HOSTS` | unset | comma-separated `host:port` patterns accepted in `Host` (DNS-rebinding protection); on a loopback bind the loopback names are always allowed, elsewhere unset means "no Host check" (behind an ingress) |
| `DP_MCP_POLICY` | `access.yaml` beside this file | access policy: roles, PII columns, API keys (sha256 or env), rate limits |
| `DP_MCP_AUDIT_LOG` | `.dp/audit/mcp.jsonl` | append-only JSON-lines audit log |
| `DP_MCP_TABLE_METADATA` | unset | optional YAML of owners / quality / lineage per table, shown as-is next to table properties |
| `DP_MCP_METADATA_TTL_SECONDS` | `2` | how long catalog metadata and table-access decisions are served from cache before they are re-checked |
| `DP_MCP_QUERY_ROW_LIMIT` | `1000` | most rows a query, sample or time-travel read returns (callers may ask for fewer) |
| `DP_MCP_QUERY_TIMEOUT_SECONDS` | `30` | time limit of one query |
| `DP_MCP_RATE_LIMIT_PER_MINUTE` | `600` | calls per minute per key when the policy sets none for it |
| `DP_MCP_JWT_SECRET` | unset | HS256 secret for bearer JWTs (secret: never logged) |
| `DP_MCP_JWT_PUBLIC_KEY` | unset | PEM public key for RS256/ES256 bearer JWTs (instead of the secret) |
| `DP_MCP_JWT_AUDIENCE`, `DP_MCP_JWT_ISSUER` | unset | required `aud` / `iss` of bearer JWTs when set |
| `DP_MCP_JWT_ROLE_CLAIM` | `role` | JWT claim naming the caller's policy role |
| `DP_MCP_API_KEY`, `DP_MCP_TOKEN` | unset | the credential a stdio session runs with (a local agent has no HTTP headers) |
| `DP_QUERY_ENGINE` | `duckdb` | `duckdb` (embedded: Iceberg scanned with pyiceberg into DuckDB) or `trino` (deployed) |
| `DP_TRINO_URL` | unset | Trino coordinator, e.g. `https://trino.example:443` (required with `trino`) |
| `DP_TRINO_USER` | `dp-mcp` | Trino user the server runs queries as |
| `DP_TRINO_PASSWORD` | unset | Trino password (basic auth over https; secret: never logged) |
| `DP_TRINO_CATALOG` | `iceberg` | Trino catalog that holds the platform's Iceberg tables |
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, SecretStr, ValidationError

from workloads.mcp_server.errors import ConfigError

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

_ENV_FIELDS = {
    "DP_CATALOG": "catalog",
    "DP_MCP_HOST": "host",
    "DP_MCP_PORT": "port",
    "DP_MCP_ALLOWED_HOSTS": "allowed_hosts",
    "DP_MCP_POLICY": "policy_path",
    "DP_MCP_AUDIT_LOG": "audit_log",
    "DP_MCP_TABLE_METADATA": "table_metadata_path",
    "DP_MCP_METADATA_TTL_SECONDS": "metadata_ttl",
    "DP_MCP_QUERY_ROW_LIMIT": "row_limit",
    "DP_MCP_QUERY_TIMEOUT_SECONDS": "query_timeout",
    "DP_MCP_RATE_LIMIT_PER_MINUTE": "rate_limit_per_minute",
    "DP_MCP_JWT_SECRET": "jwt_secret",
    "DP_MCP_JWT_PUBLIC_KEY": "jwt_public_key",
    "DP_MCP_JWT_AUDIENCE": "jwt_audience",
    "DP_MCP_JWT_ISSUER": "jwt_issuer",
    "DP_MCP_JWT_ROLE_CLAIM": "jwt_role_claim",
    "DP_MCP_API_KEY": "stdio_api_key",
    "DP_MCP_TOKEN": "stdio_token",
    "DP_QUERY_ENGINE": "engine",
    "DP_TRINO_URL": "trino_url",
    "DP_TRINO_USER": "trino_user",
    "DP_TRINO_PASSWORD": "trino_password",
    "DP_TRINO_CATALOG": "trino_catalog",
}


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    catalog: str = "platform"
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    allowed_hosts: tuple[str, ...] = ()
    policy_path: Path = HERE / "access.yaml"
    audit_log: Path = REPO / ".dp" / "audit" / "mcp.jsonl"
    table_metadata_path: Path | None = None
    metadata_ttl: float = Field(default=2.0, ge=0)
    row_limit: PositiveInt = 1000
    query_timeout: PositiveFloat = 30.0
    rate_limit_per_minute: PositiveInt = 600
    jwt_secret: SecretStr | None = None
    jwt_public_key: SecretStr | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_role_claim: str = "role"
    stdio_api_key: SecretStr | None = None
    stdio_token: SecretStr | None = None
    engine: Literal["duckdb", "trino"] = "duckdb"
    trino_url: str | None = None
    trino_user: str = "dp-mcp"
    trino_password: SecretStr | None = None
    trino_catalog: str = "iceberg"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Settings from `environ` (default: the process environment); bad values raise a `ConfigError` naming
        the variable, never echoing secret values."""
        environ = os.environ if environ is None else environ
        values: dict = {field: environ[var] for var, field in _ENV_FIELDS.items() if environ.get(var)}
        if "allowed_hosts" in values:
            values["allowed_hosts"] = tuple(h.strip() for h in values["allowed_hosts"].split(",") if h.strip())
        values.update(overrides)
        try:
            settings = cls(**values)
        except ValidationError as exc:
            names = {field: var for var, field in _ENV_FIELDS.items()}
            problems = [f"{names.get(str(err['loc'][0]), err['loc'][0])}: {err['msg']}" for err in exc.errors()]
            raise ConfigError("bad MCP server configuration: " + "; ".join(problems)) from None
        if settings.engine == "trino" and not settings.trino_url:
            raise ConfigError("bad MCP server configuration: DP_QUERY_ENGINE=trino needs DP_TRINO_URL")
        if settings.jwt_secret and settings.jwt_public_key:
            raise ConfigError("bad MCP server configuration: set DP_MCP_JWT_SECRET or DP_MCP_JWT_PUBLIC_KEY, not both")
        return settings

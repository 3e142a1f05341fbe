"""Configuration of the embedded platform, read once from the environment so every command agrees on it.

| variable | default | meaning |
| --- | --- | --- |
| `DP_HOME` | `<repo>/.dp` | state dir: catalog, warehouse, logs, supervisor files |
| `DP_KAFKA_BOOTSTRAP_SERVERS` | unset | use this Kafka instead of starting Tansu |
| `DP_LOCAL_CATALOG_URI` | SQLite in `DP_HOME` | SQLAlchemy URI of the catalog DB, e.g. `postgresql+psycopg2://...` |
| `DP_LOCAL_<NAME>_PORT` | per service | port of a service, e.g. `DP_LOCAL_KAFKA_PORT` (9092) |
| `DP_LOCAL_EVENTS`, `DP_LOCAL_RATE` | 1,000,000 / 10 | sample events the producer sends, events per second |
| `DP_LOCAL_SEED` | new per `up` | seed of the sample events (same seed, same events: a restart would add nothing new) |
| `DP_LOCAL_INTERVAL` | 5 | seconds between ingest / refine batches |
| `DP_LOCAL_MAINTAIN_EVERY` | 300 | seconds between table maintenance runs |
| `DP_LOCAL_TIMEOUT` | 180 | seconds `dp local up` waits for each service to be healthy |
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import shlex
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, SecretStr, ValidationError

from local.errors import LocalError

REPO = Path(__file__).resolve().parents[1]
CATALOG_NAME = "platform"
INSTANCE_ENV = "DP_LOCAL_INSTANCE"  # marks every process of one platform, so `down` can find strays
_PORT_ENV = re.compile(r"^DP_LOCAL_([A-Z0-9_]+)_PORT$")
_ENV_FIELDS = {
    "DP_HOME": "home",
    "DP_KAFKA_BOOTSTRAP_SERVERS": "kafka_bootstrap",
    "DP_LOCAL_CATALOG_URI": "catalog_uri",
    "DP_LOCAL_SEED": "seed",
    "DP_LOCAL_EVENTS": "events",
    "DP_LOCAL_RATE": "rate",
    "DP_LOCAL_INTERVAL": "interval",
    "DP_LOCAL_MAINTAIN_EVERY": "maintain_every",
    "DP_LOCAL_TIMEOUT": "timeout",
}
_UNIX_SOCKET_MAX = 100  # sun_path holds 108 bytes; keep a margin


class LocalSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    home: Path = REPO / ".dp"
    kafka_bootstrap: str | None = Field(default=None, min_length=1)
    catalog_uri: SecretStr | None = None
    seed: int = Field(default_factory=lambda: time.time_ns() % 2**31)
    events: PositiveInt = 1_000_000
    rate: PositiveFloat = 10.0
    interval: PositiveFloat = 5.0
    maintain_every: PositiveInt = 300
    timeout: PositiveFloat = 180.0
    ports: dict[str, Annotated[int, Field(ge=1, le=65535)]] = Field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LocalSettings:
        """Settings from `environ` (default: the process environment); bad values raise a `LocalError` naming them."""
        environ = os.environ if environ is None else environ
        values: dict = {field: environ[var] for var, field in _ENV_FIELDS.items() if environ.get(var)}
        values["ports"] = {m.group(1).lower(): v for k, v in environ.items() if (m := _PORT_ENV.match(k))}
        try:
            settings = cls(**values)
        except ValidationError as exc:
            names = {field: var for var, field in _ENV_FIELDS.items()}
            problems = []
            for err in exc.errors():
                field = str(err["loc"][0])
                var = names.get(field) or f"DP_LOCAL_{str(err['loc'][-1]).upper()}_PORT"
                problems.append(f"{var}={environ.get(var, '')!r}: {err['msg']}")
            raise LocalError("bad configuration", "\n".join(problems)) from None
        return settings.model_copy(update={"home": settings.home.expanduser().resolve()})

    def port(self, name: str, default: int) -> int:
        """Port of a service: `DP_LOCAL_<NAME>_PORT` or the default."""
        return self.ports.get(name, default)

    # --- where things live ---------------------------------------------------------------------------------
    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse"

    @property
    def catalog_db(self) -> Path:
        return self.home / "catalog.db"

    @property
    def supervisor_conf(self) -> Path:
        return self.home / "supervisord.conf"

    @property
    def supervisor_pidfile(self) -> Path:
        return self.home / "supervisord.pid"

    @property
    def supervisor_socket(self) -> Path:
        """In the state dir, or in the temp dir when that path is too long for a unix socket."""
        path = self.home / "supervisor.sock"
        if len(str(path)) <= _UNIX_SOCKET_MAX:
            return path
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"dp-local-{digest}.sock"

    @property
    def owned_marker(self) -> Path:
        """Present when `up` created the state dir, so `down --purge` may delete all of it."""
        return self.home / ".created-by-dp-local"

    @property
    def record(self) -> Path:
        """What `up` started, where: read by `status` and `down` (no secrets in it)."""
        return self.home / "platform.json"

    # --- how workloads reach it ----------------------------------------------------------------------------
    @property
    def runs_broker(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.port('kafka', 9092)}"

    @property
    def uses_sqlite(self) -> bool:
        return self.catalog_uri is None

    def catalog_properties(self) -> dict[str, str]:
        """pyiceberg SQL catalog properties (the URI may hold a password: never print these)."""
        uri = self.catalog_uri.get_secret_value() if self.catalog_uri else f"sqlite:///{self.catalog_db}"
        return {"type": "sql", "uri": uri, "warehouse": self.warehouse.as_uri()}

    def catalog_display(self) -> str:
        return mask_password(self.catalog_properties()["uri"])

    def platform_env(self) -> dict[str, str]:
        """Variables through which every workload finds this platform (see workloads/common/platform.py)."""
        env = {"DP_CATALOG": CATALOG_NAME, "DP_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers}
        prefix = f"PYICEBERG_CATALOG__{CATALOG_NAME.upper()}__"
        env.update({prefix + key.upper(): value for key, value in self.catalog_properties().items()})
        return env

    def exports(self, environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
        """`platform_env` as shell exports safe to print: a URI with a password refers to its variable instead."""
        environ = os.environ if environ is None else environ
        shown = []
        for key, value in self.platform_env().items():
            if key.endswith("__URI") and value != mask_password(value):
                value = "$DP_LOCAL_CATALOG_URI"
            shown.append((key, value))
        if self.kafka_bootstrap:
            shown += [(k, environ[k]) for k in ("DP_KAFKA_SECURITY_PROTOCOL", "DP_KAFKA_SASL_MECHANISM") if environ.get(k)]
        return shown

    @property
    def mcp_keys_file(self) -> Path:
        return self.home / "mcp-keys.env"

    def mcp_keys(self, environ: Mapping[str, str] | None = None, create: bool = False) -> dict[str, str]:
        """API keys of the local MCP server, one per key variable of its access policy: the caller's own
        (`DP_MCP_AGENT_KEY`...), else generated once into `mcp-keys.env` (0600) and reused by every later `up`."""
        environ = os.environ if environ is None else environ
        names = mcp_key_variables(environ)
        saved = _read_env_file(self.mcp_keys_file)
        keys = {name: environ.get(name) or saved.get(name) or "" for name in names}
        missing = [name for name, value in keys.items() if not value]
        if missing and create:
            keys.update({name: secrets.token_urlsafe(32) for name in missing})
            generated = {**saved, **{name: keys[name] for name in missing}}
            self.home.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.mcp_keys_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write("# API keys of the local MCP server (generated by dp local up). Use: set -a; . THIS; set +a\n")
                out.writelines(f"{k}={v}\n" for k, v in sorted(generated.items()))
        return {k: v for k, v in keys.items() if v}

    def process_env(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment of supervisord, inherited by every service: ours wins over stray catalog settings."""
        environ = dict(os.environ if environ is None else environ)
        prefix = f"PYICEBERG_CATALOG__{CATALOG_NAME.upper()}__"
        env = {k: v for k, v in environ.items() if not k.startswith(prefix)}
        env.update(self.platform_env())
        env.update({"DP_HOME": str(self.home), INSTANCE_ENV: str(self.home), "PYTHONUNBUFFERED": "1"})
        return env


def mcp_key_variables(environ: Mapping[str, str]) -> list[str]:
    """The variables the MCP server's access policy reads API keys from (`keys[].env` in access.yaml)."""
    import yaml

    policy = Path(environ.get("DP_MCP_POLICY") or REPO / "workloads" / "mcp_server" / "access.yaml")
    try:
        document = yaml.safe_load(policy.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise LocalError(f"cannot read the MCP access policy {policy}", str(exc)) from None
    return [key["env"] for key in document.get("keys", []) if isinstance(key, dict) and key.get("env")]


def _read_env_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def shell_exports(pairs: list[tuple[str, str]]) -> str:
    """`export K=V` lines; a value starting with `$` refers to another variable and stays unquoted."""
    return "\n".join(f"export {k}={v if v.startswith('$') else shlex.quote(v)}" for k, v in pairs)


def mask_password(uri: str) -> str:
    """`scheme://user:***@host/db` for display; URIs without a password are returned as they are."""
    parts = urlsplit(uri)
    if not parts.password:
        return uri
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))

"""Owners, quality status and lineage upstreams of a table, as recorded: never inferred, empty when unknown.

They are read from
- the governance workload's quality results (`governance.quality_results`: the newest suite run of the table),
  which take precedence over quality properties;
- table properties, as `python -m workloads.governance metadata apply` writes them from catalog.yaml: `owner` or
  `dp.owners` (comma-separated), `dp.tags`, `dp.classifications` (JSON), `dp.quality.status`,
  `dp.quality.checked-at`, `dp.quality.details`, `dp.lineage.upstreams` (comma-separated `namespace.table` or
  external sources);
- an optional YAML file (`DP_MCP_TABLE_METADATA`), which overrides properties field by field:

      tables:
        gold.daily_revenue:
          owners: [finance-data@example.com]
          quality: {status: passing, checked_at: "2026-11-20T10:00:00Z"}
          upstreams: [silver.orders]
"""
from __future__ import annotations

import json
import threading
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workloads.mcp_server.errors import ConfigError
from workloads.mcp_server.models import Governance, QualityStatus


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owners: list[str] | None = None
    quality: QualityStatus | None = None
    upstreams: list[str] | None = None


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tables: dict[str, _Entry] = Field(default_factory=dict)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def from_properties(properties: dict[str, str], results: dict[str, str] | None = None) -> Governance:
    """Facts from the table's properties; `results`, the newest quality result, wins over quality properties."""
    owners = _split(properties.get("dp.owners")) or _split(properties.get("owner"))
    quality = None
    if any(k.startswith("dp.quality.") for k in properties):
        quality = QualityStatus(status=properties.get("dp.quality.status"),
                                checked_at=properties.get("dp.quality.checked-at"),
                                details=properties.get("dp.quality.details"))
    upstreams = _split(properties.get("dp.lineage.upstreams"))
    tags = _split(properties.get("dp.tags"))
    try:
        classifications = json.loads(properties.get("dp.classifications") or "{}")
    except ValueError:
        classifications = {}
    sources = ["table properties"] if (owners or quality or upstreams or tags or classifications) else []
    if results:
        quality = QualityStatus(**results)
        sources.append("governance.quality_results")
    return Governance(owners=owners, quality=quality, upstreams=upstreams, tags=tags,
                      classifications=classifications, sources=sources)


class MetadataFile:
    """The optional YAML file, re-read when its modification time changes."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._tables: dict[str, _Entry] = {}
        if path is not None:
            self._reload()

    def _reload(self) -> None:
        assert self.path is not None
        try:
            mtime = self.path.stat().st_mtime
            if mtime == self._mtime:
                return
            parsed = _File.model_validate(yaml.safe_load(self.path.read_text()) or {})
        except OSError as exc:
            raise ConfigError(f"table metadata file {self.path}: {exc.strerror or exc}") from None
        except (yaml.YAMLError, ValidationError) as exc:
            raise ConfigError(f"table metadata file {self.path} is invalid: {exc}") from None
        with self._lock:
            self._tables = {k.lower(): v for k, v in parsed.tables.items()}
            self._mtime = mtime

    def governance(self, table: str, properties: dict[str, str], results: dict[str, str] | None = None) -> Governance:
        facts = from_properties(properties, results)
        if self.path is None:
            return facts
        self._reload()
        entry = self._tables.get(table.lower())
        if entry is None:
            return facts
        return Governance.model_validate({**facts.model_dump(), **entry.model_dump(exclude_none=True),
                                          "sources": [*facts.sources, f"metadata file {self.path.name}"]})

"""Catalog metadata as code (`catalog.yaml`): validated, then applied to the tables idempotently.

Everything is stored with the table, so every engine and catalog UI sees it: table properties (`comment`,
`dp.owners`, `dp.tags`, `dp.classifications`, `dp.pii.columns`, `dp.lineage.upstreams`, `dp.lineage.columns`)
and column docs. `apply` computes what differs and commits only that, one transaction per table; keys it
manages that the file no longer sets are removed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workloads.governance.pii import CLASSIFICATIONS

Classification = Literal[CLASSIFICATIONS + ("pii.name", "pii.location", "confidential", "internal", "public")]
MANAGED = ("comment", "dp.owners", "dp.tags", "dp.classifications", "dp.pii.columns", "dp.lineage.upstreams",
           "dp.lineage.columns")


class MetadataError(ValueError):
    """The metadata file is wrong, or names tables or columns that do not exist."""


class ColumnMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str | None = None
    classification: Classification | None = None


class TableMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str | None = None
    owners: list[str] | None = None
    tags: list[str] = Field(default_factory=list)
    columns: dict[str, ColumnMeta] = Field(default_factory=dict)


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owners: list[str] = Field(default_factory=list)


class MetadataFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1] = 1
    defaults: Defaults = Field(default_factory=Defaults)
    tables: dict[str, TableMeta] = Field(default_factory=dict)


def load(path: Path) -> MetadataFile:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise MetadataError(f"metadata file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise MetadataError(f"metadata file {path} is not valid YAML: {exc}") from None
    try:
        return MetadataFile.model_validate(raw or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'top level'}: {e['msg']}" for e in exc.errors())
        raise MetadataError(f"metadata file {path}: {problems}") from None


@dataclass
class TableChange:
    table: str
    set_properties: dict[str, str] = field(default_factory=dict)
    removed_properties: list[str] = field(default_factory=list)
    column_docs: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.set_properties or self.removed_properties or self.column_docs)

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "set_properties": self.set_properties,
                "removed_properties": self.removed_properties, "column_docs": self.column_docs}


def _lineage_properties(table: str) -> dict[str, str]:
    from workloads.governance.column_lineage import job_inputs, job_lineage, outputs

    if table not in outputs():
        return {}
    columns = {column: sorted({f"{s.table}.{s.column}" for s in sources})
               for column, sources in job_lineage(table).items() if column != "*filter*" and sources}
    return {"dp.lineage.upstreams": ",".join(job_inputs(table)),
            "dp.lineage.columns": json.dumps(columns, sort_keys=True, separators=(",", ":"))}


def desired(name: str, meta: TableMeta, defaults: Defaults, description: str | None) -> dict[str, str]:
    """The managed properties `name` should have."""
    wanted = {"comment": meta.description or description or "",
              "dp.owners": ",".join(meta.owners if meta.owners is not None else defaults.owners),
              "dp.tags": ",".join(meta.tags)}
    classes = {c: m.classification for c, m in sorted(meta.columns.items()) if m.classification}
    if classes:
        wanted["dp.classifications"] = json.dumps(classes, sort_keys=True, separators=(",", ":"))
    pii = [c for c, k in classes.items() if k.startswith("pii.")]
    if pii:
        wanted["dp.pii.columns"] = ",".join(pii)
    wanted.update(_lineage_properties(name))
    return {k: v for k, v in wanted.items() if v}


def plan(spec: MetadataFile, catalog: Any) -> list[TableChange]:
    """What `apply` would change, per table; refuses tables or columns the catalog does not have."""
    from workloads.medallion.tables import all_tables

    descriptions = {s.identifier: s.description for s in all_tables()}
    changes, problems = [], []
    for name, meta in spec.tables.items():
        try:
            tbl = catalog.load_table(name)
        except Exception as exc:  # noqa: BLE001 - NoSuchTable / NoSuchNamespace: reported together
            problems.append(f"{name}: {type(exc).__name__} (run `python -m workloads.medallion init` first?)")
            continue
        schema_columns = {f.name: f for f in tbl.schema().fields}
        unknown = sorted(set(meta.columns) - set(schema_columns))
        if unknown:
            problems.append(f"{name}: no column {', '.join(unknown)}")
            continue
        current = dict(tbl.properties)
        wanted = desired(name, meta, spec.defaults, descriptions.get(name))
        change = TableChange(name)
        change.set_properties = {k: v for k, v in wanted.items() if current.get(k) != v}
        change.removed_properties = [k for k in MANAGED if k in current and k not in wanted]
        change.column_docs = {c: m.description for c, m in meta.columns.items()
                              if m.description and schema_columns[c].doc != m.description}
        changes.append(change)
    if problems:
        raise MetadataError("metadata names what the catalog does not have: " + "; ".join(problems))
    return changes


def apply(spec: MetadataFile, catalog: Any, audit: Any = None, actor: str = "governance") -> list[TableChange]:
    """Apply the changes `plan` finds (one transaction per changed table); returns them. Each change is audited
    (an admin action) before it is made: an action that cannot be audited is not made."""
    changes = plan(spec, catalog)
    for change in changes:
        if not change.changed:
            continue
        if audit is not None:
            audit.append(actor=actor, action="metadata.apply", **change.as_dict())
        tbl = catalog.load_table(change.table)
        with tbl.transaction() as tx:
            if change.set_properties:
                tx.set_properties(change.set_properties)
            if change.removed_properties:
                tx.remove_properties(*change.removed_properties)
            if change.column_docs:
                with tx.update_schema() as update:
                    for column, doc in change.column_docs.items():
                        update.update_column(column, doc=doc)
    return changes


def unclassified(spec: MetadataFile, catalog: Any, sample: int = 500) -> list[dict[str, Any]]:
    """Suggestions for columns the metadata does not classify yet, from their names and a sample of values."""
    from workloads.governance.pii import suggest

    found = []
    for namespace in ("bronze", "silver", "gold"):
        for identifier in catalog.list_tables(namespace):
            name = ".".join(identifier)
            known = spec.tables.get(name, TableMeta()).columns
            tbl = catalog.load_table(name)
            columns = [f.name for f in tbl.schema().fields
                       if str(f.field_type) == "string" and not (known.get(f.name) and known[f.name].classification)]
            if not columns:
                continue
            rows = tbl.scan(selected_fields=tuple(columns), limit=sample).to_arrow()
            for column in columns:
                if hint := suggest(column, rows.column(column).to_pylist()):
                    found.append({"table": name, "column": column, "classification": hint.classification,
                                  "confidence": hint.confidence, "evidence": hint.evidence})
    return found

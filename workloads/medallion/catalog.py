"""Creating and opening the workload's tables, only through the platform's catalog (SQL, REST or Glue)."""
from __future__ import annotations

from typing import Any

from workloads.common.platform import load_catalog
from workloads.medallion.tables import NAMESPACES, TABLE_PROPERTIES, all_tables


def ensure_tables(catalog: Any | None = None) -> list[str]:
    """Create the namespaces and tables that are missing (idempotent); returns the identifiers created."""
    catalog = catalog or load_catalog()
    for namespace in NAMESPACES:
        catalog.create_namespace_if_not_exists(namespace)
    existing = {".".join(ident) for ns in NAMESPACES for ident in catalog.list_tables(ns)}
    created = []
    for spec in all_tables():
        if spec.identifier not in existing:
            catalog.create_table_if_not_exists(spec.identifier, schema=spec.schema, properties=TABLE_PROPERTIES)
            created.append(spec.identifier)
    return created


def table(identifier: str, catalog: Any | None = None) -> Any:
    """A fresh handle on a table (current metadata), with a clear error when `init` has not run."""
    from pyiceberg.exceptions import NoSuchTableError

    catalog = catalog or load_catalog()
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError as exc:
        raise RuntimeError(f"table {identifier} does not exist: "
                           "run `python -m workloads.medallion init` first") from exc

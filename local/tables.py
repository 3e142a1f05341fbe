"""The embedded platform's Iceberg catalog as `dp local` sees it: open it from the settings (not from the
environment of the shell), and count rows per table from snapshot summaries (no data files are read)."""
from __future__ import annotations

from typing import Any

from local.settings import CATALOG_NAME, LocalSettings

LAYERS = ("bronze", "silver", "gold")


def open_catalog(settings: LocalSettings) -> Any | None:
    """The SQL catalog, or None when there is none yet (SQLite file not created: opening would create it)."""
    if settings.uses_sqlite and not settings.catalog_db.exists():
        return None
    from pyiceberg.catalog.sql import SqlCatalog

    props = settings.catalog_properties()
    props.pop("type")
    return SqlCatalog(CATALOG_NAME, **props)


def row_counts(catalog: Any | None) -> dict[str, int]:
    """`{"bronze.orders": rows, ...}`: medallion layers first (bronze, silver, gold), then any other namespace."""
    if catalog is None:
        return {}
    namespaces = [".".join(ns) for ns in catalog.list_namespaces()]
    ordered = [ns for ns in LAYERS if ns in namespaces] + sorted(ns for ns in namespaces if ns not in LAYERS)
    counts: dict[str, int] = {}
    for namespace in ordered:
        for identifier in sorted(catalog.list_tables(namespace)):
            snapshot = catalog.load_table(identifier).current_snapshot()
            total = snapshot.summary["total-records"] if snapshot is not None and snapshot.summary else None
            counts[".".join(identifier)] = int(total or 0)
    return counts

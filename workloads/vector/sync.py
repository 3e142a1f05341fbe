"""Index the default specs from inside a long-running process (the MCP server, the local platform).

The embedded engines are single-process: a process that searches a Qdrant Edge collection holds it, so another
process cannot index it at the same time. A server that wants fresh collections runs the sync in its own process:

    from workloads.vector.sync import start_background_sync
    stop = start_background_sync(interval=30)   # ... stop.set() on shutdown
"""
from __future__ import annotations

import threading
from typing import Any

import structlog

from workloads.vector.indexer import IndexResult, IndexSpec, TableMissing, index_table

log = structlog.get_logger(__name__)


def sync_once(specs: list[IndexSpec] | None = None, catalog: Any = None) -> list[IndexResult]:
    """One pass over `specs` (default: every default spec) whose tables exist; uses the configured store."""
    from workloads.common.platform import load_catalog
    from workloads.vector.specs import DEFAULT_SPECS

    catalog = catalog or load_catalog()
    results = []
    for spec in specs or DEFAULT_SPECS:
        try:
            results.append(index_table(spec, catalog=catalog))
        except TableMissing:
            log.info("vector.table_missing", table=spec.table)  # the medallion jobs have not created it yet
    return results


def start_background_sync(interval: float = 30.0, specs: list[IndexSpec] | None = None,
                          catalog: Any = None) -> threading.Event:
    """Run `sync_once` every `interval` seconds in a daemon thread until the returned event is set. Errors are
    logged and retried on the next round, never raised into the host process."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                sync_once(specs, catalog)
            except Exception as exc:  # keep the host alive; the next round retries
                log.error("vector.sync_failed", error=str(exc), error_type=type(exc).__name__)
            stop.wait(interval)

    threading.Thread(target=loop, name="vector-sync", daemon=True).start()
    return stop

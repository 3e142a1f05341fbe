"""The governance service of the embedded platform (`python -m workloads.governance serve`):

- serves governance metrics on /metrics (`metrics.GovernanceCollector`);
- applies the catalog metadata file at start and again whenever the file changes;
- publishes the audit logs' heads to `governance.audit_anchors` every `anchor_every` seconds (when they moved).

Stops on SIGTERM/SIGINT after the step in hand.
"""
from __future__ import annotations

import time
from pathlib import Path

import structlog


def _apply_metadata(catalog, path: Path, log) -> bool:
    from workloads.governance import metadata
    from workloads.governance.audit import AuditLog
    from workloads.governance import settings

    try:
        changes = metadata.apply(metadata.load(path), catalog, AuditLog(settings.admin_audit_log()),
                                 actor="governance-service")
    except (metadata.MetadataError, OSError, RuntimeError) as exc:
        log.warning("catalog metadata not applied", error=str(exc))
        return False
    log.info("catalog metadata applied", tables=len(changes), changed=[c.table for c in changes if c.changed] or None)
    return True


def _anchor(catalog, anchored: dict[str, int], log) -> None:
    from workloads.governance import settings
    from workloads.governance.audit import read_head
    from workloads.governance.results import publish_anchor

    for path in sorted(settings.audit_dir().glob("*.jsonl")):
        head = read_head(path)
        if not head or not isinstance(head.get("seq"), int) or anchored.get(path.name) == head["seq"]:
            continue
        publish_anchor(catalog, path.name, head["seq"], head["hash"])
        anchored[path.name] = head["seq"]
        log.info("audit head anchored", log=path.name, seq=head["seq"])


def run(host: str, port: int, apply_metadata: bool, anchor_every: float) -> None:
    from prometheus_client import REGISTRY, start_http_server

    from workloads.common.platform import load_catalog
    from workloads.governance import settings
    from workloads.governance.metrics import GovernanceCollector
    from workloads.medallion.runner import Stop, configure_logging

    configure_logging()
    log = structlog.get_logger()
    stop = Stop().install()
    catalog = load_catalog()
    REGISTRY.register(GovernanceCollector(catalog))
    server, thread = start_http_server(port, addr=host)
    log.info("governance service started", metrics=f"http://{host}:{port}/metrics")
    metadata_path = settings.metadata_file()
    applied_mtime: float | None = None
    anchored: dict[str, int] = {}
    next_anchor = 0.0
    try:
        while not stop.requested:
            if apply_metadata:
                mtime = metadata_path.stat().st_mtime if metadata_path.exists() else None
                if mtime != applied_mtime and _apply_metadata(catalog, metadata_path, log):
                    applied_mtime = mtime
            if time.monotonic() >= next_anchor:
                try:
                    _anchor(catalog, anchored, log)
                except Exception as exc:  # noqa: BLE001 - the catalog may be briefly unreachable: try again later
                    log.warning("audit anchors not published", error=f"{type(exc).__name__}: {exc}")
                next_anchor = time.monotonic() + anchor_every
            stop.wait(min(5.0, anchor_every))
    finally:
        server.shutdown()
        thread.join(timeout=5)

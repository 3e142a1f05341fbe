"""Governance metrics for Prometheus (names follow components/observability/README.md: `dp_` prefix, `_total`
counters, `_seconds` units, `table`/`layer` labels).

In the jobs' own processes: `dp_lineage_events_total{job, event_type, outcome}` (ok | failed).

`GovernanceCollector` (served by `python -m workloads.governance serve`) computes the rest at scrape time from
durable state, so it needs no cooperation from the jobs and survives their restarts:

| metric | from |
| --- | --- |
| `dp_quality_pass_ratio{table, layer}` | `governance.quality_results`: share of suite runs passed (last 24 h) |
| `dp_quality_runs_total{table, layer, outcome}` | the same table: suite runs, passed / failed |
| `dp_quality_last_success{table, layer}` | 1 when the newest suite run passed |
| `dp_table_last_commit_timestamp_seconds{table, layer}` | each table's current snapshot |
| `dp_table_freshness_seconds{table, layer}` | now minus the above |
| `dp_lineage_events_file_total{event_type}` | the lineage file (embedded platform) |
| `dp_lineage_undelivered_events` | events waiting in the spool after a transport failure |
| `dp_access_denials_total{log, tool, reason}` | audit logs: calls denied, unauthenticated or rate limited |
| `dp_audit_entries_total{log}`, `dp_audit_chain_valid{log}` | audit logs: entries, and 1 when the chain verifies |
| `dp_pii_unclassified_columns{table, column, classification}` | PII suggestions for columns the metadata file does not classify (new columns included), every 10 min |
"""
from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from workloads.governance import settings

LINEAGE_EVENTS = Counter("dp_lineage_events", "OpenLineage events sent by this process",
                         ["job", "event_type", "outcome"])
DENIED_OUTCOMES = ("denied", "unauthenticated", "rate_limited")
PASS_WINDOW = timedelta(hours=24)
SUGGEST_EVERY = 600.0


class _Tail:
    """Counts over a growing JSON-lines file, reading only what was appended since the last scrape."""

    def __init__(self, path: Path, count: Any):
        self.path, self.count = path, count
        self.offset, self.state = 0, {}

    def update(self) -> dict:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            self.offset, self.state = 0, {}
            return self.state
        if size < self.offset:  # rotated or truncated: count again
            self.offset, self.state = 0, {}
        with open(self.path, "rb") as reader:
            reader.seek(self.offset)
            chunk = reader.read(size - self.offset)
        complete = chunk[:chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.splitlines():
            try:
                self.count(self.state, json.loads(line))
            except ValueError:
                self.count(self.state, None)
        return self.state


def _count_lineage(state: dict, event: dict | None) -> None:
    key = (event or {}).get("eventType", "unreadable")
    state[key] = state.get(key, 0) + 1


def _count_audit(state: dict, entry: dict | None) -> None:
    state["entries"] = state.get("entries", 0) + 1
    if entry and entry.get("outcome") in DENIED_OUTCOMES:
        denials = state.setdefault("denials", {})
        key = (str(entry.get("tool") or "-"), entry["outcome"])
        denials[key] = denials.get(key, 0) + 1


class GovernanceCollector:
    """Reads the catalog at most every `ttl` seconds; files incrementally on every scrape."""

    def __init__(self, catalog: Any, ttl: float = 15.0):
        self.catalog, self.ttl = catalog, ttl
        self._lock = threading.Lock()
        self._catalog_cache: tuple[float, list[Any]] | None = None
        self._lineage = _Tail(settings.lineage_file(), _count_lineage)
        self._audits: dict[Path, _Tail] = {}
        self._chains: dict[Path, tuple[int, bool]] = {}
        self._suggested: tuple[float, list[dict[str, Any]]] | None = None

    def _catalog_metrics(self) -> list[Any]:
        now = time.monotonic()
        if self._catalog_cache and now - self._catalog_cache[0] < self.ttl:
            return self._catalog_cache[1]
        families = self._tables() + self._quality() + [self._suggestions(now)]
        self._catalog_cache = (now, families)
        return families

    def _suggestions(self, now: float) -> Any:
        from workloads.governance import metadata

        if self._suggested is None or now - self._suggested[0] >= SUGGEST_EVERY:
            found = metadata.unclassified(metadata.load(settings.metadata_file()), self.catalog)
            self._suggested = (now, found)
        gauge = GaugeMetricFamily("dp_pii_unclassified_columns", "Columns that look like personal data but have no "
                                  "classification in the metadata file", labels=["table", "column", "classification"])
        for s in self._suggested[1]:
            gauge.add_metric([s["table"], s["column"], s["classification"]], s["confidence"])
        return gauge

    def _tables(self) -> list[Any]:
        commit = GaugeMetricFamily("dp_table_last_commit_timestamp_seconds",
                                   "Unix time of the table's current snapshot", labels=["table", "layer"])
        fresh = GaugeMetricFamily("dp_table_freshness_seconds", "Seconds since the table's current snapshot",
                                  labels=["table", "layer"])
        now = time.time()
        for namespace in ("bronze", "silver", "gold"):
            try:
                identifiers = self.catalog.list_tables(namespace)
            except Exception:  # noqa: BLE001 - a namespace not created yet
                continue
            for identifier in identifiers:
                name = ".".join(identifier)
                snapshot = self.catalog.load_table(name).current_snapshot()
                if snapshot is not None:
                    commit.add_metric([name, namespace], snapshot.timestamp_ms / 1000)
                    fresh.add_metric([name, namespace], max(0.0, now - snapshot.timestamp_ms / 1000))
        return [commit, fresh]

    def _quality(self) -> list[Any]:
        from workloads.governance.results import quality_rows

        ratio = GaugeMetricFamily("dp_quality_pass_ratio", "Share of quality suite runs passed in the last 24 h",
                                  labels=["table", "layer"])
        runs = CounterMetricFamily("dp_quality_runs", "Quality suite runs", labels=["table", "layer", "outcome"])
        last = GaugeMetricFamily("dp_quality_last_success", "1 when the newest quality suite run passed",
                                 labels=["table", "layer"])
        rows = quality_rows(self.catalog).to_pylist()
        since = datetime.now(UTC) - PASS_WINDOW
        stats: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            entry = stats.setdefault((row["table"], row["layer"]), {"passed": 0, "failed": 0, "recent": [],
                                                                    "newest": None})
            entry["passed" if row["success"] else "failed"] += 1
            if row["checked_at"] >= since:
                entry["recent"].append(row["success"])
            if entry["newest"] is None or row["checked_at"] >= entry["newest"][0]:
                entry["newest"] = (row["checked_at"], row["success"])
        for (table, layer), entry in sorted(stats.items()):
            runs.add_metric([table, layer, "passed"], entry["passed"])
            runs.add_metric([table, layer, "failed"], entry["failed"])
            if entry["recent"]:
                ratio.add_metric([table, layer], sum(entry["recent"]) / len(entry["recent"]))
            last.add_metric([table, layer], 1.0 if entry["newest"][1] else 0.0)
        return [ratio, runs, last]

    def _audit_metrics(self) -> list[Any]:
        from workloads.governance.audit import verify

        entries = CounterMetricFamily("dp_audit_entries", "Entries in the audit log", labels=["log"])
        denials = CounterMetricFamily("dp_access_denials", "Calls refused (policy, authentication, rate limit)",
                                      labels=["log", "tool", "reason"])
        valid = GaugeMetricFamily("dp_audit_chain_valid", "1 when the audit log's hash chain verifies",
                                  labels=["log"])
        for path in sorted(settings.audit_dir().glob("*.jsonl")):
            tail = self._audits.setdefault(path, _Tail(path, _count_audit))
            state = tail.update()
            entries.add_metric([path.name], state.get("entries", 0))
            for (tool, reason), count in sorted(state.get("denials", {}).items()):
                denials.add_metric([path.name, tool, reason], count)
            size = path.stat().st_size
            cached = self._chains.get(path)
            if cached is None or cached[0] != size:  # verify again only when the log changed
                cached = (size, verify(path).ok)
                self._chains[path] = cached
            valid.add_metric([path.name], 1.0 if cached[1] else 0.0)
        return [entries, denials, valid]

    def collect(self):
        with self._lock:
            lineage = self._lineage.update()
            events = CounterMetricFamily("dp_lineage_events_file", "OpenLineage events in the lineage file",
                                         labels=["event_type"])
            for event_type, count in sorted(lineage.items()):
                events.add_metric([event_type], count)
            spool = settings.lineage_spool()
            pending = GaugeMetricFamily("dp_lineage_undelivered_events",
                                        "Lineage events waiting to be replayed after a transport failure")
            pending.add_metric([], sum(1 for _ in open(spool, "rb")) if spool.exists() else 0)
            families = [events, pending] + self._audit_metrics()
            try:
                families += self._catalog_metrics()
            except Exception as exc:  # noqa: BLE001 - the catalog down must not hide the other metrics
                up = GaugeMetricFamily("dp_governance_catalog_up", f"catalog readable ({type(exc).__name__})")
                up.add_metric([], 0)
                families.append(up)
        yield from families

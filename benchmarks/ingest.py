"""`dp bench ingest`: shop events through Kafka into the bronze tables, exactly once, end to end.

In one run, on a throwaway platform (a Tansu broker on a free loopback port, a SQLite catalog in a tmp dir):
0. warm-up: 5% of N events (at least 20k) go through the same path first, untimed, as they would in a job that
   has been running (imports done, memory pools grown);
1. produce N events to Kafka (idempotent producer; not part of the figure);
2. events_per_s: the ingest job from the first poll until every event is committed to bronze (consume, parse and
   validate, audit columns, Parquet, one Iceberg commit per table per micro-batch, offsets in the snapshot);
3. baseline_rows_per_s: a bare pyiceberg `append` of the very same rows (read back from bronze) into tables with
   the same schema and properties: the cost of just writing them;
4. ratio = events_per_s / baseline_rows_per_s.
`detail` (table output only; --json prints exactly the four figures above) adds the ingest process's CPU time
and the machine's load average: on a shared 2-core machine wall-clock figures move with the neighbours' load.
Goal on 2 cores: >= 300k events/s end to end and a ratio >= 0.25.
"""
from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def bench_platform(kafka: bool = True) -> Iterator[dict[str, str]]:
    """A private catalog (and broker) for one benchmark run, set in this process's environment (`load_catalog`
    reads it at each call)."""
    from workloads.common.tansu import start_tansu

    with tempfile.TemporaryDirectory(prefix="dp-bench-") as tmp:
        root = Path(tmp)
        (root / "warehouse").mkdir()
        variables = {"DP_CATALOG": "bench", "PYICEBERG_CATALOG__BENCH__TYPE": "sql",
                     "PYICEBERG_CATALOG__BENCH__URI": f"sqlite:///{root / 'catalog.db'}",
                     "PYICEBERG_CATALOG__BENCH__WAREHOUSE": (root / "warehouse").as_uri()}
        broker = None
        if kafka:
            broker, variables["DP_KAFKA_BOOTSTRAP_SERVERS"] = start_tansu(log=root / "tansu.log")
        saved = {key: os.environ.get(key) for key in variables}
        os.environ.update(variables)
        try:
            yield variables
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            if broker is not None:
                broker.terminate()
                broker.wait(timeout=10)


def quiet_logs() -> None:
    """The jobs' per-batch log lines would drown the progress display: warnings only, on stderr."""
    import logging

    from workloads.medallion.runner import configure_logging

    configure_logging(logging.WARNING)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Any]:
    """A rich progress display on stderr (stdout stays clean for --json), or a no-op."""
    if not enabled:
        class _Quiet:
            def add_task(self, *args: Any, **kwargs: Any) -> int:
                return 0

            def update(self, *args: Any, **kwargs: Any) -> None:
                pass

        yield _Quiet()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True)) as bar:
        yield bar


def _bronze_rows(catalog: Any) -> int:
    from workloads.medallion.tables import BRONZE_QUARANTINE, ENTITIES, bronze

    total = 0
    for identifier in [bronze(e) for e in ENTITIES] + [BRONZE_QUARANTINE]:
        snapshot = catalog.load_table(identifier).current_snapshot()
        total += int(snapshot.summary["total-records"]) if snapshot is not None else 0
    return total


def _ingest_all(events: int, catalog: Any, progress: Any) -> None:
    """Run the ingest job until `events` more records are committed (Tansu may report a partition's end early)."""
    from workloads.medallion.bronze import ingest

    committed, deadline = 0, time.perf_counter() + 600
    while committed < events and time.perf_counter() < deadline:
        for result in ingest(catalog=catalog):
            committed += result.rows + result.quarantined
            progress(committed)
    if committed != events:
        raise RuntimeError(f"ingest committed {committed} of {events} events")


def _baseline(catalog: Any) -> tuple[int, float]:
    """Append the bronze rows again, with nothing but pyiceberg, into same-shaped tables; (rows, seconds)."""
    from workloads.medallion.tables import ENTITIES, TABLE_PROPERTIES, bronze

    catalog.create_namespace_if_not_exists("baseline")
    rows, seconds = 0, 0.0
    for entity in ENTITIES:
        source = catalog.load_table(bronze(entity))
        data = source.scan().to_arrow()
        target = catalog.create_table(f"baseline.{entity}", schema=source.schema(), properties=TABLE_PROPERTIES)
        started = time.perf_counter()
        target.append(data)
        seconds += time.perf_counter() - started
        rows += data.num_rows
    return rows, seconds


def run(events: int = 1_000_000, seed: int = 7, progress: bool = True) -> dict[str, Any]:
    from workloads.common.platform import load_catalog
    from workloads.medallion.catalog import ensure_tables
    from workloads.medallion.generator import produce

    quiet_logs()
    with bench_platform(kafka=True), progress_bar(progress) as bar:
        catalog = load_catalog()
        ensure_tables(catalog)
        warm_up = max(20_000, events // 20)
        task = bar.add_task("warm-up", total=warm_up)
        produce(warm_up, seed=seed + 1)
        _ingest_all(warm_up, catalog, lambda n: bar.update(task, completed=n))

        task = bar.add_task("producing to Kafka", total=events)
        produce_started = time.perf_counter()
        produce(events, seed=seed, progress=lambda n: bar.update(task, completed=n))
        produce_seconds = time.perf_counter() - produce_started

        task = bar.add_task("Kafka -> bronze", total=events)
        started, cpu_started = time.perf_counter(), time.process_time()
        _ingest_all(events, catalog, lambda n: bar.update(task, completed=n))
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        if _bronze_rows(catalog) != warm_up + events:
            raise RuntimeError(f"bronze holds {_bronze_rows(catalog)} rows for {warm_up + events} events produced")

        task = bar.add_task("baseline: bare pyiceberg append", total=events)
        rows, baseline_seconds = _baseline(catalog)
        bar.update(task, completed=rows)
    events_per_s = events / seconds
    baseline = rows / baseline_seconds
    return {"events": events, "events_per_s": round(events_per_s, 1), "baseline_rows_per_s": round(baseline, 1),
            "ratio": round(events_per_s / baseline, 3),
            # Context for reading the figures (not in --json): CPU used by the ingest process (the broker's
            # own CPU excluded), and how busy the machine was.
            "detail": {"ingest_cpu_seconds": round(cpu_seconds, 2),
                       "produce_events_per_s": round(events / produce_seconds),
                       "load_average_1m": os.getloadavg()[0]}}

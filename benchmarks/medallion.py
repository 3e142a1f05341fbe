"""`dp bench medallion`: one refine round, bronze -> silver -> gold, over N bronze rows.

N shop events are generated and written to the bronze tables through the bronze writer itself (parsing, audit
columns, one commit per table; Kafka is left out: `dp bench ingest` measures that part). Then one incremental
refine round is timed: four silver tables (deduplicate, type, validate) and three gold tables.
Goal on 2 cores: 1M rows in <= 5 s.
"""
from __future__ import annotations

import time
from itertools import islice
from typing import Any

from benchmarks.ingest import bench_platform, progress_bar, quiet_logs


def _fill_bronze(rows: int, seed: int, catalog: Any, bar: Any) -> None:
    import json

    from workloads.medallion.bronze import BronzeIngestor, TopicBatch
    from workloads.medallion.generator import Shop

    task = bar.add_task("writing bronze", total=rows)
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    stream = Shop(seed=seed).events()
    writer, done, chunk = BronzeIngestor(catalog), 0, 250_000
    offsets: dict[str, int] = {}
    while done < rows:
        batches: dict[str, TopicBatch] = {}
        for event in islice(stream, min(chunk, rows - done)):
            batch = batches.setdefault(event.topic, TopicBatch())
            batch.values.append(dumps(event.value).encode())
            batch.partitions.append(0)
            batch.offsets.append(offsets.get(event.topic, 0) + len(batch.offsets))
        for topic, batch in batches.items():
            offsets[topic] = offsets.get(topic, 0) + len(batch.offsets)
        done += writer.write(batches).rows
        bar.update(task, completed=done)


def run(rows: int = 1_000_000, seed: int = 7, progress: bool = True) -> dict[str, Any]:
    from workloads.common.platform import load_catalog
    from workloads.medallion.catalog import ensure_tables
    from workloads.medallion.refine import refine_once

    quiet_logs()
    with bench_platform(kafka=False), progress_bar(progress) as bar:
        catalog = load_catalog()
        ensure_tables(catalog)
        _fill_bronze(rows, seed, catalog, bar)
        task = bar.add_task("refining: bronze -> silver -> gold", total=1)
        started = time.perf_counter()
        results = refine_once(catalog)
        seconds = time.perf_counter() - started
        bar.update(task, completed=1)
        if sum(getattr(r, "source_rows", 0) for r in results) != rows:
            raise RuntimeError(f"refine read {sum(getattr(r, 'source_rows', 0) for r in results)} of {rows} rows")
    return {"rows": rows, "seconds": round(seconds, 3)}

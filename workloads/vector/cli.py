"""`python -m workloads.vector <command>`: keep the collections in sync with their tables, and look inside them.

The store comes from `DP_VECTOR_BACKEND`/`DP_VECTOR_PATH` (see `workloads.vector.store`), the catalog from the
platform's environment (`workloads.common.platform`), the embedder from `DP_EMBEDDINGS_*`.
"""
from __future__ import annotations

import json
import signal
import time

import typer
from rich.console import Console
from rich.table import Table

from workloads.vector.store import VectorError

app = typer.Typer(help="Vector layer: index Iceberg tables into vector collections, search them.",
                  no_args_is_help=True, add_completion=False)
console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=2)


@app.command()
def index(tables: list[str] = typer.Option(None, "--table", help="table or collection to index (repeatable); "
                                                                  "default: every default spec"),
          full: bool = typer.Option(False, "--full", help="re-read whole tables instead of new snapshots only"),
          follow: bool = typer.Option(False, "--follow", help="keep indexing new snapshots until SIGTERM/SIGINT"),
          interval: float = typer.Option(10.0, "--interval", min=0.1, help="seconds between rounds with --follow"),
          ) -> None:
    """Bring collections up to date with their tables (incremental, idempotent)."""
    from workloads.vector import specs as default_specs

    try:
        chosen = default_specs.select(tables)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    stopping = {"now": False}
    if follow:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopping.update(now=True))
    reported_missing: set[str] = set()
    while True:
        try:
            _index_round(chosen, full=full, required=bool(tables), quiet=follow, reported_missing=reported_missing)
            full = False
        except VectorError as exc:
            if not follow:
                raise _fail(str(exc)) from None
            console.print(f"[red]error:[/red] {exc} (retrying in {interval:g}s)")  # --follow keeps going
        if not follow:
            return
        deadline = time.monotonic() + interval
        while not stopping["now"] and time.monotonic() < deadline:
            time.sleep(0.1)
        if stopping["now"]:
            return


def _index_round(chosen, *, full: bool, required: bool, quiet: bool, reported_missing: set[str]) -> None:
    """Index each spec once. The store is closed after the round, which hands the embedded collections back to the
    process that searches them (see handoff.py). `quiet`: print only changes."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from workloads.common.platform import load_catalog
    from workloads.vector.indexer import IDLE, TableMissing, index_table
    from workloads.vector.store import close_stores, get_store

    columns = ("collection", "table", "mode", "snapshot", "read", "upserted", "unchanged", "deleted", "skipped", "s")
    rows: list[tuple[str, ...]] = []
    try:
        catalog = load_catalog()
    except Exception as exc:  # pyiceberg raises ValueError, OSError, SQLAlchemy errors... for a bad configuration
        raise VectorError(f"cannot open the Iceberg catalog: {exc}") from None
    try:
        store = get_store()
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,} rows"),
                      TimeElapsedColumn(), console=console, transient=True,
                      disable=not console.is_terminal) as progress:
            for spec in chosen:
                task = progress.add_task(f"{spec.table} -> {spec.collection}", total=None)
                try:
                    result = index_table(spec, store=store, catalog=catalog, full=full,
                                         on_progress=lambda rows, task=task: progress.advance(task, rows))
                except TableMissing:
                    if required:
                        raise
                    if spec.table not in reported_missing:
                        console.print(f"{spec.table}: not created yet, skipped")
                        reported_missing.add(spec.table)
                    continue
                finally:
                    progress.remove_task(task)
                reported_missing.discard(spec.table)
                if quiet and result.mode in IDLE:
                    continue
                rows.append((result.collection, result.table, result.mode, str(result.snapshot_id or "-"),
                             f"{result.rows_read:,}", f"{result.upserted:,}", f"{result.unchanged:,}",
                             f"{result.deleted:,}", f"{result.skipped:,}", f"{result.seconds:.2f}"))
    finally:
        close_stores()
    if not console.is_terminal:  # a log file (supervisord, containers): one full line per collection
        for row in rows:
            console.print(" ".join(f"{name}={value}" for name, value in zip(columns, row)), soft_wrap=True,
                          highlight=False)
    elif rows:
        summary = Table(title="vector index")
        for column in columns:
            summary.add_column(column, justify="left" if column in columns[:4] else "right")
        for row in rows:
            summary.add_row(*row)
        console.print(summary)


def _parse_filter(items: list[str] | None) -> dict[str, str | int | float | bool]:
    """`key=value` pairs; values are read as bool, int or float when they look like one, else text."""
    filters: dict[str, str | int | float | bool] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise _fail(f"--filter takes key=value, got {item!r}")
        value: str | int | float | bool = raw
        if raw in ("true", "false"):
            value = raw == "true"
        else:
            for cast in (int, float):
                try:
                    value = cast(raw)
                    break
                except ValueError:
                    pass
        filters[key] = value
    return filters


@app.command()
def search(collection: str = typer.Argument(..., help="collection name"),
           query: str = typer.Argument(..., help="text to search for"),
           limit: int = typer.Option(10, "--limit", min=1, max=1000),
           filters: list[str] = typer.Option(None, "--filter", help="payload equality, key=value (repeatable)"),
           as_json: bool = typer.Option(False, "--json", help="print the hits as JSON")) -> None:
    """Semantic search in a collection."""
    from workloads.vector import search as run_search

    try:
        hits = run_search(collection, query, limit=limit, filters=_parse_filter(filters))
    except VectorError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(hits))
        return
    table = Table(title=f"{collection}: {query!r}")
    for column in ("score", "id", "payload"):
        table.add_column(column)
    for hit in hits:
        table.add_row(f"{hit['score']:.3f}", hit["id"], json.dumps(hit["payload"], ensure_ascii=False))
    Console().print(table)


@app.command("collections")
def list_collections() -> None:
    """Collections in the configured store, with their size and source."""
    from workloads.vector.store import get_store

    try:
        store = get_store()
        table = Table(title=f"collections ({store.backend})")
        for column in ("collection", "points", "table", "snapshot", "embedder"):
            table.add_column(column)
        for name in store.collections():
            meta = store.get_metadata(name)
            source = meta.get("source", {})
            table.add_row(name, f"{store.count(name):,}", source.get("table", "-"),
                          str(source.get("snapshot_id", "-")), meta.get("embedder", "-"))
    except VectorError as exc:
        raise _fail(str(exc)) from None
    Console().print(table)


@app.command()
def drop(collection: str = typer.Argument(..., help="collection to delete"),
         yes: bool = typer.Option(False, "--yes", help="do not ask")) -> None:
    """Delete a collection (the next `index` rebuilds it from its table)."""
    from workloads.vector.store import get_store

    if not yes and not typer.confirm(f"drop collection {collection!r}?"):
        raise typer.Exit(code=1)
    try:
        store = get_store()
        store.require(collection)
        store.drop_collection(collection)
    except VectorError as exc:
        raise _fail(str(exc)) from None
    console.print(f"dropped {collection}")

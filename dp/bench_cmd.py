"""`dp bench ...`: each benchmark lives in `benchmarks/<name>.py` and exposes `run(**options) -> dict`.
This module only parses options and prints the figures (a table, or the dict as JSON with --json)."""
import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Benchmarks that print their figures next to a baseline measured in the same run.",
                  no_args_is_help=True)


def report(title: str, figures: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(figures))
        return
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")

    def rows(prefix: str, value: Any):
        if isinstance(value, dict):
            for k, v in value.items():
                yield from rows(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            yield prefix, f"{value:,.3f}" if isinstance(value, float) else str(value)

    for name, value in rows("", figures):
        table.add_row(name, value)
    Console().print(table)


@app.command()
def vector(n: int = typer.Option(100_000, "--n", help="vectors per backend"),
           dim: int = typer.Option(384, "--dim", help="vector dimension"),
           queries: int = typer.Option(500, "--queries", help="top-10 queries timed per backend"),
           as_json: bool = typer.Option(False, "--json", help="print the figures as JSON")) -> None:
    """Embedded vector backends: insert rate, index build, search p50/p99 and recall@10 vs numpy exact search."""
    from benchmarks.vector import run

    report("vector backends (clustered vectors)", run(n=n, dim=dim, queries=queries, show_progress=not as_json),
           as_json)


@app.command("mcp")
def mcp(calls: int = typer.Option(2000, "--calls", help="tool calls per phase (sequential, then concurrent)"),
        clients: int = typer.Option(50, "--clients", help="concurrent MCP clients"),
        rate: float = typer.Option(5.0, "--rate", min=0, help="calls/s per concurrent client (0: back to back)"),
        as_json: bool = typer.Option(False, "--json", help="print the figures as JSON")) -> None:
    """MCP server: metadata tool-call latency p50/p99 over streamable HTTP, sequential and concurrent, vs /healthz."""
    from benchmarks.mcp import run

    report("MCP tool calls over streamable HTTP (ms)",
           run(calls=calls, clients=clients, rate=rate, progress=not as_json), as_json)


@app.command()
def ingest(events: int = typer.Option(1_000_000, "--events", min=1, help="events produced, then ingested"),
           as_json: bool = typer.Option(False, "--json", help="print the figures as JSON")) -> None:
    """Kafka -> bronze end to end (exactly once, validated) vs a bare pyiceberg append of the same rows."""
    from benchmarks.ingest import run

    figures = run(events=events, progress=not as_json)
    if as_json:
        figures = {key: figures[key] for key in ("events", "events_per_s", "baseline_rows_per_s", "ratio")}
    report("Kafka -> bronze ingest", figures, as_json)


@app.command()
def medallion(rows: int = typer.Option(1_000_000, "--rows", min=1, help="bronze rows refined"),
              as_json: bool = typer.Option(False, "--json", help="print the figures as JSON")) -> None:
    """bronze -> silver -> gold for N bronze rows (one incremental refine round)."""
    from benchmarks.medallion import run

    report("bronze -> silver -> gold", run(rows=rows, progress=not as_json), as_json)


@app.command()
def pii(seed: int = typer.Option(7, "--seed", help="seed of the generated labelled sample"),
        repeat: int = typer.Option(20, "--repeat", min=1, help="passes over the sample for the throughput"),
        as_json: bool = typer.Option(False, "--json", help="print the figures as JSON")) -> None:
    """PII detectors: precision and recall on a labelled sample, vs plain regular expressions; texts per second."""
    from benchmarks.pii import run

    report("PII detectors vs plain regular expressions", run(seed=seed, repeat=repeat), as_json)

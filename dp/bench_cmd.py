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

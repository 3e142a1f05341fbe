"""What runs where, for people: services, tables per layer, locations, and the variables to reach it."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from local.settings import shell_exports
from local.tables import LAYERS

_STYLE = {"RUNNING": "green", "EXITED": "cyan", "STARTING": "yellow", "BACKOFF": "yellow", "STOPPING": "yellow",
          "FATAL": "bold red", "STOPPED": "red", "UNKNOWN": "red"}


def services_table(state: dict[str, Any], record: dict[str, Any] | None) -> Table:
    details = {s["name"]: s for s in (record or {}).get("services", [])}
    home = Path((record or {}).get("home", "/"))
    table = Table(title="Services", title_justify="left")
    for column in ("service", "state", "endpoint", "log (in the state dir)"):
        table.add_column(column, overflow="fold")
    for name, value in state["services"].items():
        info = details.get(name, {})
        log = Path(info["log"]).relative_to(home) if info.get("log", "").startswith(str(home)) else info.get("log", "")
        table.add_row(name, Text(value, style=_STYLE.get(value, "dim")), info.get("endpoint", ""), str(log))
    return table


def tables_table(state: dict[str, Any]) -> Table:
    table = Table(title="Tables", title_justify="left")
    table.add_column("layer")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in state["tables"].items():
        layer, _, short = name.rpartition(".")
        table.add_row(layer if layer in LAYERS else Text(layer, style="dim"), short, f"{rows:,}")
    if not state["tables"]:
        table.add_row("-", "no tables yet", "")
    return table


def status_view(state: dict[str, Any], record: dict[str, Any] | None) -> RenderableType:
    return Group(services_table(state, record), tables_table(state))


def summary(state: dict[str, Any], record: dict[str, Any]) -> RenderableType:
    """Printed by `dp local up` once everything is healthy (print with soft_wrap so exports stay one line)."""
    places = Table.grid(padding=(0, 2))
    places.add_column(style="bold")
    places.add_column()
    places.add_row("state dir", record["home"])
    places.add_row("kafka", f"{record['kafka']}  ({record['broker']})")
    places.add_row("iceberg catalog", f"{record['catalog']}  (pyiceberg SQL catalog 'platform')")
    places.add_row("warehouse", record["warehouse"])
    places.add_row("supervisor", record["supervisor_conf"])
    places.add_row("mcp api keys", f"{Path(record['home']) / 'mcp-keys.env'}  (set -a; . that file; set +a)")
    ctl = f"{Path(sys.executable).parent / 'supervisorctl'} -c {record['supervisor_conf']}"
    return Group(
        Rule("[bold green]Embedded data platform is up"), services_table(state, record), tables_table(state),
        places, Text("\nReach it from a shell (or: eval \"$(dp local env)\"):", style="bold"),
        Text(shell_exports(record["exports"])),
        Text("\nCommands:", style="bold"),
        Text("dp local status [--json]   services and rows per table\n"
             "dp local down [--purge]    stop everything (--purge also deletes the data)\n"
             f"{ctl} tail -f ingest   follow a service's log"))

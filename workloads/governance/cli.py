"""`python -m workloads.governance <group> <command>`: governance as a person (and the embedded platform) runs it.

Expected failures (bad metadata file, catalog unreachable, Graphviz missing) end with one line and exit status 2;
`audit verify` exits 1 when a log fails verification.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from workloads.governance import settings

app = typer.Typer(help="Data governance: quality, lineage, catalog metadata, access policy, audit.",
                  no_args_is_help=True, add_completion=False)
audit_app = typer.Typer(help="The hash-chained audit logs.", no_args_is_help=True)
metadata_app = typer.Typer(help="Catalog metadata as code (catalog.yaml).", no_args_is_help=True)
lineage_app = typer.Typer(help="OpenLineage events and the lineage graph.", no_args_is_help=True)
policy_app = typer.Typer(help="Access decisions (Rego).", no_args_is_help=True)
quality_app = typer.Typer(help="Data quality results.", no_args_is_help=True)
for group, name in ((audit_app, "audit"), (metadata_app, "metadata"), (lineage_app, "lineage"),
                    (policy_app, "policy"), (quality_app, "quality")):
    app.add_typer(group, name=name)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
JsonOption = typer.Option(False, "--json", help="print JSON")


def _clear_errors(command: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        try:
            command(*args, **kwargs)
        except typer.Exit:
            raise
        except (RuntimeError, ValueError, OSError, NoSuchTableError, NoSuchNamespaceError) as exc:
            err.print(f"[red]{command.__name__.replace('_', ' ')} failed:[/red] {exc}")
            raise typer.Exit(2) from None
    return wrapper


def _catalog():
    from workloads.common.platform import load_catalog

    return load_catalog()


def _audit_logs(logs: list[Path] | None) -> list[Path]:
    return list(logs) if logs else sorted(settings.audit_dir().glob("*.jsonl"))


# --- audit --------------------------------------------------------------------------------------------------

@audit_app.command("verify")
@_clear_errors
def audit_verify(logs: list[Path] = typer.Argument(None, help="audit logs (default: every *.jsonl in the audit "
                                                              "directory, DP_AUDIT_DIR or $DP_HOME/audit)"),
                 anchors: bool = typer.Option(True, help="also check the heads published to the catalog"),
                 as_json: bool = JsonOption) -> None:
    """Check each log's hash chain, its head file and its published anchors; exit 1 on any problem."""
    from workloads.governance.audit import verify
    from workloads.governance.results import anchors as published

    paths = _audit_logs(logs)
    if not paths:
        raise RuntimeError(f"no audit logs in {settings.audit_dir()}")
    catalog = _catalog() if anchors else None
    results = [verify(p, published(catalog, p.name) if catalog is not None else ()) for p in paths]
    if as_json:
        typer.echo(json.dumps({"ok": all(r.ok for r in results), "logs": [r.as_dict() for r in results]}))
    else:
        for r in results:
            status = "[green]intact[/green]" if r.ok else "[red]TAMPERED[/red]"
            out.print(f"{r.log}: {status}, {r.entries} entries, head seq "
                      f"{(r.head or {}).get('seq')}, {r.anchors_checked} anchors checked")
            for problem in r.problems:
                out.print(f"  - {problem}")
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@audit_app.command("anchor")
@_clear_errors
def audit_anchor(logs: list[Path] = typer.Argument(None, help="audit logs (default: all in the audit directory)")
                 ) -> None:
    """Publish each log's head (seq, hash) to governance.audit_anchors, so a rewritten or cut log is detected."""
    from workloads.governance.audit import read_head
    from workloads.governance.results import publish_anchor

    catalog = _catalog()
    for path in _audit_logs(logs):
        head = read_head(path)
        if not head or not isinstance(head.get("seq"), int):
            out.print(f"{path}: no head to anchor")
            continue
        publish_anchor(catalog, path.name, head["seq"], head["hash"])
        out.print(f"{path}: anchored seq {head['seq']}")


# --- metadata -----------------------------------------------------------------------------------------------

FileOption = typer.Option(None, "--file", help="metadata file (default DP_GOVERNANCE_METADATA or catalog.yaml)")


@metadata_app.command("apply")
@_clear_errors
def metadata_apply(file: Path = FileOption,
                   dry_run: bool = typer.Option(False, "--dry-run", help="show what would change, change nothing"),
                   as_json: bool = JsonOption) -> None:
    """Apply owners, descriptions, tags, classifications and lineage properties to the tables (idempotent)."""
    from workloads.governance import metadata
    from workloads.governance.audit import AuditLog

    spec = metadata.load(file or settings.metadata_file())
    catalog = _catalog()
    if dry_run:
        changes = metadata.plan(spec, catalog)
    else:
        with err.status("applying catalog metadata..."):
            changes = metadata.apply(spec, catalog, AuditLog(settings.admin_audit_log()))
    changed = [c for c in changes if c.changed]
    if as_json:
        typer.echo(json.dumps({"dry_run": dry_run, "tables": len(changes),
                               "changed": [c.as_dict() for c in changed]}))
        return
    table = Table(title=f"catalog metadata: {len(changed)} of {len(changes)} tables "
                        f"{'would change' if dry_run else 'changed'}")
    for column in ("table", "properties set", "properties removed", "column docs"):
        table.add_column(column)
    for c in changed:
        table.add_row(c.table, ", ".join(sorted(c.set_properties)), ", ".join(c.removed_properties),
                      ", ".join(sorted(c.column_docs)))
    out.print(table)


@metadata_app.command("suggest")
@_clear_errors
def metadata_suggest(file: Path = FileOption, as_json: bool = JsonOption) -> None:
    """Classification suggestions (PII detectors on names and sampled values) for unclassified columns."""
    from workloads.governance import metadata

    found = metadata.unclassified(metadata.load(file or settings.metadata_file()), _catalog())
    if as_json:
        typer.echo(json.dumps(found))
        return
    table = Table(title="suggested classifications (add them to the metadata file)")
    for column in ("table", "column", "classification", "confidence", "evidence"):
        table.add_column(column)
    for s in found:
        table.add_row(s["table"], s["column"], s["classification"], f"{s['confidence']:.2f}", s["evidence"])
    out.print(table)


# --- lineage ------------------------------------------------------------------------------------------------

EventsOption = typer.Option(None, "--events", help="OpenLineage event files (default: DP_LINEAGE_FILE)")


def _graph(events: list[Path] | None):
    from workloads.governance.lineage_graph import load

    paths = list(events) if events else [settings.lineage_file()]
    graph = load(paths)
    if not graph.jobs:
        raise RuntimeError(f"no lineage events in {', '.join(map(str, paths))}: run a refine round first")
    return graph


@lineage_app.command("graph")
@_clear_errors
def lineage_graph(fmt: str = typer.Option("svg", "--format", help="dot | svg | png"),
                  out_path: Path = typer.Option(None, "--out", help="file to write (default lineage.<format>)"),
                  table: str = typer.Option(None, "--table", help="only what is connected to this table"),
                  columns: bool = typer.Option(True, help="draw columns and column lineage"),
                  events: list[Path] = EventsOption) -> None:
    """Draw the lineage graph (Graphviz) from the OpenLineage events."""
    from workloads.governance.lineage_graph import render, to_dot

    if fmt not in ("dot", "svg", "png"):
        raise ValueError(f"--format {fmt!r}: use dot, svg or png")
    written = render(to_dot(_graph(events), columns=columns, focus=table), out_path or Path(f"lineage.{fmt}"), fmt)
    out.print(f"wrote {written}")


@lineage_app.command("trace")
@_clear_errors
def lineage_trace(column: str = typer.Argument(..., help="namespace.table.column"),
                  downstream: bool = typer.Option(False, "--downstream", help="what it feeds instead"),
                  events: list[Path] = EventsOption, as_json: bool = JsonOption) -> None:
    """The columns a column is computed from (or feeds), hop by hop."""
    table, _, name = column.rpartition(".")
    if not table or "." not in table:
        raise ValueError(f"{column!r}: give namespace.table.column")
    graph = _graph(events)
    found = graph.downstream(table, name) if downstream else graph.upstream(table, name)
    rows = [{"table": t, "column": c, "hops": h} for (t, c), h in sorted(found.items(), key=lambda x: (x[1], x[0]))]
    if as_json:
        typer.echo(json.dumps({"column": column, "direction": "downstream" if downstream else "upstream",
                               "columns": rows}))
        return
    for row in rows:
        out.print(f"{'  ' * row['hops']}{row['table']}.{row['column']}")


@lineage_app.command("replay")
@_clear_errors
def lineage_replay() -> None:
    """Send the events a lineage outage left undelivered."""
    from workloads.governance.lineage import replay

    sent, left = replay()
    out.print(f"sent {sent} events, {left} still undelivered")


# --- policy -------------------------------------------------------------------------------------------------

PolicyOption = typer.Option(None, "--policy", help="access policy YAML (default DP_MCP_POLICY or the MCP "
                                                   "server's access.yaml)")


def _policy(path: Path | None):
    from workloads.mcp_server.config import Settings
    from workloads.mcp_server.policy import Policy

    return Policy.load(path or Settings.from_env().policy_path)


@policy_app.command("explain")
@_clear_errors
def policy_explain(role: str = typer.Option(..., help="the caller's role"),
                   table: str = typer.Option(None, help="namespace.table"),
                   collection: str = typer.Option(None, help="vector collection"),
                   policy: Path = PolicyOption, as_json: bool = JsonOption) -> None:
    """Decide as the MCP server would, and say which rule decided: table (and its columns) or collection."""
    if (table is None) == (collection is None):
        raise ValueError("give --table or --collection")
    decisions = _policy(policy)
    if collection:
        result: dict[str, Any] = {"collection": collection, **decisions.collection(role, collection).as_dict()}
    else:
        result = {"table": table, **decisions.table(role, table).as_dict()}
        if result["allowed"]:
            tbl = _catalog().load_table(table)
            result["columns"] = [c.__dict__ for c in decisions.columns(role, table, tbl.schema().column_names,
                                                                       tbl.properties)]
    if as_json:
        typer.echo(json.dumps(result))
        return
    verdict = "[green]allowed[/green]" if result["allowed"] else "[red]denied[/red]"
    out.print(f"{verdict} by {result['rule']}: {result['reason']}")
    for c in result.get("columns", []):
        mask = f" ({c['mask']})" if c.get("mask") else ""
        out.print(f"  {c['name']}: {c['access']}{mask} by {c['rule']}")


@policy_app.command("bundle")
@_clear_errors
def policy_bundle(out_dir: Path = typer.Option(..., "--out", help="directory for `opa run --server DIR`"),
                  policy: Path = PolicyOption) -> None:
    """Write the Rego policies and their data document for an OPA server."""
    from workloads.governance.policy import bundle

    spec = _policy(policy).spec.model_dump(mode="json", exclude={"keys"})
    for path in bundle(spec, out_dir):
        out.print(f"wrote {path}")


# --- quality ------------------------------------------------------------------------------------------------

@quality_app.command("show")
@_clear_errors
def quality_show(as_json: bool = JsonOption) -> None:
    """The newest quality result of each table."""
    from workloads.governance.results import latest_quality

    latest = latest_quality(_catalog())
    if as_json:
        typer.echo(json.dumps(latest))
        return
    table = Table(title="data quality: newest suite run per table")
    for column in ("table", "status", "checked at", "details"):
        table.add_column(column)
    for name, entry in sorted(latest.items()):
        colour = "green" if entry["status"] == "passing" else "red"
        table.add_row(name, f"[{colour}]{entry['status']}[/{colour}]", entry["checked_at"], entry["details"])
    out.print(table)


# --- the service --------------------------------------------------------------------------------------------

@app.command()
@_clear_errors
def serve(port: int = typer.Option(9466, help="port of /metrics"),
          host: str = typer.Option("127.0.0.1", help="bind address"),
          apply_metadata: bool = typer.Option(True, help="apply the metadata file once at start"),
          anchor_every: float = typer.Option(60.0, min=1.0, help="seconds between audit anchors")) -> None:
    """Governance metrics on /metrics; applies the catalog metadata and anchors the audit logs periodically."""
    from workloads.governance.service import run

    run(host=host, port=port, apply_metadata=apply_metadata, anchor_every=anchor_every)

"""`dp local up|status|down|env`: the embedded platform (Tansu broker, SQL catalog, local warehouse, medallion
jobs under supervisord) on this machine. Configuration comes from the environment: see local/settings.py."""
from __future__ import annotations

import json
import signal

import typer
from rich.console import Console

app = typer.Typer(help="The embedded platform on this machine: no Docker, no cloud.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)


def _run(action):
    """Run an action; a LocalError becomes a red message (with its detail, e.g. a log tail) and exit status 1."""
    from local.errors import LocalError

    try:
        return action()
    except LocalError as exc:
        errors.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        if exc.detail:
            errors.print(exc.detail, markup=False, highlight=False)
        raise typer.Exit(1) from None


def _settings():
    from local.settings import LocalSettings

    return LocalSettings.from_env()


@app.command()
def up(detach: bool = typer.Option(False, "--detach", "-d",
                                   help="Return once everything is healthy and data reached gold; leave it running.")):
    """Start broker, catalog and medallion jobs; wait until data is in bronze, silver and gold; print a summary.
    Without --detach, stay attached showing live status until Ctrl-C, then stop everything."""
    from local import lifecycle, summary

    settings = _run(_settings)
    _run(lambda: lifecycle.up(settings, console))
    record = lifecycle.read_record(settings)
    console.print(summary.summary(_run(lambda: lifecycle.status(settings)), record), soft_wrap=True)
    if detach:
        return
    console.print("Attached: live status below. Ctrl-C stops the platform (data stays on disk).")
    try:
        lifecycle.attach(settings, console, lambda state: summary.status_view(state, record))
    except KeyboardInterrupt:
        console.print()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave half of it running
        _run(lambda: lifecycle.down(settings, console))


@app.command()
def status(as_json: bool = typer.Option(False, "--json",
                                        help='Print {"services": {name: state}, "tables": {name: rows}}.')):
    """Each service's state (supervisor's names, or "not running") and each table's row count per layer."""
    from local import lifecycle, summary

    settings = _run(_settings)
    state = _run(lambda: lifecycle.status(settings))
    if as_json:
        typer.echo(json.dumps(state))
        return
    console.print(summary.status_view(state, lifecycle.read_record(settings)))
    console.print(f"state dir: {settings.home}", highlight=False)


@app.command()
def down(purge: bool = typer.Option(False, "--purge", help="Also delete catalog, warehouse and logs.")):
    """Stop every service, the broker and supervisord; nothing stays running. Data stays unless --purge."""
    from local import lifecycle

    settings = _run(_settings)
    _run(lambda: lifecycle.down(settings, console, purge=purge))


@app.command()
def env():
    """Shell exports that point workloads and pyiceberg at the local platform: eval "$(dp local env)"."""
    from local.settings import shell_exports

    typer.echo(shell_exports(_run(_settings).exports()))

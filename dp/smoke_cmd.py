"""`dp smoke`: run the smoke suite (tests/smoke, pytest-testinfra) against a deployed stack or the embedded platform.

The inventory comes from the stack's outputs (`pulumi stack output --json --show-secrets`, or a saved copy with
--outputs) or, with --local, from the local platform's settings. It is written 0600 to a private temp dir for the
run and deleted after. Exit status: 0 every check passed (skips say why they don't apply), 1 a check failed,
2 no inventory could be built.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
SUITE = REPO / "tests" / "smoke"
UNUSED_PLUGINS = ("cacheprovider", "schemathesis", "hypothesispytest")  # ~4 s of start-up the suite does not use
console = Console()
errors = Console(stderr=True)


def smoke(
    stack: Optional[str] = typer.Argument(None, help="deployed stack: reads `pulumi stack output` of it"),
    local: bool = typer.Option(False, "--local", help="the embedded platform of `dp local` (its settings, DP_HOME)"),
    outputs: Optional[Path] = typer.Option(None, "--outputs", "-o", help="saved `pulumi stack output --json "
                                           "--show-secrets` (- for stdin) instead of running the Pulumi CLI"),
    ssh_key: Optional[str] = typer.Option(None, "--ssh-key", help="private key for the VM hosts (ssh://)"),
    hosts: list[str] = typer.Option([], "--host", metavar="NAME=URI",
                                    help="reach host NAME through another testinfra spec, e.g. "
                                         "node-1=ssh://admin@bastion-alias (repeatable)"),
    fresh_within: float = typer.Option(900, "--fresh-within", help="newest data of each layer at most this old (s)"),
    select: Optional[str] = typer.Option(None, "-k", help="only the checks matching this pytest -k expression"),
    show: bool = typer.Option(False, "--show", help="print the inventory (credentials masked) and exit"),
) -> None:
    """Check a deployed platform: ports listen, services run, health endpoints answer, Kafka round trip, Iceberg
    tables present and fresh, an MCP tool call, Prometheus targets up. Prints which check passed on which host."""
    from dp.inventory import InventoryError

    try:
        inventory = _with_hosts(_build(stack, local, outputs, ssh_key, fresh_within), hosts)
    except InventoryError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    _describe(inventory)
    if show:
        from dp.inventory import masked

        typer.echo(json.dumps(masked(inventory), indent=2))
        return
    raise typer.Exit(run_suite(inventory, select=select))


def run_suite(inventory, select: str | None = None) -> int:
    """Run tests/smoke against `inventory` in a pytest subprocess; 0 passed, 1 a check failed, 2 no checks ran."""
    from dp.inventory import ENV

    with tempfile.TemporaryDirectory(prefix="dp-smoke-") as private:  # mode 0700
        path = inventory.write(Path(private) / "inventory.json")
        command = [sys.executable, "-m", "pytest", str(SUITE), "-v", "-ra", "--no-header", "--tb=short",
                   *(f"-pno:{plugin}" for plugin in UNUSED_PLUGINS), *(["-k", select] if select else [])]
        code = subprocess.run(command, cwd=REPO, env={**os.environ, ENV: str(path)}).returncode
    return {0: 0, 1: 1}.get(code, 2)


def _build(stack, local, outputs, ssh_key, fresh_within):
    from dp.inventory import InventoryError, from_local, from_stack_outputs, outputs_from_json

    if local:
        if stack or outputs:
            raise InventoryError("--local checks the embedded platform: give no STACK or --outputs with it")
        settings = _running_local_settings()
        for name, value in settings.mcp_keys().items():  # the keys the local MCP server was started with
            os.environ.setdefault(name, value)
        return from_local(settings, fresh_within=fresh_within)
    if outputs is not None:
        text = sys.stdin.read() if str(outputs) == "-" else _read(outputs)
        name = stack or (outputs.stem if str(outputs) != "-" else "stack")
        return from_stack_outputs(name, outputs_from_json(text, str(outputs)), ssh_key=ssh_key,
                                  fresh_within=fresh_within)
    if not stack:
        raise InventoryError("name a deployed STACK, or give --outputs FILE, or --local")
    return from_stack_outputs(stack, outputs_from_json(_pulumi_outputs(stack), f"stack {stack}"), ssh_key=ssh_key,
                              fresh_within=fresh_within)


def _read(path: Path) -> str:
    from dp.inventory import InventoryError

    try:
        return path.read_text()
    except OSError as exc:
        raise InventoryError(f"cannot read {path}: {exc.strerror or exc}") from None


def _pulumi_outputs(stack: str) -> str:
    """`pulumi stack output --json --show-secrets` of the stack, run where Pulumi.yaml is."""
    from dp.inventory import InventoryError

    saved = f"`pulumi stack output -s {stack} --json --show-secrets > {stack}.json` where it is, then " \
            f"`dp smoke {stack} --outputs {stack}.json`"
    if shutil.which("pulumi") is None:
        raise InventoryError(f"the Pulumi CLI is not installed here: run {saved}")
    result = subprocess.run(["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack],
                            cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise InventoryError(f"`pulumi stack output` failed for stack {stack}: {result.stderr.strip()}")
    return result.stdout


def _running_local_settings():
    """The embedded platform's settings, once its supervisord runs (the suite then checks each service)."""
    from dp.inventory import InventoryError
    from local.errors import LocalError
    from local.settings import LocalSettings
    from local.supervisor import Supervisor

    try:
        settings = LocalSettings.from_env()
    except LocalError as exc:
        raise InventoryError(f"{exc.message}" + (f"\n{exc.detail}" if exc.detail else "")) from None
    if not Supervisor(settings).alive():
        raise InventoryError(f"the embedded platform is not running in {settings.home}: `dp local up --detach` "
                             "first (same DP_HOME and DP_LOCAL_* settings)")
    return settings


def _with_hosts(inventory, overrides: list[str]):
    from dp.inventory import InventoryError

    if not overrides:
        return inventory
    uris = {}
    for item in overrides:
        name, sep, uri = item.partition("=")
        if not sep or "://" not in uri:
            raise InventoryError(f"--host {item!r}: expected NAME=URI, e.g. node-1=ssh://admin@10.0.0.5:22")
        uris[name] = uri
    unknown = set(uris) - {h.name for h in inventory.hosts}
    if unknown:
        raise InventoryError(f"--host: no host {', '.join(sorted(unknown))} in the inventory (hosts: "
                             f"{', '.join(h.name for h in inventory.hosts)})")
    hosts = tuple(h.model_copy(update={"uri": uris.get(h.name, h.uri)}) for h in inventory.hosts)
    return inventory.model_copy(update={"hosts": hosts})


def _describe(inventory) -> None:
    """What is about to be checked, where, and what is skipped on this target and why."""
    console.rule(f"[bold]Smoke test: {inventory.stack} ({inventory.target})")
    console.print(f"client checks run from here; they need: {inventory.vantage}", highlight=False)
    table = Table(title="Hosts", title_justify="left")
    for column in ("host", "reached through", "ports", "units"):
        table.add_column(column, overflow="fold")
    for host in inventory.hosts:
        units = ", ".join(u.name for u in host.units) or (f"every {host.discover}" if host.discover else "-")
        table.add_row(host.name, host.uri.split("?")[0], " ".join(map(str, host.ports)) or "-", units)
    console.print(table)
    if inventory.skips:
        skipped = Table(title="Not on this target (skipped)", title_justify="left")
        skipped.add_column("check")
        skipped.add_column("why")
        for check, reason in inventory.skips.items():
            skipped.add_row(check, reason)
        console.print(skipped)

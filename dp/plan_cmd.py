"""`dp plan`: what a stack would create, offline (Pulumi's mocks, no CLI, no credentials).

Exit codes: 0 planned; 1 a mandatory policy of the policy pack (policies/) is violated; 2 bad configuration (one
paragraph naming the key, no traceback).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

REPO = Path(__file__).resolve().parent.parent


def stack_file(stack: str | None, file: Path | None) -> tuple[str, Path]:
    """`dp plan dev` reads Pulumi.dev.yaml (here, else at the repository root); `--file` reads any stack file."""
    if file is not None:
        name = file.name.removeprefix("Pulumi.").removesuffix(".yaml").removesuffix(".yml")
        return name, file
    stack = stack or "dev"
    for folder in (Path.cwd(), REPO):
        if (candidate := folder / f"Pulumi.{stack}.yaml").exists():
            return stack, candidate
    return stack, REPO / f"Pulumi.{stack}.yaml"


def plan(
    stack: Optional[str] = typer.Argument(None, help="stack name: reads Pulumi.STACK.yaml (default: dev)"),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="any stack file in Pulumi's format"),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="override dataplatform:target"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object; secret values masked"),
) -> None:
    """Show, offline, exactly what a stack would create and what the policy pack says about it; refuse a bad
    config naming the key."""
    from stacks.loader import ConfigError, load_stack_file

    name, path = stack_file(stack, file)
    err = Console(stderr=True)
    try:
        config = load_stack_file(path, target=target)
        from stacks.offline import capture

        graph = capture(config, name)
    except ConfigError as error:
        err.print(f"[bold red]Configuration error[/] in {path.name}: [bold]{error.key}[/]: {error.message}",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    from policies.evaluate import evaluate

    report = evaluate(graph, config.environment)
    if as_json:
        typer.echo(json.dumps({**graph.to_json(), "violations": [v.to_json() for v in report.violations],
                               "policies_evaluated": report.policies_evaluated}, default=str))
    else:
        render(graph, Console())
        render_report(report, Console())
    if report.mandatory:
        raise typer.Exit(1)


def compose_services(resource) -> list[tuple[str, str]]:
    """The services of a rendered compose project applied by this resource, if it applies one."""
    if resource.type != "command:local:Command" or "services:" not in str(resource.inputs.get("stdin", "")):
        return []
    import yaml

    document = yaml.safe_load(resource.inputs["stdin"])
    return [(name, spec.get("image", "")) for name, spec in document.get("services", {}).items()]


def render(graph, console: Console) -> None:
    """The resource tree (components with their children) and counts per type."""
    children: dict[str | None, list] = {}
    for resource in graph.resources:
        children.setdefault(resource.parent_urn, []).append(resource)
    tree = Tree(f"[bold]{graph.stack}[/] (target [cyan]{graph.target}[/], {len(graph.resources)} resources)")

    def add(node: Tree, parent_urn: str | None) -> None:
        for resource in sorted(children.get(parent_urn, []), key=lambda r: r.name):
            sub = children.get(resource.urn, [])
            label = f"[bold]{resource.name}[/] [dim]{resource.type}[/]"
            if sub:
                label += f" [green]({len(sub)} children)[/]"
            child = node.add(label)
            for service, image in compose_services(resource):
                child.add(f"[magenta]compose service[/] {service} [dim]{image}[/]")
            add(child, resource.urn)

    add(tree, None)
    console.print(tree)
    table = Table(title="resources per type")
    table.add_column("type")
    table.add_column("count", justify="right")
    for type_, count in sorted(Counter(r.type for r in graph.resources).items()):
        table.add_row(type_, str(count))
    console.print(table)
    if graph.outputs:
        console.print("outputs: " + ", ".join(sorted(graph.outputs)) +
                      (f" (secret: {', '.join(sorted(graph.secret_outputs))})" if graph.secret_outputs else ""))


def render_report(report, console: Console) -> None:
    """The policy violations (policy, resource, message) and, once per violated policy, how to fix it."""
    levels = f"levels from {report.config_file.name} (environment {report.environment})"
    if not report.violations:
        console.print(f"[bold green]policies: {report.policies_evaluated} evaluated, no violations[/] "
                      f"[dim]({levels})[/]")
        return
    table = Table(title=f"policy violations ({report.policies_evaluated} policies evaluated, {levels})")
    for column in ("level", "policy", "resource", "message"):
        table.add_column(column, overflow="fold")
    for v in sorted(report.violations, key=lambda v: (v.level != "mandatory", v.policy, v.resource)):
        style = "bold red" if v.level == "mandatory" else "yellow"
        table.add_row(f"[{style}]{v.level}[/]", v.policy, v.resource, v.message)
    console.print(table)
    for policy, remediation in dict((v.policy, v.remediation) for v in report.violations).items():
        console.print(f"[bold]{policy}[/]: {remediation}", highlight=False)
    mandatory = len(report.mandatory)
    console.print(f"[bold red]{mandatory} mandatory violation(s): fix them before `pulumi up`[/]" if mandatory else
                  "[yellow]advisory only: `pulumi up` would proceed[/]")

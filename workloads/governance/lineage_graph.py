"""The lineage graph, built from OpenLineage run events (the lineage file of the embedded platform, or any file of
events exported from a lineage service), queried by table or column, and drawn with Graphviz.

Nodes are datasets (tables, with their columns) and jobs; a job's newest COMPLETE (or FAIL) event says what it
reads and writes, and its column lineage facet links output columns to input columns. Rendering writes DOT and
hands it to Graphviz's `dot` (Debian package `graphviz`) for SVG or PNG.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LAYER_COLOURS = {"bronze": "#e8c39e", "silver": "#d9dde3", "gold": "#f6d776", "governance": "#cfe8cf"}


@dataclass
class Graph:
    tables: dict[str, list[str]] = field(default_factory=dict)  # table -> columns (schema facet order)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # job -> {inputs, outputs, state, time}
    # (table, column) -> {(input table, input column): subtype}
    columns: dict[tuple[str, str], dict[tuple[str, str], str]] = field(default_factory=dict)

    def upstream(self, table: str, column: str) -> dict[tuple[str, str], int]:
        """Every column `table.column` is computed from, transitively, with its distance in hops."""
        found: dict[tuple[str, str], int] = {}
        frontier, hops = [(table, column)], 0
        while frontier:
            hops += 1
            nxt = []
            for node in frontier:
                for source in self.columns.get(node, {}):
                    if source not in found:
                        found[source] = hops
                        nxt.append(source)
            frontier = nxt
        return found

    def downstream(self, table: str, column: str) -> dict[tuple[str, str], int]:
        reverse: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        for target, sources in self.columns.items():
            for source in sources:
                reverse[source].append(target)
        found: dict[tuple[str, str], int] = {}
        frontier, hops = [(table, column)], 0
        while frontier:
            hops += 1
            nxt = []
            for node in frontier:
                for target in reverse.get(node, ()):
                    if target not in found:
                        found[target] = hops
                        nxt.append(target)
            frontier = nxt
        return found

    def table_edges(self) -> set[tuple[str, str]]:
        """(upstream table, downstream table) through the jobs."""
        return {(i, o) for job in self.jobs.values() for i in job["inputs"] for o in job["outputs"]}

    def origins(self, table: str, column: str) -> set[tuple[str, str]]:
        """The columns at the start of the chain: those that nothing upstream feeds."""
        return {node for node in self.upstream(table, column) if node not in self.columns}


def read_events(paths: Iterable[Path]) -> list[dict[str, Any]]:
    events = []
    for path in paths:
        if not Path(path).exists():
            continue
        for line in Path(path).read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("eventType"):
                events.append(event)
    return sorted(events, key=lambda e: e.get("eventTime", ""))


def build(events: list[dict[str, Any]]) -> Graph:
    """The graph as the newest finished run of each job describes it."""
    graph = Graph()
    latest: dict[str, dict[str, Any]] = {}
    for event in events:
        if event["eventType"] in ("COMPLETE", "FAIL") and event.get("outputs"):
            latest[event["job"]["name"]] = event
    for job, event in sorted(latest.items()):
        inputs = [d["name"] for d in event.get("inputs", [])]
        outputs = [d["name"] for d in event.get("outputs", [])]
        graph.jobs[job] = {"inputs": inputs, "outputs": outputs, "state": event["eventType"],
                           "time": event["eventTime"], "run_id": event["run"]["runId"]}
        for name in inputs + outputs:
            graph.tables.setdefault(name, [])
        for dataset in event.get("outputs", []):
            facets = dataset.get("facets", {})
            if "schema" in facets:
                graph.tables[dataset["name"]] = [f["name"] for f in facets["schema"].get("fields", [])]
            for column, spec in facets.get("columnLineage", {}).get("fields", {}).items():
                sources = graph.columns.setdefault((dataset["name"], column), {})
                for source in spec.get("inputFields", []):
                    subtype = next((t.get("subtype") for t in source.get("transformations") or []), None)
                    sources[(source["name"], source["field"])] = subtype or "DIRECT"
                    graph.tables.setdefault(source["name"], [])
                    if source["field"] not in graph.tables[source["name"]]:
                        graph.tables[source["name"]].append(source["field"])
    return graph


def load(paths: Iterable[Path]) -> Graph:
    return build(read_events(paths))


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_dot(graph: Graph, columns: bool = True, focus: str | None = None) -> str:
    """DOT for the graph: tables grouped by layer, left to right (red: the last run writing it failed); with
    `columns`, each table lists its columns and column lineage edges link them (dashed: GROUP_BY / FILTER),
    without, the jobs link the tables. `focus` keeps only the tables connected to that table."""
    tables = set(graph.tables)
    if focus:
        keep, changed = {focus}, True
        edges = graph.table_edges()
        while changed:
            grown = keep | {a for a, b in edges if b in keep} | {b for a, b in edges if a in keep}
            changed, keep = grown != keep, grown
        tables &= keep
    lines = ["digraph lineage {", "  rankdir=LR; nodesep=0.25; ranksep=1.1;",
             '  graph [fontname="Helvetica", fontsize=12, label="Data lineage (OpenLineage)", labelloc=t];',
             '  node [fontname="Helvetica", fontsize=10, shape=plain]; edge [color="#555555", arrowsize=0.6];']
    ids = {t: f"t{i}" for i, t in enumerate(sorted(tables))}
    failed = {o for spec in graph.jobs.values() if spec["state"] == "FAIL" for o in spec["outputs"]}
    for layer in sorted({t.split(".", 1)[0] for t in tables}):
        lines.append(f"  subgraph cluster_{layer} {{ label={_quote(layer)}; style=rounded; color=\"#bbbbbb\";")
        for table in sorted(t for t in tables if t.split(".", 1)[0] == layer):
            colour = "#f1948a" if table in failed else LAYER_COLOURS.get(layer, "#eeeeee")
            title = _html(table) + (" (last run failed)" if table in failed else "")
            rows = "".join(f'<tr><td port="{_html(c)}" align="left">{_html(c)}</td></tr>'
                           for c in (graph.tables[table] if columns else []))
            lines.append(f'    {ids[table]} [label=<<table border="0" cellborder="1" cellspacing="0" '
                         f'cellpadding="3"><tr><td bgcolor="{colour}"><b>{title}</b></td></tr>{rows}'
                         f"</table>>];")
        lines.append("  }")
    if not columns:  # tables -> job -> tables
        for number, (job, spec) in enumerate(sorted(graph.jobs.items())):
            if not set(spec["outputs"]) & tables:
                continue
            colour = "#c0392b" if spec["state"] == "FAIL" else "#2c3e50"
            lines.append(f'  j{number} [shape=box, style="rounded,filled", fillcolor="#ffffff", color="{colour}", '
                         f"label={_quote(job + ' (' + spec['state'].lower() + ')')}];")
            lines += [f"  {ids[source]} -> j{number};" for source in spec["inputs"] if source in tables]
            lines += [f"  j{number} -> {ids[target]};" for target in spec["outputs"] if target in tables]
    if columns:
        for (table, column), sources in sorted(graph.columns.items()):
            for (source, field_), subtype in sorted(sources.items()):
                if table in tables and source in tables:
                    style = ", style=dashed" if subtype in ("GROUP_BY", "FILTER") else ""
                    lines.append(f"  {ids[source]}:{_quote(field_)}:e -> {ids[table]}:{_quote(column)}:w "
                                 f"[tooltip={_quote(subtype)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot: str, out: Path, fmt: str) -> Path:
    """Write `dot` as `fmt` (dot, svg or png) to `out`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "dot":
        out.write_text(dot)
        return out
    binary = shutil.which("dot")
    if binary is None:
        raise RuntimeError("Graphviz is not installed (`apt-get install graphviz`); `--format dot` writes the "
                           "graph without it")
    done = subprocess.run([binary, f"-T{fmt}", "-o", str(out)], input=dot.encode(), capture_output=True,
                          timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
    return out

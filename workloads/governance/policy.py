"""The policy decision point: Rego policies (`policies/*.rego`, package `dp.access`) evaluated embedded by regorus,
or by an OPA server when `DP_OPA_URL` is set. Both get the same input and the same data document, the access
policy (roles, PII column globs, masks) under `data.dp_policy`, and return the same decisions:

- `table(role, table)` / `collection(role, name)`: {allowed, rule, reason};
- `columns(role, table, columns)`: per column {name, access: clear | masked | denied, pii, mask, rule, reason}.

An OPA server loads the bundle `python -m workloads.governance policy bundle --out DIR` writes (the .rego files
and `data.json`): `opa run --server DIR`. When the server cannot be asked, decisions fail closed with
`PolicyUnavailable`: nothing is allowed without an answer.
"""
from __future__ import annotations

import json
import os
import queue
import threading
import weakref
from concurrent.futures import Future
from pathlib import Path
from typing import Any

POLICY_DIR = Path(__file__).resolve().parent / "policies"
PACKAGE = "dp.access"
DATA_KEY = "dp_policy"
CLASSIFICATIONS_PROPERTY = "dp.classifications"  # table property: JSON {column: classification}
PII_PROPERTY = "dp.pii.columns"  # table property: comma-separated PII columns
OPA_TIMEOUT_SECONDS = 2.0


class PolicyUnavailable(RuntimeError):
    """The policy engine could not decide (OPA unreachable or answering garbage)."""


def column_attributes(columns: list[str], properties: dict[str, str] | None) -> list[dict[str, Any]]:
    """The attributes the policy sees of each column, from the table's properties (catalog metadata)."""
    properties = properties or {}
    tagged = {c.strip().lower() for c in properties.get(PII_PROPERTY, "").split(",") if c.strip()}
    try:
        classes = {k.lower(): v for k, v in json.loads(properties.get(CLASSIFICATIONS_PROPERTY) or "{}").items()}
    except (ValueError, AttributeError):
        classes = {}
    result = []
    for name in columns:
        attributes: dict[str, Any] = {"name": name, "tagged_pii": name.lower() in tagged}
        if classification := classes.get(name.lower()):
            attributes["classification"] = classification
        result.append(attributes)
    return result


def _serve_rego(policies: list[tuple[str, str]], data: str, requests: queue.SimpleQueue, ready: Future) -> None:
    """The one thread a regorus engine lives in (it may not be used, nor dropped, by any other)."""
    import regorus

    try:
        engine = regorus.Engine()
        for name, text in policies:
            engine.add_policy(name, text)
        engine.add_data_json(data)
    except Exception as exc:  # noqa: BLE001 - reported to the constructor
        ready.set_exception(PolicyUnavailable(f"policy does not load: {str(exc).strip().splitlines()[0]}"))
        return
    ready.set_result(None)
    while (request := requests.get()) is not None:
        rule, input_json, answer = request
        try:
            engine.set_input_json(input_json)
            answer.set_result(engine.eval_rule(f"data.{PACKAGE}.{rule}"))
        except Exception as exc:  # noqa: BLE001 - an evaluation error is the caller's answer
            answer.set_exception(PolicyUnavailable(f"policy evaluation failed: {str(exc).strip().splitlines()[0]}"))


class RegoEngine:
    """regorus, in process. Its engine may only be used by the thread that made it, so one thread owns it and
    evaluates for every caller (about 60 us per decision); the thread ends when this object is collected."""

    name = "regorus"

    def __init__(self, data: dict[str, Any], policy_dir: Path = POLICY_DIR):
        policies = [(path.name, path.read_text()) for path in sorted(policy_dir.glob("*.rego"))]
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        ready: Future = Future()
        threading.Thread(target=_serve_rego, args=(policies, json.dumps({DATA_KEY: data}), self._requests, ready),
                         name="rego-engine", daemon=True).start()
        ready.result()  # a policy that does not compile fails here
        weakref.finalize(self, self._requests.put, None)

    def evaluate(self, rule: str, input_: dict[str, Any]) -> Any:
        answer: Future = Future()
        self._requests.put((rule, json.dumps(input_), answer))
        return answer.result()


class OpaEngine:
    """An OPA server's data API: POST /v1/data/dp/access/<rule> with {"input": ...}."""

    name = "opa"

    def __init__(self, url: str, timeout: float = OPA_TIMEOUT_SECONDS):
        import httpx

        self.url = url.rstrip("/")
        self._client = httpx.Client(timeout=timeout)

    def evaluate(self, rule: str, input_: dict[str, Any]) -> Any:
        import httpx

        endpoint = f"{self.url}/v1/data/{PACKAGE.replace('.', '/')}/{rule}"
        try:
            response = self._client.post(endpoint, json={"input": input_})
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise PolicyUnavailable(f"OPA at {self.url} did not decide: {type(exc).__name__}: {exc}") from None
        if "result" not in body:
            raise PolicyUnavailable(f"OPA at {self.url} has no {PACKAGE}.{rule}: is the bundle loaded?")
        return body["result"]


class DecisionPoint:
    """Decisions for one access policy document (the parsed YAML, as a dict)."""

    def __init__(self, data: dict[str, Any], opa_url: str | None = None):
        opa_url = opa_url if opa_url is not None else os.environ.get("DP_OPA_URL")
        self.engine = OpaEngine(opa_url) if opa_url else RegoEngine(data)

    def table(self, role: str, table: str) -> dict[str, Any]:
        return self.engine.evaluate("table_decision", {"action": "read_table", "subject": {"role": role},
                                                       "resource": {"table": table}})

    def collection(self, role: str, collection: str) -> dict[str, Any]:
        return self.engine.evaluate("collection_decision", {"action": "search_collection", "subject": {"role": role},
                                                            "resource": {"collection": collection}})

    def columns(self, role: str, table: str, columns: list[str],
                properties: dict[str, str] | None = None) -> list[dict[str, Any]]:
        attributes = column_attributes(columns, properties)
        return self.engine.evaluate("column_decisions", {"action": "read_columns", "subject": {"role": role},
                                                         "resource": {"table": table, "columns": attributes}})


def bundle(data: dict[str, Any], out: Path) -> list[Path]:
    """Write what an OPA server loads: the .rego files and `data.json` ({"dp_policy": data})."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(POLICY_DIR.glob("*.rego")):
        target = out / path.name
        target.write_text(path.read_text())
        written.append(target)
    target = out / "data.json"
    target.write_text(json.dumps({DATA_KEY: data}, indent=2, sort_keys=True))
    return written + [target]

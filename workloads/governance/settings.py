"""Where governance keeps its state and how it reaches external services: environment variables only, so the
same code runs on the embedded platform and when deployed.

| variable | default | meaning |
| --- | --- | --- |
| `DP_HOME` | `.dp` in the repository | state directory of the embedded platform (`dp local`) |
| `DP_QUALITY_GATES` | `enforce` | `enforce`: a failing batch is quarantined / not published; `warn`: recorded only; `off` |
| `OPENLINEAGE_URL` (+ `OPENLINEAGE_API_KEY`, `OPENLINEAGE_ENDPOINT`) | unset | lineage over HTTP (Marquez or any OpenLineage receiver); `OPENLINEAGE_CONFIG` / `OPENLINEAGE__TRANSPORT__*` for other transports; `OPENLINEAGE_DISABLED=true` turns lineage off |
| `DP_LINEAGE_FILE` | `$DP_HOME/lineage/events.jsonl` | where events go when no OpenLineage transport is configured (the embedded platform) |
| `DP_LINEAGE_NAMESPACE` | `iceberg://<DP_CATALOG>` | OpenLineage namespace of the Iceberg tables |
| `DP_LINEAGE_RETRY_SECONDS` | `60` | after a failed emit, events go straight to the spool for this long |
| `DP_AUDIT_DIR` | `$DP_HOME/audit` | audit logs (`*.jsonl`, one hash chain each; the MCP server's `DP_MCP_AUDIT_LOG` defaults here) |
| `DP_OPA_URL` | unset | an OPA server (e.g. `http://opa:8181`) that decides instead of the embedded Rego engine |
| `DP_GOVERNANCE_METADATA` | `catalog.yaml` beside this file | owners, descriptions, tags, classifications as code |
| `DP_MASK_SALT` | unset | salt of the `hash` mask (secret) |
"""
from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GATE_MODES = ("enforce", "warn", "off")


def home() -> Path:
    return Path(os.environ.get("DP_HOME") or REPO / ".dp").expanduser()


def gate_mode() -> str:
    mode = os.environ.get("DP_QUALITY_GATES", "enforce").strip().lower() or "enforce"
    if mode not in GATE_MODES:
        raise ValueError(f"DP_QUALITY_GATES={mode!r}: use one of {', '.join(GATE_MODES)}")
    return mode


def lineage_file() -> Path:
    return Path(os.environ.get("DP_LINEAGE_FILE") or home() / "lineage" / "events.jsonl")


def lineage_spool() -> Path:
    """Events that could not be delivered (the receiver was down): kept for `lineage replay`."""
    return lineage_file().with_name("undelivered.jsonl")


def lineage_namespace() -> str:
    from workloads.common.platform import catalog_name

    return os.environ.get("DP_LINEAGE_NAMESPACE") or f"iceberg://{catalog_name()}"


# The OpenLineage client copies OPENLINEAGE_URL into variables of its own under this prefix: they are not
# configuration once OPENLINEAGE_URL is gone.
_URL_ALIASES = "OPENLINEAGE__TRANSPORT__TRANSPORTS__DEFAULT_HTTP"


def lineage_over_transport() -> bool:
    """True when OpenLineage's own configuration (URL, config file or variables) chooses the transport."""
    return bool(os.environ.get("OPENLINEAGE_URL") or os.environ.get("OPENLINEAGE_CONFIG")
                or any(k.startswith("OPENLINEAGE__TRANSPORT") and not k.startswith(_URL_ALIASES)
                       for k in os.environ))


def audit_dir() -> Path:
    return Path(os.environ.get("DP_AUDIT_DIR") or home() / "audit")


def admin_audit_log() -> Path:
    """The log of governance's own admin actions (metadata applied, anchors published)."""
    return audit_dir() / "admin.jsonl"


def opa_url() -> str | None:
    return os.environ.get("DP_OPA_URL") or None


def metadata_file() -> Path:
    return Path(os.environ.get("DP_GOVERNANCE_METADATA") or HERE / "catalog.yaml")

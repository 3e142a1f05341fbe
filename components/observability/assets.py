"""The files kept in the repository (alert rules, Grafana dashboards) and the Grafana provisioning built around them.

Dashboards reference their datasource by uid only (`DATASOURCE_UID`), and every target provisions a Prometheus
datasource with exactly that uid (a provisioning file, the kube-prometheus-stack sidecar, or the Managed Grafana
API), so one JSON file works on all four targets.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RULES_FILE = HERE / "rules" / "platform-alerts.yaml"
RULES_TEST_FILE = HERE / "rules" / "platform-alerts.test.yaml"
DASHBOARDS_DIR = HERE / "dashboards"
DATASOURCE_UID = "prometheus"
DASHBOARDS_FOLDER = "Data platform"


@lru_cache(maxsize=1)
def alert_rules_text() -> str:
    return RULES_FILE.read_text()


def alert_rules() -> dict[str, Any]:
    return yaml.safe_load(alert_rules_text())


@lru_cache(maxsize=1)
def _dashboards() -> tuple[tuple[str, str], ...]:
    return tuple((path.stem, path.read_text()) for path in sorted(DASHBOARDS_DIR.glob("*.json")))


def dashboards() -> dict[str, str]:
    """Dashboard name (file stem) -> JSON text, compacted (whitespace is noise inside a compose file or API call)."""
    return {name: json.dumps(json.loads(text), separators=(",", ":")) for name, text in _dashboards()}


def datasource_provisioning(url: str, scrape_interval: str = "30s") -> str:
    """Grafana's datasource provisioning file: the platform's Prometheus under the uid the dashboards use."""
    return yaml.safe_dump({"apiVersion": 1, "datasources": [{
        "name": "Prometheus", "uid": DATASOURCE_UID, "type": "prometheus", "access": "proxy", "url": url,
        "isDefault": True, "editable": False, "jsonData": {"timeInterval": scrape_interval, "httpMethod": "POST"},
    }]}, sort_keys=False)


def dashboard_provisioning(path: str) -> str:
    """Grafana's dashboard provider: the repository's dashboards, read-only in the UI (change them in git)."""
    return yaml.safe_dump({"apiVersion": 1, "providers": [{
        "name": "dataplatform", "folder": DASHBOARDS_FOLDER, "type": "file", "disableDeletion": True,
        "allowUiUpdates": False, "updateIntervalSeconds": 60, "options": {"path": path},
    }]}, sort_keys=False)


def compose_literal(text: str) -> str:
    """Text placed in a compose file that compose must not interpolate (`$labels`, `$__rate_interval`)."""
    return text.replace("$", "$$")

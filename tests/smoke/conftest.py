"""The smoke suite runs only against an inventory: `dp smoke` writes one and points DP_SMOKE_INVENTORY at it
(tests/test_smoke_runs.py does the same in CI). Without it, plain `pytest` collects nothing here.

Checks are parametrized from the inventory, so each result names its host and what it checked
(`test_port_listening[node-1:9092]`); a check the target does not have is one skipped test carrying the reason.
"""
from __future__ import annotations

import functools
import os
from typing import Any

import pytest

from dp.inventory import ENV, Inventory

if not os.environ.get(ENV):
    collect_ignore_glob = ["test_*.py"]


@functools.lru_cache(maxsize=1)
def load_inventory() -> Inventory:
    return Inventory.read(os.environ[ENV])


@pytest.fixture(scope="session")
def inventory() -> Inventory:
    return load_inventory()


@functools.lru_cache(maxsize=None)
def infra_host(uri: str):
    """One testinfra host per spec for the whole run (an ssh:// host keeps its connection settings)."""
    import testinfra

    return testinfra.get_host(uri)


def _skip(reason: str) -> list[Any]:
    return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="none")]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize each check over what the inventory lists for it."""
    inventory = load_inventory()
    names = metafunc.fixturenames
    if "listening" in names:
        cases = [pytest.param((h, port), id=f"{h.name}:{port}") for h in inventory.hosts for port in h.ports]
        metafunc.parametrize("listening", cases or _skip("no ports to check in this inventory"))
    if "unit" in names:
        cases = [pytest.param((h, u), id=f"{h.name}:{u.name}") for h in inventory.hosts for u in h.units]
        metafunc.parametrize("unit", cases or _skip("no units listed up front (see the discovered-units check)"))
    if "discovering" in names:
        cases = [pytest.param(h, id=f"{h.name}:{h.discover}") for h in inventory.hosts if h.discover]
        metafunc.parametrize("discovering", cases or _skip("this target lists its units up front"))
    if "health" in names:
        cases = [pytest.param(c, id=c.name) for c in inventory.http]
        cases += [pytest.param(None, marks=pytest.mark.skip(reason=reason), id=check.removeprefix("http "))
                  for check, reason in inventory.skips.items() if check.startswith("http ")]
        metafunc.parametrize("health", cases or _skip("no HTTP endpoints in this inventory"))
    if "table" in names:
        identifiers = inventory.tables.identifiers if inventory.tables else ()
        metafunc.parametrize("table", [pytest.param(t, id=t) for t in identifiers] or _skip(inventory.reason("tables")))
    if "layer" in names:
        identifiers = inventory.tables.identifiers if inventory.tables else ()
        layers = list(dict.fromkeys(t.split(".")[0] for t in identifiers))
        metafunc.parametrize("layer", [pytest.param(layer, id=layer) for layer in layers] or
                             _skip(inventory.reason("tables")))

"""Fixtures for workload tests, reusable by any test under tests/workloads:

- `tansu_broker` (session) / `fresh_tansu_broker` (per test): a Tansu Kafka broker on a free loopback port,
  in memory; yields "127.0.0.1:PORT" (see `workloads.common.tansu`).
- `catalog_env` (per test): a fresh SQLite-backed Iceberg SQL catalog with a file warehouse in a tmp dir, made the
  platform's catalog through pyiceberg's environment variables (`DP_CATALOG`, `PYICEBERG_CATALOG__<NAME>__*`).
  Yields the variables (`catalog_variables(root)` builds the same for a subprocess or another fixture).
- `platform_env` (per test): fresh broker + fresh catalog, set in this process; yields a full environment for
  subprocesses.
"""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from workloads.common.tansu import start_tansu


@pytest.fixture(autouse=True, scope="session")
def _private_dp_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Workloads write state (lineage events, vector data, audit logs) under DP_HOME: never into the repo's .dp."""
    saved = os.environ.get("DP_HOME")
    os.environ["DP_HOME"] = str(tmp_path_factory.mktemp("dp-home"))
    yield
    if saved is None:
        os.environ.pop("DP_HOME", None)
    else:
        os.environ["DP_HOME"] = saved


def _broker(log: Path) -> Iterator[str]:
    process, bootstrap = start_tansu(log=log)
    yield bootstrap
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def tansu_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One broker for the session: "127.0.0.1:PORT". Topics persist across the tests that share it."""
    yield from _broker(tmp_path_factory.mktemp("tansu") / "tansu.log")


@pytest.fixture
def fresh_tansu_broker(tmp_path: Path) -> Iterator[str]:
    """A broker of one's own (starts in milliseconds): for tests that need empty, fixed-name topics."""
    yield from _broker(tmp_path / "tansu.log")


def catalog_variables(root: Path, name: str = "platform") -> dict[str, str]:
    """The environment that makes `workloads.common.platform.load_catalog()` open a SQL catalog under `root`."""
    warehouse = root / "warehouse"
    warehouse.mkdir(parents=True, exist_ok=True)
    prefix = f"PYICEBERG_CATALOG__{name.upper()}__"
    return {"DP_CATALOG": name, f"{prefix}TYPE": "sql", f"{prefix}URI": f"sqlite:///{root / 'catalog.db'}",
            f"{prefix}WAREHOUSE": warehouse.as_uri()}


@pytest.fixture
def catalog_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """`load_catalog` reads the environment at each call, so setting the variables is all it takes."""
    variables = catalog_variables(tmp_path / "lake", name="test")
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    yield variables


@pytest.fixture
def platform_env(fresh_tansu_broker: str, catalog_env: dict[str, str],
                 monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh broker + a fresh catalog, set in this process; the dict is a complete environment for a
    subprocess running a workload (`python -m workloads.medallion ...`)."""
    monkeypatch.setenv("DP_KAFKA_BOOTSTRAP_SERVERS", fresh_tansu_broker)
    return {**os.environ, **catalog_env, "DP_KAFKA_BOOTSTRAP_SERVERS": fresh_tansu_broker}

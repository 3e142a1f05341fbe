"""The catalog on PostgreSQL (DP_LOCAL_CATALOG_URI) instead of SQLite: workloads create their tables there,
`status` counts them, `down --purge` drops them. Runs a throwaway PostgreSQL server (Debian package `postgresql`)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from local import lifecycle
from local.preflight import prepare_home
from local.settings import LocalSettings
from local.tables import open_catalog, row_counts
from tests.local.conftest import REPO, free_port

PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), default=Path("/nonexistent"))


def _as_postgres(*command: str, **kwargs) -> subprocess.CompletedProcess:
    """PostgreSQL refuses to run as root: drop to the `postgres` user when we are root."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *command], check=True, capture_output=True, text=True, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def postgres_uri():
    if not (PG_BIN / "initdb").exists():
        pytest.fail("PostgreSQL server binaries missing: apt-get install postgresql")
    base = Path(tempfile.mkdtemp(prefix="dp-local-pg-"))  # not under pytest's 0700 tmp: postgres must reach it
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    data, port = base / "data", free_port()
    _as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-U", "platform", "--auth=trust")
    _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w", "start",
                 "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1")
    try:
        yield f"postgresql+psycopg2://platform@127.0.0.1:{port}/postgres"
    finally:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_workload_tables_live_in_postgres(postgres_uri, tmp_path):
    from workloads.medallion.tables import all_tables

    settings = LocalSettings.from_env({"DP_HOME": str(tmp_path / "home"), "DP_LOCAL_CATALOG_URI": postgres_uri})
    prepare_home(settings)
    init = subprocess.run([sys.executable, "-m", "workloads.medallion", "init"], env=settings.process_env(),
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    counts = row_counts(open_catalog(settings))
    assert set(counts) == {spec.identifier for spec in all_tables()} and set(counts.values()) == {0}
    assert not settings.catalog_db.exists()  # nothing went to SQLite

    lifecycle.purge_data(settings)
    assert row_counts(open_catalog(settings)) == {}
    assert not settings.home.exists()

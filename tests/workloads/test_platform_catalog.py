"""`workloads.common.platform.load_catalog` follows the environment as it is when called (pyiceberg alone reads
`PYICEBERG_*` once, at import), and reuses one catalog per configuration."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from tests.workloads.conftest import catalog_variables
from workloads.common.platform import catalog_properties, load_catalog


def test_a_catalog_configured_after_import_is_used_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import pyiceberg.catalog  # noqa: F401  (imported first: its own environment snapshot is now stale)

    first = catalog_variables(tmp_path / "one", name="lake")
    for key, value in first.items():
        monkeypatch.setenv(key, value)
    catalog = load_catalog()
    assert load_catalog() is catalog and load_catalog("lake") is catalog
    catalog.create_namespace("ns")
    catalog.create_table("ns.t", schema=pa.schema([("x", pa.int64())]))

    # The same name pointed elsewhere later in the process: a new catalog, on the new database.
    second = catalog_variables(tmp_path / "two", name="lake")
    monkeypatch.setenv("PYICEBERG_CATALOG__LAKE__URI", second["PYICEBERG_CATALOG__LAKE__URI"])
    monkeypatch.setenv("PYICEBERG_CATALOG__LAKE__WAREHOUSE", second["PYICEBERG_CATALOG__LAKE__WAREHOUSE"])
    other = load_catalog()
    assert other is not catalog
    assert other.list_namespaces() == [] and catalog.list_namespaces() == [("ns",)]

    # Back to the first settings: the first catalog again.
    monkeypatch.setenv("PYICEBERG_CATALOG__LAKE__URI", first["PYICEBERG_CATALOG__LAKE__URI"])
    monkeypatch.setenv("PYICEBERG_CATALOG__LAKE__WAREHOUSE", first["PYICEBERG_CATALOG__LAKE__WAREHOUSE"])
    assert load_catalog() is catalog


def test_properties_follow_pyiceberg_naming_over_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / ".pyiceberg.yaml").write_text(
        "catalog:\n  lake:\n    type: rest\n    uri: http://from-file:8181\n    warehouse: from-file\n")
    monkeypatch.setenv("PYICEBERG_HOME", str(tmp_path))
    monkeypatch.setenv("PYICEBERG_CATALOG__LAKE__URI", "http://from-env:8181")
    monkeypatch.setenv("PYICEBERG_CATALOG__LAKE__S3__ACCESS_KEY_ID", "key")
    assert catalog_properties("lake") == {"type": "rest", "uri": "http://from-env:8181", "warehouse": "from-file",
                                          "s3.access-key-id": "key"}
    assert catalog_properties("other") == {}

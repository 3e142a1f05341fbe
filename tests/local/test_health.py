"""Health checks a service can declare: TCP port, HTTP endpoint, table-has-rows readiness."""
from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pytest

from local.health import Http, TableHasRows, TcpPort
from local.settings import LocalSettings
from local.tables import open_catalog, row_counts
from tests.local.conftest import free_port


def test_tcp_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert TcpPort(server.getsockname()[1])() is None
    assert "refused" in TcpPort(free_port())().lower()


@pytest.fixture
def http_server():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/healthz" else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http(http_server):
    assert Http(f"{http_server}/healthz")() is None
    assert Http(f"{http_server}/broken")() == "HTTP 503"
    assert Http(f"http://127.0.0.1:{free_port()}/healthz")() is not None


def test_table_has_rows_follows_the_catalog(tmp_path):
    settings = LocalSettings.from_env({"DP_HOME": str(tmp_path)})
    settings.warehouse.mkdir(parents=True)
    catalog = lambda: open_catalog(settings)  # noqa: E731
    gold, orders = TableHasRows("gold", catalog), TableHasRows("bronze.orders", catalog)
    assert gold() == "no tables in gold yet"  # no catalog file yet: and looking does not create one
    assert not settings.catalog_db.exists()

    from pyiceberg.catalog.sql import SqlCatalog

    writer = SqlCatalog("platform", **{k: v for k, v in settings.catalog_properties().items() if k != "type"})
    for namespace in ("bronze", "gold"):
        writer.create_namespace(namespace)
    schema = pa.schema([("x", pa.int64())])
    writer.create_table("gold.revenue", schema)
    writer.create_table("gold.quarantine", schema)
    writer.create_table("bronze.orders", schema)
    assert gold() == "all tables in gold are empty"
    assert TableHasRows("silver", catalog)() == "no tables in silver yet"
    assert TableHasRows("bronze.missing", catalog)() == "table bronze.missing does not exist yet"

    writer.load_table("gold.revenue").append(pa.table({"x": [1, 2, 3]}))
    writer.load_table("bronze.orders").append(pa.table({"x": [7]}))
    assert gold() is None and orders() is None  # one table with rows is enough for a layer
    assert row_counts(open_catalog(settings)) == {"bronze.orders": 1, "gold.quarantine": 0, "gold.revenue": 3}

"""Every vector backend through the one `VectorStore` interface: the two embedded engines, and the deployed-Qdrant
code (qdrant-client) run against qdrant-client's in-process emulation of the server API."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from workloads.vector.store import VectorError, open_store

DIM = 16


def _open(backend: str, tmp_path):
    if backend == "qdrant-client":
        from qdrant_client import QdrantClient

        from workloads.vector.qdrant_server_store import QdrantServerStore

        return QdrantServerStore(client=QdrantClient(":memory:"))
    return open_store(backend, tmp_path)


@pytest.fixture(params=["qdrant-edge", "milvus-lite", "qdrant-client"])
def store(request, tmp_path):
    s = _open(request.param, tmp_path)
    yield s
    s.close()


def _points(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    ids = [f"row-{i}" for i in range(n)]
    payloads = [{"colour": ["red", "green", "blue"][i % 3], "size": i % 4, "in_stock": i % 2 == 0,
                 "price": 10.5 if i % 5 == 0 else 3.0, "name": f"item {i}"} for i in range(n)]
    return ids, vectors, payloads


@pytest.mark.filterwarnings("ignore::UserWarning")  # qdrant-client's emulation warns that it has no indexes
def test_create_upsert_search_delete_drop(store):
    ids, vectors, payloads = _points(60)
    store.create_collection("things", DIM, keyword_fields=["colour"])
    store.create_collection("things", DIM)  # idempotent with the same dimension
    assert "things" in store.collections()
    store.upsert("things", ids, vectors, payloads)
    store.build_index("things")
    assert store.count("things") == 60

    hits = store.search("things", vectors[7], limit=5)
    assert hits[0].id == "row-7" and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert hits[0].payload == payloads[7]  # the internal id key never leaks into payloads
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

    # Re-upserting the same ids (changed payloads) replaces points instead of adding them.
    store.upsert("things", ids[:20], vectors[:20], [{**p, "name": "renamed"} for p in payloads[:20]])
    assert store.count("things") == 60
    assert store.search("things", vectors[3], limit=1)[0].payload["name"] == "renamed"

    store.delete("things", ["row-1", "row-2", "no-such-row"])
    assert store.count("things") == 58
    stored = store.payloads("things")
    assert set(stored) == set(ids) - {"row-1", "row-2"}
    assert stored["row-3"] == {**payloads[3], "name": "renamed"} and stored["row-40"] == payloads[40]

    store.drop_collection("things")
    assert "things" not in store.collections()
    with pytest.raises(VectorError, match="no collection 'things'"):
        store.search("things", vectors[0])


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("filters", [{"colour": "red"}, {"size": 2}, {"in_stock": True}, {"in_stock": False},
                                     {"price": 10.5}, {"colour": "blue", "in_stock": False}])
def test_filtered_search_returns_only_matching_payloads(store, filters):
    ids, vectors, payloads = _points(60, seed=1)
    store.create_collection("things", DIM, keyword_fields=["colour"])
    store.upsert("things", ids, vectors, payloads)
    expected = {i for i, p in zip(ids, payloads) if all(p[k] == v for k, v in filters.items())}
    hits = store.search("things", vectors[0], limit=60, filters=filters)
    assert {h.id for h in hits} == expected  # all matches and nothing else
    assert all(all(h.payload[k] == v for k, v in filters.items()) for h in hits)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_bad_requests_are_refused_with_reasons(store):
    ids, vectors, payloads = _points(5)
    store.create_collection("things", DIM)
    store.upsert("things", ids, vectors, payloads)
    with pytest.raises(VectorError, match="holds 16-d vectors, not 8-d"):
        store.create_collection("things", 8)
    with pytest.raises(VectorError, match="shape"):
        store.upsert("things", ["a"], np.zeros((1, 3)), [{}])
    with pytest.raises(VectorError, match="NaN"):
        store.upsert("things", ["a"], np.full((1, DIM), np.nan), [{}])
    with pytest.raises(VectorError, match="differ"):
        store.upsert("things", ["a", "b"], np.zeros((1, DIM)), [{}])
    with pytest.raises(VectorError, match="invalid filter key"):
        store.search("things", vectors[0], filters={"colour) or (1": "x"})
    with pytest.raises(VectorError, match="must be str, int, float or bool"):
        store.search("things", vectors[0], filters={"colour": ["red"]})
    with pytest.raises(VectorError, match="not a finite number"):
        store.search("things", vectors[0], filters={"price": float("nan")})
    with pytest.raises(VectorError, match="limit"):
        store.search("things", vectors[0], limit=0)
    with pytest.raises(VectorError, match="invalid collection name"):
        store.create_collection("../escape", DIM)
    assert store.count("things") == 5  # nothing lost


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_string_filter_values_cannot_inject(store):
    ids, vectors, payloads = _points(6)
    payloads[0]["name"] = 'it\'s "quoted" \\ '
    store.create_collection("things", DIM)
    store.upsert("things", ids, vectors, payloads)
    assert [h.id for h in store.search("things", vectors[0], filters={"name": payloads[0]["name"]})] == ["row-0"]
    assert store.search("things", vectors[0], filters={"name": '" or payload["size"] >= 0 or "'}) == []


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_metadata_round_trips_and_merges(store):
    store.create_collection("things", DIM)
    store.set_metadata("things", {"embedder": "local:x", "source": {"table": "gold.t", "snapshot_id": 1}})
    store.set_metadata("things", {"source": {"table": "gold.t", "snapshot_id": 2}})
    assert store.get_metadata("things") == {"dim": DIM, "embedder": "local:x",
                                            "source": {"table": "gold.t", "snapshot_id": 2}}


def _other_process(tmp_path, code: str, **env: str) -> str:
    """Run `code` against the same Qdrant Edge directory in another process; its printed output."""
    import os

    body = textwrap.indent(textwrap.dedent(code).strip(), "    ")
    script = "\n".join([
        "import numpy as np",
        "from pathlib import Path",
        "from workloads.vector.store import open_store, VectorError",
        f"store = open_store('qdrant-edge', Path({str(tmp_path)!r}))",
        "try:", body,
        "except VectorError as exc:", "    print('refused:', exc)",
        "finally:", "    store.close()"])
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **env})
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_qdrant_edge_hands_a_collection_between_processes(tmp_path):
    """The MCP server searches while `index --follow` writes in another process: each takes the collection
    when it needs it; an indexing run keeps it until done."""
    ids, vectors, payloads = _points(30)
    with open_store("qdrant-edge", tmp_path) as ours:
        ours.create_collection("things", DIM)
        ours.upsert("things", ids, vectors, payloads)
        ours.build_index("things")
        # Another process asks for the collection while we hold it: we hand it over, it sees our points.
        out = _other_process(tmp_path, f"""
            print("count", store.count("things"))
            store.upsert("things", ["extra"], np.ones((1, {DIM})), [{{"colour": "none"}}])
        """)
        assert "count 30" in out
        assert ours.count("things") == 31  # and we take it back, with its write
        assert ours.search("things", np.ones(DIM), limit=1)[0].id == "extra"
        # During an indexing run (exclusive) nothing is handed over: the other process gives up with a reason.
        with ours.exclusive("things"):
            out = _other_process(tmp_path, 'print(store.count("things"))', DP_VECTOR_LOCK_TIMEOUT="0.5")
        assert "refused: collection 'things' is held by another process" in out and "within 0.5s" in out
    with open_store("qdrant-edge", tmp_path) as reopened:  # closed: on disk, lock free
        assert reopened.count("things") == 31


def test_backend_comes_from_the_environment(monkeypatch, tmp_path):
    from workloads.vector import store as store_module

    monkeypatch.setenv("DP_VECTOR_PATH", str(tmp_path))
    monkeypatch.setenv("DP_VECTOR_BACKEND", "milvus-lite")
    try:
        assert store_module.get_store().backend == "milvus-lite"
        assert store_module.get_store() is store_module.get_store()
        assert (tmp_path / "milvus-lite" / "milvus.db").exists()
    finally:
        store_module.close_stores()
    monkeypatch.setenv("DP_VECTOR_BACKEND", "pinecone")
    with pytest.raises(VectorError, match="not one of qdrant-edge, qdrant, milvus-lite, milvus"):
        store_module.get_store()
    monkeypatch.setenv("DP_VECTOR_BACKEND", "qdrant")
    monkeypatch.delenv("DP_QDRANT_URL", raising=False)
    with pytest.raises(VectorError, match="DP_QDRANT_URL must be set"):
        store_module.get_store()


def test_credentials_come_from_the_environment_or_a_mounted_file(monkeypatch, tmp_path):
    from workloads.vector.store import secret

    monkeypatch.setenv("DP_MILVUS_TOKEN", "from-env")
    assert secret("DP_MILVUS_TOKEN") == "from-env"
    (tmp_path / "token").write_text("from-file\n")
    monkeypatch.setenv("DP_MILVUS_TOKEN_FILE", str(tmp_path / "token"))
    assert secret("DP_MILVUS_TOKEN") == "from-file"  # the mounted secret wins
    monkeypatch.setenv("DP_MILVUS_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(VectorError, match="cannot read DP_MILVUS_TOKEN_FILE"):
        secret("DP_MILVUS_TOKEN")


def test_handoff_ignores_requests_from_dead_processes(tmp_path, monkeypatch):
    from workloads.vector.handoff import CollectionLock, lock_timeout

    lock = CollectionLock(tmp_path, "a", timeout=1)
    lock.acquire("collection 'x'")
    (tmp_path / "wants-999999999-zz").touch()  # no such process: a waiter that died
    assert not lock.others_waiting() and not (tmp_path / "wants-999999999-zz").exists()
    other = CollectionLock(tmp_path, "b", timeout=0.2)  # same process, another store: a real request
    with pytest.raises(VectorError, match="held by another process"):
        other.acquire("collection 'x'")
    lock.release()
    other.acquire("collection 'x'")
    assert other.held and not list(tmp_path.glob("wants-*"))
    monkeypatch.setenv("DP_VECTOR_LOCK_TIMEOUT", "soon")
    with pytest.raises(VectorError, match="DP_VECTOR_LOCK_TIMEOUT must be a number"):
        lock_timeout()

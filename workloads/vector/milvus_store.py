"""Milvus through pymilvus' `MilvusClient`: Milvus Lite in-process (`MilvusClient("<dir>/milvus.db")`) or a
Milvus server (URI + token). Same code for both.

Schema per collection: `id` VARCHAR primary key (the caller's id, so upsert replaces), `vector` FLOAT_VECTOR
(COSINE, HNSW), `payload` JSON. Filters become `payload["key"] == <literal>` expressions; values are JSON-encoded
literals (Milvus Lite has no filter templating), keys are checked identifiers. Our metadata lives in the
collection's properties under `dp.meta`.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from workloads.vector.store import (Filters, Hit, VectorError, VectorStore, check_filters, check_limit, check_name,
                                    query_vector)

META_KEY = "dp.meta"
HNSW_PARAMS = {"M": 16, "efConstruction": 200}
DEFAULT_EF = 128
MAX_ID_LENGTH = 512


def milvus_filter(filters: Filters | None) -> str:
    """Equality filters as a Milvus boolean expression over the JSON `payload` field."""
    terms = []
    for key, value in check_filters(filters).items():
        literal = ("true" if value else "false") if isinstance(value, bool) else json.dumps(value, ensure_ascii=False)
        terms.append(f'payload["{key}"] == {literal}')
    return " and ".join(terms)


class MilvusStore(VectorStore):
    def __init__(self, uri: str, token: str | None, backend: str, ef: int = DEFAULT_EF) -> None:
        from pymilvus import MilvusClient

        self.backend = backend  # type: ignore[misc]
        self.ef = ef
        self._lock = threading.RLock()
        self._dims: dict[str, int] = {}
        try:
            self._client = MilvusClient(uri=uri, token=token or "")
        except Exception as exc:  # pymilvus raises its own hierarchy; the token is never part of the message
            raise VectorError(f"cannot reach Milvus at {uri}: {exc}") from exc

    @classmethod
    def lite(cls, root: Path) -> MilvusStore:
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        return cls(str(root / "milvus.db"), None, "milvus-lite")

    @classmethod
    def server(cls, uri: str, token: str | None) -> MilvusStore:
        return cls(uri, token, "milvus")

    # -- collections -----------------------------------------------------------------------------------------

    def collections(self) -> list[str]:
        return sorted(self._client.list_collections())

    def has_collection(self, name: str) -> bool:
        return self._client.has_collection(check_name(name))

    def create_collection(self, name: str, dim: int, *, keyword_fields: Sequence[str] = ()) -> None:
        from pymilvus import DataType

        with self._lock:
            if self.has_collection(name):
                if (existing := self.dimension(name)) != dim:
                    raise VectorError(f"collection {name!r} holds {existing}-d vectors, not {dim}-d")
                return
            schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_LENGTH)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
            schema.add_field("payload", DataType.JSON)
            index = self._client.prepare_index_params()
            index.add_index("vector", index_type="HNSW", metric_type="COSINE", params=HNSW_PARAMS)
            # keyword_fields: Milvus filters JSON keys without a per-key index; JSON path indexes are a
            # server-side optimisation Milvus Lite does not offer, so nothing to do here.
            self._client.create_collection(name, schema=schema, index_params=index,
                                           properties={META_KEY: json.dumps({"dim": dim})})

    def drop_collection(self, name: str) -> None:
        with self._lock:
            self._dims.pop(name, None)
            if self.has_collection(name):
                self._client.drop_collection(name)

    # -- metadata --------------------------------------------------------------------------------------------

    def get_metadata(self, name: str) -> dict[str, Any]:
        self.require(name)
        properties = self._client.describe_collection(name).get("properties") or {}
        return json.loads(properties.get(META_KEY, "{}"))

    def set_metadata(self, name: str, metadata: Mapping[str, Any]) -> None:
        with self._lock:
            merged = {**self.get_metadata(name), **metadata}
            self._client.alter_collection_properties(name, properties={META_KEY: json.dumps(merged, sort_keys=True)})

    def dimension(self, name: str) -> int:
        if name not in self._dims:
            self._dims[name] = int(self.get_metadata(name)["dim"])
        return self._dims[name]

    # -- points ----------------------------------------------------------------------------------------------

    def upsert(self, name: str, ids: Sequence[str], vectors: Any, payloads: Sequence[Mapping[str, Any]]) -> None:
        self.require(name)
        array = self._check_batch(ids, vectors, payloads, self.dimension(name))
        if too_long := [i for i in ids if len(i.encode()) > MAX_ID_LENGTH]:
            raise VectorError(f"point ids longer than {MAX_ID_LENGTH} bytes: {too_long[:3]}")
        rows = [{"id": i, "vector": v, "payload": dict(p)} for i, v, p in zip(ids, array.tolist(), payloads)]
        with self._lock:
            self._client.upsert(name, rows)

    def delete(self, name: str, ids: Sequence[str]) -> None:
        self.require(name)
        with self._lock:
            self._client.delete(name, ids=list(ids))

    def count(self, name: str) -> int:
        self.require(name)
        result = self._client.query(name, filter="", output_fields=["count(*)"])
        return int(result[0]["count(*)"])

    def payloads(self, name: str) -> dict[str, dict[str, Any]]:
        self.require(name)
        found: dict[str, dict[str, Any]] = {}
        iterator = self._client.query_iterator(name, batch_size=2048, filter="", output_fields=["id", "payload"])
        try:
            while batch := iterator.next():
                found.update((row["id"], row.get("payload") or {}) for row in batch)
        finally:
            iterator.close()
        return found

    def search(self, name: str, vector: Any, limit: int = 10, filters: Filters | None = None) -> list[Hit]:
        check_limit(limit)
        self.require(name)
        query = query_vector(vector, self.dimension(name))
        result = self._client.search(name, data=[query], limit=limit, filter=milvus_filter(filters),
                                     output_fields=["payload"], search_params={"params": {"ef": max(self.ef, limit)}})
        return [Hit(id=str(h["id"]), score=float(h["distance"]), payload=h["entity"].get("payload") or {})
                for h in result[0]]

    def build_index(self, name: str) -> None:
        """Seal the growing segment so the HNSW index covers it (Milvus indexes sealed segments)."""
        self.require(name)
        with self._lock:
            self._client.flush(name)

    def close(self) -> None:
        self._client.close()

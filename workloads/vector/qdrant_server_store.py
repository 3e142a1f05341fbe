"""A deployed Qdrant server through `qdrant-client` (URL + API key from the environment).

Point ids are UUIDs derived from the caller's string ids (kept in the payload under `_dp_id`), as in the
embedded Qdrant Edge store, so both hold the same points for the same rows. Our metadata is the collection's own
`metadata` (Qdrant >= 1.16).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from workloads.vector.qdrant_edge_store import DEFAULT_HNSW_EF, ID_KEY
from workloads.vector.store import (Filters, Hit, VectorError, VectorStore, check_filters, check_limit, check_name,
                                    point_uuid, query_vector)


def client_filter(filters: Filters | None):
    """Equality filters as a qdrant-client Filter (numbers as a [v, v] range so 2 matches 2.0)."""
    from qdrant_client import models

    conditions = []
    for key, value in check_filters(filters).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            conditions.append(models.FieldCondition(key=key, range=models.Range(gte=value, lte=value)))
        else:
            conditions.append(models.FieldCondition(key=key, match=models.MatchValue(value=value)))
    return models.Filter(must=conditions) if conditions else None


class QdrantServerStore(VectorStore):
    backend = "qdrant"

    def __init__(self, url: str | None = None, api_key: str | None = None, *, client: Any = None,
                 hnsw_ef: int = DEFAULT_HNSW_EF) -> None:
        from qdrant_client import QdrantClient

        # `client` lets tests run this code against qdrant-client's in-process emulation of the server API.
        self._client = client or QdrantClient(url=url, api_key=api_key, timeout=30)
        self.hnsw_ef = hnsw_ef
        self._dims: dict[str, int] = {}

    def collections(self) -> list[str]:
        return sorted(c.name for c in self._client.get_collections().collections)

    def has_collection(self, name: str) -> bool:
        return self._client.collection_exists(check_name(name))

    def create_collection(self, name: str, dim: int, *, keyword_fields: Sequence[str] = ()) -> None:
        from qdrant_client import models

        if self.has_collection(name):
            if (existing := self.dimension(name)) != dim:
                raise VectorError(f"collection {name!r} holds {existing}-d vectors, not {dim}-d")
        else:
            self._client.create_collection(  # HNSW parameters: the server's defaults (it has the cores for them)
                name, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
                metadata={"dim": dim})
        for field in keyword_fields:
            self._client.create_payload_index(name, field, models.PayloadSchemaType.KEYWORD, wait=True)

    def drop_collection(self, name: str) -> None:
        self._dims.pop(name, None)
        if self.has_collection(name):
            self._client.delete_collection(name)

    def get_metadata(self, name: str) -> dict[str, Any]:
        self.require(name)
        metadata = self._client.get_collection(name).config.metadata or {}
        return {"dim": self._vector_size(name), **metadata}

    def set_metadata(self, name: str, metadata: Mapping[str, Any]) -> None:
        self.require(name)
        self._client.update_collection(name, metadata=dict(metadata))

    def _vector_size(self, name: str) -> int:
        return int(self._client.get_collection(name).config.params.vectors.size)

    def dimension(self, name: str) -> int:
        if name not in self._dims:
            self._dims[name] = self._vector_size(self.require(name))
        return self._dims[name]

    def upsert(self, name: str, ids: Sequence[str], vectors: Any, payloads: Sequence[Mapping[str, Any]]) -> None:
        from qdrant_client import models

        self.require(name)
        array = self._check_batch(ids, vectors, payloads, self.dimension(name))
        if any(ID_KEY in p for p in payloads):
            raise VectorError(f"payload key {ID_KEY!r} is reserved")
        points = [models.PointStruct(id=point_uuid(i), vector=v, payload={**p, ID_KEY: i})
                  for i, v, p in zip(ids, array.tolist(), payloads)]
        self._client.upsert(name, points=points, wait=True)

    def delete(self, name: str, ids: Sequence[str]) -> None:
        from qdrant_client import models

        self.require(name)
        self._client.delete(name, points_selector=models.PointIdsList(points=[point_uuid(i) for i in ids]), wait=True)

    def count(self, name: str) -> int:
        self.require(name)
        return self._client.count(name, exact=True).count

    def payloads(self, name: str) -> dict[str, dict[str, Any]]:
        self.require(name)
        found, offset = {}, None
        while True:
            records, offset = self._client.scroll(name, limit=2048, offset=offset, with_payload=True,
                                                  with_vectors=False)
            for record in records:
                payload = dict(record.payload or {})
                found[str(payload.pop(ID_KEY, record.id))] = payload
            if offset is None:
                return found

    def search(self, name: str, vector: Any, limit: int = 10, filters: Filters | None = None) -> list[Hit]:
        from qdrant_client import models

        check_limit(limit)
        self.require(name)
        response = self._client.query_points(
            name, query=query_vector(vector, self.dimension(name)), limit=limit, query_filter=client_filter(filters),
            search_params=models.SearchParams(hnsw_ef=max(self.hnsw_ef, limit)), with_payload=True)
        hits = []
        for point in response.points:
            payload = dict(point.payload or {})
            hits.append(Hit(id=str(payload.pop(ID_KEY, point.id)), score=float(point.score), payload=payload))
        return hits

    def close(self) -> None:
        self._client.close()

"""The vector layer: semantic search over the platform's silver/gold tables.

Public API (the MCP server's `vector_search` tool calls it):
- `search(collection, query, limit=10, filters=None)`: hits `{"id", "score", "payload"}`, best first;
  `filters` are equality conditions on payload keys.
- `collections()`: the collection names in the configured store.
- `VectorStore`: the interface every backend implements; `get_store()` picks the backend from
  `DP_VECTOR_BACKEND` (qdrant-edge | qdrant | milvus-lite | milvus; default qdrant-edge).

Heavy libraries are imported inside functions so importing this package stays cheap.
"""
from __future__ import annotations

from workloads.vector.store import BACKENDS, Filters, Hit, VectorError, VectorStore, get_store

__all__ = ["BACKENDS", "Filters", "Hit", "VectorError", "VectorStore", "collections", "get_store", "search"]


def search(collection: str, query: str, limit: int = 10, filters: Filters | None = None) -> list[dict]:
    """Embed `query` with the collection's embedder and return the `limit` nearest points matching `filters`."""
    from workloads.vector.embeddings import embedder_for_collection

    if not isinstance(query, str) or not query.strip():
        raise VectorError("query must be a non-empty string")
    store = get_store()
    vector = embedder_for_collection(store, collection).embed([query])[0]
    return [hit.as_dict() for hit in store.search(collection, vector, limit=limit, filters=filters)]


def collections() -> list[str]:
    """Names of the collections in the configured store, sorted."""
    return sorted(get_store().collections())

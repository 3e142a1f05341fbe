"""The vector layer, reached lazily: `workloads.vector` (and its heavy libraries) is imported on the first
vector call, and its absence is a clear "unavailable" rather than an import error at start."""
from __future__ import annotations

from types import ModuleType

from workloads.mcp_server.errors import Refused, Unavailable


def layer() -> ModuleType:
    try:
        import workloads.vector as vector
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == "workloads.vector" or exc.name.startswith("workloads.vector.")):
            raise Unavailable("the vector layer (workloads.vector) is not installed") from None
        raise
    return vector


def search(collection: str, query: str, limit: int, filters: dict | None) -> list[dict]:
    vector = layer()
    try:
        return vector.search(collection, query, limit=limit, filters=filters)
    except vector.VectorError as exc:
        raise Refused(f"vector search refused: {exc}") from None


def collections() -> list[str]:
    vector = layer()
    try:
        return vector.collections()
    except vector.VectorError as exc:
        raise Unavailable(f"vector store unavailable: {exc}") from None

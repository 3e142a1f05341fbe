"""Qdrant Edge (`qdrant-edge-py`): Qdrant's own engine in-process, the embedded default.

One EdgeShard per collection under `<root>/<collection>/shard`, its metadata in `<root>/<collection>/collection.json`.
Unlike qdrant-client's local mode it has real HNSW and payload indexes: points land in an appendable segment
(exact search) and `build_index` (EdgeShard.optimize) turns them into an HNSW-indexed segment.

The shard's write-ahead log is off: the indexer is the only writer and re-runs from the last snapshot it recorded,
which it records only after `build_index` has flushed, so the WAL would only double the write cost (~25k -> ~40k
upserts/s through this class). Updates are durable after `build_index`/`close`. Without the WAL's lock, an
exclusive `flock` on `<collection>/lock` keeps a second process from opening the same collection.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from workloads.vector.store import (Filters, Hit, VectorError, VectorStore, check_filters, check_limit, check_name,
                                    point_uuid, query_vector)

ID_KEY = "_dp_id"  # the caller's string id, kept in the payload (Qdrant ids are UUIDs)
HNSW_M = 16
HNSW_EF_CONSTRUCT = 64  # half the build time of 100 for ~no recall loss at hnsw_ef 128 (`dp bench vector`)
UPSERT_CHUNK = 4096
DEFAULT_HNSW_EF = 128  # recall@10 ~0.95+ on 100k x 384-d clustered vectors (see `dp bench vector`)


def _edge():
    import qdrant_edge

    return qdrant_edge


def edge_filter(filters: Filters | None):
    """Equality filters as a Qdrant Edge Filter. Numbers match as a [v, v] range so 2 matches 2.0 too; booleans
    go in as numpy bools because qdrant-edge-py 0.9 turns a Python `True` into the integer 1 (matches nothing)."""
    import numpy as np

    q = _edge()
    conditions = []
    for key, value in check_filters(filters).items():
        if isinstance(value, bool):
            conditions.append(q.FieldCondition(key=key, match=q.MatchValue(np.bool_(value))))
        elif isinstance(value, (int, float)):
            conditions.append(q.FieldCondition(key=key, range=q.RangeFloat(gte=float(value), lte=float(value))))
        else:
            conditions.append(q.FieldCondition(key=key, match=q.MatchValue(value)))
    return q.Filter(must=conditions) if conditions else None


class QdrantEdgeStore(VectorStore):
    backend = "qdrant-edge"

    def __init__(self, root: Path, hnsw_ef: int = DEFAULT_HNSW_EF) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.hnsw_ef = hnsw_ef
        self._shards: dict[str, Any] = {}
        self._locks: dict[str, Any] = {}
        self._dims: dict[str, int] = {}
        self._lock = threading.RLock()

    # -- collections -----------------------------------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        return self.root / check_name(name)

    def collections(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / "collection.json").is_file())

    def has_collection(self, name: str) -> bool:
        return (self._dir(name) / "collection.json").is_file()

    def create_collection(self, name: str, dim: int, *, keyword_fields: Sequence[str] = ()) -> None:
        q = _edge()
        with self._lock:
            if self.has_collection(name):
                if (existing := self.dimension(name)) != dim:
                    raise VectorError(f"collection {name!r} holds {existing}-d vectors, not {dim}-d")
            else:
                config = q.EdgeConfig(
                    vectors=q.EdgeVectorParams(size=dim, distance=q.Distance.Cosine),
                    hnsw_config=q.HnswIndexConfig(m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT, full_scan_threshold=10_000,
                                                  max_indexing_threads=os.cpu_count() or 1),
                    wal_enabled=False,
                )
                shard_dir = self._dir(name) / "shard"
                self._lock_collection(name)
                if shard_dir.exists():  # a half-created collection (crash before collection.json): start over
                    shutil.rmtree(shard_dir)
                self._shards[name] = q.EdgeShard.create(str(shard_dir), config)
                self._write_metadata(name, {"dim": dim})
            shard = self._shard(name)
            indexed = set(shard.info().payload_schema)
            for field in keyword_fields:
                if field not in indexed:
                    shard.update(q.UpdateOperation.create_field_index(field, q.PayloadSchemaType.Keyword))

    def drop_collection(self, name: str) -> None:
        with self._lock:
            if self.has_collection(name):
                self._shard(name).close()  # opening first takes the lock: never delete another process's files
                self._shards.pop(name)
            shutil.rmtree(self._dir(name), ignore_errors=True)
            self._unlock_collection(name)
            self._dims.pop(name, None)

    def _shard(self, name: str):
        with self._lock:
            if name not in self._shards:
                self.require(name)
                self._lock_collection(name)
                self._shards[name] = _edge().EdgeShard.load(str(self._dir(name) / "shard"))
            return self._shards[name]

    def _lock_collection(self, name: str) -> None:
        if name in self._locks:
            return
        self._dir(name).mkdir(parents=True, exist_ok=True)
        handle = open(self._dir(name) / "lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise VectorError(f"collection {name!r} under {self.root} is open in another process; Qdrant Edge is "
                              "single-process: run the indexer in the process that serves searches, or stop it") from None
        self._locks[name] = handle

    def _unlock_collection(self, name: str) -> None:
        if handle := self._locks.pop(name, None):
            handle.close()  # closing the file releases the flock

    # -- metadata --------------------------------------------------------------------------------------------

    def get_metadata(self, name: str) -> dict[str, Any]:
        self.require(name)
        return json.loads((self._dir(name) / "collection.json").read_text())

    def set_metadata(self, name: str, metadata: Mapping[str, Any]) -> None:
        with self._lock:
            self._write_metadata(name, {**self.get_metadata(name), **metadata})

    def _write_metadata(self, name: str, metadata: Mapping[str, Any]) -> None:
        path = self._dir(name) / "collection.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(metadata, indent=2, sort_keys=True))
        os.replace(tmp, path)  # atomic: a crash leaves the old or the new file, never half of one

    # -- points ----------------------------------------------------------------------------------------------

    def upsert(self, name: str, ids: Sequence[str], vectors: Any, payloads: Sequence[Mapping[str, Any]]) -> None:
        q = _edge()
        shard = self._shard(name)
        array = self._check_batch(ids, vectors, payloads, self.dimension(name))
        if any(ID_KEY in p for p in payloads):
            raise VectorError(f"payload key {ID_KEY!r} is reserved")
        with self._lock:
            # Chunks bound the memory of Python-side Point objects; per-row tolist() is cheaper than one big one.
            for start in range(0, len(ids), UPSERT_CHUNK):
                stop = start + UPSERT_CHUNK
                points = [q.Point(point_uuid(i), v.tolist(), {**p, ID_KEY: i})
                          for i, v, p in zip(ids[start:stop], array[start:stop], payloads[start:stop])]
                shard.update(q.UpdateOperation.upsert_points(points))

    def delete(self, name: str, ids: Sequence[str]) -> None:
        shard = self._shard(name)
        with self._lock:
            shard.update(_edge().UpdateOperation.delete_points([point_uuid(i) for i in ids]))

    def count(self, name: str) -> int:
        return self._shard(name).count(_edge().CountRequest(exact=True))

    def payloads(self, name: str) -> dict[str, dict[str, Any]]:
        q = _edge()
        shard, found, offset = self._shard(name), {}, None
        while True:
            records, offset = shard.scroll(q.ScrollRequest(offset=offset, limit=2048, with_payload=True,
                                                           with_vector=False))
            for record in records:
                payload = dict(record.payload or {})
                found[str(payload.pop(ID_KEY, record.id))] = payload
            if offset is None:
                return found

    def search(self, name: str, vector: Any, limit: int = 10, filters: Filters | None = None) -> list[Hit]:
        q = _edge()
        check_limit(limit)
        shard = self._shard(name)
        query = query_vector(vector, self.dimension(name))
        request = q.QueryRequest(limit=limit, query=q.Query.Nearest(query), filter=edge_filter(filters),
                                 with_payload=True, params=q.SearchParams(hnsw_ef=max(self.hnsw_ef, limit)))
        hits = []
        for point in shard.query(request):
            payload = dict(point.payload or {})
            hits.append(Hit(id=str(payload.pop(ID_KEY, point.id)), score=float(point.score), payload=payload))
        return hits

    def dimension(self, name: str) -> int:
        if name not in self._dims:  # this process owns the collection (flock), so the value cannot change under us
            self._dims[name] = int(self.get_metadata(name)["dim"])
        return self._dims[name]

    def build_index(self, name: str) -> None:
        shard = self._shard(name)
        with self._lock:
            shard.optimize()
            shard.flush()

    def close(self) -> None:
        with self._lock:
            while self._shards:
                name, shard = self._shards.popitem()
                shard.flush()
                shard.close()
                self._unlock_collection(name)


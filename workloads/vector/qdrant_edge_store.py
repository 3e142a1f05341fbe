"""Qdrant Edge (`qdrant-edge-py`): Qdrant's own engine in-process, the embedded default.

One EdgeShard per collection under `<root>/<collection>/shard`, its metadata in `<root>/<collection>/collection.json`.
Unlike qdrant-client's local mode it has real HNSW and payload indexes: points land in an appendable segment
(exact search) and `build_index` (EdgeShard.optimize) turns them into an HNSW-indexed segment.

The shard's write-ahead log is off: the indexer is the only writer and re-runs from the last snapshot it recorded,
which it records only after `build_index` has flushed, so the WAL would only add write cost (~40% slower
upserts). Updates are durable after `build_index`/`close`/a hand-over. Processes share a collection through
`handoff.CollectionLock`: the holder releases it when another process asks, between operations.

qdrant-edge-py 0.9 keeps the GIL during `update` and `optimize`: in a process that also serves requests, index
small batches, or index in another process (the hand-over makes that safe).
"""
from __future__ import annotations

import json
import os
import shutil
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from workloads.vector.handoff import CollectionLock, lock_timeout
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
        self.lock_timeout = lock_timeout()
        self._shards: dict[str, Any] = {}
        self._locks: dict[str, CollectionLock] = {}
        self._exclusive: Counter[str] = Counter()
        self._dims: dict[str, int] = {}
        # One lock per collection, so a hand-over never closes a shard in use, and a thread waiting for one
        # collection from another process does not keep this store from handing over the others (no deadlock).
        self._in_use: dict[str, threading.RLock] = {}
        self._in_use_guard = threading.Lock()
        self._closed = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- collections -----------------------------------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        return self.root / check_name(name)

    def collections(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / "collection.json").is_file())

    def has_collection(self, name: str) -> bool:
        return (self._dir(name) / "collection.json").is_file()

    def _busy(self, name: str) -> threading.RLock:
        with self._in_use_guard:
            return self._in_use.setdefault(check_name(name), threading.RLock())

    def create_collection(self, name: str, dim: int, *, keyword_fields: Sequence[str] = ()) -> None:
        q = _edge()
        with self._busy(name):
            if not self.has_collection(name):
                self._collection_lock(name).acquire(f"collection {name!r}")
            if self.has_collection(name):  # (again: another process may have created it while we waited)
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
                if shard_dir.exists():  # a half-created collection (crash before collection.json): start over
                    shutil.rmtree(shard_dir)
                self._shards[name] = q.EdgeShard.create(str(shard_dir), config)
                self._write_metadata(name, {"dim": dim})
                self._watch()
            shard = self._open(name)
            indexed = set(shard.info().payload_schema)
            for field in keyword_fields:
                if field not in indexed:
                    shard.update(q.UpdateOperation.create_field_index(field, q.PayloadSchemaType.Keyword))

    def drop_collection(self, name: str) -> None:
        with self._busy(name):
            if self.has_collection(name):
                self._open(name)  # takes the lock first: never delete files another process has open
                self._shards.pop(name).close()
            shutil.rmtree(self._dir(name), ignore_errors=True)
            if lock := self._locks.pop(name, None):
                lock.release()
            self._dims.pop(name, None)

    def _collection_lock(self, name: str) -> CollectionLock:
        if name not in self._locks:
            self._locks[name] = CollectionLock(self._dir(name), f"{id(self):x}", self.lock_timeout)
        return self._locks[name]

    def _open(self, name: str):
        """The collection's shard, taking it over from another process if needed. Call with `_busy(name)` held."""
        if name not in self._shards:
            self.require(name)
            self._collection_lock(name).acquire(f"collection {name!r}")
            self.require(name)  # it may have been dropped while we waited
            self._shards[name] = _edge().EdgeShard.load(str(self._dir(name) / "shard"))
            self._watch()
        return self._shards[name]

    @contextmanager
    def _using(self, name: str) -> Iterator[Any]:
        with self._busy(name):
            yield self._open(name)

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Keep the collection through several operations (an indexing run): no hand-over in between."""
        with self._busy(name):
            self._open(name)
            self._exclusive[name] += 1
        try:
            yield
        finally:
            with self._busy(name):
                self._exclusive[name] -= 1

    def _release(self, name: str) -> None:
        """Flush and close the shard and let the lock go (call with `_busy(name)` held)."""
        if shard := self._shards.pop(name, None):
            shard.flush()
            shard.close()
        if lock := self._locks.get(name):
            lock.release()

    def _watch(self) -> None:
        """Start the thread that hands collections over when another process asks (once per store)."""
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._hand_over, name="qdrant-edge-handoff", daemon=True)
            self._watcher.start()

    def _hand_over(self) -> None:
        while not self._closed.wait(0.1):
            for name in list(self._shards):
                busy = self._busy(name)
                if not busy.acquire(blocking=False):
                    continue  # in use: ask again on the next tick
                try:
                    if name in self._shards and not self._exclusive[name] and self._locks[name].others_waiting():
                        self._release(name)
                finally:
                    busy.release()

    # -- metadata --------------------------------------------------------------------------------------------

    def get_metadata(self, name: str) -> dict[str, Any]:
        self.require(name)
        return json.loads((self._dir(name) / "collection.json").read_text())

    def set_metadata(self, name: str, metadata: Mapping[str, Any]) -> None:
        with self._using(name):
            self._write_metadata(name, {**self.get_metadata(name), **metadata})

    def _write_metadata(self, name: str, metadata: Mapping[str, Any]) -> None:
        path = self._dir(name) / "collection.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(metadata, indent=2, sort_keys=True))
        os.replace(tmp, path)  # atomic: a crash leaves the old or the new file, never half of one

    def dimension(self, name: str) -> int:
        if name not in self._dims:  # fixed when the collection is created
            self._dims[name] = int(self.get_metadata(name)["dim"])
        return self._dims[name]

    # -- points ----------------------------------------------------------------------------------------------

    def upsert(self, name: str, ids: Sequence[str], vectors: Any, payloads: Sequence[Mapping[str, Any]]) -> None:
        q = _edge()
        array = self._check_batch(ids, vectors, payloads, self.dimension(name))
        if any(ID_KEY in p for p in payloads):
            raise VectorError(f"payload key {ID_KEY!r} is reserved")
        with self._using(name) as shard:
            # Chunks bound the memory of Python-side Point objects; per-row tolist() is cheaper than one big one.
            for start in range(0, len(ids), UPSERT_CHUNK):
                stop = start + UPSERT_CHUNK
                points = [q.Point(point_uuid(i), v.tolist(), {**p, ID_KEY: i})
                          for i, v, p in zip(ids[start:stop], array[start:stop], payloads[start:stop])]
                shard.update(q.UpdateOperation.upsert_points(points))

    def delete(self, name: str, ids: Sequence[str]) -> None:
        with self._using(name) as shard:
            shard.update(_edge().UpdateOperation.delete_points([point_uuid(i) for i in ids]))

    def count(self, name: str) -> int:
        with self._using(name) as shard:
            return shard.count(_edge().CountRequest(exact=True))

    def payloads(self, name: str) -> dict[str, dict[str, Any]]:
        q = _edge()
        found, offset = {}, None
        with self._using(name) as shard:
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
        query = query_vector(vector, self.dimension(name))
        request = q.QueryRequest(limit=limit, query=q.Query.Nearest(query), filter=edge_filter(filters),
                                 with_payload=True, params=q.SearchParams(hnsw_ef=max(self.hnsw_ef, limit)))
        with self._using(name) as shard:
            points = shard.query(request)
        hits = []
        for point in points:
            payload = dict(point.payload or {})
            hits.append(Hit(id=str(payload.pop(ID_KEY, point.id)), score=float(point.score), payload=payload))
        return hits

    def build_index(self, name: str) -> None:
        with self._using(name) as shard:
            shard.optimize()
            shard.flush()

    def close(self) -> None:
        self._closed.set()
        for name in list(self._shards):
            with self._busy(name):
                self._release(name)
        self._locks.clear()

"""`dp bench vector`: every embedded vector backend on the same clustered (embedding-like) vectors.

Per backend, through the `VectorStore` interface the platform uses (string ids, a payload per point):
- insert_per_s: upserts per second (index build excluded), index_s: time to build the ANN index afterwards;
- p50_ms / p99_ms: one top-10 query at a time, payloads included;
- recall_at_10: overlap with the exact top-10, computed in the same run by numpy brute force, which is also
  reported as the baseline backend `numpy-exact` (its "insert" is normalising into one array).
Goal for the embedded default (qdrant-edge): >= 50k vectors/s, p99 <= 5 ms, recall@10 >= 0.95.
"""
from __future__ import annotations

import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

EMBEDDED = ("qdrant-edge", "milvus-lite")
BASELINE = "numpy-exact"
K = 10
BATCH = 10_000


CLUSTER_SIZE = 1000  # points per topic on average
NOISE = 1.5  # per-dimension noise around a centre: same-cluster cosine ~0.3, other clusters ~0, like real
# sentence embeddings of related vs unrelated texts; the exact top-10 must be told apart inside a cluster.


def clustered(n: int, dim: int, queries: int, seed: int = 7):
    """Unit vectors around n/CLUSTER_SIZE random centres (like embeddings of related texts), plus held-out queries."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(10, n // CLUSTER_SIZE), dim), dtype=np.float32)

    def sample(count: int):
        noise = rng.standard_normal((count, dim), dtype=np.float32) * NOISE
        points = centres[rng.integers(0, len(centres), count)] + noise
        return points / np.linalg.norm(points, axis=1, keepdims=True)

    return sample(n), sample(queries)


def _percentiles(latencies_s: list[float]) -> tuple[float, float]:
    import numpy as np

    ms = np.asarray(latencies_s) * 1000
    return round(float(np.percentile(ms, 50)), 3), round(float(np.percentile(ms, 99)), 3)


def exact_baseline(data, queries) -> tuple[list[set[int]], dict[str, float]]:
    """Exact top-10 by brute force (the recall reference) and its own figures."""
    import numpy as np

    started = time.perf_counter()
    matrix = np.ascontiguousarray(data / np.linalg.norm(data, axis=1, keepdims=True), dtype=np.float32)
    insert_s = time.perf_counter() - started
    truth, latencies = [], []
    for query in queries:
        t0 = time.perf_counter()
        scores = matrix @ query
        top = np.argpartition(-scores, K)[:K]
        latencies.append(time.perf_counter() - t0)
        truth.append(set(top[np.argsort(-scores[top])].tolist()))
    p50, p99 = _percentiles(latencies)
    return truth, {"insert_per_s": round(len(data) / insert_s, 1), "index_s": 0.0, "p50_ms": p50, "p99_ms": p99,
                   "recall_at_10": 1.0}


def measure_backend(backend: str, data, queries, truth: list[set[int]], root: Path, progress=None) -> dict[str, float]:
    from workloads.vector.store import open_store

    n, dim = data.shape
    ids = [f"p{i}" for i in range(n)]
    payloads = [{"group": f"g{i % 10}"} for i in range(n)]
    task = progress.add_task(f"{backend}: insert", total=n) if progress else None
    with open_store(backend, root) as store:
        store.create_collection("bench", dim)
        started = time.perf_counter()
        for start in range(0, n, BATCH):
            store.upsert("bench", ids[start:start + BATCH], data[start:start + BATCH], payloads[start:start + BATCH])
            if progress:
                progress.update(task, advance=min(BATCH, n - start))
        insert_s = time.perf_counter() - started
        if progress:
            progress.update(task, description=f"{backend}: building index")
        started = time.perf_counter()
        store.build_index("bench")
        index_s = time.perf_counter() - started
        if progress:
            progress.update(task, description=f"{backend}: searching", completed=0, total=len(queries))
        for query in queries[:5]:  # warm caches
            store.search("bench", query, limit=K)
        latencies, recalls = [], []
        for query, expected in zip(queries, truth):
            t0 = time.perf_counter()
            hits = store.search("bench", query, limit=K)
            latencies.append(time.perf_counter() - t0)
            recalls.append(len({int(h.id[1:]) for h in hits} & expected) / K)
            if progress:
                progress.advance(task)
        if progress:
            progress.update(task, description=f"{backend}: done")
    p50, p99 = _percentiles(latencies)
    return {"insert_per_s": round(n / insert_s, 1), "index_s": round(index_s, 3), "p50_ms": p50, "p99_ms": p99,
            "recall_at_10": round(sum(recalls) / len(recalls), 4)}


def run(n: int = 100_000, dim: int = 384, queries: int = 500, backends: tuple[str, ...] = EMBEDDED,
        show_progress: bool = True) -> dict[str, Any]:
    """Figures per backend in the `--json` shape: {"default": name, "backends": {name: {...}}}."""
    from workloads.vector.store import DEFAULT_BACKEND, VectorError

    if n < 2 * K or dim < 2 or queries < 1:
        raise VectorError(f"need n >= {2 * K}, dim >= 2 and queries >= 1 (got n={n}, dim={dim}, queries={queries})")
    if unknown := [b for b in backends if b not in EMBEDDED]:
        raise VectorError(f"only embedded backends can be benchmarked here: {unknown} not in {EMBEDDED}")
    progress = _progress() if show_progress else None
    with progress or nullcontext():
        data, query_vectors = clustered(n, dim, queries)
        truth, baseline = exact_baseline(data, query_vectors)
        figures = {BASELINE: baseline}
        with tempfile.TemporaryDirectory(prefix="dp-bench-vector-") as tmp:
            for backend in backends:
                figures[backend] = measure_backend(backend, data, query_vectors, truth, Path(tmp), progress)
    return {"default": DEFAULT_BACKEND, "backends": figures}


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    transient=False)

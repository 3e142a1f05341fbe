"""`dp bench vector` at a tiny size: the figures come out in the exact `--json` shape scripts read. (Speed itself
is only ever printed by the benchmark, never asserted.)"""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

FIELDS = {"insert_per_s", "index_s", "p50_ms", "p99_ms", "recall_at_10"}


@pytest.mark.slow
def test_bench_vector_json_shape():
    from dp.bench_cmd import app

    result = CliRunner().invoke(app, ["vector", "--json", "--n", "400", "--dim", "16", "--queries", "20"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert set(figures) == {"default", "backends"} and figures["default"] == "qdrant-edge"
    assert set(figures["backends"]) == {"numpy-exact", "qdrant-edge", "milvus-lite"}
    for name, values in figures["backends"].items():
        assert set(values) == FIELDS, name
        assert all(isinstance(v, float) for v in values.values()), name
        assert values["insert_per_s"] > 0 and values["p99_ms"] >= values["p50_ms"] > 0
    assert figures["backends"]["numpy-exact"]["recall_at_10"] == 1.0
    # 400 points stay below the HNSW threshold: both engines search exactly, so recall must be (near) perfect.
    assert figures["backends"]["qdrant-edge"]["recall_at_10"] >= 0.99


def test_bench_vector_refuses_bad_sizes():
    from benchmarks.vector import run
    from workloads.vector.store import VectorError

    with pytest.raises(VectorError, match="need n >= 20"):
        run(n=5, show_progress=False)

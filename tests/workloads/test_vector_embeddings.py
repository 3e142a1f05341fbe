"""Embeddings: the offline model (no network) and the OpenAI-compatible path against a local `/v1/embeddings`."""
from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from workloads.vector.embeddings import (LOCAL_NAME, OpenAIEmbedder, embedder_for_collection, get_embedder,
                                         local_embedder)
from workloads.vector.store import VectorError, open_store


def test_offline_model_is_deterministic_normalised_and_semantic():
    embedder = local_embedder()
    texts = ["red running shoes", "crimson sneakers", "tax invoice", "quarterly VAT return for the accountant"]
    first = embedder.embed(texts)
    assert first.shape == (4, 384) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    # Same texts, any batch and order: same vectors (padding and batching must not leak into the result).
    again = embedder.embed(list(reversed(texts)) + ["an unrelated much longer sentence to change padding"])
    assert np.allclose(first, again[:4][::-1], atol=1e-5)
    similarity = first @ first.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3  # shoes ~ sneakers, far from invoices
    assert similarity[2, 3] > similarity[2, 1]  # invoice ~ VAT return
    assert embedder.embed([]).shape == (0, 384)


def test_offline_model_refuses_a_single_string():
    with pytest.raises(VectorError, match="list of texts"):
        local_embedder().embed("not a list")


def _fake_vector(text: str, dim: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [float(b) + 1.0 for b in (digest * (dim // len(digest) + 1))[:dim]]  # not unit length on purpose


@pytest.fixture
def embeddings_server(monkeypatch):
    """A tiny OpenAI-compatible embeddings endpoint on 127.0.0.1; records the requests it served."""
    requests: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
            if body["model"] == "broken":
                self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"error": {"message": "model crashed", "type": "server_error"}}')
                return
            inputs = body["input"]
            data = [{"object": "embedding", "index": i, "embedding": _fake_vector(t, 8)} for i, t in enumerate(inputs)]
            payload = json.dumps({"object": "list", "data": data[::-1], "model": body["model"],  # any order
                                  "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", requests
    server.shutdown()
    server.server_close()


def test_openai_compatible_endpoint(embeddings_server):
    base_url, requests = embeddings_server
    embedder = OpenAIEmbedder("tiny-embed", base_url=base_url, api_key="sk-test-secret")
    embedder.batch_size = 3
    texts = [f"text {i}" for i in range(7)]
    vectors = embedder.embed(texts)
    assert vectors.shape == (7, 8) and embedder.dim == 8
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)  # normalised on our side
    expected = np.asarray([_fake_vector(t, 8) for t in texts], dtype=np.float32)
    assert np.allclose(vectors, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-6)
    assert [len(r["body"]["input"]) for r in requests] == [3, 3, 1]  # batched
    assert all(r["path"] == "/v1/embeddings" and r["body"]["encoding_format"] == "float" for r in requests)
    assert requests[0]["auth"] == "Bearer sk-test-secret"


def test_openai_compatible_errors_are_clear_and_keep_the_key_out(embeddings_server):
    base_url, _ = embeddings_server
    embedder = OpenAIEmbedder("broken", base_url=base_url, api_key="sk-test-secret")
    with pytest.raises(VectorError, match="embeddings request to .* failed") as raised:
        embedder.embed(["x"])
    assert "sk-test-secret" not in str(raised.value)


def test_embedder_comes_from_the_environment(monkeypatch, embeddings_server):
    base_url, _ = embeddings_server
    monkeypatch.delenv("DP_EMBEDDINGS_MODEL", raising=False)
    monkeypatch.delenv("DP_EMBEDDINGS_BASE_URL", raising=False)
    assert get_embedder().name == LOCAL_NAME
    monkeypatch.setenv("DP_EMBEDDINGS_BASE_URL", base_url)
    with pytest.raises(VectorError, match="DP_EMBEDDINGS_MODEL is not"):
        get_embedder()
    monkeypatch.setenv("DP_EMBEDDINGS_MODEL", "tiny-embed")
    embedder = get_embedder()
    assert embedder.name == "openai:tiny-embed" and embedder.embed(["a"]).shape == (1, 8)


def test_a_collection_is_queried_with_the_embedder_that_filled_it(monkeypatch, tmp_path, embeddings_server):
    base_url, _ = embeddings_server
    monkeypatch.setenv("DP_EMBEDDINGS_BASE_URL", base_url)
    monkeypatch.setenv("DP_EMBEDDINGS_MODEL", "tiny-embed")
    with open_store("qdrant-edge", tmp_path) as store:
        store.create_collection("local_one", 384)
        store.set_metadata("local_one", {"embedder": LOCAL_NAME})
        assert embedder_for_collection(store, "local_one").name == LOCAL_NAME  # whatever is configured
        store.create_collection("other", 8)
        store.set_metadata("other", {"embedder": "openai:another-model"})
        with pytest.raises(VectorError, match="was embedded with openai:another-model"):
            embedder_for_collection(store, "other")

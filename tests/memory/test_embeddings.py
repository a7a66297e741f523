"""Offline embedders and the cache in front of them."""

from __future__ import annotations

import numpy as np
import pytest

from memory.embeddings import CachedEmbedder, EmbedderError, HashingEmbedder, make_embedder


def test_hashing_is_deterministic_unit_and_meaningful():
    e = HashingEmbedder()
    texts = ["craft wood pickaxe near table", "craft wood pickaxe near the table", "drink water at lake"]
    a, b = e.embed(texts), HashingEmbedder().embed(texts)
    assert a.shape == (3, 384) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0)
    assert a[0] @ a[1] > a[0] @ a[2]


class Counting:
    name, identity, dim = "count", "count/4", 4

    def __init__(self):
        self.calls: list[list[str]] = []

    def embed(self, texts):
        self.calls.append(list(texts))
        return np.array([[len(t), 1, 0, 0] for t in texts], dtype=np.float32)


def test_cache_encodes_each_distinct_text_once_and_evicts():
    inner = Counting()
    cache = CachedEmbedder(inner, size=2)
    out = cache.embed(["a", "bb", "a", "bb"])
    assert inner.calls == [["a", "bb"]] and out[:, 0].tolist() == [1, 2, 1, 2]
    cache.embed(["a", "ccc"])  # a is a hit; ccc evicts bb (least recently used)
    assert inner.calls[-1] == ["ccc"]
    cache.embed(["bb"])
    assert inner.calls[-1] == ["bb"]
    assert (cache.hits, cache.misses) == (1, 4)


def test_unknown_embedder_is_a_clear_error():
    with pytest.raises(EmbedderError, match="unknown embedder 'word2vec'"):
        make_embedder("word2vec")

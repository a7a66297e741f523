"""A word-level tokenizer built from the episodes' own text (tasks and subgoals).

Nothing is downloaded: the vocabulary is every word seen in the training data (rarer
than ``min_count`` -> ``<unk>``), sorted by count then alphabetically so that the same
data always gives the same ids. It is saved inside the checkpoint's JSON.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
_WORD = re.compile(r"[a-z0-9_]+|[^\sa-z0-9_]")


def words(text: str) -> list[str]:
    """``"Collect wood (x2)"`` -> ``["collect", "wood", "(", "x2", ")"]``."""
    return _WORD.findall(text.lower())


class Tokenizer:
    """Text <-> ids. ``encode`` adds BOS/EOS when asked; ``decode`` stops at EOS."""

    def __init__(self, vocab: Sequence[str]):
        if tuple(vocab[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}")
        if len(set(vocab)) != len(vocab):
            raise ValueError("a vocabulary has no repeated words")
        self.vocab = list(vocab)
        self.ids = {w: i for i, w in enumerate(self.vocab)}

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> Tokenizer:
        counts = Counter(w for text in texts for w in words(text))
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls([*SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str, max_len: int | None = None, bos: bool = False, eos: bool = False) -> list[int]:
        """Ids of ``text``; with ``max_len`` the words are cut so that BOS/EOS still fit."""
        ids = [self.ids.get(w, UNK) for w in words(text)]
        room = None if max_len is None else max_len - int(bos) - int(eos)
        if room is not None:
            ids = ids[: max(room, 0)]
        return [BOS] * bos + ids + [EOS] * eos

    def decode(self, ids: Iterable[int]) -> str:
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i in (PAD, BOS):
                continue
            out.append(self.vocab[i] if 0 <= i < len(self.vocab) else SPECIALS[UNK])
        return " ".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "word", "vocab": self.vocab}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tokenizer:
        if data.get("kind") != "word":
            raise ValueError(f"unknown tokenizer kind {data.get('kind')!r}")
        return cls(data["vocab"])

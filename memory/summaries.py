"""Tier 3: rolling summaries per task, subgoal kind and region, kept by each writer.

Every experience is counted in the summaries of its task, its subgoal kind and its
region (the coarsest spatial cell) when it is added. Counts are additive, so folding old
tuples out of tier 1 only deletes them: the summaries already hold their statistics.

Writers and watermarks. Each writer (``local`` for an embedded store, one id per open
store in server mode) keeps its own summary *shards*; a summary is the sum of its shards.
No shard is written by two processes, so concurrent writers lose no count. Experiences
carry ``(writer, wseq)``; a writer's watermark record says which of its sequence numbers
its shards already count, and is written in the same Chroma call as the shards (one call
is one transaction). A process killed between writing experiences and writing their
counts leaves experiences at or above the watermark: :meth:`SummaryBook.recover` counts
them. That is also what lets an embedded store hold counts in memory for a while
(``summary_every``): every Chroma write costs a disk sync (~30 ms here), and a crash
costs only a recount at the next open.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, Callable

from memory import codec
from memory.indices import spatial_cells
from memory.models import ExperienceTuple, Summary

log = logging.getLogger(__name__)

WATERMARK = "watermark"


def summary_keys(exp: ExperienceTuple, resolutions: list[int]) -> list[tuple[str, str]]:
    keys = [("task", exp.task), ("kind", exp.subgoal.kind)]
    cells = spatial_cells(exp.pre_state.position, resolutions[-1:])  # regions: the coarsest cells
    if cells:
        keys.append(("region", cells[-1]))
    return keys


def deltas(exps: list[ExperienceTuple], resolutions: list[int]) -> dict[str, Summary]:
    """The summaries of just these experiences, by summary id."""
    acc: dict[tuple[str, str], list] = {}  # plain counters: this runs for every experience
    for exp in exps:
        dg, t = exp.diagnosis, exp.ended_at
        for key in summary_keys(exp, resolutions):
            a = acc.get(key)
            if a is None:
                a = acc[key] = [0, 0, 0, {}, 0, t, t]
            a[0] += 1
            a[1] += dg.outcome == "success"
            a[2] += dg.outcome == "failure"
            if dg.failure_cause:
                a[3][dg.failure_cause] = a[3].get(dg.failure_cause, 0) + 1
            a[4] += len(exp.actions)
            a[5], a[6] = min(a[5], t), max(a[6], t)
    out = {}
    for (scope, key), (n, ok, bad, causes, actions, first, last) in acc.items():
        s = Summary(scope=scope, key=key, count=n, successes=ok, failures=bad, causes=causes,
                    actions=actions, first_at=first, last_at=last)
        out[s.id] = s
    return out


def merge_all(shards: list[Summary]) -> list[Summary]:
    """Shards summed by summary id, sorted by scope then key."""
    total: dict[str, Summary] = {}
    for s in shards:
        total[s.id] = total[s.id].add(s) if s.id in total else s
    return sorted(total.values(), key=lambda s: (s.scope, s.key))


class SummaryBook:
    """One writer's shards and watermark, over the summaries collection."""

    def __init__(self, collection: Any, writer: str, vectors: Callable[[list[str]], Any],
                 resolutions: list[int]):
        self.collection, self.writer, self.vectors, self.resolutions = collection, writer, vectors, resolutions
        self.shards: dict[str, Summary] = {}
        self.seq = 0  # the next sequence number of this writer
        self.written = 0  # the watermark last written
        self.dirty: set[str] = set()  # shards changed since
        self.pending = 0  # experiences counted since

    def load(self) -> None:
        got = self.collection.get(where={"writer": self.writer}, include=["metadatas"])
        for rid, meta in zip(got["ids"], got["metadatas"]):
            if meta.get("type") == WATERMARK:
                self.seq = self.written = int(meta["seq"])
            else:
                shard = codec.decode(Summary, meta, rid)
                self.shards[shard.id] = shard

    def _watermark_row(self) -> tuple[str, str, dict]:
        return f"{WATERMARK}@{self.writer}", WATERMARK, {"type": WATERMARK, "writer": self.writer,
                                                         "seq": self.seq}

    def count(self, exps: list[ExperienceTuple], seq: int, flush: bool = True) -> None:
        """Add ``exps`` to this writer's shards; they hold sequence numbers below ``seq``.
        Without ``flush`` the counts wait in memory for :meth:`flush` (a crash before it
        only means the next open counts those rows again from the experiences)."""
        touched = deltas(exps, self.resolutions)
        for sid, delta in touched.items():
            self.shards[sid] = self.shards[sid].add(delta) if sid in self.shards else delta
        self.dirty.update(touched)
        self.pending += len(exps)
        self.seq = max(self.seq, seq)
        if flush:
            self.flush()

    def flush(self) -> None:
        """Write the shards changed since the last flush, and the watermark."""
        if self.dirty or self.pending or self.seq != self.written:
            self.write(sorted(self.dirty))

    def write(self, summary_ids: list[str]) -> None:
        """Upsert these shards and the watermark in one call (one transaction)."""
        ids, docs, metas = [], [], []
        for sid in summary_ids:
            doc, meta = codec.summary_row(self.shards[sid], self.writer)
            ids.append(codec.shard_id(self.shards[sid], self.writer))
            docs.append(doc)
            metas.append(meta)
        wid, wdoc, wmeta = self._watermark_row()
        ids.append(wid)
        docs.append(wdoc)
        metas.append(wmeta)
        self.collection.upsert(ids=ids, documents=docs, metadatas=metas, embeddings=self.vectors(docs))
        self.dirty.difference_update(summary_ids)
        self.pending, self.written = 0, self.seq

    def recover(self, experiences: Any) -> int:
        """Count this writer's experiences that a killed process wrote but did not count."""
        got = experiences.get(where={"$and": [{"writer": self.writer}, {"wseq": {"$gte": self.seq}}]},
                              include=["metadatas"])
        if not got["ids"]:
            return 0
        exps = [codec.decode(ExperienceTuple, m, rid) for rid, m in zip(got["ids"], got["metadatas"])]
        top = max(int(m["wseq"]) for m in got["metadatas"])
        log.warning("memory: counting %d experience(s) that an interrupted write left uncounted", len(exps))
        self.count(exps, top + 1)
        return len(exps)


def read_all(collection: Any, scope: str | None = None) -> tuple[list[Summary], dict[str, int]]:
    """All shards merged into summaries, and every writer's watermark."""
    where: dict = {"scope": scope} if scope else {"type": {"$in": ["summary", WATERMARK]}}
    got = collection.get(where=where, include=["metadatas"])
    shards, marks = [], {}
    for rid, meta in zip(got["ids"], got["metadatas"]):
        if meta.get("type") == WATERMARK:
            marks[meta["writer"]] = int(meta["seq"])
        else:
            shards.append(codec.decode(Summary, meta, rid))
    return merge_all(shards), marks


def unaccounted(metadatas: list[dict], marks: dict[str, int]) -> dict[str, int]:
    """Per writer, experiences (given by their metadata) at or above its watermark:
    written, never counted."""
    late: dict[str, int] = defaultdict(int)
    for meta in metadatas:
        if int(meta.get("wseq", -1)) >= marks.get(meta.get("writer", ""), 0):
            late[meta.get("writer", "?")] += 1
    return dict(late)

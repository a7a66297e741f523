"""``ExperienceStore``: the experience memory of DESIGN.md over Chroma.

The agent calls it once per subgoal::

    store = ExperienceStore.open(cfg.memory)             # or open("runs/x/memory")
    store.add_experiences([exp])                          # tier 1 (+ tier 3 counts)
    result = store.upsert_skill(skill)                    # added | merged | rejected
    results = store.upsert_knowledge([skill, guardrail])  # the same, a batch at a time
    found = store.retrieve(RetrievalContext(task=..., subgoal=..., facts=...))
    store.close()

Reads (``retrieve``, ``get``, ``evidence``, ``list_*``, ``search``, ``stats``) live in
:mod:`memory.reads`;
``export_jsonl``, ``import_jsonl`` and ``check`` in :mod:`memory.io`.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from memory import codec, indices, merging, summaries
from memory.backend import Backend, open_backend
from memory.config import MemoryConfig
from memory.embeddings import CachedEmbedder, make_embedder, name_of
from memory.models import ExperienceTuple, Guardrail, Knowledge, RecordError, Skill, validate
from memory.reads import StoreReads

log = logging.getLogger(__name__)


def _config(config: MemoryConfig | str | Path | dict | None, overrides: dict[str, Any]) -> MemoryConfig:
    if isinstance(config, (str, Path)):
        text = str(config)
        data: dict[str, Any] = {"url": text} if text.startswith(("http://", "https://")) else {"path": text}
    elif isinstance(config, MemoryConfig):
        data = config.model_dump()
    else:
        data = dict(config or {})
    return MemoryConfig.model_validate({**data, **overrides})


def _locked(method: Callable) -> Callable:
    @functools.wraps(method)
    def wrapper(self: ExperienceStore, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)
    return wrapper


def _kind(item: Knowledge) -> str:
    return "skill" if isinstance(item, Skill) else "guardrail"


class ExperienceStore(StoreReads):
    """Three tiers over Chroma: experiences, skills and guardrails, summaries."""

    def __init__(self, backend: Backend, embedder: CachedEmbedder, cfg: MemoryConfig):
        self.backend, self.embedder, self.cfg = backend, embedder, cfg
        self._cols = backend.collections
        self.resolutions: list[int] = list(backend.identity["spatial_resolutions"])
        self.writer = "local" if backend.mode == "embedded" else "w" + uuid.uuid4().hex[:12]
        self.book = summaries.SummaryBook(self._cols["summaries"], self.writer, self._vectors, self.resolutions)
        self.recovered = 0
        self._lock = threading.RLock()  # one writer at a time within the process (shards, sequence)

    # -- opening and closing -------------------------------------------------------------

    @classmethod
    def open(cls, config: MemoryConfig | str | Path | dict | None = None, *, create: bool = True,
             create_with: str = "minilm", **overrides: Any) -> ExperienceStore:
        """Open (or, with ``create``, make) the store a config, directory or URL names.

        ``overrides`` are MemoryConfig fields (``embedder="hashing"``, ``namespace=...``).
        ``embedder="auto"`` takes whatever the store was built with (``create_with`` for
        a new store). An embedded store left by a killed process is repaired here:
        uncounted experiences are counted. Raises a :class:`memory.errors.StoreError`
        with a one-line message on failure.
        """
        cfg = _config(config, overrides)
        make = functools.partial(make_embedder, cache_size=cfg.embed_cache_size,
                                 batch_size=cfg.embed_batch_size, threads=cfg.torch_threads)
        wanted = None if cfg.embedder == "auto" else make(cfg.embedder)
        backend = open_backend(cfg, wanted.identity if wanted else None, create=create,
                               new_identity=(wanted or make(create_with)).identity)
        try:
            embedder = wanted or make(name_of(backend.identity["embedder"]))
            store = cls(backend, embedder, cfg)
            store.book.load()
            if backend.mode == "embedded":  # the only writer: anything uncounted was interrupted
                store.recovered = store.book.recover(store._cols["experiences"])
        except BaseException:
            backend.close()
            raise
        return store

    def close(self) -> None:
        """Release Chroma and (embedded) the directory lock. Safe to call twice."""
        if self.backend is not None:
            try:
                self.flush()
            finally:
                self.backend.close()
                self.backend = None  # type: ignore[assignment]

    def __enter__(self) -> ExperienceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _vectors(self, texts: list[str]) -> list[Any]:
        return self.embedder.embed(texts)

    def warm(self) -> None:
        """Load the embedding model now (MiniLM: ~4 s once per process), not in the
        middle of the first episode's first retrieval."""
        self.embedder.embed(["warm up"])

    # -- tier 1 ---------------------------------------------------------------------------

    @_locked
    def add_experiences(self, experiences: Iterable[ExperienceTuple | dict]) -> int:
        """Add experience tuples (models or plain dicts); returns how many were new.

        Indices are filled in, texts embedded in batches, rows written in atomic chunks of
        ``write_batch_size``, and each chunk counted in the summaries. Ids already stored
        are skipped. Beyond ``max_experiences`` the oldest uncited tuples are folded.
        """
        batch: dict[str, ExperienceTuple] = {}
        for i, item in enumerate(experiences):
            try:
                exp = validate("experience", item)
            except RecordError as err:
                raise RecordError(f"experiences[{i}]: {err}") from None
            batch.setdefault(exp.id, indices.index_experience(exp, self.resolutions))  # type: ignore[arg-type]
        col, added = self._cols["experiences"], 0
        items = list(batch.values())
        for start in range(0, len(items), self.cfg.write_batch_size):
            chunk = items[start:start + self.cfg.write_batch_size]
            known = set(col.get(ids=[e.id for e in chunk], include=[])["ids"])
            fresh = [e for e in chunk if e.id not in known]
            if fresh:
                self._write_experiences(fresh)
                added += len(fresh)
                # Shared (server) stores are read by others while we write: counts go out
                # with every chunk. An embedded store is ours alone: they can wait a while.
                if self.backend.mode == "server" or self.book.pending >= self.cfg.summary_every:
                    self.book.flush()
        if self.cfg.max_experiences and col.count() > self.cfg.max_experiences:
            self.fold()
        return added

    def flush(self) -> None:
        """Write the summary counts still held in memory (reads and ``close`` do it too)."""
        with self._lock:
            if self.backend is not None:
                self.book.flush()

    def _write_experiences(self, exps: list[ExperienceTuple], count: bool = True) -> None:
        """Situations first (idempotent), then the rows, then (``count``) the summaries:
        a process killed anywhere leaves at worst unused situations or uncounted rows,
        which the next open counts (see :mod:`memory.summaries`)."""
        t0 = time.perf_counter()
        seq = self.book.seq
        texts, metas = zip(*(codec.experience_row(exp, self.writer, seq + n) for n, exp in enumerate(exps)))
        self._write_situations([e.id for e in exps], list(texts), list(metas))
        t1 = time.perf_counter()
        self._cols["experiences"].add(ids=[e.id for e in exps], metadatas=list(metas),
                                      embeddings=[[float(seq + n)] for n in range(len(exps))])
        t2 = time.perf_counter()
        if count:
            self.book.count(exps, seq + len(exps), flush=False)
        else:
            self.book.seq = seq + len(exps)
        log.debug("wrote %d experiences: situations %.3fs, rows %.3fs, summaries %.3fs",
                  len(exps), t1 - t0, t2 - t1, time.perf_counter() - t2)

    def _write_situations(self, ids: list[str], texts: list[str], metas: list[dict]) -> None:
        """Embed and store the texts not seen before; each new situation names its first
        experience as its example (kept by folding, used by retrieval)."""
        distinct: dict[str, tuple[str, str, dict]] = {}
        for rid, text, meta in zip(ids, texts, metas):
            distinct.setdefault(meta["sit"], (rid, text, meta))
        known = set(self._cols["situations"].get(ids=list(distinct), include=[])["ids"])
        new = [(sid, *row) for sid, row in distinct.items() if sid not in known]
        if new:
            self._cols["situations"].upsert(
                ids=[sid for sid, *_ in new], documents=[text for _, _, text, _ in new],
                embeddings=self.embedder.embed([text for _, _, text, _ in new]),
                metadatas=[{"task": m["task"], "kind": m["kind"], "example": rid} for _, rid, _, m in new])

    @_locked
    def fold(self) -> int:
        """Delete the oldest tuples beyond the cap, except those cited as evidence and the
        example each distinct situation keeps.

        Their statistics are already in the summaries (counted when added), so nothing
        is lost but the tuple itself. Returns how many were deleted.
        """
        self.book.flush()  # rows about to go must be counted first
        col, cap = self._cols["experiences"], self.cfg.max_experiences
        excess = col.count() - int(cap * (1 - self.cfg.fold_fraction)) if cap else 0
        if excess <= 0:
            return 0
        kept = self._cited() | self._examples()
        # Chroma returns rows in the order they were written: the first ones are the oldest.
        oldest = col.get(limit=excess + len(kept), include=[])["ids"]
        doomed = [i for i in oldest if i not in kept][:excess]
        for start in range(0, len(doomed), 5000):
            col.delete(ids=doomed[start:start + 5000])
        log.info("memory: folded %d old experiences into summaries (kept %d cited or example tuples)",
                 len(doomed), len(kept))
        return len(doomed)

    def _examples(self) -> set[str]:
        got = self._cols["situations"].get(include=["metadatas"])  # small: one row per distinct text
        return {m["example"] for m in got["metadatas"] if m.get("example")}

    def _cited(self) -> set[str]:
        cited: set[str] = set()
        for kind in ("skills", "guardrails"):
            for meta in self._cols[kind].get(include=["metadatas"])["metadatas"]:
                cited.update(meta.get("sources") or [])
        return cited

    # -- tier 2 ---------------------------------------------------------------------------

    def upsert_skill(self, skill: Skill | dict) -> merging.MergeResult:
        """Add a skill, merge it into the same one, or reject it (see :mod:`memory.merging`)."""
        return self._upsert("skill", skill)

    def upsert_guardrail(self, guardrail: Guardrail | dict) -> merging.MergeResult:
        """Add a guardrail, merge it into the same one, or reject it (see :mod:`memory.merging`)."""
        return self._upsert("guardrail", guardrail)

    def _upsert(self, kind: str, data: Any) -> merging.MergeResult:
        return self.upsert_knowledge([(kind, data)])[0]

    @_locked
    def upsert_knowledge(self, records: Iterable[Skill | Guardrail | tuple[str, Any]]) -> list[merging.MergeResult]:
        """Upsert many skills and guardrails at once: the same result, record by record
        and in order, as one ``upsert_skill``/``upsert_guardrail`` call each, for a few
        reads and one write per kind instead of four round trips a record (an embedded
        store commits each one: ~10 ms). Items are models, or ``(kind, data)`` pairs
        with kind "skill" or "guardrail"."""
        items: list[Knowledge] = []
        for rec in records:
            kind, data = rec if isinstance(rec, tuple) else ("skill" if isinstance(rec, Skill) else "guardrail", rec)
            item: Knowledge = validate(kind, data)  # type: ignore[assignment]
            items.append(item.model_copy(update={"tags": indices.knowledge_tags(item)}))
        if not items:
            return []
        have: set[str] = set()
        if self.cfg.require_evidence:
            cited = list(dict.fromkeys(i for item in items for i in item.source_experiences))
            have = {i for got in self._get_chunked("experiences", cited, []) for i in got["ids"]}
        # what each collection holds for these ids and subgoal kinds, kept current below
        stored: dict[str, dict[str, Knowledge]] = {}
        rivals: dict[tuple[str, str], dict[str, Knowledge]] = {}
        writes: dict[str, dict[str, Knowledge]] = {"skill": {}, "guardrail": {}}
        for kind in writes:
            ids = list(dict.fromkeys(i.id for i in items if _kind(i) == kind))
            stored[kind] = {k.id: k for got in self._get_chunked(kind + "s", ids, ["metadatas"])
                            for k in self._decode_rows(kind, got)}
        results = []
        for item in items:
            kind = _kind(item)
            lost = [i for i in dict.fromkeys(item.source_experiences) if i not in have] \
                if self.cfg.require_evidence else []
            if lost:
                results.append(merging.MergeResult("rejected", item.id, f"cites {len(lost)} experience(s) "
                                                   f"the store does not hold: {', '.join(lost[:3])}"))
                continue
            old = stored[kind].get(item.id)
            if old is not None:
                merged = self._bounded(merging.merge(old, item))
                status = "merged"
            else:
                other = "guardrail" if kind == "skill" else "skill"
                key = (other, item.trigger.subgoal_kind)
                if key not in rivals:
                    got = self._cols[other + "s"].get(where={"kind": key[1]}, include=["metadatas"])
                    rivals[key] = {k.id: k for k in self._decode_rows(other, got)}
                    rivals[key].update((i, k) for i, k in writes[other].items() if k.trigger.subgoal_kind == key[1])
                reason = merging.first_conflict(item, list(rivals[key].values()), self.cfg)
                if reason:
                    log.info("memory: rejected %s %s: %s", kind, item.id, reason)
                    results.append(merging.MergeResult("rejected", item.id, reason))
                    continue
                merged, status = self._bounded(item), "added"
            stored[kind][merged.id] = writes[kind][merged.id] = merged
            mine = (kind, item.trigger.subgoal_kind)
            if mine in rivals:  # already read: keep it current (a later read adds ``writes``)
                rivals[mine][merged.id] = merged
            results.append(merging.MergeResult(status, merged.id, record=merged))
        for kind, batch in writes.items():
            self._write_knowledge(list(batch.values()))
        return results

    def _get_chunked(self, collection: str, ids: list[str], include: list[str]) -> list[dict]:
        """``get`` by ids, ``write_batch_size`` at a time (an import may name tens of thousands)."""
        step = self.cfg.write_batch_size
        return [self._cols[collection].get(ids=ids[i:i + step], include=include) for i in range(0, len(ids), step)]

    def _write_knowledge(self, items: list[Knowledge]) -> None:
        """Write records of one kind as they are (evidence already bounded): one upsert a
        ``write_batch_size`` records, the last of a repeated id winning."""
        unique = list({k.id: k for k in items}.values())
        for start in range(0, len(unique), self.cfg.write_batch_size):
            chunk = unique[start:start + self.cfg.write_batch_size]
            docs, metas = zip(*(codec.knowledge_row(k) for k in chunk))
            self._cols[_kind(chunk[0]) + "s"].upsert(ids=[k.id for k in chunk], documents=list(docs),
                                                     metadatas=list(metas), embeddings=self.embedder.embed(list(docs)))

    def _bounded(self, item: Knowledge) -> Any:
        """The record as stored: its evidence cut to the newest ``max_evidence`` ids."""
        return item.model_copy(update={"source_experiences": item.source_experiences[-self.cfg.max_evidence:]})

    # -- files and integrity (memory.io) --------------------------------------------------

    def export_jsonl(self, path: str | Path) -> dict[str, int]:
        """Write every record to a JSONL file; returns counts per kind."""
        from memory.io import export_jsonl

        return export_jsonl(self, Path(path))

    def import_jsonl(self, path: str | Path) -> Any:
        """Read a file written by :meth:`export_jsonl`; all lines are checked before any is written."""
        from memory.io import import_jsonl

        return import_jsonl(self, Path(path))

    def check(self, repair: bool = False) -> Any:
        """Integrity of the whole store (see :func:`memory.io.check`)."""
        from memory.io import check

        return check(self, repair=repair)

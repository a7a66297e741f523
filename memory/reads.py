"""Reading the store: retrieve, get, evidence, lists with filters, search, stats.

A mixin of :class:`memory.store.ExperienceStore`, kept apart so each file stays short.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from memory import codec, summaries
from memory.models import ExperienceTuple, Guardrail, Knowledge, Record, Skill, Summary
from memory.retrieval import Ranker, Retrieved, RetrievalContext, Scored, within_budget

Kind = Literal["experience", "skill", "guardrail", "summary"]
MODELS: dict[str, type[Record]] = {"experience": ExperienceTuple, "skill": Skill, "guardrail": Guardrail}
PREFIX = {"ex": "experience", "sk": "skill", "gr": "guardrail", "su": "summary"}


@dataclass
class Evidence:
    """Why a record exists: the experiences a skill or guardrail cites (and those gone),
    or, for an experience, the knowledge that cites it."""

    record: Record
    experiences: list[ExperienceTuple] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    cited_by: list[Knowledge] = field(default_factory=list)


@dataclass
class Hit:
    kind: str
    record: Record
    similarity: float


@dataclass
class StoreStats:
    where: str
    mode: str
    namespace: str
    embedder: str
    schema_version: int
    experiences: int
    situations: int
    skills: int
    guardrails: int
    summaries: int
    recorded: int  # experiences ever counted (live + folded)
    folded: int
    writers: int
    success_rate: float
    max_experiences: int | None
    top_causes: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _and(clauses: list[dict]) -> dict | None:
    clauses = [c for c in clauses if c]
    return None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}


class StoreReads:
    """Read methods; ``self`` provides ``_cols``, ``embedder``, ``cfg``, ``backend``, ``resolutions``."""

    _cols: dict[str, Any]

    def flush(self) -> None:  # the store writes summary counts it holds in memory
        pass

    def _decode_rows(self, kind: str, got: dict) -> list[Any]:
        return [codec.decode(MODELS[kind], m, rid) for rid, m in zip(got["ids"], got["metadatas"])]

    def get(self, record_id: str) -> Record | None:
        """The record with this id (any tier), or None."""
        kind = PREFIX.get(record_id.split("-", 1)[0])
        if kind == "summary":
            return next((s for s in self.list_summaries() if s.id == record_id), None)
        for k in [kind] if kind else list(MODELS):
            got = self._cols[k + "s"].get(ids=[record_id], include=["metadatas"])
            if got["ids"]:
                return self._decode_rows(k, got)[0]
        return None

    def evidence(self, record_id: str) -> Evidence | None:
        """The evidence chain of a record (see :class:`Evidence`); None if there is no such record."""
        record = self.get(record_id)
        if record is None:
            return None
        out = Evidence(record)
        if isinstance(record, (Skill, Guardrail)):
            ids = record.source_experiences
            found = {e.id: e for e in self._get_many("experience", ids)}
            out.experiences = [found[i] for i in ids if i in found]
            out.missing = [i for i in ids if i not in found]
        elif isinstance(record, ExperienceTuple):
            for kind in ("skill", "guardrail"):
                got = self._cols[kind + "s"].get(where={"sources": {"$contains": record_id}},
                                                 include=["metadatas"])
                out.cited_by += self._decode_rows(kind, got)
        return out

    def _get_many(self, kind: str, ids: list[str]) -> list[Any]:
        out = []
        for start in range(0, len(ids), 5000):
            got = self._cols[kind + "s"].get(ids=ids[start:start + 5000], include=["metadatas"])
            out += self._decode_rows(kind, got)
        return out

    def list_experiences(self, task: str | None = None, tag: str | None = None, cause: str | None = None,
                         kind: str | None = None, outcome: str | None = None, limit: int | None = 50,
                         offset: int = 0) -> list[ExperienceTuple]:
        """Experiences matching all the given filters, oldest first (storage order).

        Task, kind, cause and outcome are indexed; tags of experiences live in the record
        only (see :func:`memory.codec.experience_row`), so a tag filter pages through rows.
        """
        col = self._cols["experiences"]
        where = _and([{"task": task} if task else {}, {"cause": cause} if cause else {},
                      {"kind": kind} if kind else {}, {"outcome": outcome} if outcome else {}])
        if not tag:
            return self._decode_rows("experience", col.get(where=where, limit=limit, offset=offset or None))
        out: list[ExperienceTuple] = []
        tag, start, skipped = tag.lower(), 0, 0
        while True:
            got = col.get(where=where, limit=5000, offset=start)
            for exp in self._decode_rows("experience", got):
                if tag in exp.tags:
                    if skipped < offset:
                        skipped += 1
                        continue
                    out.append(exp)
                    if limit and len(out) >= limit:
                        return out
            if len(got["ids"]) < 5000:
                return out
            start += 5000

    def _list_knowledge(self, kind: str, task: str | None, tag: str | None, cause: str | None,
                        min_confidence: float | None, subgoal_kind: str | None, limit: int | None) -> list:
        where = _and([{"task": {"$in": [task, codec.ANY]}} if task else {},
                      {"tags": {"$contains": tag.lower()}} if tag else {}, {"cause": cause} if cause else {},
                      {"confidence": {"$gte": float(min_confidence)}} if min_confidence is not None else {},
                      {"kind": subgoal_kind} if subgoal_kind else {}])
        items = self._decode_rows(kind, self._cols[kind + "s"].get(where=where, include=["metadatas"]))
        items.sort(key=lambda k: (-k.confidence, -k.support, k.id))
        return items[:limit] if limit else items

    def list_skills(self, task: str | None = None, tag: str | None = None, min_confidence: float | None = None,
                    subgoal_kind: str | None = None, limit: int | None = None) -> list[Skill]:
        """Skills for ``task`` (or any task), best first (confidence, then support)."""
        return self._list_knowledge("skill", task, tag, None, min_confidence, subgoal_kind, limit)

    def list_guardrails(self, task: str | None = None, tag: str | None = None, cause: str | None = None,
                        min_confidence: float | None = None, subgoal_kind: str | None = None,
                        limit: int | None = None) -> list[Guardrail]:
        """Guardrails for ``task`` (or any task), best first (confidence, then support)."""
        return self._list_knowledge("guardrail", task, tag, cause, min_confidence, subgoal_kind, limit)

    def list_summaries(self, scope: str | None = None, key: str | None = None,
                       limit: int | None = None) -> list[Summary]:
        """Summaries (all writers' shards summed), by scope then key."""
        self.flush()
        out, _ = summaries.read_all(self._cols["summaries"], scope)
        out = [s for s in out if key is None or s.key == key]
        return out[:limit] if limit else out

    def search(self, text: str, kinds: tuple[str, ...] = ("skill", "guardrail", "experience"),
               limit: int = 10) -> list[Hit]:
        """Records whose text is closest in meaning to ``text``, across tiers."""
        qvec = self.embedder.embed([text])[0]
        hits: list[Hit] = []
        for kind in kinds:
            col = self._cols[kind + "s"]
            if kind == "summary":
                got = col.query(query_embeddings=[qvec], n_results=limit, where={"type": "summary"},
                                include=["metadatas", "distances"])
                merged = {s.id: s for s in self.list_summaries()}
                seen = set()
                for meta, dist in zip(got["metadatas"][0], got["distances"][0]):
                    sid = codec.decode(Summary, meta, "summary").id
                    if sid not in seen and sid in merged:
                        seen.add(sid)
                        hits.append(Hit(kind, merged[sid], 1.0 - float(dist)))
                continue
            if kind == "experience":  # through the situations: one (the latest) per situation
                hits += [Hit(kind, exp, sim) for exp, sim in self._by_situation(qvec, limit)]
                continue
            got = col.query(query_embeddings=[qvec], n_results=limit, include=["metadatas", "distances"])
            for rid, meta, dist in zip(got["ids"][0], got["metadatas"][0], got["distances"][0]):
                hits.append(Hit(kind, codec.decode(MODELS[kind], meta, rid), 1.0 - float(dist)))
        hits.sort(key=lambda h: -h.similarity)
        return hits[:limit]

    def stats(self) -> StoreStats:
        """Counts per tier, what was folded, success rate, the commonest failure causes."""
        self.flush()
        every, marks = summaries.read_all(self._cols["summaries"])
        tasks = [s for s in every if s.scope == "task"]
        n_exp = self._cols["experiences"].count()
        recorded = sum(s.count for s in tasks)
        causes: dict[str, int] = {}
        for s in tasks:
            for c, n in s.causes.items():
                causes[c] = causes.get(c, 0) + n
        ident, be = self.backend.identity, self.backend
        return StoreStats(
            where=be.where, mode=be.mode, namespace=self.cfg.namespace, embedder=ident["embedder"],
            schema_version=ident["schema_version"], experiences=n_exp,
            situations=self._cols["situations"].count(), skills=self._cols["skills"].count(),
            guardrails=self._cols["guardrails"].count(), summaries=len(every),
            recorded=recorded, folded=max(0, recorded - n_exp), writers=len(marks),
            success_rate=sum(s.successes for s in tasks) / recorded if recorded else 0.0,
            max_experiences=self.cfg.max_experiences,
            top_causes=dict(sorted(causes.items(), key=lambda kv: (-kv[1], kv[0]))[:5]))

    # -- retrieval ------------------------------------------------------------------------

    def retrieve(self, context: RetrievalContext | dict) -> Retrieved:
        """Skills and guardrails for a context, ranked and within budget (see :mod:`memory.retrieval`)."""
        ctx = context if isinstance(context, RetrievalContext) else RetrievalContext.model_validate(context)
        rc = self.cfg.retrieval
        qvec = self.embedder.embed([ctx.query_text()])[0]
        ranker = Ranker(ctx, qvec, rc, self.resolutions)
        skills = ranker.rank(ranker.candidates(self._cols["skills"], Skill))
        rails = ranker.rank(ranker.candidates(self._cols["guardrails"], Guardrail))
        k_s = rc.k_skills if ctx.k_skills is None else ctx.k_skills
        k_g = rc.k_guardrails if ctx.k_guardrails is None else ctx.k_guardrails
        budget = ctx.max_tokens if ctx.max_tokens is not None else rc.max_tokens
        out = Retrieved(*within_budget(skills, rails, k_s, k_g, budget))
        k_e = rc.k_experiences if ctx.k_experiences is None else ctx.k_experiences
        if k_e:
            out.experiences = self._similar_experiences(ctx, qvec, k_e)
        if ctx.summaries:
            keys = {("task", ctx.task)} | ({("kind", ctx.subgoal.kind)} if ctx.subgoal else set())
            out.summaries = [s for s in self.list_summaries() if (s.scope, s.key) in keys]
        return out

    def _similar_experiences(self, ctx: RetrievalContext, qvec: Any, k: int) -> list[Scored]:
        """Experiences of the nearest situations (distinct experience texts) for the task
        or the subgoal kind."""
        where = {"$or": [{"task": ctx.task}, {"kind": ctx.subgoal.kind}]} if ctx.subgoal else {"task": ctx.task}
        return [Scored(e, round(sim, 6), {"similarity": sim}) for e, sim in self._by_situation(qvec, k, where)]

    def _by_situation(self, qvec: Any, k: int, where: dict | None = None) -> list[tuple[ExperienceTuple, float]]:
        """The nearest situations, each with its example experience, nearest first."""
        sits = self._cols["situations"].query(query_embeddings=[qvec], n_results=k, where=where,
                                              include=["metadatas", "distances"])
        pairs = [(m.get("example", ""), sid, max(0.0, 1.0 - float(d)))
                 for sid, m, d in zip(sits["ids"][0], sits["metadatas"][0], sits["distances"][0])]
        if not pairs:
            return []
        got = self._cols["experiences"].get(ids=[e for e, _, _ in pairs], include=["metadatas"])
        found = dict(zip(got["ids"], got["metadatas"]))
        out = []
        for example, sid, sim in pairs:
            meta = found.get(example)
            if meta is None:  # an interrupted write: look for another row of the situation (slower)
                other = self._cols["experiences"].get(where={"sit": sid}, limit=1, include=["metadatas"])
                if not other["ids"]:
                    continue
                example, meta = other["ids"][0], other["metadatas"][0]
            out.append((codec.decode(ExperienceTuple, meta, example), sim))
        return out

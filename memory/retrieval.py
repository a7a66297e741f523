"""Retrieval: the skills and guardrails that fit a context, ranked, within a budget.

Candidates come from one vector query per collection (the context text against each
record's text) restricted by metadata to the task (or any task) and to records that
share an index with the context: the subgoal kind, the condition signature, a spatial
cell, a tag, or (guardrails) a recent failure cause or task scope. Records for another
subgoal, or tied to places the context is not in, are then dropped. Each remaining
record gets a score, with ``w`` the configured ``RankingWeights``::

    score = w.similarity * cosine(context, record)      # in [0, 1]
          + w.confidence * record.confidence
          + w.recency    * 0.5 ** (age / half_life)     # age since the record's last update
          + w.cause      * [guardrail cause in context.recent_causes]
          + w.signature  * [condition signature == the context's]
          + w.cell       * (1 fine cell | 0.5 coarser cell | 0)
          + w.tags       * jaccard(record tags, context tags)
          - w.unmet      * (skill: share of preconditions the context facts do not guarantee;
                            guardrail: 1 when the context facts rule out its risk pattern)

The best are kept up to ``k_skills`` / ``k_guardrails`` and, in score order, while their
rendered text fits ``max_tokens`` (4 characters a token).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from memory import codec, indices
from memory.config import RetrievalConfig
from memory.facts import FactError, canonical, compatible, met, signature
from memory.models import ExperienceTuple, Guardrail, Knowledge, Skill, SubgoalRef, Summary

T = TypeVar("T")


class RetrievalContext(BaseModel):
    """What the agent is about to do, and where: the query of :meth:`ExperienceStore.retrieve`."""

    model_config = ConfigDict(extra="forbid")

    task: str
    subgoal: SubgoalRef | None = None
    facts: list[str] = Field([], description="known state facts, e.g. memory.facts.from_state(...)")
    position: list[float] | None = None
    tags: list[str] = []
    recent_causes: list[str] = Field([], description="failure causes of the last subgoals")
    text: str | None = Field(None, description="query text; default: built from task, subgoal, facts")
    k_skills: int | None = None
    k_guardrails: int | None = None
    k_experiences: int | None = None
    max_tokens: int | None = None
    summaries: bool = Field(False, description="also return the task's and subgoal kind's summaries")

    @field_validator("facts")
    @classmethod
    def _facts(cls, value: list[str]) -> list[str]:
        try:
            return [canonical(f) for f in value]
        except FactError as err:
            raise ValueError(str(err)) from None

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return sorted({t.strip().lower() for t in value if t.strip()})

    def query_text(self) -> str:
        if self.text:
            return self.text
        sg = self.subgoal
        head = f"{self.task}: {sg.name} ({sg.kind} {sg.target or ''})" if sg else self.task
        return head + (" when " + ", ".join(self.facts[:24]) if self.facts else "")


@dataclass
class Scored(Generic[T]):
    record: T
    score: float
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return len(render(self.record)) // 4 + 1


@dataclass
class Retrieved:
    skills: list[Scored[Skill]] = field(default_factory=list)
    guardrails: list[Scored[Guardrail]] = field(default_factory=list)
    experiences: list[Scored[ExperienceTuple]] = field(default_factory=list)
    summaries: list[Summary] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in [*self.skills, *self.guardrails])

    def render(self) -> str:
        """The knowledge as prompt text, best first."""
        lines = [render(s.record) for s in self.skills] + [render(g.record) for g in self.guardrails]
        return "\n".join(lines)


def render(record: Any) -> str:
    return indices.record_text(record)


def _or(clauses: list[dict]) -> dict | None:
    return None if not clauses else clauses[0] if len(clauses) == 1 else {"$or": clauses}


def _and(clauses: list[dict]) -> dict | None:
    clauses = [c for c in clauses if c]
    return None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}


class Ranker:
    """One retrieval: candidates from Chroma, filters, scores, budget."""

    def __init__(self, ctx: RetrievalContext, qvec: np.ndarray, cfg: RetrievalConfig, resolutions: list[int]):
        self.ctx, self.qvec, self.cfg, self.w = ctx, qvec, cfg, cfg.weights
        self.sig = signature(ctx.facts)
        self.cells = indices.spatial_cells(ctx.position, resolutions)
        self.finest = resolutions[0]
        self.now = time.time()

    def candidates(self, collection: Any, model: type[Knowledge]) -> dict[str, tuple[Knowledge, float]]:
        """One filtered vector query: records for the task (or any task) that match the
        subgoal kind, the condition signature, a spatial cell, a tag or (guardrails) a
        recent failure cause, nearest to the context text first."""
        ctx = self.ctx
        index: list[dict] = [{"sig": self.sig}] + [{"cells": {"$contains": c}} for c in self.cells]
        index += [{"tags": {"$contains": t}} for t in ctx.tags]
        if ctx.subgoal:
            index.append({"kind": ctx.subgoal.kind})
        if model is Guardrail:
            index.append({"scope": "task"})
            if ctx.recent_causes:
                index.append({"cause": {"$in": list(ctx.recent_causes)}})
        # Without a subgoal there is nothing to narrow by: every record of the task competes.
        where = _and([{"task": {"$in": [ctx.task, codec.ANY]}}, _or(index) if ctx.subgoal else None])
        got = collection.query(query_embeddings=[self.qvec], n_results=self.cfg.candidates, where=where,
                               include=["metadatas", "distances"])
        return {rid: (codec.decode(model, meta, rid), max(0.0, 1.0 - float(dist)))
                for rid, meta, dist in zip(got["ids"][0], got["metadatas"][0], got["distances"][0])}

    def applies(self, item: Knowledge) -> bool:
        """The same subgoal (kind, and target when both name one), and the same place
        when the record is tied to places. Task-scoped guardrails, and guardrails about
        the place the context is in, apply to every subgoal."""
        sg, t = self.ctx.subgoal, item.trigger
        here = bool(t.cells and set(t.cells) & set(self.cells))
        if t.cells and self.cells and not here:
            return False
        if isinstance(item, Guardrail) and (item.scope == "task" or here):
            return True
        if sg and (t.subgoal_kind != sg.kind or (sg.target and t.subgoal_target and t.subgoal_target != sg.target)):
            return False
        return True

    def score(self, item: Knowledge, similarity: float) -> Scored:
        w, ctx = self.w, self.ctx
        parts = {"similarity": similarity, "confidence": item.confidence,
                 "recency": 0.5 ** (max(0.0, self.now - item.updated_at) / self.cfg.half_life_s),
                 "cause": float(isinstance(item, Guardrail) and item.failure_cause in ctx.recent_causes),
                 "signature": float(item.condition_signature == self.sig), "cell": 0.0, "tags": 0.0,
                 "unmet": 0.0}
        hit = set(item.trigger.cells) & set(self.cells)
        if hit:
            parts["cell"] = 1.0 if any(indices.cell_resolution(c) == self.finest for c in hit) else 0.5
        if ctx.tags:
            a, b = set(item.tags), set(ctx.tags)
            parts["tags"] = len(a & b) / len(a | b)
        if ctx.facts and isinstance(item, Skill) and item.preconditions:
            ok, total = met(item.preconditions, ctx.facts)
            parts["unmet"] = 1.0 - ok / total
        elif ctx.facts and isinstance(item, Guardrail) and item.risk_pattern:
            parts["unmet"] = float(not compatible(item.risk_pattern, ctx.facts))
        total = sum(getattr(w, name) * value for name, value in parts.items() if name != "unmet")
        return Scored(item, round(total - w.unmet * parts["unmet"], 6), parts)

    def rank(self, found: dict[str, tuple[Knowledge, float]]) -> list[Scored]:
        scored = [self.score(item, sim) for item, sim in found.values() if self.applies(item)]
        return sorted(scored, key=lambda s: (-s.score, s.record.id))


def within_budget(skills: list[Scored], rails: list[Scored], k_skills: int, k_rails: int,
                  max_tokens: int | None) -> tuple[list[Scored], list[Scored]]:
    """The best of both lists, by score, up to their counts and the token budget."""
    out_s, out_g, used = [], [], 0
    for item in sorted([*skills[:k_skills], *rails[:k_rails]], key=lambda s: -s.score):
        if max_tokens is not None and used + item.tokens > max_tokens:
            continue
        used += item.tokens
        (out_s if isinstance(item.record, Skill) else out_g).append(item)
    return out_s, out_g

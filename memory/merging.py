"""Merging knowledge: the same skill or guardrail again strengthens it; a contradiction of
well-supported knowledge is rejected with the reason.

Same knowledge: the same key (see ``Skill.key`` / ``Guardrail.key``; equal keys give equal
ids). Merging adds the support, takes the support-weighted running mean of confidence,
unions the evidence, and bumps the version.

Contradiction. A skill claims "in any state meeting its preconditions P, its steps
achieve the subgoal"; a guardrail whose failure cause is a claim about the world (by
default ``missing_requirement``) claims "in any state matching its risk pattern R, the
subgoal fails". Both cannot hold in a state meeting P and R, so they contradict exactly
when P and R are compatible (:func:`memory.facts.compatible`). Knowledge that
contradicts a well-supported item (``support >= conflict_min_support`` and
``confidence >= conflict_min_confidence``) with less support of its own is rejected.
Guardrails with other causes (took_damage, timeout, ...) are risks, not claims, and
never conflict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar

from memory.config import MemoryConfig
from memory.facts import compatible
from memory.models import Guardrail, Knowledge, Skill

K = TypeVar("K", Skill, Guardrail)


@dataclass(frozen=True)
class MergeResult:
    """What an upsert did: ``added``, ``merged`` into ``id``, or ``rejected`` for ``reason``."""

    status: Literal["added", "merged", "rejected"]
    id: str
    reason: str = ""
    record: Skill | Guardrail | None = None

    @property
    def accepted(self) -> bool:
        return self.status != "rejected"


def _union(a: list[str], b: list[str]) -> list[str]:
    seen = set(a)
    return list(a) + [x for x in b if not (x in seen or seen.add(x))]


def merge(old: K, new: K) -> K:
    """``old`` strengthened by ``new`` (the same knowledge seen again)."""
    support = old.support + new.support
    confidence = (old.confidence * old.support + new.confidence * new.support) / support
    trigger = old.trigger.model_copy(update=dict(
        cells=_union(old.trigger.cells, new.trigger.cells), tags=_union(old.trigger.tags, new.trigger.tags),
        text=old.trigger.text or new.trigger.text))
    update = dict(support=support, confidence=round(confidence, 6), trigger=trigger,
                  source_experiences=_union(old.source_experiences, new.source_experiences),
                  tags=sorted(set(old.tags) | set(new.tags)), version=old.version + 1,
                  updated_at=max(old.updated_at, new.updated_at))
    if isinstance(old, Skill):
        update["verification"] = old.verification or new.verification
    return old.model_copy(update=update)


def well_supported(item: Knowledge, cfg: MemoryConfig) -> bool:
    return item.support >= cfg.conflict_min_support and item.confidence >= cfg.conflict_min_confidence


def _same_subgoal(a: Knowledge, b: Knowledge) -> bool:
    ta, tb = a.trigger, b.trigger
    if ta.subgoal_kind != tb.subgoal_kind:
        return False
    if ta.subgoal_target and tb.subgoal_target and ta.subgoal_target != tb.subgoal_target:
        return False
    return not (ta.task and tb.task and ta.task != tb.task)


def _where(item: Knowledge) -> str:
    t = item.trigger
    return f"{t.subgoal_kind} {t.subgoal_target or '(any target)'}"


def _when(facts: list[str]) -> str:
    return " and ".join(facts) if facts else "(always)"


def contradiction(new: Knowledge, old: Knowledge, cfg: MemoryConfig) -> str | None:
    """Why ``new`` contradicts ``old``, or None. Only skill/guardrail pairs can."""
    if type(new) is type(old) or not _same_subgoal(new, old):
        return None
    skill, rail = (new, old) if isinstance(new, Skill) else (old, new)
    assert isinstance(skill, Skill) and isinstance(rail, Guardrail)
    if rail.failure_cause not in cfg.conflict_causes:
        return None
    if not compatible(skill.preconditions, rail.risk_pattern):
        return None
    head = f"contradicts well-supported {'guardrail' if old is rail else 'skill'} {old.id} " \
           f"(support {old.support}, confidence {old.confidence:.2f}): "
    if old is rail:
        return head + (f"{_where(rail)} fails with {rail.failure_cause} when {_when(rail.risk_pattern)}, "
                       f"and this skill's preconditions ({_when(skill.preconditions)}) allow that state")
    return head + (f"it achieves {_where(skill)} when {_when(skill.preconditions)}, a state this "
                   f"guardrail's risk pattern ({_when(rail.risk_pattern)}) allows")


def first_conflict(new: Knowledge, others: list[Knowledge], cfg: MemoryConfig) -> str | None:
    """The reason to reject ``new`` against the strongest contradicting item, if any."""
    for old in sorted(others, key=lambda k: (-k.support, -k.confidence, k.id)):
        if old.id == new.id or not well_supported(old, cfg) or new.support > old.support:
            continue
        reason = contradiction(new, old, cfg)
        if reason:
            return reason
    return None

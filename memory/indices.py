"""The indices on every record: condition signature, spatial cells, semantic tags, and the
text that gets embedded.

Texts are built from what repeats (task, subgoal, outcome, cause, condition facts) and
leave out what does not (positions, ids, times), so equal situations embed identically
and the embedding cache hits often.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from memory.facts import signature
from memory.models import ExperienceTuple, Guardrail, Knowledge, Skill, Summary

__all__ = ["signature", "spatial_cells", "cell_resolution", "experience_tags", "knowledge_tags",
           "index_experience", "experience_text", "skill_text", "guardrail_text", "summary_text"]


def spatial_cells(position: Sequence[float] | None, resolutions: Sequence[int]) -> list[str]:
    """The cells holding ``position`` at each resolution, finest first: ``8:1,-2``."""
    if position is None:
        return []
    return [f"{r}:" + ",".join(str(math.floor(c / r)) for c in position) for r in resolutions]


def cell_resolution(cell: str) -> int:
    """The side of a cell id's resolution (``8`` for ``8:1,-2``)."""
    return int(cell.split(":", 1)[0])


def _norm(tags: Sequence[str]) -> list[str]:
    return sorted({t.strip().lower() for t in tags if t and t.strip()})


def experience_tags(exp: ExperienceTuple) -> list[str]:
    """Agent tags plus the automatic ones: subgoal kind and object, outcome, cause, biome."""
    auto = [f"kind:{exp.subgoal.kind}", f"outcome:{exp.diagnosis.outcome}"]
    if exp.subgoal.target:
        auto.append(f"target:{exp.subgoal.target}")
    if exp.diagnosis.failure_cause:
        auto.append(f"cause:{exp.diagnosis.failure_cause}")
    if exp.pre_state.biome:
        auto.append(f"biome:{exp.pre_state.biome}")
    if exp.diagnosis.stagnant:
        auto.append("stagnant")
    if exp.diagnosis.looping:
        auto.append("looping")
    return _norm([*exp.tags, *auto])


def knowledge_tags(item: Knowledge) -> list[str]:
    t = item.trigger
    auto = [f"kind:{t.subgoal_kind}"] + ([f"target:{t.subgoal_target}"] if t.subgoal_target else [])
    if isinstance(item, Guardrail):
        auto.append(f"cause:{item.failure_cause}")
    return _norm([*item.tags, *t.tags, *auto])


def index_experience(exp: ExperienceTuple, resolutions: Sequence[int]) -> ExperienceTuple:
    """``exp`` with its condition signature, finest spatial cell and tags filled in."""
    finest = spatial_cells(exp.pre_state.position, resolutions[:1])
    return exp.model_copy(update=dict(
        condition_signature=exp.condition_signature or signature(exp.pre_state.facts),
        spatial_cell=exp.spatial_cell or (finest[0] if finest else None),
        tags=experience_tags(exp)))


def _when(facts: Sequence[str]) -> str:
    return " when " + ", ".join(facts) if facts else ""


def experience_text(exp: ExperienceTuple) -> str:
    sg, dg = exp.subgoal, exp.diagnosis
    cause = f" because {dg.failure_cause}" if dg.failure_cause else ""
    return f"{exp.task}: {sg.name} ({sg.kind} {sg.target or ''}) -> {dg.outcome}{cause}{_when(exp.pre_state.facts)}"


def skill_text(skill: Skill) -> str:
    t = skill.trigger
    return (f"skill {skill.name}: {t.subgoal_kind} {t.subgoal_target or ''}{_when(skill.preconditions)}; "
            f"steps: {'; '.join(skill.steps)}. {t.text}").strip()


def guardrail_text(rail: Guardrail) -> str:
    t = rail.trigger
    return (f"guardrail: {t.subgoal_kind} {t.subgoal_target or ''} fails with {rail.failure_cause}"
            f"{_when(rail.risk_pattern)}; repair: {rail.repair}. {t.text}").strip()


def summary_text(summary: Summary) -> str:
    """The key only: counts change on every add, the vector should not."""
    return f"summary of {summary.scope} {summary.key}"


def record_text(record: Any) -> str:
    """The text of any record: what is embedded, ranked and shown."""
    if isinstance(record, ExperienceTuple):
        return experience_text(record)
    if isinstance(record, Skill):
        return skill_text(record)
    if isinstance(record, Guardrail):
        return guardrail_text(record)
    if isinstance(record, Summary):
        return record.text
    return str(record)

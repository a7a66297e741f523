"""Synthetic records shaped like Crafter play, for tests, benchmarks and demos.

A small tech tree (what each subgoal needs) drives the records: an attempt succeeds
mostly when its requirements hold and fails with ``missing_requirement`` when one does
not, so texts repeat the way real experience does and the knowledge is consistent.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from memory.models import Diagnosis, ExperienceTuple, Guardrail, Skill, StateSnapshot, SubgoalRef, Trigger

# subgoal name -> (kind, target, requirements)
TREE: dict[str, tuple[str, str, list[str]]] = {
    "collect wood": ("collect", "wood", ["near:tree"]),
    "collect sapling": ("collect", "sapling", ["near:grass"]),
    "place table": ("place", "table", ["wood>=1"]),
    "craft wood_pickaxe": ("craft", "wood_pickaxe", ["wood>=1", "near:table"]),
    "craft wood_sword": ("craft", "wood_sword", ["wood>=1", "near:table"]),
    "collect stone": ("collect", "stone", ["wood_pickaxe>=1", "near:stone"]),
    "place stone": ("place", "stone", ["stone>=1"]),
    "craft stone_pickaxe": ("craft", "stone_pickaxe", ["wood>=1", "stone>=1", "near:table"]),
    "collect coal": ("collect", "coal", ["wood_pickaxe>=1", "near:coal"]),
    "collect iron": ("collect", "iron", ["stone_pickaxe>=1", "near:iron"]),
    "place furnace": ("place", "furnace", ["stone>=1", "near:table"]),
    "craft iron_pickaxe": ("craft", "iron_pickaxe", ["wood>=1", "coal>=1", "iron>=1", "near:furnace"]),
    "collect diamond": ("collect", "diamond", ["iron_pickaxe>=1", "near:diamond"]),
    "eat cow": ("eat", "cow", ["near:cow"]),
    "collect drink": ("drink", "water", ["near:water"]),
    "sleep": ("sleep", None, ["energy<3"]),  # type: ignore[dict-item]
}
TASKS = ("collect_diamond", "make_iron_pickaxe", "make_stone_pickaxe", "survive")
ACTIONS = ("move_left", "move_right", "move_up", "move_down", "do", "noop", "place_table",
           "make_wood_pickaxe", "sleep")
OTHER_CAUSES = ("target_not_found", "took_damage", "timeout", "path_blocked")


def negate(fact: str) -> str:
    """``wood>=1`` -> ``wood<1``, ``near:table`` -> ``!near:table``."""
    for op, neg in ((">=", "<"), ("<", ">=")):
        if op in fact:
            name, value = fact.split(op)
            return f"{name}{neg}{value}"
    return fact[1:] if fact.startswith("!") else "!" + fact


@dataclass
class Generator:
    """Seeded source of experiences, skills and guardrails."""

    seed: int = 0
    episode_len: int = 40  # subgoal attempts per episode
    world: int = 64

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.n = 0

    def experience(self, t0: float = 1.7e9) -> ExperienceTuple:
        rng, i = self.rng, self.n
        self.n += 1
        name = rng.choice(list(TREE))
        kind, target, needs = TREE[name]
        facts = [f if rng.random() < 0.8 else negate(f) for f in needs]
        unmet = [f for f, need in zip(facts, needs) if f != need]
        if unmet:
            diag = Diagnosis(outcome="failure", failure_cause="missing_requirement",
                             explanation=f"needed {negate(unmet[0])}", indicators={"progress": 0.0})
        elif rng.random() < 0.85:
            diag = Diagnosis(outcome="success", state_diff={f"inventory.{target}": 1.0},
                             indicators={"progress": 1.0})
        else:
            diag = Diagnosis(outcome="failure", failure_cause=rng.choice(OTHER_CAUSES),
                             indicators={"progress": round(rng.random(), 2)}, stagnant=rng.random() < 0.2)
        pos = [float(rng.randrange(self.world)), float(rng.randrange(self.world))]
        n_act = rng.randint(1, 12)
        return ExperienceTuple(
            id=f"ex-{self.seed:04d}-{i:08d}", episode_id=f"ep-{self.seed}-{i // self.episode_len}",
            task=TASKS[(i // self.episode_len) % len(TASKS)],
            subgoal=SubgoalRef(name=name, kind=kind, target=target),
            pre_state=StateSnapshot(inventory={"wood": rng.randint(0, 3)}, vitals={"health": 9.0},
                                    position=pos, facts=facts, biome=rng.choice(("grassland", "forest"))),
            actions=[rng.choice(ACTIONS) for _ in range(n_act)], diagnosis=diag,
            post_state=StateSnapshot(position=pos), started_at=t0 + i, ended_at=t0 + i + 0.5,
            step_start=i * 10, step_end=i * 10 + n_act)

    def experiences(self, n: int) -> list[ExperienceTuple]:
        return [self.experience() for _ in range(n)]


def skill_for(name: str, evidence: list[str] | None = None, support: int = 1, confidence: float = 0.8,
              task: str | None = None) -> Skill:
    kind, target, needs = TREE[name]
    return Skill(name=name.replace(" ", "_"), trigger=Trigger(subgoal_kind=kind, subgoal_target=target, task=task),
                 preconditions=needs, steps=[f"go to {target or 'bed'}", f"{kind} {target or ''}".strip()],
                 verification=f"{target}>=1" if target else "energy>=5", support=support,
                 confidence=confidence, source_experiences=evidence or [])


def guardrail_for(name: str, missing: str, evidence: list[str] | None = None, support: int = 1,
                  confidence: float = 0.8) -> Guardrail:
    kind, target, _ = TREE[name]
    return Guardrail(trigger=Trigger(subgoal_kind=kind, subgoal_target=target),
                     failure_cause="missing_requirement", risk_pattern=[negate(missing)],
                     repair=f"first get {missing}", support=support, confidence=confidence,
                     source_experiences=evidence or [])


def knowledge(store_experiences: list[ExperienceTuple]) -> tuple[list[Skill], list[Guardrail]]:
    """One skill per subgoal and one guardrail per requirement, citing matching experiences."""
    skills, rails = [], []
    for name, (_, _, needs) in TREE.items():
        wins = [e.id for e in store_experiences if e.subgoal.name == name and e.success][:5]
        skills.append(skill_for(name, wins, support=max(1, len(wins)), confidence=0.9))
        for need in needs:
            fails = [e.id for e in store_experiences if e.subgoal.name == name
                     and negate(need) in e.pre_state.facts][:5]
            rails.append(guardrail_for(name, need, fails, support=max(1, len(fails)), confidence=0.85))
    return skills, rails
